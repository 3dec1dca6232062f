#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Pack the test VM's base initramfs:
#   tools/testing/initramfs.sh FLAVOUR MODULE.ko TOOL
# busybox (static), /init, the guest test library, bkalloc.ko and the static
# bkalloc tool, and samples/ (scenario files). Each boot appends a small archive with /test/run to it.
# Prints the archive's path on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavour=$1
module=$2
tool=$3

# One per kernel and source tree, as the module's objects (module.sh): each
# boot appends to it, so a run from another checkout must not replace it.
tree=$(echo "$TOP_DIR" | sha256sum | cut -c1-8)
stage=$BKALLOC_CACHE/initramfs-$flavour-$tree
out=$stage.cpio.gz
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,lib/modules,test,etc}
cp "$(chroot_dir)/usr/bin/busybox" "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
cp "$TESTING_DIR/guest/init" "$stage/init"
cp "$TESTING_DIR/guest/lib.sh" "$stage/lib/bkalloc-test.sh"
cp "$module" "$stage/lib/modules/bkalloc.ko"
cp "$tool" "$stage/bin/bkalloc"
cp -r "$TOP_DIR/samples" "$stage/samples"
chmod 0755 "$stage/init" "$stage/bin/bkalloc"

in_chroot /bin/sh -euc '
	stage=$1; out=$2
	# Applets as symlinks, made here so /init can rely on them.
	for a in $(/usr/bin/busybox --list-full); do
		[ -e "$stage/$a" ] || ln -s /bin/busybox "$stage/$a"
	done
	cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1 >"$out"
' sh "/cache/${stage#"$BKALLOC_CACHE"/}" "/cache/${out#"$BKALLOC_CACHE"/}" ||
	die "packing the initramfs failed"
echo "$out"
