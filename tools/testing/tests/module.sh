# SPDX-License-Identifier: GPL-2.0
# The module loads, creates /sys/fs/bkalloc, takes its parameters, unloads
# and removes the directory; the static tool runs in the guest.

test_module_load_unload() {
	disks 2 256M
	vm_guest <<'EOF_GUEST'
step "insmod with default parameters"
[ ! -e /sys/fs/bkalloc ] || fail "/sys/fs/bkalloc exists before insmod"
load_module
[ -d /sys/fs/bkalloc ] || fail "/sys/fs/bkalloc missing after insmod"
# Rust module parameters have no sysfs file in 7.3: the load message shows them.
dmesg | grep -q 'bkalloc: loaded (recovery_metadata_replicas=0, stuck_timeout_secs=30, degraded=0)' ||
	fail "load message with default parameters missing from the kernel log"
unload_module
[ ! -e /sys/fs/bkalloc ] || fail "/sys/fs/bkalloc still there after rmmod"

step "insmod with parameters, twice"
for i in 1 2; do
	load_module recovery_metadata_replicas=1 stuck_timeout_secs=5 degraded=1
	[ -d /sys/fs/bkalloc ] || fail "/sys/fs/bkalloc missing after insmod $i"
	unload_module
done
expect_eq "$(dmesg | grep -c 'bkalloc: loaded (recovery_metadata_replicas=1, stuck_timeout_secs=5, degraded=1)')" 2 \
	"load messages with the given parameters"
[ ! -e /sys/fs/bkalloc ] || fail "/sys/fs/bkalloc still there after the last rmmod"
step "insmod refuses degraded=2"
! insmod /lib/modules/bkalloc.ko degraded=2 2>/dev/null || fail "insmod degraded=2 succeeded"
[ ! -e /sys/fs/bkalloc ] || fail "/sys/fs/bkalloc after a refused insmod"
EOF_GUEST
}

test_guest_sees_disks_and_tool() {
	disks 3 128M
	vm_guest <<'EOF_GUEST'
for i in 0 1 2; do
	d=$(disk $i)
	step "disk $i is $d"
	[ -b "$d" ] || fail "$d is not a block device"
	expect_eq "$(cat /sys/block/${d#/dev/}/size)" $((128 * 1024 * 2)) "size of $d in sectors"
	expect_eq "$(cat /sys/block/${d#/dev/}/queue/discard_granularity)" 4096 "discard granularity of $d"
done
bkalloc --help | grep -q '^Usage: bkalloc' || fail "bkalloc --help does not print usage"
EOF_GUEST
}
