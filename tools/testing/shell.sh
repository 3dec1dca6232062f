#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make shell`: the test VM for a person. Boots the min (or KERNEL=debug)
# kernel with DISKS NVMe disks of SIZE each (default 3 of 1G), bkalloc.ko
# loaded, the bkalloc tool installed, and a shell on the console.
#
#   make shell [DISKS=3] [SIZE=1G] [KERNEL=min|debug] [FRESH=1] [IDLE=SECS]
#
# The disk images stay in $BKALLOC_CACHE/shell/ between runs (FRESH=1 makes
# new ones). Ctrl-a x quits QEMU at once; `poweroff -f` or `exit` ends the
# session. No watchdog kills the VM while someone types: only a console
# silent for IDLE seconds (default 3600) does.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

disks=${DISKS:-3}
size=${SIZE:-1G}
flavour=${KERNEL:-min}
idle=${IDLE:-3600}
case $disks in [1-8]) ;; *) die "DISKS=$disks: between 1 and 8 disks" ;; esac
case $flavour in min | debug) ;; *) die "KERNEL=$flavour: min or debug" ;; esac

need_root
. "$TESTING_DIR/vm.sh"
log "preparing the $flavour kernel, the module and the tool"
vm_prepare "$flavour"
WORK=$BKALLOC_CACHE/shell
mkdir -p "$WORK"
VM_DISKS=()
for ((i = 0; i < disks; i++)); do
	img=$WORK/disk$i.img
	if [ "${FRESH:-0}" = 1 ] || [ ! -f "$img" ]; then
		rm -f "$img"
		truncate -s "$size" "$img"
	fi
	VM_DISKS+=("$img")
done
log "disks: ${VM_DISKS[*]} (kept between runs; FRESH=1 for new ones)"

script=$WORK/shell.sh
cat >"$script" <<'EOF_GUEST'
load_module
export PS1='bkalloc# '
cat <<EOF_BANNER

==== bkalloc test VM: kernel $(uname -r), bkalloc.ko loaded, /sys/fs/bkalloc ready
$(for c in /sys/class/nvme/nvme*; do
	s=$(tr -d ' ' <$c/serial)
	[ "$s" = bkstatus ] && continue
	for ns in $c/nvme*n*; do
		[ -e $ns/dev ] && echo "  disk ${s#bk}: /dev/${ns##*/} ($(($(cat $ns/size) / 2048)) MiB)"
	done
done)
Try (Documentation/admin-guide.rst has the rest):
  bkalloc format \$(disk 0) \$(disk 1)
  echo "\$(disk 0) \$(disk 1)" > /sys/fs/bkalloc/register
  ls /sys/fs/bkalloc/*-*/
Leave with 'exit' (or Ctrl-a x, which stops QEMU at once).
BKALLOC-SHELL-READY
EOF_BANNER
# The guest test library's helpers (disk N, ...) in the shell, with a fail
# that reports instead of leaving the shell.
cat >/tmp/.shrc <<'EOF_RC'
. /lib/bkalloc-test.sh
set +u
fail() { echo "error: $*" >&2; return 1; }
EOF_RC
# A controlling terminal for the shell, so Ctrl-C and job control work.
ENV=/tmp/.shrc setsid cttyhack sh -i
EOF_GUEST

log "booting; the console is yours"
exec 3>&1
VM_CONSOLE=/dev/fd/3 vm_guest --interactive "$idle" --script "$script" >/dev/null || true
log "VM stopped; console log: $WORK/serial-1.log"
