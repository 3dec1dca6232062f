#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the userspace tool statically (it runs in the busybox test VM) with
# the host's cargo. Prints the binary's path on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

host_cargo_check
target=x86_64-unknown-linux-gnu
out=$BKALLOC_CACHE/tool-target
mkdir -p "$out"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$out" \
	cargo build --quiet --locked --release --target "$target" \
	--manifest-path "$TOP_DIR/tools/bkalloc/Cargo.toml" >&2 ||
	die "building tools/bkalloc failed"
bin=$out/$target/release/bkalloc
file "$bin" 2>/dev/null | grep -q 'static' || ! ldd "$bin" >/dev/null 2>&1 ||
	die "$bin is not statically linked"
echo "$bin"
