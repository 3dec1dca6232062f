# SPDX-License-Identifier: GPL-2.0
# The allocator through /dev/bkalloc: replicas on distinct devices,
# feasibility, blocking, restart on an options write, abort, kill, stuck
# reports, deadline policies, and concurrent use.

test_alloc_basic() {
	disks 2 256M
	# Failing discards: freed buckets stay need_discard for the checks below.
	VM_FAULTS=$FAILING_DISCARDS vm_guest <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
[ -c /dev/bkalloc ] || fail "/dev/bkalloc missing"
step "data_replicas=1: one user bucket"
one=$(bkalloc alloc $u) || fail "alloc"
expect_eq "$(echo $one | wc -w)" 1 "buckets for data_replicas=1"
step "two replicas land on distinct devices"
two=$(bkalloc alloc $u --replicas 2) || fail "alloc --replicas 2"
set -- $two
[ "${1%%:*}" != "${2%%:*}" ] || fail "two replicas on one device: $two"
expect_eq "$(usage_of $v/dev-0 user)" "$(echo "$one $two" | tr ' ' '\n' | grep -c '^0:')" "dev-0 user count"
step "freed buckets become need_discard, never free"
free0=$(usage_of $v/dev-0 free)
bkalloc free $u $two || fail "free"
expect_eq "$(usage_of $v/dev-0 need_discard)" 1 "dev-0 need_discard"
expect_eq "$(usage_of $v/dev-0 free)" "$free0" "dev-0 free after free"
expect_fail "Invalid argument" bkalloc free $u $two
step "more replicas than devices fails at once"
dmesg -c >/dev/null
expect_fail "No space left on device" bkalloc alloc $u --replicas 3
dmesg | grep -q 'needs 3 buckets on 3 distinct devices' || fail "no infeasible message: $(dmesg | tail -n 2)"
expect_eq "$(counter $v infeasible)" 1 "infeasible counter"
expect_eq "$(counter $v allocs)" 2 "allocs counter"
expect_eq "$(counter $v waits)" 0 "waits counter"
bkalloc status $u | grep -q '^dev-1 free' || fail "status"
expect_fail "No such file or directory" bkalloc alloc 00000000-0000-0000-0000-000000000001
unregister_fsck "fsck after allocs and frees"
EOF_GUEST
}

test_alloc_block_restart_abort_kill() {
	disks 2 64M
	# Failing discards: only what the test does may unstick the waiters.
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
starved_scenario
load_module
register_pair

step "a btree request needing both devices blocks and shows in waiters"
bkalloc alloc $u --kind btree >/tmp/a1 2>&1 &
pid=$!
wait_waiters $v 1
line=$(cat $v/waiters)
echo "INFO: $line"
case $line in
*"watermark=btree replicas=2 devs=0,1 gen=0 woken=0 last_wake=none"*) ;;
*) fail "waiters line: $line" ;;
esac
kill -0 $pid || fail "alloc ended while it should block: $(cat /tmp/a1)"

step "freeing a bucket on the starved device does not wake it (need_discard)"
# The scenario puts dev 0's user buckets right after its sb and btree buckets.
ub=$(($(usage_of $v/dev-0 sb) + $(usage_of $v/dev-0 btree)))
nd0=$(usage_of $v/dev-0 need_discard)
bkalloc free $u 0:$ub || fail "free user bucket 0:$ub"
expect_eq "$(usage_of $v/dev-0 need_discard)" $((nd0 + 1)) "dev-0 need_discard after the free"
sleep 1
case $(cat $v/waiters) in *"woken=0 "*) ;; *) fail "woken by a free: $(cat $v/waiters)" ;; esac
kill -0 $pid || fail "alloc ended after a free"

