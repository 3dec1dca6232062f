#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Set up bkalloc's build environment: a Debian trixie chroot with the pinned
# trixie-backports packages of packages.pin, in $BKALLOC_CACHE/chroot-<hash>.
# An existing chroot with the same recipe hash is reused; a changed recipe
# builds a new one (and removes the old ones).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root

root=$(chroot_dir)
if [ -e "$root/.ready" ]; then
	exit 0
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

# Remove chroots of older recipes; they are several GB each.
for old in "$BKALLOC_CACHE"/chroot-*; do
	[ -d "$old" ] && [ "$old" != "$root" ] || continue
	log "removing stale build environment $old"
	rm -rf --one-file-system "$old"
done

tmp="$root.tmp"
rm -rf --one-file-system "$tmp"
log "debootstrap trixie into $root (mirror $mirror)"
debootstrap --variant=minbase --include=ca-certificates trixie "$tmp" "$mirror" \
	>"$BKALLOC_CACHE/debootstrap.log" 2>&1 ||
	die "debootstrap failed; see $BKALLOC_CACHE/debootstrap.log"

cat >"$tmp/etc/apt/sources.list" <<EOF
deb $mirror trixie main
deb $mirror trixie-updates main
deb $mirror trixie-backports main
EOF
cat >"$tmp/etc/apt/apt.conf.d/90bkalloc" <<EOF
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF

pkgs=$(grep -v '^[[:space:]]*#' "$TESTING_DIR/packages.pin" | grep -v '^[[:space:]]*$' | tr '\n' ' ')
log "installing pinned packages"
unshare --mount --propagation private -- /bin/sh -eu -c '
	root=$1; shift
	mount -t proc proc "$root/proc"
	mount --bind /dev "$root/dev"
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive /bin/sh -euc "
		apt-get update
		# Fail clearly when a pinned version is gone from the archive.
		missing=
		for p in $*; do
			case \$p in *=*) ;; *) continue ;; esac
			name=\${p%%=*}; ver=\${p#*=}
			if ! apt-cache madison \$name | grep -qF \" \$ver \"; then
				echo \"pinned \$name=\$ver is not available; the archive has:\" >&2
				apt-cache madison \$name >&2 || true
				missing=1
			fi
		done
		[ -z \"\$missing\" ] || exit 3
		apt-get install -y -t trixie-backports $*
		apt-get clean
	"
' sh "$tmp" $pkgs >"$BKALLOC_CACHE/apt.log" 2>&1 || {
	grep -A20 'pinned .* not available' "$BKALLOC_CACHE/apt.log" >&2 || tail -n 20 "$BKALLOC_CACHE/apt.log" >&2
	die "installing packages failed (full log: $BKALLOC_CACHE/apt.log); update tools/testing/packages.pin"
}

log "unpacking linux-source-7.3"
mkdir -p "$tmp/build"
tar -C "$tmp/build" -xJf "$tmp"/usr/src/linux-source-7.3.tar.xz
ln -sfn "$(ls -d "$tmp"/build/linux-source-7.3 | xargs basename)" "$tmp/build/linux"

touch "$tmp/.ready"
mv "$tmp" "$root"
log "build environment ready: $root"
