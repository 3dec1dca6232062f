# SPDX-License-Identifier: GPL-2.0
# bcachefs #1108 end to end: the seed's state (samples/issue-1108.toml) on
# two NVMe disks, a replay that wedges in a btree split, and the four ways
# out. Every wait has a bound: a replay that does not finish fails the test.

test_issue1108_hang_then_options_write() {
	disks 2 3G
	vm_guest --timeout 300 <<'EOF_GUEST'
issue1108_scenario
load_module
step "discard=0, replay_discard_priority=0: replay blocks in the split"
register_bg "$(disk 0) $(disk 1) discard=0,replay_discard_priority=0,allocator_stuck_timeout=3"
v=$(volume_dir)
wait_waiters $v 1
echo "INFO: waiters: $(cat $v/waiters)"
grep -q "watermark=btree replicas=2 devs=0,1" $v/waiters || fail "waiter: $(cat $v/waiters)"
case $(cat $v/replay) in "state=running replayed=0 total=64"*) ;; *) fail "replay: $(cat $v/replay)" ;; esac
step "the stuck report, within allocator_stuck_timeout"
wait_until 10 "the stuck report" grep -q "allocator stuck" $v/alloc_stuck
cat $v/alloc_stuck
grep -q "^dev0: free=1 open=0 need_discard=9416 reserve=2 usable=0 status=below_reserve" $v/alloc_stuck ||
	fail "the report does not name the starved device"
grep -q "^needs 2 buckets on 2 distinct devices at watermark btree" $v/alloc_stuck || fail "the report does not say 2 distinct devices"
dmesg | grep -q "allocator stuck: waiter" || fail "no stuck report in the kernel log"
kill -0 $regpid || fail "register ended: $(cat /tmp/reg)"
step "fix 2: echo 1 > options/metadata_replicas; the waiter rebuilds its request"
t0=$(cut -d' ' -f1 /proc/uptime)
write $v/options/metadata_replicas 1
register_done 60
echo "INFO: from the options write to replay done: $(awk -v t0=$t0 '{printf "%d ms", ($1 - t0) * 1000}' /proc/uptime); $(cat $v/replay)"
expect_eq "$(cut -d' ' -f1-3 $v/replay)" "state=done replayed=64 total=64" "replay"
u=$(volume_uuid)
check_keys $u 2728 64
write $v/unregister 1
out=$(bkalloc fsck "$(disk 0)" "$(disk 1)") || fail "fsck: $out"
# The options write was persisted: 1 replica is what the superblock asks
# now, and fsck counts the nodes by replicas.
echo "$out" | grep "^btree nodes:"
echo "$out" | grep -q "^btree nodes: .*with 1 replica(s)" || fail "fsck does not report the 1-replica nodes: $out"
step "later, with space: metadata_replicas=2 again, new nodes on 2 devices"
write $BK/register "$(disk 0) $(disk 1)" || fail "register with discards"
wait_until 120 "dev0 discards" sh -c "[ \$(sed -n 's/^free //p' $v/dev-0/usage) -gt 100 ]"
write $v/options/metadata_replicas 2 || fail "metadata_replicas=2"
bkalloc insert $u --from 1 --count 64 --step 2 >/dev/null || fail "rewrite the journaled keys"
bkalloc flush $u || fail "flush"
write $v/unregister 1
out=$(bkalloc fsck "$(disk 0)" "$(disk 1)") || fail "fsck: $out"
echo "$out" | tail -n 1
echo "$out" | grep "^btree nodes:"
echo "$out" | grep -q "^btree nodes: .*with 2 replica(s)" || fail "no node was rewritten with 2 replicas: $out"
EOF_GUEST
}

test_issue1108_recovery_option() {
	disks 2 3G
	vm_guest --timeout 300 <<'EOF_GUEST'
issue1108_scenario
load_module
step "fix 1: register ... metadata_replicas=1 brings the volume up"
write $BK/register "$(disk 0) $(disk 1) discard=0,replay_discard_priority=0,metadata_replicas=1" ||
	fail "register with metadata_replicas=1"
v=$(volume_dir)
expect_eq "$(cut -d' ' -f1-3 $v/replay)" "state=done replayed=64 total=64" "replay"
check_keys $(volume_uuid) 2728 64
write $v/unregister 1
bkalloc fsck "$(disk 0)" "$(disk 1)" | grep -q "written with 1 replica(s)" || fail "fsck: no 1-replica nodes"
unload_module
step "fix 1 at insmod: recovery_metadata_replicas=1"
issue1108_scenario
insmod /lib/modules/bkalloc.ko recovery_metadata_replicas=1 || fail "insmod"
register_pair "discard=0,replay_discard_priority=0" "register"
expect_eq "$(cut -d' ' -f1-3 $v/replay)" "state=done replayed=64 total=64" "replay"
expect_eq "$(cat $v/options/metadata_replicas)" 1 "metadata_replicas"
check_keys $(volume_uuid) 2728 64
write $v/unregister 1
bkalloc fsck "$(disk 0)" "$(disk 1)" >/dev/null || fail "fsck"
EOF_GUEST
}