step "an options write wakes it; it restarts with replicas 1 and gets a bucket"
t0=$(date +%s)
write $v/options/metadata_replicas 1
wait_until 10 "the alloc to finish" sh -c "! kill -0 $pid"
wait $pid || fail "alloc failed after the restart: $(cat /tmp/a1)"
grep -qE '^1:[0-9]+$' /tmp/a1 || fail "restarted alloc did not get one bucket on dev 1: $(cat /tmp/a1)"
expect_eq "$(nwaiters $v)" 0 "waiters after the restart"
expect_eq "$(counter $v restarts)" 1 "restarts"
[ "$(counter $v restart_latency_count)" = 1 ] || fail "no restart latency recorded"
echo "INFO: restart latency p50=$(counter $v restart_latency_ns_p50) ns p99=$(counter $v restart_latency_ns_p99) ns max=$(counter $v restart_latency_ns_max) ns"
[ "$(counter $v restart_latency_ns_max)" -gt 0 ] || fail "no restart latency maximum"
# Its parts: the option write's superblock I/O, then the wake, the lock and
# the rebuild, which add up to the restart.
wake=$(counter $v last_restart_wake_ns) lock=$(counter $v last_restart_lock_ns)
rebuild=$(counter $v last_restart_rebuild_ns)
echo "INFO: option write: lock $(counter $v last_option_lock_ns) ns, superblocks $(counter $v last_option_superblock_ns) ns; restart: wake $wake + lock $lock + rebuild $rebuild ns"
expect_eq $((wake + lock + rebuild)) "$(counter $v last_restart_ns)" "the restart's parts added up"
[ "$(counter $v last_restart_ns)" = "$(counter $v restart_latency_ns_max)" ] ||
	fail "the one restart's parts are not the one restart timed"
[ "$(counter $v last_option_superblock_ns)" -gt 0 ] || fail "no superblock time for the option write"
dmesg | grep -q "restarted with opts_gen 1: replicas 1, watermark btree" || fail "no restart message"

step "abort_waiting all fails it with ECANCELED"
write $v/options/metadata_replicas 2
bkalloc alloc $u --kind btree >/tmp/a2 2>&1 &
pid=$!
wait_waiters $v 1
write $v/abort_waiting all
wait_until 10 "the aborted alloc to end" sh -c "! kill -0 $pid"
wait $pid && fail "aborted alloc succeeded"
grep -q "Operation canceled" /tmp/a2 || fail "aborted alloc: $(cat /tmp/a2)"
expect_eq "$(counter $v aborts)" 1 "aborts"

step "abort_waiting by id"
bkalloc alloc $u --kind btree >/tmp/a3 2>&1 &
pid=$!
wait_waiters $v 1
id=$(sed -n 's/^id=\([0-9]*\) .*/\1/p' $v/waiters)
expect_fail "No such file or directory" write $v/abort_waiting 99999
expect_fail "Invalid argument" write $v/abort_waiting nonsense
kill -0 $pid || fail "bad abort_waiting writes ended the waiter"
write $v/abort_waiting $id
wait_until 10 "the aborted alloc to end" sh -c "! kill -0 $pid"
grep -q "Operation canceled" /tmp/a3 || fail "aborted alloc: $(cat /tmp/a3)"

step "kill -9 ends a waiter"
bkalloc alloc $u --kind btree >/tmp/a4 2>&1 &
pid=$!
wait_waiters $v 1
kill -9 $pid
wait_until 10 "the killed alloc to end" sh -c "! kill -0 $pid"
wait_waiters $v 0
expect_eq "$(counter $v interrupted)" 1 "interrupted"

step "unregister fails a waiter"
bkalloc alloc $u --kind btree >/tmp/a5 2>&1 &
pid=$!
wait_waiters $v 1
write $v/unregister 1 || fail "unregister with a waiter"
wait_until 10 "the alloc to end" sh -c "! kill -0 $pid"
grep -q "No such device" /tmp/a5 || fail "alloc after unregister: $(cat /tmp/a5)"
bkalloc fsck "$(disk 0)" "$(disk 1)" || fail "fsck"
EOF_GUEST
}

test_alloc_stuck_report_and_deadline_policies() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
starved_scenario
load_module
register_pair allocator_stuck_timeout=2

step "a stuck report after allocator_stuck_timeout names the starved device"
dmesg -c >/dev/null
bkalloc alloc $u --kind btree >/tmp/a1 2>&1 &
pid=$!
wait_until 10 "a stuck report" grep -q needs $v/alloc_stuck
cat $v/alloc_stuck | sed 's/^/INFO: /'
for want in "needs 2 buckets on 2 distinct devices at watermark btree" \
	"dev0: free=1 open=0 need_discard=300 reserve=2 usable=0 status=below_reserve" \
	"hint: discards to dev0 fail: its 300 need_discard buckets wait for a retry; options/discard=0 releases them without a discard"; do
	grep -qF "$want" $v/alloc_stuck || fail "alloc_stuck lacks '$want'"
	dmesg | grep -qF "$want" || fail "kernel log lacks '$want'"
