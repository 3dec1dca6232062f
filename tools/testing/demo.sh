#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: set everything up, boot the test VM with two NVMe disks, load
# bkalloc and show it, with the guest console live on the terminal.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
log "preparing the build environment, the min kernel, the module and the tool"
log "(the first run on a machine builds a kernel: about 10 minutes)"
. "$TESTING_DIR/vm.sh"
vm_prepare min
WORK=$BKALLOC_CACHE/runs/demo
rm -rf "$WORK"
mkdir -p "$WORK"
disks 2 1G
VM_CONSOLE=/dev/stdout vm_guest <<'EOF_GUEST'
step "the VM sees two NVMe disks"
for i in 0 1; do echo "  disk $i: $(disk $i), $(($(cat /sys/block/$(disk $i | cut -d/ -f3)/size) / 2048)) MiB"; done
step "insmod bkalloc.ko"
load_module
step "module parameters"
for p in /sys/module/bkalloc/parameters/*; do echo "  ${p##*/} = $(cat "$p")"; done
step "sysfs root"
ls -la /sys/fs/bkalloc
dmesg | grep bkalloc
step "rmmod bkalloc"
unload_module
EOF_GUEST
