# SPDX-License-Identifier: GPL-2.0
# Shared shell helpers for bkalloc's build environment and VM harness.
# Sourced, not executed.

TESTING_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP_DIR=$(cd "$TESTING_DIR/../.." && pwd)

# Everything big (chroot, kernel builds, run logs) lives here, outside the repo.
BKALLOC_CACHE=${BKALLOC_CACHE:-/var/cache/bkalloc}

die() {
	echo "bkalloc: error: $*" >&2
	exit 1
}

log() {
	echo "bkalloc: $*" >&2
}

need_root() {
	[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and mounts need it); try: sudo $0"
}

# Hash of files' contents (and names), for cache keys.
hash_files() {
	(for f in "$@"; do
		echo "== ${f#"$TOP_DIR"/}"
		cat "$f"
	done) | sha256sum | cut -c1-16
}

# The chroot recipe: the pin list plus the script that applies it.
chroot_key() {
	hash_files "$TESTING_DIR/packages.pin" "$TESTING_DIR/buildenv.sh"
}

chroot_dir() {
	echo "$BKALLOC_CACHE/chroot-$(chroot_key)"
}

# Run a command inside the chroot, in a private mount namespace so that no
# mount outlives the command. The repo is visible at /src, the cache at /cache.
# Extra bind mounts: BKALLOC_BIND="host:guest ..." (used by the VM runner).
in_chroot() {
	local root
	root=$(chroot_dir)
	[ -e "$root/.ready" ] || die "build environment missing; run tools/testing/buildenv.sh"
	unshare --mount --propagation private -- /bin/sh -eu -c '
		root=$1; top=$2; cache=$3; shift 3
		mkdir -p "$root/src" "$root/cache"
		mount -t proc proc "$root/proc"
		mount -t sysfs sys "$root/sys"
		mount --bind /dev "$root/dev"
		mount --bind "$top" "$root/src"
		mount --bind "$cache" "$root/cache"
		for b in ${BKALLOC_BIND:-}; do
			mkdir -p "$root/${b#*:}"
			mount --bind "${b%%:*}" "$root/${b#*:}"
		done
		exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			LIBCLANG_PATH=/usr/lib/llvm-21/lib "$@"
	' sh "$root" "$TOP_DIR" "$BKALLOC_CACHE" "$@"
}