done
[ "$(counter $v stuck_reports)" -ge 1 ] || fail "stuck_reports counter"
write $v/abort_waiting all
wait $pid

step "alloc_wait_policy=fail: ENOSPC at the deadline"
write $v/options/alloc_wait_policy fail
t0=$(date +%s)
expect_fail "No space left on device" bkalloc alloc $u --kind btree --deadline 2
t=$(( $(date +%s) - t0 ))
[ $t -ge 2 ] && [ $t -le 6 ] || fail "failed after ${t}s, deadline 2s"
expect_eq "$(counter $v timeouts)" 1 "timeouts"

step "alloc_wait_policy=degrade: fewer replicas at the deadline"
write $v/options/alloc_wait_policy degrade
out=$(bkalloc alloc $u --kind btree --deadline 2) || fail "degraded alloc failed"
echo "$out" | grep -qE '^1:[0-9]+$' || fail "degraded alloc: '$out'"
expect_eq "$(counter $v degraded)" 1 "degraded"
dmesg | grep -q "degraded at its deadline: 1 of 2 replicas" || fail "no degrade message"

step "policy wait keeps waiting past the deadline"
write $v/options/alloc_wait_policy wait
bkalloc alloc $u --kind btree --deadline 1 >/tmp/a2 2>&1 &
pid=$!
sleep 3
kill -0 $pid || fail "policy wait gave up: $(cat /tmp/a2)"
write $v/abort_waiting all
wait $pid && fail "aborted alloc succeeded"
write $v/unregister 1
EOF_GUEST
}

test_alloc_concurrent_with_option_flips() {
	disks 2 256M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
user0=$(( $(usage_of $v/dev-0 user) + $(usage_of $v/dev-1 user) ))
step "4 workers allocate and free while data_replicas flips"
for w in 1 2 3 4; do
	(
		n=0 freed=0
		for i in $(seq 1 40); do
			b=$(bkalloc alloc $u) || { echo "ERR $w $i"; continue; }
			n=$((n + $(echo $b | wc -w)))
			if [ $((i % 2)) = 0 ]; then
				bkalloc free $u $b && freed=$((freed + $(echo $b | wc -w)))
			fi
		done
		echo "$n $freed" >/tmp/w$w
	) &
done
(for i in $(seq 1 30); do write $v/options/data_replicas $((i % 2 + 1)); sleep 0.1; done) &
flipper=$!
wait_until 200 "every worker to finish" sh -c 'ls /tmp/w1 /tmp/w2 /tmp/w3 /tmp/w4'
wait
got=0 freed=0
for w in 1 2 3 4; do
	read -r n f </tmp/w$w
	got=$((got + n)) freed=$((freed + f))
done
echo "INFO: buckets allocated $got, freed $freed, opts_gen $(cat $v/opts_gen)"
expect_eq "$(counter $v allocs)" 160 "allocs counter"
expect_eq "$(nwaiters $v)" 0 "waiters left"
user=$(( $(usage_of $v/dev-0 user) + $(usage_of $v/dev-1 user) ))
nd=$(( $(usage_of $v/dev-0 need_discard) + $(usage_of $v/dev-1 need_discard) ))
expect_eq "$user" $((user0 + got - freed)) "user buckets"
# Freed buckets are need_discard until the discard thread frees them.
expect_eq $((nd + $(counter $v discard_buckets))) "$freed" "need_discard + discarded buckets"
expect_eq "$(cat $v/opts_gen)" 30 "opts_gen after 30 writes"
unregister_fsck "fsck after concurrent use"
EOF_GUEST
}