test_issue1108_prioritised_discards() {
	disks 2 3G
	vm_guest --timeout 300 <<'EOF_GUEST'
issue1108_scenario
EOF_GUEST
	local before0 before1 after0 after1
	before0=$(allocated_bytes "$(disk_image 0)")
	before1=$(allocated_bytes "$(disk_image 1)")
	vm_guest --timeout 300 <<'EOF_GUEST'
load_module
step "fix 3: defaults; replay completes with no user action"
register_pair "" "register with defaults"
echo "INFO: replay: $(cat $v/replay)"
expect_eq "$(cut -d' ' -f1-3 $v/replay)" "state=done replayed=64 total=64" "replay"
first=$(dmesg | grep -m1 "discarded .* buckets")
echo "INFO: first discard: $first"
case $first in *"on starved dev0") ;; *) fail "the starved device was not served first: $first" ;; esac
check_keys $(volume_uuid) 2728 64
wait_until 300 "every need_discard bucket discarded" sh -c \
	"[ \$(sed -n 's/^need_discard //p' $v/dev-0/usage) = 0 ] && [ \$(sed -n 's/^need_discard //p' $v/dev-1/usage) = 0 ]"
echo "INFO: $(grep -E '^(discards_issued|discard_buckets|starved_discard_buckets)' $v/counters | tr '\n' ' ')"
[ "$(counter $v discard_buckets)" -ge $((9416 + 41681)) ] || fail "discard_buckets $(counter $v discard_buckets)"
write $v/unregister 1
bkalloc fsck "$(disk 0)" "$(disk 1)" | tail -n 1
bkalloc fsck "$(disk 0)" "$(disk 1)" >/dev/null || fail "fsck"
EOF_GUEST
	after0=$(allocated_bytes "$(disk_image 0)")
	after1=$(allocated_bytes "$(disk_image 1)")
	echo "INFO: image allocation: disk0 $before0 -> $after0, disk1 $before1 -> $after1 bytes"
	# Every need_discard bucket held one 4 KiB block of data.
	[ $((before0 - after0)) -ge $((9416 * 4096 * 9 / 10)) ] || { echo "FAIL: disk0 dropped by $((before0 - after0)) bytes only"; return 1; }
	[ $((before1 - after1)) -ge $((41681 * 4096 * 9 / 10)) ] || { echo "FAIL: disk1 dropped by $((before1 - after1)) bytes only"; return 1; }
}

test_issue1108_escape_hatch() {
	disks 2 3G
	vm_guest --timeout 300 <<'EOF_GUEST'
issue1108_scenario
load_module
step "fix 4: echo all > abort_waiting; register fails with ECANCELED"
register_bg "$(disk 0) $(disk 1) discard=0,replay_discard_priority=0"
v=$(volume_dir)
wait_waiters $v 1
write $v/abort_waiting all
wait_until 20 "register to return" sh -c "! kill -0 $regpid"
wait $regpid && fail "register succeeded after abort_waiting"
grep -qi "canceled" /tmp/reg || fail "register error: $(cat /tmp/reg)"
expect_no_volume
step "the same with alloc_deadline=3 and alloc_wait_policy=fail: ENOSPC"
write $BK/register "$(disk 0) $(disk 1) discard=0,replay_discard_priority=0,alloc_deadline=3,alloc_wait_policy=fail" 2>/tmp/reg &&
	fail "register succeeded with policy fail"
grep -qi "no space" /tmp/reg || fail "register error: $(cat /tmp/reg)"
expect_no_volume
step "the devices were released: a register with a fix replays every key"
register_pair "" "register with defaults"
expect_eq "$(cut -d' ' -f1-3 $v/replay)" "state=done replayed=64 total=64" "replay"
check_keys $(volume_uuid) 2728 64
write $v/unregister 1
bkalloc fsck "$(disk 0)" "$(disk 1)" >/dev/null || fail "fsck"
EOF_GUEST
}

# Issue 12 #3: rmmod while a register's replay is blocked. The module's
# exit removed the register file first, which waits for the blocked write,
# before it tore the volumes down (which would have ended the write): rmmod
# hung in D state until `abort_waiting`. Now the volumes go first.
test_rmmod_while_replay_blocks() {
	disks 2 64M
	vm_guest --timeout 180 <<'EOF_GUEST'
replay_scenario
load_module
register_bg "$(disk 0) $(disk 1) discard=0,replay_discard_priority=0"
v=$(volume_dir)
wait_waiters $v 1
step "rmmod returns while the replay waits"
rmmod bkalloc >/tmp/rmmod 2>&1 &
pid=$!
wait_until 20 "rmmod to return (replay blocked: $(cat $v/replay 2>&1))" sh -c "! kill -0 $pid"
wait $pid || fail "rmmod failed: $(cat /tmp/rmmod)"
wait_until 20 "the register write to return" sh -c "! kill -0 $regpid"
wait $regpid && fail "register succeeded although the module went away"
echo "INFO: register: $(cat /tmp/reg)"
[ ! -e $BK ] || fail "/sys/fs/bkalloc still there"
step "nothing was written: a register with the defaults replays every key"
load_module
write $BK/register "$(disk 0) $(disk 1)" || fail "register after rmmod"
u=$(volume_uuid)
check_keys $u 64 40
unregister_fsck "fsck"
EOF_GUEST
}
