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

# Every kind of uevent reaches a netlink listener (`bkalloc events
# --uevents`, as udev listens), with the uuid and where it applies. Boot 1,
# failing discards, the starved replay of test_status_files_wake_pollers:
# a register whose replay fails at its deadline (add, discard_error, stuck,
# deadline policy=fail, replay_failed, remove); one that degrades (stuck,
# deadline policy=degrade, degraded 1/2, replay_done); then a btree request
# reported stuck and served after an option write (unstuck). Boot 2: a
# failed journal write (read_only).
test_uevents_for_each_event_kind() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 240 <<'EOF_GUEST'
replay_scenario 40
load_module
# Appending: the test empties the file between steps.
bkalloc events --uevents >>/tmp/ue 2>&1 &
ev=$!
wait_in_syscall $ev 7 "bkalloc events --uevents"
# expect_uevent TEXT: a line of the listener has TEXT (a fixed string).
expect_uevent() {
	wait_until 20 "uevent '$1'" grep -qF -- "$1" /tmp/ue
}
step "a replay that fails at its deadline: add, discard_error, stuck, deadline, replay_failed, remove"
write $BK/register "$(disk 0) $(disk 1) allocator_stuck_timeout=2,alloc_deadline=4,alloc_wait_policy=fail" 2>/tmp/reg &&
	fail "register succeeded with policy fail"
grep -qi "no space" /tmp/reg || fail "register error: $(cat /tmp/reg)"
u=$(bkalloc show "$(disk 0)" | sed -n '1s/^volume \([^:]*\):.*/\1/p')
[ -n "$u" ] || fail "no uuid from bkalloc show"
expect_uevent "$u add"
expect_uevent "$u change BKALLOC_EVENT=discard_error BKALLOC_DEVICE=$(disk 0) BKALLOC_DEV=0 BKALLOC_ERROR=-"
expect_uevent "$u change BKALLOC_EVENT=stuck BKALLOC_WAITER=1"
expect_uevent "$u change BKALLOC_EVENT=deadline BKALLOC_WAITER=1 BKALLOC_POLICY=fail"
expect_uevent "$u change BKALLOC_EVENT=replay_failed BKALLOC_ERROR=-28"
expect_uevent "$u remove"
step "a replay that degrades at its deadline: deadline, degraded, replay_done"
: >/tmp/ue
register_bg "$(disk 0) $(disk 1) allocator_stuck_timeout=2,alloc_deadline=3,alloc_wait_policy=degrade"
register_done 120
v=$BK/$u
expect_uevent "$u change BKALLOC_EVENT=deadline BKALLOC_WAITER=1 BKALLOC_POLICY=degrade"
expect_uevent "$u change BKALLOC_EVENT=degraded BKALLOC_WAITER=1 BKALLOC_REPLICAS=1/2"
expect_uevent "$u change BKALLOC_EVENT=replay_done"
step "a btree request reported stuck, then served after metadata_replicas=1: unstuck"
write $v/options/alloc_wait_policy wait
: >/tmp/ue
bkalloc alloc $u --kind btree >/tmp/a 2>&1 &
pid=$!
expect_uevent "$u change BKALLOC_EVENT=stuck BKALLOC_WAITER="
w=$(sed -n "s/^$u change BKALLOC_EVENT=stuck BKALLOC_WAITER=//p" /tmp/ue | head -n 1)
write $v/options/metadata_replicas 1
wait_until 20 "the btree request to end" sh -c "! kill -0 $pid"
wait $pid || fail "the btree request: $(cat /tmp/a)"
expect_uevent "$u change BKALLOC_EVENT=unstuck BKALLOC_WAITER=$w"
write $v/unregister 1 || fail "unregister"
expect_uevent "$u remove"
kill $ev
step "every line is one of the volume's"
grep -v "^$u " /tmp/ue && fail "lines of another volume or malformed"
true
EOF_GUEST
	VM_FAULTS="1:write:any" vm_guest --timeout 240 <<'EOF_GUEST'
load_module
bkalloc events --uevents >>/tmp/ue 2>&1 &
ev=$!
wait_in_syscall $ev 7 "bkalloc events --uevents"
register_pair
step "a failed journal write: read_only, with its error"
bkalloc events $u --uevents --count 1 --timeout 30 >/tmp/ue1 2>&1 &
ev1=$!
wait_in_syscall $ev1 7 "bkalloc events $u --uevents"
expect_fail "No data available" bkalloc insert $u --from 1 --count 1
wait_until 20 "the listener of one volume to end" sh -c "! kill -0 $ev1"
wait $ev1 || fail "bkalloc events --count 1: $(cat /tmp/ue1)"
expect_eq "$(cat /tmp/ue1)" "change BKALLOC_EVENT=read_only BKALLOC_ERROR=-61" "the listener's line"
grep -qF "$u add" /tmp/ue || fail "no add: $(cat /tmp/ue)"
write $v/unregister 1 || fail "unregister"
wait_until 20 "uevent remove" grep -qF "$u remove" /tmp/ue
kill $ev
step "events with neither a volume nor --uevents: a clear error"
expect_fail "which volume" bkalloc events
EOF_GUEST
}