# Issue 12 #2 and #23: a user free takes only user buckets, each once. A
# tree node's bucket freed through the ioctl would be discarded and handed
# out again while the tree still points at it.
test_free_takes_only_user_buckets() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest <<'EOF_GUEST'
starved_scenario
load_module
register_pair
sb=$(usage_of $v/dev-0 sb)
bt=$(usage_of $v/dev-0 btree)
[ "$bt" -ge 1 ] || fail "the scenario has no btree bucket on dev-0"
before=$(cat $v/dev-0/usage $v/dev-1/usage)
step "the tree's bucket 0:$sb cannot be freed"
# The scenario puts dev 0's btree buckets right after its sb buckets.
expect_fail "Invalid argument" bkalloc free $u 0:$sb
step "nor a superblock bucket"
expect_fail "Invalid argument" bkalloc free $u 0:0
expect_eq "$(cat $v/dev-0/usage $v/dev-1/usage)" "$before" "usage after refused frees"
step "a free naming one bucket twice changes nothing"
a=$(bkalloc alloc $u) || fail "alloc"
held=$(cat $v/dev-0/usage $v/dev-1/usage)
expect_fail "Invalid argument" bkalloc free $u $a $a
expect_eq "$(cat $v/dev-0/usage $v/dev-1/usage)" "$held" "usage after a duplicate free"
bkalloc free $u $a || fail "free of the user's own bucket $a"
unregister_fsck "fsck"
EOF_GUEST
}

# Issue 12 #6: a user's --kind btree alloc is acknowledged, so it must
# survive a re-register; replay takes back only tree buckets no node uses.
test_btree_kind_alloc_survives_reregister() {
	disks 2 256M
	# Failing discards: the counts stay as the alloc left them.
	VM_FAULTS=$FAILING_DISCARDS vm_guest <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
a=$(bkalloc alloc $u --kind btree) || fail "alloc --kind btree"
expect_eq "$(echo $a | wc -w)" 2 "buckets of a btree-kind alloc (metadata_replicas 2)"
# Bucket counts per state of both members.
counts() { cat $v/dev-0/usage $v/dev-1/usage | grep -E '^(free|need_discard|btree|user) '; }
held=$(counts)
echo "INFO: after the alloc: $(echo $held | tr '\n' ' ')"
write $v/unregister 1
register_pair "" "register again"
expect_eq "$(counts)" "$held" "bucket counts after re-register"
bkalloc free $u $a || fail "the user's buckets $a are no longer the user's"
unregister_fsck "fsck"
EOF_GUEST
}

# Issue 12 #9 and #21: a waiter's timers do not depend on how it wakes.
# allocator_stuck_timeout=0 written after a report left the next report time
# set, and the waiter slept 0 ms in a loop (woken at every tick);
# deadlines were checked only after a sleep that timed out, so option writes
# less than a second apart postponed a `fail` deadline forever.
test_waiter_timers_ignore_wakes() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
starved_scenario
load_module
register_pair
# Times a process was switched out (each sleep, even of one tick, is one).
switches() { awk '/ctxt_switches/ { n += $2 } END { print n }' /proc/$1/status; }

step "a report, then allocator_stuck_timeout=0: the waiter sleeps"
write $v/options/allocator_stuck_timeout 1
bkalloc alloc $u --kind btree >/tmp/a1 2>&1 &
pid=$!
wait_until 10 "a stuck report" grep -q needs $v/alloc_stuck
write $v/options/allocator_stuck_timeout 0
sleep 2
s0=$(switches $pid)
sleep 2
n=$(( $(switches $pid) - s0 ))
echo "INFO: the waiter was switched out $n times in 2 s"
[ $n -le 10 ] || fail "the waiter was switched out $n times in 2 s: it polls"
write $v/abort_waiting all
wait $pid && fail "the aborted alloc succeeded"

step "option writes back to back do not postpone a 1 s fail deadline, 8 times"
# A wake that lands after the deadline, before the waiter looked, sent it
# back to sleep for a second, and every later wake did it again.
write $v/options/alloc_wait_policy fail
timeouts=$(counter $v timeouts)
restarts=$(counter $v restarts)
touch /tmp/flip
(i=0; while [ -e /tmp/flip ]; do
	i=$((i + 1))
	write $v/options/allocator_stuck_timeout $((i % 2 + 5))
done) &
flipper=$!
for try in 1 2 3 4 5 6 7 8; do
	t0=$(date +%s)
	bkalloc alloc $u --kind btree --deadline 1 >/tmp/a2 2>&1 &
	pid=$!
	wait_until 4 "try $try: the alloc to fail at its deadline while options change" sh -c "! kill -0 $pid"
	t=$(( $(date +%s) - t0 ))
	wait $pid && fail "try $try: the alloc succeeded: $(cat /tmp/a2)"
	grep -q "No space left on device" /tmp/a2 || fail "try $try: '$(cat /tmp/a2)', expected ENOSPC"
	[ $t -ge 1 ] || fail "try $try: failed after ${t}s, before its 1 s deadline"
