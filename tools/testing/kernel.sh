#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build a test kernel from the chroot's linux-source-7.3 with LLVM:
#   tools/testing/kernel.sh min|debug
# The build lives in $BKALLOC_CACHE/kernel-<flavour>-<hash>, where the hash
# covers the build environment recipe (compiler, source version) and the
# config fragments. Prints the build directory on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=${1:-min}
case $flavour in
min) frags="$TESTING_DIR/configs/min.config" ;;
debug) frags="$TESTING_DIR/configs/min.config $TESTING_DIR/configs/debug.config" ;;
*) die "unknown kernel flavour '$flavour' (min or debug)" ;;
esac

need_root
"$TESTING_DIR/buildenv.sh"

# shellcheck disable=SC2086
key=$( (toolchain_key; hash_files $frags "$TESTING_DIR/kernel.sh") | sha256sum | cut -c1-16)
name=kernel-$flavour-$key
out=$BKALLOC_CACHE/$name
if [ -e "$out/.ready" ]; then
	echo "$out"
	exit 0
fi
for old in "$BKALLOC_CACHE"/kernel-"$flavour"-*; do
	[ -d "$old" ] && [ "$old" != "$out" ] || continue
	log "removing stale kernel build $old"
	rm -rf --one-file-system "$old"
done
mkdir -p "$out"

log "building the $flavour kernel in $out (several minutes; log: $out/build.log)"
start=$(date +%s)
gfrags=
for f in $frags; do gfrags="$gfrags /src/${f#"$TOP_DIR"/}"; done
in_chroot /bin/sh -euc '
	out=$1; shift
	cd /build/linux
	make -s O="$out" LLVM="$LLVM" tinyconfig
	scripts/kconfig/merge_config.sh -m -O "$out" "$out/.config" "$@" >/dev/null
	make -s O="$out" LLVM="$LLVM" olddefconfig
	# olddefconfig silently drops what a dependency forbids: check every
	# requested setting survived.
	bad=0
	for f in "$@"; do
		grep -E "^CONFIG_[A-Z0-9_]+=" "$f" | while read -r line; do
			grep -qxF "$line" "$out/.config" || { echo "config: $line did not survive (from $f)"; exit 1; }
		done || bad=1
		sed -n "s/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1/p" "$f" | while read -r sym; do
			! grep -q "^$sym=" "$out/.config" || { echo "config: $sym must be off but is on (from $f)"; exit 1; }
		done || bad=1
	done
	[ $bad = 0 ] || exit 1
	make -s O="$out" LLVM="$LLVM" rustavailable
	make O="$out" LLVM="$LLVM" -j"$(nproc)" bzImage modules
' sh "/cache/$name" $gfrags >"$out/build.log" 2>&1 || {
	tail -n 30 "$out/build.log" >&2
	die "kernel build ($flavour) failed; full log: $out/build.log"
}
touch "$out/.ready"
log "$flavour kernel built in $(($(date +%s) - start)) s"
echo "$out"
