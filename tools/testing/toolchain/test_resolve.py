# SPDX-License-Identifier: GPL-2.0
"""Host tests of resolve.py against recorded archive states (archive/)."""

import os
import shutil
import subprocess
import unittest

import resolve

HERE = os.path.dirname(os.path.abspath(__file__))
# The kernel's minimums as linux-source-7.3's scripts/min-tool-version.sh says.
KERNEL_MINS = {"rustc": "1.85.0", "bindgen": "0.71.1", "llvm": "17.0.1"}


def read(name):
    with open(os.path.join(HERE, name)) as f:
        return f.read()


POLICY = read("policy")


def resolved(archive, mins=KERNEL_MINS, **kw):
    return dict(resolve.resolve(POLICY, read("archive/" + archive), mins, **kw))


def edited(archive, drop=(), add=()):
    """A recorded archive with lines dropped (by substring) and added."""
    lines = [l for l in read("archive/" + archive).splitlines() if not any(d in l for d in drop)]
    return "\n".join(lines + list(add)) + "\n"


def bpo(pkg, version):
    return f"{pkg} | {version} | MIRROR trixie-backports/main amd64 Packages"


class TodaysArchive(unittest.TestCase):
    def test_resolves_every_policy_package(self):
        got = resolved("2026-11-30.madison")
        self.assertEqual(got["linux-source-7.3"], "7.3.4-1~bpo13+1")
        for p in ("rustc", "cargo", "rustfmt", "rust-clippy", "libstd-rust-dev", "rust-src"):
            self.assertEqual(got[p], "1.97.1+dfsg1-1~bpo13+1", p)
        for p in ("clang-21", "lld-21", "llvm-21", "libclang-21-dev"):
            self.assertEqual(got[p], "1:21.1.8-3~bpo13+2", p)
        self.assertEqual(got["bindgen"], "0.71.1-6")
        self.assertEqual(got["qemu-system-x86"], "1:11.1.3+ds-1~bpo13+1")
        self.assertEqual(got["busybox-static"], "1:1.37.0-6+b9")
        self.assertEqual(got["python3"], "3.13.5-1")
        self.assertEqual(len(got), 24)

    def test_the_expired_pin_is_not_needed(self):
        # The old exact pin, rustc 1.96.1, is gone (issue 11); the resolver
        # takes what backports has instead of failing.
        arch = resolve.parse_madison(read("archive/2026-11-30.madison"))
        self.assertNotIn("1.96.1+dfsg1-2~bpo13+1", [v for v, _ in arch["rustc"]])
        self.assertEqual(resolved("2026-11-30.madison")["rustc"], "1.97.1+dfsg1-1~bpo13+1")

    def test_rust_src_keeps_older_versions_but_follows_rustc(self):
        arch = resolve.parse_madison(read("archive/2026-11-30.madison"))
        self.assertGreater(len(arch["rust-src"]), 2)
        self.assertEqual(resolved("2026-11-30.madison")["rust-src"], "1.97.1+dfsg1-1~bpo13+1")

    def test_kernel_only(self):
        self.assertEqual(
            resolved("2026-11-30.madison", kernel_only=True),
            {"linux-source-7.3": "7.3.4-1~bpo13+1"},
        )


