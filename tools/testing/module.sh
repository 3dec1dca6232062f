#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build bkalloc.ko against a test kernel, inside the build environment:
#   tools/testing/module.sh [--clippy] min|debug
# The module is built out of tree with its objects in
# $BKALLOC_CACHE/module-<flavour>-<tree> (MO=), so the source tree stays clean and
# both flavours can coexist. With --clippy (as `make check` builds it) any
# rustc, clippy or objtool warning fails the build; without, warnings are
# shown and the build goes on. Prints the path of bkalloc.ko on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

clippy=0
if [ "${1:-}" = --clippy ]; then
	clippy=1
	shift
fi
flavour=${1:-min}

kdir=$("$TESTING_DIR/kernel.sh" "$flavour")
# One output directory per kernel and source tree: objects built from another
# checkout can be newer than this tree's sources and would look up to date.
tree=$(echo "$TOP_DIR" | sha256sum | cut -c1-8)
mo=$BKALLOC_CACHE/module-$flavour-$tree
mkdir -p "$mo"

log=$mo/build.log
if ! in_chroot /bin/sh -euc '
	kdir=$1; mo=$2; clippy=$3
	# W=1 would also check the kernel headers; the module itself is what we lint.
	make -C "$kdir" M=/src MO="$mo" LLVM="$LLVM" CLIPPY="$clippy" modules
' sh "/cache/${kdir#"$BKALLOC_CACHE"/}" "/cache/${mo#"$BKALLOC_CACHE"/}" "$clippy" >"$log" 2>&1; then
	cat "$log" >&2
	die "module build against the $flavour kernel failed"
fi
if grep -qE '^(warning|error)(\[|:)|warning: objtool' "$log"; then
	# `make check` holds the module to zero warnings; a plain build (the demo,
	# a user's `make`) must not stop because a newer compiler added a lint.
	cat "$log" >&2
	[ $clippy = 1 ] || log "warning: the module built with warnings against the $flavour kernel (make check fails on them)"
	[ $clippy = 0 ] || die "module build against the $flavour kernel has warnings"
fi
if [ $clippy = 1 ]; then
	# The kernel stack is 16 KiB and register's path nests several large
	# frames (rustc checks no frame size): no function may take more than
	# MAX_FRAME bytes (default 8192; seen: a 12 KiB register frame, whose
	# callee overran the stack's guard page).
	frames=$(in_chroot /bin/sh -c 'objdump -d --no-show-raw-insn "$1"' sh "/cache/${mo#"$BKALLOC_CACHE"/}/bkalloc.ko" |
		awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 }
			/sub +\$0x[0-9a-f]+,%rsp/ { split($0, a, "$"); split(a[2], b, ","); print b[1], fn }' |
		while read -r hex fn; do echo "$((hex)) $fn"; done | sort -rn)
	top=$(echo "$frames" | head -n1)
	if [ "${top%% *}" -gt "${MAX_FRAME:-8192}" ]; then
		echo "$frames" | head -n 5 >&2
		die "a stack frame of ${top%% *} bytes in the module built against $flavour (at most ${MAX_FRAME:-8192})"
	fi
fi
echo "$mo/bkalloc.ko"
