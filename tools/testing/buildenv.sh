#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Set up bkalloc's build environment: a Debian trixie chroot in
# $BKALLOC_CACHE/chroot-<hash of the recipe>, with the packages of
# tools/testing/toolchain/policy at the versions resolve.py chooses from the
# archive of the day (written to chroot-<hash>.versions and printed).
#
#   tools/testing/buildenv.sh            reuse the environment, or build it
#   tools/testing/buildenv.sh --refresh  re-resolve against today's archive;
#                                        rebuild only if a version moved
#
# An existing environment is reused as it is: a run needs no `apt-get update`
# and never rebuilds because the archive moved overnight. A changed recipe
# (policy, this script, the resolver) builds a new one and removes the old.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

refresh=0
case ${1:-} in
--refresh) refresh=1 ;;
"") ;;
*) die "usage: buildenv.sh [--refresh]" ;;
esac

need_root

root=$(chroot_dir)
versions=$root.versions
if [ -e "$root/.ready" ] && [ $refresh = 0 ]; then
	exit 0
fi

# chroot_sh ROOT SCRIPT ARGS...: run a shell script in a chroot that has no
# proc or dev yet, in a private mount namespace (no mount outlives it).
chroot_sh() {
	local r=$1
	shift
	unshare --mount --propagation private -- /bin/sh -eu -c '
		r=$1; shift
		mount -t proc proc "$r/proc"
		mount --bind /dev "$r/dev"
		exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			DEBIAN_FRONTEND=noninteractive /bin/sh -euc "$@"
	' sh "$r" "$@"
}

# madison ROOT: `apt-cache madison` for every package of the policy and every
# linux-source-* series, after an apt-get update in ROOT.
madison() {
	# shellcheck disable=SC2016
	chroot_sh "$1" '
		apt-get update >/dev/null
		for p in $({ printf "%s\\n" "$@"; apt-cache pkgnames linux-source-; } | sort -u); do
			apt-cache madison "$p" || true
		done
	' sh $(policy_packages)
}

# resolve MADISON [ARGS...]: the policy applied to that archive, or die
# with what is missing.
resolve() {
	python3 "$TOOLCHAIN_DIR/resolve.py" "$TOOLCHAIN_DIR/policy" "$@" || {
		log "the archive's state is in $1; the policy is tools/testing/toolchain/policy"
		die "cannot resolve the build environment (see above)"
	}
}

# kernel_minimums ROOT: the kernel source's own minimum tool versions, as
# resolve.py arguments.
kernel_minimums() {
	local t v
	for t in rustc bindgen llvm; do
		v=$(chroot_sh "$1" 'cd /build/linux && scripts/min-tool-version.sh "$1"' sh "$t") ||
			die "scripts/min-tool-version.sh $t failed in the kernel source"
		echo "--min $t=$v"
	done
}

command -v python3 >/dev/null || die "python3 is needed on the host (it resolves the package versions)"

if [ $refresh = 1 ] && [ -e "$root/.ready" ]; then
	log "refresh: resolving the policy against today's archive"
	madison "$root" >"$root.madison.new" || die "apt-cache madison failed in $root"
	# shellcheck disable=SC2046
	resolve "$root.madison.new" $(kernel_minimums "$root") >"$versions.new"
	if cmp -s "$versions.new" "$versions"; then
		rm -f "$versions.new" "$root.madison.new"
		log "build environment up to date: $root"
		toolchain_summary
		exit 0
	fi
	log "the archive moved:"
	diff "$versions" "$versions.new" | sed -n 's/^\([<>]\) /  \1 /p' >&2 || true
	rm -f "$versions.new" "$root.madison.new"
	log "building a new environment (kernels and modules are rebuilt against it)"
fi

mkdir -p "$BKALLOC_CACHE"
command -v debootstrap >/dev/null || {
	log "installing debootstrap on the host"
	apt-get install -y debootstrap >/dev/null || {
		apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null
	} || die "cannot install debootstrap on the host (apt-get install debootstrap failed)"
}

# The mirror the host already uses, so no host name is written here.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/\{0,1\}$/\1/p' \
	/etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' \
	/etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || die "cannot find a Debian mirror in the host's apt sources"

read -r suite backports < <(sed -n 's/^suite[[:space:]]\+//p' "$TOOLCHAIN_DIR/policy")

tmp=$root.tmp
rm -rf --one-file-system "$tmp"
log "debootstrap $suite into $tmp (mirror $mirror)"
debootstrap --variant=minbase --include=ca-certificates "$suite" "$tmp" "$mirror" \
	>"$BKALLOC_CACHE/debootstrap.log" 2>&1 ||
	die "debootstrap failed; see $BKALLOC_CACHE/debootstrap.log"

cat >"$tmp/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $mirror $backports main
EOF
cat >"$tmp/etc/apt/apt.conf.d/90bkalloc" <<EOF
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF

log "resolving tools/testing/toolchain/policy against the archive"
madison "$tmp" >"$tmp.madison" || die "apt-cache madison failed in the new chroot"

# install VERSIONS-FILE: apt-get install exactly those versions.
install() {
	# shellcheck disable=SC2016
	chroot_sh "$tmp" 'apt-get install -y -t "$0" "$@" && apt-get clean' \
		"$backports" $(cat "$1") >>"$BKALLOC_CACHE/apt.log" 2>&1 || {
		tail -n 20 "$BKALLOC_CACHE/apt.log" >&2
		die "installing packages failed (full log: $BKALLOC_CACHE/apt.log)"
	}
}

# The kernel source first: its scripts say which rustc, bindgen and LLVM
# are new enough.
: >"$BKALLOC_CACHE/apt.log"
resolve "$tmp.madison" --kernel-only >"$tmp.kernel"
install "$tmp.kernel"
kpkg=$(sed 's/=.*//' "$tmp.kernel")
log "unpacking $kpkg"
mkdir -p "$tmp/build"
tar -C "$tmp/build" -xJf "$tmp/usr/src/$kpkg.tar.xz"
ln -sfn "$kpkg" "$tmp/build/linux"

# shellcheck disable=SC2046
resolve "$tmp.madison" $(kernel_minimums "$tmp") >"$tmp.versions"
log "installing the resolved packages"
install "$tmp.versions"

# Remove environments of older recipes (several GB each), and this one's
# previous build on a refresh.
for old in "$BKALLOC_CACHE"/chroot-*; do
	[ -d "$old" ] && [ "$old" != "$tmp" ] || continue
	log "removing old build environment $old"
	rm -rf --one-file-system "$old"
	rm -f "$old.versions" "$old.madison"
done
touch "$tmp/.ready"
mv "$tmp.versions" "$versions"
mv "$tmp.madison" "$root.madison"
rm -f "$tmp.kernel"
mv "$tmp" "$root"
log "build environment ready: $root"
toolchain_summary
