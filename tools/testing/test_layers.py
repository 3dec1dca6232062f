# SPDX-License-Identifier: GPL-2.0
"""layers.py fails on a planted violation and passes the tree as it is."""
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import layers  # noqa: E402

TOP = Path(__file__).resolve().parents[2]
LAYERS = layers.parse_layers((TOP / layers.DESIGN).read_text())


def tree_sources():
    rust = TOP / "rust"
    out = {}
    for p in sorted(rust.rglob("*.rs")):
        if "target" in p.parts or "tests" in p.relative_to(rust).parts:
            continue
        out.setdefault(layers.module_of(p, rust), []).append(p.read_text())
    return out


def planted(module, line):
    s = tree_sources()
    s[module] = s[module] + [line]
    return layers.check(s, LAYERS)[1]


class Layers(unittest.TestCase):
    def test_the_tree_passes(self):
        self.assertEqual(layers.check(tree_sources(), LAYERS)[1], [])

    def test_a_use_line_back_up_fails(self):
        errors = planted("allocator", "use crate::volume::Volume;\n")
        self.assertTrue(any("allocator (layer 3) -> volume (layer 5)" in e for e in errors), errors)

    def test_an_inline_path_fails(self):
        errors = planted("volume", "fn f() { let _ = crate::registry::Registry::new; }\n")
        self.assertTrue(any("volume (layer 5) -> registry" in e for e in errors), errors)

    def test_a_grouped_use_fails(self):
        errors = planted("discard", "use crate::{\n    bkcore::x,\n    volume::{Volume, Pool},\n};\n")
        self.assertTrue(any("discard (layer 4) -> volume" in e for e in errors), errors)

    def test_a_sideways_arrow_fails(self):
        errors = planted("journal", "use crate::btree::Tree;\n")
        self.assertTrue(any("journal (layer 3) -> btree (layer 3)" in e for e in errors), errors)

    def test_a_cycle_fails(self):
        s = {"a": ["use crate::b::X;"], "b": ["fn f() { crate::a::g() }"]}
        errors = layers.check(s, {"a": 1, "b": 1})[1]
        self.assertEqual(len(errors), 2, errors)

    def test_comments_and_strings_are_not_arrows(self):
        s = {"a": ["// crate::b::X\n/// [`crate::b`]\nconst S: &str = \"crate::b::\";"], "b": [""]}
        self.assertEqual(layers.check(s, {"a": 0, "b": 1})[1], [])

    def test_a_file_missing_from_the_table_fails(self):
        s = tree_sources()
        s["newfile"] = ["use crate::volume::Volume;"]
        errors = layers.check(s, LAYERS)[1]
        self.assertTrue(any("newfile: not in" in e for e in errors), errors)

    def test_the_table_of_the_design_page_is_read(self):
        self.assertEqual(LAYERS["bkalloc"], 10)
        self.assertEqual(LAYERS["bkcore"], 0)
        self.assertNotIn("file", LAYERS)

    def test_an_rst_list_table_is_parsed(self):
        page = (
            "Intro\n=====\n\n* - 9\n  - ``stray``\n\n"
            "Module layers\n=============\n\nText.\n\n"
            ".. list-table::\n   :header-rows: 1\n\n"
            "   * - layer\n     - file\n     - what it owns\n"
            "   * - 2\n     - ``a``, ``rust/b.rs``\n     - two files\n"
            "   * - 1\n     - ``c``\n     - a cell that goes on\n       over two lines\n\n"
            "Next\n----\n\n.. list-table::\n\n   * - 0\n     - ``d``\n     - not in the section\n"
        )
        self.assertEqual(layers.parse_layers(page), {"a": 2, "b": 2, "c": 1})

    def test_a_page_without_the_section_fails(self):
        with self.assertRaisesRegex(ValueError, "no 'Module layers' section"):
            layers.parse_layers("Module layers\n\n* - 1\n  - ``a``\n")

    def test_a_file_on_two_layers_fails(self):
        page = "Module layers\n-------------\n\n.. list-table::\n\n   * - 2\n     - ``a``\n   * - 1\n     - ``a``\n"
        with self.assertRaisesRegex(ValueError, "a is on two layers"):
            layers.parse_layers(page)

    def test_the_crate_root_bare_paths_count(self):
        s = {"bkalloc": ["mod a;\nuse a::X;\n"], "a": [""]}
        arrows = layers.check(s, {"bkalloc": 2, "a": 1})[0]
        self.assertIn(("bkalloc", "a"), arrows)


if __name__ == "__main__":
    unittest.main()
