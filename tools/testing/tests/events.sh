# SPDX-License-Identifier: GPL-2.0
# What an administrator watches: the status files wake poll() when they
# change (sysfs_notify), and `bkalloc events` prints each change.

# A replay that blocks in a split (dev0 starved, failing discards): a
# listener started while it waits sees the stuck report, the waiter leave
# after the options write, and replay's end. (A volume going read-only
# wakes `state`: journal_write_error_makes_the_volume_read_only.)
test_status_files_wake_pollers() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
replay_scenario 40
load_module
step "replay blocks in a split on the starved device"
# Discards on (they fail), started only after replay: dev0 stays starved.
register_bg "$(disk 0) $(disk 1) replay_discard_priority=0,allocator_stuck_timeout=2"
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
step "with nothing changing, --timeout ends a listener with status 1"
out=$(bkalloc events $u --count 1 --timeout 1 2>&1) && fail "events with nothing happening: '$out'"
step "a waiter parking wakes a fresh listener, with --count and --timeout"
bkalloc events $u --count 1 --timeout 30 >/tmp/ev2 2>&1 &
ev=$!
wait_in_syscall $ev 7 "bkalloc events --count 1"
write $v/options/metadata_replicas 2
bkalloc alloc $u --kind btree >/tmp/a 2>&1 &
wait_until 10 "the listener to end" sh -c "! kill -0 $ev"
wait $ev || fail "bkalloc events --count 1: $(cat /tmp/ev2)"
expect_eq "$(cat /tmp/ev2)" "waiters: 1" "the listener's line"
write $v/abort_waiting all
write $v/unregister 1
EOF_GUEST
}

# Every bkalloc tracepoint fires and reads back through tracefs: a request
# that parks, is woken by an option write and restarts, then is aborted
# (wait, wake, restart, leave, alloc with its error), failing discards, a
# user alloc, an insert (journal_append), a flush (checkpoint), and
# register's replay.
test_tracepoints_through_tracefs() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs nodev $T || fail "no tracefs: the kernel needs CONFIG_FTRACE"
starved_scenario
load_module
[ -d $T/events/bkalloc ] || fail "no events/bkalloc in tracefs"
for e in alloc wait wake restart leave discard journal_append checkpoint replay; do
	[ -f $T/events/bkalloc/bkalloc_$e/format ] || fail "no tracepoint bkalloc_$e"
done
echo 1 >$T/events/bkalloc/enable
echo >$T/trace
register_pair "" "register with tracing on"
step "a btree request parks; an option write restarts it; abort ends it"
bkalloc alloc $u --kind btree >/tmp/a 2>&1 &
pid=$!
wait_waiters $v 1
write $v/options/alloc_deadline 30
write $v/abort_waiting all
wait_until 10 "the aborted alloc to end" sh -c "! kill -0 $pid"
step "a user alloc, an insert, a flush, unregister"
b=$(bkalloc alloc $u) || fail "user alloc"
bkalloc insert $u 7 >/dev/null || fail "insert"
bkalloc flush $u >/dev/null || fail "flush"
sleep 2
write $v/unregister 1 || fail "unregister"
echo 0 >$T/events/bkalloc/enable
cat $T/trace >/tmp/trace
grep -c bkalloc_ /tmp/trace
# expect_event EVENT PATTERN: a line of EVENT on this volume matching PATTERN.
expect_event() {
	grep -E " $1: $u .*$2" /tmp/trace >/dev/null ||
		fail "no $1 matching '$2' on $u in the trace: $(grep " $1:" /tmp/trace | head -n 3)"
}
expect_event bkalloc_replay "phase=done"
expect_event bkalloc_wait "id=1 arg=3"
expect_event bkalloc_wake "id=1 arg=1"
expect_event bkalloc_restart "id=1 arg=1"
expect_event bkalloc_wake "id=1 arg=5"
expect_event bkalloc_leave "id=1 arg=125"
expect_event bkalloc_alloc "kind=btree nr=0 err=-125 waited=1"
expect_event bkalloc_alloc "kind=user nr=1 err=0 waited=0"
expect_event bkalloc_discard "err=-[0-9]+"
expect_event bkalloc_journal_append "records=1 blocks=1"
expect_event bkalloc_checkpoint "err=0"
EOF_GUEST
}
