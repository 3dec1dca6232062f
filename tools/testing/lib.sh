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

TOOLCHAIN_DIR=$TESTING_DIR/toolchain

# The build environment's recipe: the policy and the scripts that apply it.
# The resolved versions are not part of it: they key what is built in the
# environment (toolchain_key), not the environment itself.
chroot_key() {
	hash_files "$TOOLCHAIN_DIR/policy" "$TOOLCHAIN_DIR/resolve.py" "$TESTING_DIR/buildenv.sh"
}

chroot_dir() {
	echo "$BKALLOC_CACHE/chroot-$(chroot_key)"
}

# The environment's recipe and resolved versions: the key of the kernels and
# anything else compiled in it.
toolchain_key() {
	(chroot_key; cat "$(chroot_dir).versions" 2>/dev/null) | sha256sum | cut -c1-16
}

# Every package the policy names, one per line.
policy_packages() {
	awk '!/^[[:space:]]*#/ && ($1 == "kernel" || $1 == "rust" || $1 == "candidate") {
		for (i = 2; i <= NF; i++) print $i }
	$1 == "llvm" { for (i = 3; i <= NF; i++) print $i }' "$TOOLCHAIN_DIR/policy"
}

# The LLVM major the policy installs (the kernel builds use LLVM=-<major>).
llvm_major() {
	awk '$1 == "llvm" { print $2 }' "$TOOLCHAIN_DIR/policy"
}

# One line naming the resolved toolchain, for every run's log.
toolchain_summary() {
	local f
	f=$(chroot_dir).versions
	[ -f "$f" ] || return 0
	log "toolchain: $(awk -F= '$1 ~ /^(linux-source-|rustc$|clang-|bindgen$|qemu-system-x86$)/ {
		printf "%s%s %s", sep, $1, $2; sep = ", " }' "$f") (all: $f)"
}

# Run a command inside the chroot, in a private mount namespace so that no
# mount outlives the command. The repo is visible at /src, the cache at /cache;
# LLVM=-<major> and LIBCLANG_PATH name the policy's LLVM.
# Extra bind mounts: BKALLOC_BIND="host:guest ..." (used by the VM runner).
in_chroot() {
	local root
	root=$(chroot_dir)
	[ -e "$root/.ready" ] || die "build environment missing; run tools/testing/buildenv.sh"
	unshare --mount --propagation private -- /bin/sh -eu -c '
		root=$1; top=$2; cache=$3; llvm=$4; shift 4
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
			LLVM="-$llvm" LIBCLANG_PATH="/usr/lib/llvm-$llvm/lib" "$@"
	' sh "$root" "$TOP_DIR" "$BKALLOC_CACHE" "$(llvm_major)" "$@"
}

# host_cargo_check: the host's cargo is at least every host crate's
# rust-version; otherwise say so in one line instead of a compile error.
host_cargo_check() {
	local have need m
	command -v cargo >/dev/null ||
		die "no cargo on the host: the host tests and the bkalloc tool need a Rust toolchain (rust-version in rust/core/Cargo.toml)"
	have=$(cargo --version | awk '{ print $2 }')
	for m in "$TOP_DIR/rust/core/Cargo.toml" "$TOP_DIR/tools/bkalloc/Cargo.toml"; do
		need=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' "$m")
		[ -n "$need" ] || continue
		[ "$(printf '%s\n%s\n' "$need" "${have%%-*}" | sort -V | head -n1)" = "$need" ] ||
			die "the host's cargo is $have; ${m#"$TOP_DIR"/} needs rust-version $need or newer (update the host toolchain, e.g. rustup update)"
	done
}
