#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: set everything up, boot the test VM with two NVMe disks, write
# bcachefs #1108's state onto them, register it with bkalloc and show the
# volume, with the guest console live on the terminal.
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
disks 2 3G
VM_CONSOLE=/dev/stdout vm_guest --timeout 300 <<'EOF_GUEST'
exec 2>&1
step "the VM sees two NVMe disks"
for i in 0 1; do echo "  disk $i: $(disk $i), $(($(cat /sys/block/$(disk $i | cut -d/ -f3)/size) / 2048)) MiB"; done
step "bcachefs #1108's state: bkalloc scenario /samples/issue-1108.toml"
bkalloc scenario /samples/issue-1108.toml "$(disk 0)" "$(disk 1)"
bkalloc show "$(disk 0)" "$(disk 1)"
step "insmod bkalloc.ko; the volume's directory exists before anything can block"
load_module
write $BK/register "$(disk 0) $(disk 1)" || fail "register"
v=$(volume_dir)
echo "  $v:"
ls "$v" | sed 's/^/    /'
for i in 0 1; do
	echo "  dev-$i ($(cat "$v/dev-$i/device")):"
	sed 's/^/    /' "$v/dev-$i/usage"
done
echo "  options:"
for o in "$v"/options/*; do echo "    ${o##*/} = $(cat "$o")"; done
step "a runtime option write: validated, persisted, opts_gen bumped"
write "$v/options/metadata_replicas" 1
echo "  metadata_replicas = $(cat "$v/options/metadata_replicas"), opts_gen = $(cat "$v/opts_gen")"
write "$v/options/metadata_replicas" 7 || echo "  metadata_replicas=7 refused; opts_gen still $(cat "$v/opts_gen")"
step "unregister; fsck"
write "$v/unregister" 1
bkalloc fsck "$(disk 0)" "$(disk 1)"
dmesg | grep bkalloc
unload_module
EOF_GUEST
