#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The module's import graph against its layers.

Documentation/design.rst ("Module layers") gives every file of rust/ a
layer. A file may name (`crate::x`, in a `use` or inline, grouped
`crate::{x, y::z}` included; in the crate root also a bare `x::`) only
files on lower layers, so no two files import each other, directly or in a
circle. rust/glue/ counts as `glue` and rust/core/ as `bkcore`. Items the
kernel's `module!` macro puts in the crate root for the glue
(`LocalModule`, `THIS_MODULE`) are not files. Prints every forbidden arrow
and exits 1, or prints the graph and exits 0.
"""
import re
import sys
from pathlib import Path

ROOT = "bkalloc"
MACRO_ITEMS = {"LocalModule", "THIS_MODULE"}


DESIGN = "Documentation/design.rst"
SECTION = "Module layers"
UNDERLINE = re.compile(r"([=\-~^])\1*\s*")


def section_titles(lines):
    """Indices of the rst section titles: a text line at the left margin
    followed by an underline of '=', '-', '~' or '^' at least as long."""
    titles = []
    for i in range(len(lines) - 1):
        title, under = lines[i].rstrip(), lines[i + 1].rstrip()
        if (
            title
            and not title[0].isspace()
            and not UNDERLINE.fullmatch(title)
            and UNDERLINE.fullmatch(under)
            and len(under) >= len(title)
        ):
            titles.append(i)
    return titles


def table_rows(lines):
    """The rows of the list tables in lines, as lists of cells: a row starts
    with '* - first cell', each further cell with '- cell', and a cell goes
    on over more-indented lines; a line at the left margin ends a table."""
    rows, row = [], None
    for line in lines:
        if not line.strip():
            continue
        if not line[0].isspace():
            row = None
            continue
        m = re.match(r"\s*\*\s+-\s+(.*)", line)
        if m:
            row = [m.group(1).strip()]
            rows.append(row)
            continue
        m = re.match(r"\s*-\s+(.*)", line)
        if m and row is not None:
            row.append(m.group(1).strip())
        elif row is not None:
            row[-1] += " " + line.strip()
    return rows


def parse_layers(design_text):
    """{file: layer} from the list table of the section 'Module layers' of
    Documentation/design.rst (a title underlined with '=' or '-'). A row whose
    first cell is a number (the layer) names the files in its second cell,
    ``bkalloc``, several separated by commas; other rows (the header) are
    skipped. The section ends at the next title."""
    lines = design_text.splitlines()
    titles = section_titles(lines)
    start = next(
        (
            i
            for i in titles
            if lines[i].strip() == SECTION and lines[i + 1].strip()[0] in "=-"
        ),
        None,
    )
    if start is None:
        raise ValueError(
            f"{DESIGN} has no '{SECTION}' section (a title underlined with '=' or '-')"
        )
    end = next((i for i in titles if i > start), len(lines))
    layers = {}
    for cells in table_rows(lines[start + 2 : end]):
        if len(cells) < 2 or not cells[0].isdigit():
            continue
        for name in cells[1].replace("`", "").replace(",", " ").split():
            name = name.removesuffix(".rs").removeprefix("rust/").rstrip("/")
            if name in layers:
                raise ValueError(f"{name} is on two layers")
            layers[name] = int(cells[0])
    if not layers:
        raise ValueError(
            f"the '{SECTION}' section of {DESIGN} has no list-table row"
            " '* - LAYER' / '  - ``file``'"
        )
    return layers


def strip_comments(src):
    """The source without // comments (doc comments included) or strings."""
    src = re.sub(r'"(?:\\.|[^"\\])*"', '""', src)
    return re.sub(r"//[^\n]*", "", src)


def brace_group(src, start):
    """The text inside the braces that open at src[start]."""
    depth = 0
    for i in range(start, len(src)):
        if src[i] == "{":
            depth += 1
        elif src[i] == "}":
            depth -= 1
            if depth == 0:
                return src[start + 1 : i]
    raise ValueError("unbalanced braces")


def top_level_heads(group):
    """First path segment of each top-level item of a use group."""
    heads, depth, item = [], 0, ""
    for ch in group + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            head = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", item)
            if head:
                heads.append(head.group(1))
            item = ""
        else:
            item += ch
    return heads


def names_used(src, modules, is_root):
    """The crate-level names a file's code refers to."""
    src = strip_comments(src)
    used = set()
    for m in re.finditer(r"\bcrate\s*::\s*(\{|[A-Za-z_][A-Za-z0-9_]*)", src):
        if m.group(1) == "{":
            used.update(top_level_heads(brace_group(src, m.start(1))))
        else:
            used.add(m.group(1))
    if is_root:
        for name in modules:
            if re.search(r"(?<![A-Za-z0-9_:])" + re.escape(name) + r"\s*::", src):
                used.add(name)
    return used


def module_of(path, rust_dir):
    rel = path.relative_to(rust_dir)
    if rel.parts[0] == "glue" or rel.name == "glue.rs":
        return "glue"
    if rel.parts[0] == "core":
        return "bkcore"
    return rel.stem


def check(sources, layers):
    """sources: {module: [source text, ...]}; returns (arrows, errors)."""
    arrows, errors = set(), []
    for module in sorted(sources):
        if module not in layers:
            errors.append(f"{module}: not in the design page's layer table")
            continue
        for src in sources[module]:
            for name in names_used(src, layers, module == ROOT):
                if name == module or name in MACRO_ITEMS or name == "self":
                    continue
                if name not in layers:
                    if name[:1].islower():
                        errors.append(f"{module} -> {name}: {name} is not in the layer table")
                    continue
                arrows.add((module, name))
    for a, b in sorted(arrows):
        if layers[b] >= layers[a]:
            errors.append(
                f"{a} (layer {layers[a]}) -> {b} (layer {layers[b]}): an arrow must point to a lower layer"
            )
    return arrows, errors


def main():
    top = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
    rust_dir = top / "rust"
    layers = parse_layers((top / DESIGN).read_text())
    sources = {}
    for path in sorted(rust_dir.rglob("*.rs")):
        if "target" in path.parts or "tests" in path.relative_to(rust_dir).parts:
            continue
        sources.setdefault(module_of(path, rust_dir), []).append(path.read_text())
    arrows, errors = check(sources, layers)
    for e in errors:
        print(f"layers: {e}")
    if errors:
        return 1
    for module in sorted(sources, key=lambda m: (-layers[m], m)):
        to = sorted({b for a, b in arrows if a == module}, key=lambda m: (-layers[m], m))
        print(f"{layers[module]} {module} -> {' '.join(to) or '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
