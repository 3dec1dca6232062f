# SPDX-License-Identifier: GPL-2.0
# What an administrator watches: the status files wake poll() when they
# change (sysfs_notify), and `bkalloc events` prints each change.

# A replay that blocks in a split (dev0 starved, failing discards): a
# listener started while it waits sees the stuck report, the waiter leave
# after the options write, and replay's end; a volume that goes read-only
# wakes `state`.
test_status_files_wake_pollers() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
replay_scenario 40
load_module
step "replay blocks in a split on the starved device"
register_bg "$(disk 0) $(disk 1) discard=0,replay_discard_priority=0,allocator_stuck_timeout=2"
v=$(volume_dir)
u=${v##*/}
wait_waiters $v 1
case $(cat $v/replay) in "state=running"*) ;; *) fail "replay: $(cat $v/replay)" ;; esac
step "bkalloc events, listening, sees the stuck report"
bkalloc events $u >/tmp/ev 2>&1 &
ev=$!
wait_in_syscall $ev 7 "bkalloc events"
wait_until 10 "the stuck report in bkalloc events" grep -q '^alloc_stuck: .*allocator stuck' /tmp/ev
step "... and, after metadata_replicas=1, the waiter leave and replay end"
write $v/options/metadata_replicas 1
register_done 60
wait_until 10 "replay's end in bkalloc events" grep -q '^replay: state=done' /tmp/ev
grep -q '^waiters: 0$' /tmp/ev || fail "no 'waiters: 0' line: $(cat /tmp/ev)"
kill $ev
cat /tmp/ev
step "a waiter parking wakes a fresh listener, with --count and --timeout"
bkalloc events $u --count 1 --timeout 30 >/tmp/ev2 2>&1 &
ev=$!
wait_in_syscall $ev 7 "bkalloc events --count 1"
write $v/options/metadata_replicas 2
bkalloc alloc $u --kind btree >/tmp/a 2>&1 &
wait_until 10 "the listener to end" sh -c "! kill -0 $ev"
wait $ev || fail "bkalloc events --count 1: $(cat /tmp/ev2)"
expect_eq "$(cat /tmp/ev2)" "waiters: 1" "the listener's line"
out=$(bkalloc events $u --count 1 --timeout 1 2>&1) && fail "events with nothing happening: '$out'"
write $v/abort_waiting all
write $v/unregister 1
EOF_GUEST
	vm_guest --timeout 120 <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
bkalloc insert $u --from 1 --count 5 >/dev/null || fail "insert"
write $v/unregister 1 || fail "unregister"
EOF_GUEST
	VM_FAULTS="1:write:any" vm_guest --timeout 120 <<'EOF_GUEST'
load_module
register_pair
step "a failed journal write wakes state"
bkalloc events $u --count 1 --timeout 30 >/tmp/ev 2>&1 &
ev=$!
wait_in_syscall $ev 7 "bkalloc events"
expect_fail "No data available" bkalloc insert $u --from 100 --count 1
wait_until 10 "the listener to end" sh -c "! kill -0 $ev"
wait $ev || fail "bkalloc events: $(cat /tmp/ev)"
expect_eq "$(cat /tmp/ev)" "state: ro: journal write failed (error -61)" "the listener's line"
write $v/unregister 1 || fail "unregister"
EOF_GUEST
}
