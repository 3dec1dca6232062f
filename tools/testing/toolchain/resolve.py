#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Resolve the build environment's policy into exact package versions.

    resolve.py POLICY MADISON [--min TOOL=VERSION ...] [--kernel-only]

POLICY is tools/testing/toolchain/policy; MADISON is the output of
`apt-cache madison` for every package the policy names (and for every
linux-source-* series, so that an error can say what the archive has).
Prints one "package=version" line per package, in policy order, and exits 0;
or prints what is missing and what the archive has, and exits 2.

--min rustc=V, --min llvm=V and --min bindgen=V are the kernel's minimums
(scripts/min-tool-version.sh); --kernel-only resolves just the kernel source,
which the build environment installs first to read those minimums.

The archive keeps only the newest build of an architecture-specific package
per suite, so nothing here is pinned that the policy does not pin.
"""

import re
import sys


class PolicyError(Exception):
    """The policy cannot be met by this archive; the message says why."""


# ---- Debian version comparison (deb-version(7)) ----


def _order(c):
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _cmp_part(a, b):
    i = j = 0
    while i < len(a) or j < len(b):
        first = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first:
                first = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first:
            return first
    return 0


def split_version(v):
    """(epoch, upstream, revision) of a Debian version string."""
    epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return int(epoch or 0), upstream, revision


def version_cmp(a, b):
    """<0, 0, >0 as Debian orders versions a and b."""
    ea, ua, ra = split_version(a)
    eb, ub, rb = split_version(b)
    if ea != eb:
        return ea - eb
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)


def upstream_at_least(version, minimum):
    """Whether the upstream part of a Debian version is >= a tool's minimum."""
    return _cmp_part(split_version(version)[1], minimum) >= 0


# ---- inputs ----


def parse_policy(text):
    """The policy's directives as a list of (keyword, [args])."""
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].split()
        if not line:
            continue
        word, args = line[0], line[1:]
        want = {"suite": 2, "kernel": 1}
        if word not in ("suite", "kernel", "rust", "llvm", "candidate"):
            raise PolicyError(f"policy line {n}: unknown directive '{word}'")
        if word in want and len(args) != want[word]:
            raise PolicyError(f"policy line {n}: '{word}' takes {want[word]} argument(s)")
        if word in ("rust", "candidate") and not args:
            raise PolicyError(f"policy line {n}: '{word}' names no package")
        if word == "llvm" and (len(args) < 2 or not args[0].isdigit()):
            raise PolicyError(f"policy line {n}: 'llvm' takes a major and packages")
        rules.append((word, args))
    for word in ("suite", "kernel", "rust", "llvm"):
        if sum(1 for w, _ in rules if w == word) != 1:
            raise PolicyError(f"policy: exactly one '{word}' line is needed")
    return rules


MADISON = re.compile(r"^\s*(\S+)\s*\|\s*(\S+)\s*\|\s*\S+\s+([^/\s]+)/\S+\s+\S+\s+Packages\s*$")


def parse_madison(text):
    """{package: [(version, suite), ...]} from `apt-cache madison` output."""
    archive = {}
    for line in text.splitlines():
        m = MADISON.match(line)
        if m:
            archive.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
    return archive


# ---- resolution ----


class Archive:
    def __init__(self, entries, suite, backports):
        self.entries = entries
        self.suite = suite
        self.backports = backports

    def versions(self, pkg):
        return self.entries.get(pkg, [])

    def has(self, pkg, version):
        return any(v == version for v, _ in self.versions(pkg))

    def newest(self, versions):
        best = None
        for v in versions:
            if best is None or version_cmp(v, best) > 0:
                best = v
        return best

    def candidate(self, pkg):
        """What `apt-get install -t BACKPORTS pkg` takes: the newest version in
        backports, else the newest in the suite (and its updates)."""
        vs = self.versions(pkg)
        bpo = [v for v, s in vs if s == self.backports]
        rest = [v for v, s in vs if s != self.backports and s.startswith(self.suite)]
        return self.newest(bpo) or self.newest(rest)

    def describe(self, pkgs):
        lines = []
        for p in pkgs:
            for v, s in self.versions(p):
                lines.append(f"  {p} | {v} | {s}")
        return "\n".join(lines) or "  (nothing)"

    def missing(self, pkg):
        raise PolicyError(f"{pkg} is not in the archive (suites {self.suite}, {self.backports})")