class OtherArchives(unittest.TestCase):
    def test_september_archive_resolves_to_its_rustc(self):
        got = resolved("2026-09-session1.madison")
        for p in ("rustc", "cargo", "rust-clippy", "rust-src"):
            self.assertEqual(got[p], "1.96.1+dfsg1-2~bpo13+1", p)

    def test_kernel_series_gone(self):
        with self.assertRaises(resolve.PolicyError) as e:
            resolved("no-linux-7.3.madison")
        msg = str(e.exception)
        self.assertIn("linux-source-7.3 is not in the archive", msg)
        self.assertIn("linux-source-7.4 | 7.4.1-1~bpo13+1 | trixie-backports", msg)
        self.assertIn("linux-source-7.2 | 7.2.12-1~bpo13+1", msg)

    def test_rustc_older_than_the_kernel_needs(self):
        with self.assertRaises(resolve.PolicyError) as e:
            resolved("2026-11-30.madison", mins=dict(KERNEL_MINS, rustc="1.99.0"))
        self.assertIn("no rustc new enough: the kernel needs rustc >= 1.99.0", str(e.exception))
        self.assertIn("rustc | 1.97.1+dfsg1-1~bpo13+1 | trixie-backports", str(e.exception))

    def test_rust_src_not_yet_at_rustcs_version(self):
        text = edited("2026-11-30.madison", drop=["rust-src | 1.97.1"])
        with self.assertRaises(resolve.PolicyError) as e:
            resolve.resolve(POLICY, text, KERNEL_MINS)
        self.assertIn("rust-src 1.97.1+dfsg1-1~bpo13+1 is not in the archive", str(e.exception))
        self.assertIn("rust-src | 1.96.1+dfsg1-2~bpo13+1", str(e.exception))

    def test_backports_without_rustc_falls_back_to_the_suite(self):
        text = edited("2026-11-30.madison", drop=["1.97.1+dfsg1-1~bpo13+1"])
        got = dict(resolve.resolve(POLICY, text, KERNEL_MINS))
        self.assertEqual(got["rustc"], "1.85.1+dfsg1-1+deb13u1")
        self.assertEqual(got["rust-src"], "1.85.1+dfsg1-1+deb13u1")

    def test_llvm_packages_at_different_builds(self):
        text = edited("2026-11-30.madison", drop=["lld-21 |"], add=[bpo("lld-21", "1:21.1.8-4~bpo13+1")])
        with self.assertRaises(resolve.PolicyError) as e:
            resolve.resolve(POLICY, text, KERNEL_MINS)
        self.assertIn("lld-21 1:21.1.8-3~bpo13+2 is not in the archive", str(e.exception))

    def test_newer_backports_build_is_taken(self):
        text = edited(
            "2026-11-30.madison",
            add=[bpo("qemu-system-x86", "1:11.2.0+ds-1~bpo13+1"), bpo("linux-source-7.3", "7.3.10-1~bpo13+1")],
        )
        got = dict(resolve.resolve(POLICY, text, KERNEL_MINS))
        self.assertEqual(got["qemu-system-x86"], "1:11.2.0+ds-1~bpo13+1")
        self.assertEqual(got["linux-source-7.3"], "7.3.10-1~bpo13+1")

    def test_bindgen_minimum(self):
        with self.assertRaises(resolve.PolicyError) as e:
            resolved("2026-11-30.madison", mins=dict(KERNEL_MINS, bindgen="0.72.0"))
        self.assertIn("no bindgen new enough", str(e.exception))


class Policy(unittest.TestCase):
    def test_unknown_directive(self):
        with self.assertRaisesRegex(resolve.PolicyError, "line 1: unknown directive 'pin'"):
            resolve.parse_policy("pin rustc=1\n")

    def test_one_rust_line(self):
        with self.assertRaisesRegex(resolve.PolicyError, "exactly one 'rust' line"):
            resolve.parse_policy("suite a b\nkernel k\nllvm 21 clang-21\n")


class Versions(unittest.TestCase):
    PAIRS = [
        ("1.97.1+dfsg1-1~bpo13+1", "1.96.1+dfsg1-2~bpo13+1"),
        ("1:21.1.8-3~bpo13+2", "21.1.9-1"),
        ("7.3.10-1~bpo13+1", "7.3.4-1~bpo13+1"),
        ("1.0~rc1", "1.0"),
        ("1.0", "1.0~rc1"),
        ("1.0-1", "1.0-1"),
        ("2:3.8.2+dfsg-1+b2", "2:3.8.2+dfsg-1"),
        ("1.0a", "1.0+"),
        ("0.71.1-6", "0.71.1"),
    ]

    def test_against_dpkg(self):
        if not shutil.which("dpkg"):
            self.skipTest("no dpkg on this host")
        for a, b in self.PAIRS:
            for x, y in ((a, b), (b, a)):
                want = [op for op in ("lt", "eq", "gt")
                        if subprocess.run(["dpkg", "--compare-versions", x, op, y]).returncode == 0][0]
                c = resolve.version_cmp(x, y)
                got = "lt" if c < 0 else "gt" if c > 0 else "eq"
                self.assertEqual(got, want, f"{x} vs {y}")

    def test_upstream_minimum(self):
        self.assertTrue(resolve.upstream_at_least("1.85.1+dfsg1-1+deb13u1", "1.85.0"))
        self.assertTrue(resolve.upstream_at_least("0.71.1-6", "0.71.1"))
        self.assertFalse(resolve.upstream_at_least("1:21.1.8-3~bpo13+2", "22.0.0"))


if __name__ == "__main__":
    unittest.main()