done
rm /tmp/flip
wait $flipper
echo "INFO: 8 deadlines kept with $(( $(counter $v restarts) - restarts )) restarts on the way"
expect_eq "$(counter $v timeouts)" $((timeouts + 8)) "timeouts"
[ $(( $(counter $v restarts) - restarts )) -ge 16 ] || fail "the option writes did not wake the waiters"
write $v/unregister 1
EOF_GUEST
}

# Issue 12 #20: more waiters than a page of `waiters` holds: the file is
# cut at a line and says how many more there are (it failed with EINVAL).
test_waiters_past_a_page() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
starved_scenario
load_module
register_pair
step "60 blocked requests"
for i in $(seq 1 60); do
	bkalloc alloc $u --kind btree >/dev/null 2>&1 &
done
wait_until 60 "60 waiters" grep -qx 'waits 60' $v/counters
cat $v/waiters >/tmp/w || fail "reading waiters with 60 waiters failed"
shown=$(grep -c '^id=' /tmp/w)
last=$(tail -n 1 /tmp/w)
echo "INFO: $shown lines, $(wc -c </tmp/w) bytes, then '$last'"
expect_eq "$last" "+$((60 - shown)) more waiters" "the last line of waiters"
[ "$shown" -ge 30 ] || fail "only $shown waiters fit in a page"
[ "$(wc -c </tmp/w)" -lt 4096 ] || fail "waiters is a page or more"
write $v/abort_waiting all
wait
expect_eq "$(nwaiters $v)" 0 "waiters after the abort"
write $v/unregister 1
EOF_GUEST
}

# Issue 12 #7: the wait for the btree writer has ways out. A split blocked
# for buckets holds the writer; a second insert waited for it on a kernel
# mutex, in D state: `kill -9` did nothing until the split ended. Now it
# waits interruptibly, and `abort_waiting all` ends it too.
test_writer_wait_has_ways_out() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
# Full leaves of 32, nothing to replay, dev0 starved.
replay_scenario 0
load_module
register_pair
step "an insert that splits a full leaf blocks, holding the writer"
bkalloc insert $u 1001 >/tmp/i1 2>&1 &
p1=$!
wait_waiters $v 1
step "a second insert waits for the writer; kill -9 ends it at once"
bkalloc insert $u 1003 >/tmp/i2 2>&1 &
p2=$!
wait_in_ioctl $p2 "the second insert"
kill -9 $p2
wait_until 3 "the killed insert to end" sh -c "! kill -0 $p2"
step "a flush waits too; abort_waiting all ends it and the split"
bkalloc flush $u >/tmp/f3 2>&1 &
p3=$!
# Waiting for the writer, not still starting: an abort before it waits
# does not concern it.
wait_in_ioctl $p3 "the flush"
write $v/abort_waiting all
wait_until 5 "the split and the flush to end" sh -c "! kill -0 $p1 && ! kill -0 $p3"
wait $p1 && fail "the aborted insert succeeded"
wait $p3 && fail "the aborted flush succeeded"
grep -q "Operation canceled" /tmp/i1 || fail "insert: '$(cat /tmp/i1)', expected ECANCELED"
grep -q "Operation canceled" /tmp/f3 || fail "flush: '$(cat /tmp/f3)', expected ECANCELED"
step "nothing half done: with one replica the insert goes through"
expect_fail "not found" bkalloc get $u 1001
write $v/options/metadata_replicas 1
bkalloc insert $u 1001 >/dev/null || fail "insert after the abort"
bkalloc get $u 1001 >/dev/null || fail "get 1001"
unregister_fsck "fsck"
EOF_GUEST
}