def resolve(policy_text, madison_text, minimums=None, kernel_only=False):
    """[(package, version)] for the policy against this archive, in policy
    order; raises PolicyError naming what is missing and what the archive has."""
    minimums = minimums or {}
    rules = parse_policy(policy_text)
    suite, backports = next(a for w, a in rules if w == "suite")
    archive = Archive(parse_madison(madison_text), suite, backports)
    out = []
    for word, args in rules:
        if word == "kernel":
            pkg = args[0]
            newest = archive.newest(v for v, _ in archive.versions(pkg))
            if newest is None:
                others = sorted(p for p in archive.entries if p.startswith("linux-source-"))
                raise PolicyError(
                    f"{pkg} is not in the archive: bkalloc builds against the "
                    f"{pkg[len('linux-source-'):]} kernel series; the archive has:\n"
                    + archive.describe(others)
                    + "\n(a new series needs the module ported and the policy changed)"
                )
            out.append((pkg, newest))
        if kernel_only:
            continue
        if word == "rust":
            lead = args[0]
            v = archive.candidate(lead)
            if v is None:
                archive.missing(lead)
            need = minimums.get("rustc")
            if need and not upstream_at_least(v, need):
                raise PolicyError(
                    f"no {lead} new enough: the kernel needs {lead} >= {need}; "
                    f"the archive has:\n" + archive.describe([lead])
                )
            for pkg in args:
                if not archive.has(pkg, v):
                    raise PolicyError(
                        f"{pkg} {v} is not in the archive ({lead} is {v}; the Rust "
                        f"toolchain is installed at one version); the archive has:\n"
                        + archive.describe([pkg])
                    )
                out.append((pkg, v))
        elif word == "llvm":
            major, pkgs = args[0], args[1:]
            lead = pkgs[0]
            v = archive.candidate(lead)
            if v is None:
                raise PolicyError(
                    f"{lead} is not in the archive: the build uses LLVM {major} "
                    f"(LLVM=-{major}); the archive has:\n" + archive.describe([lead])
                )
            need = minimums.get("llvm")
            if need and not upstream_at_least(v, need):
                raise PolicyError(f"{lead} {v} is older than the kernel's minimum LLVM {need}")
            for pkg in pkgs:
                if not archive.has(pkg, v):
                    raise PolicyError(
                        f"{pkg} {v} is not in the archive ({lead} is {v}; LLVM {major} "
                        f"is installed at one version); the archive has:\n"
                        + archive.describe([pkg])
                    )
                out.append((pkg, v))
        elif word == "candidate":
            for pkg in args:
                v = archive.candidate(pkg)
                if v is None:
                    archive.missing(pkg)
                need = minimums.get(pkg)
                if need and not upstream_at_least(v, need):
                    raise PolicyError(
                        f"no {pkg} new enough: the kernel needs {pkg} >= {need}; "
                        f"the archive has:\n" + archive.describe([pkg])
                    )
                out.append((pkg, v))
    return out


def main(argv):
    args = argv[1:]
    minimums = {}
    kernel_only = False
    files = []
    while args:
        a = args.pop(0)
        if a == "--min" and args:
            tool, _, v = args.pop(0).partition("=")
            minimums[tool] = v
        elif a == "--kernel-only":
            kernel_only = True
        elif a.startswith("-"):
            print(f"resolve.py: unknown option {a}", file=sys.stderr)
            return 64
        else:
            files.append(a)
    if len(files) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 64
    with open(files[0]) as p, open(files[1]) as m:
        policy, madison = p.read(), m.read()
    try:
        for pkg, v in resolve(policy, madison, minimums, kernel_only):
            print(f"{pkg}={v}")
    except PolicyError as e:
        print(f"the build environment's policy cannot be met: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
