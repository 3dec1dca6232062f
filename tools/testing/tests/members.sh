# SPDX-License-Identifier: GPL-2.0
# Member states (issue 17): dev-<i>/state is rw, ro, failed or spare, set at
# runtime like an option (validated, written to every superblock, opts_gen
# bumped, waiters woken); only rw members are allocated on.

# Three members: a member set ro, failed or spare gets no allocation; a bad
# state, or one that leaves fewer rw members than metadata_replicas, is
# refused and changes nothing; the states survive a register and show in
# `bkalloc show`.
test_member_states_steer_allocations() {
	disks 3 256M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_disks 0 1 2
load_module
three="$(disk 0) $(disk 1) $(disk 2)"
write $BK/register "$three metadata_replicas=2" || fail "register"
v=$(volume_dir)
u=${v##*/}
for i in 0 1 2; do expect_file_eq $v/dev-$i/state rw; done
# on_dev0 BUCKETS: how many of the "dev:bucket" words are on dev 0.
on_dev0() { echo "$1" | tr ' ' '\n' | grep -c '^0:'; }
# allocs N: N user allocations (one bucket each), their words.
allocs() {
	_o=
	for _i in $(seq "$1"); do
		_b=$(bkalloc alloc $u) || return 1
		_o="$_o $_b"
	done
	echo $_o
}
step "dev-0 ro: nothing more is allocated on it"
before=$(allocs 12) || fail "alloc"
[ "$(on_dev0 "$before")" -gt 0 ] || fail "12 allocations, none on dev 0 while rw: $before"
gen=$(cat $v/opts_gen)
dmesg -c >/dev/null
write $v/dev-0/state ro || fail "dev-0 ro"
expect_file_eq $v/dev-0/state ro
expect_eq "$(cat $v/opts_gen)" $((gen + 1)) "opts_gen after a state write"
dmesg | grep -q "dev-0 state rw -> ro" || fail "no state message: $(dmesg | tail -n 2)"
after=$(allocs 12) || fail "alloc with dev-0 ro"
expect_eq "$(on_dev0 "$after")" 0 "allocations on dev 0 while ro"
two=$(bkalloc alloc $u --replicas 2) || fail "alloc --replicas 2"
expect_eq "$(on_dev0 "$two")" 0 "a 2-replica allocation on dev 0 while ro"
step "refused: a word that is no state, one rw member left for metadata_replicas=2"
gen=$(cat $v/opts_gen)
for bad in bogus RW "" "rw ro"; do
	expect_fail "Invalid argument" write $v/dev-0/state "$bad"
done
dmesg -c >/dev/null
expect_fail "Invalid argument" write $v/dev-1/state failed
dmesg | grep -q "1 rw member(s) would be left" || fail "no refusal message: $(dmesg | tail -n 2)"
expect_file_eq $v/dev-0/state ro
expect_file_eq $v/dev-1/state rw
expect_eq "$(cat $v/opts_gen)" $gen "opts_gen after refused writes"
expect_fail "No space left on device" bkalloc alloc $u --replicas 3
step "failed and spare are not allocated on either; rw again is"
for s in failed spare; do
	write $v/dev-0/state $s || fail "dev-0 $s"
	out=$(allocs 6) || fail "alloc with dev-0 $s"
	expect_eq "$(on_dev0 "$out")" 0 "allocations on dev 0 while $s"
done
write $v/dev-0/state rw || fail "dev-0 rw"
all=$(bkalloc alloc $u --replicas 3) || fail "alloc --replicas 3 with every member rw"
expect_eq "$(on_dev0 "$all")" 1 "a 3-replica allocation on dev 0"
step "the states are on disk: a new register and bkalloc show see them"
write $v/dev-2/state spare || fail "dev-2 spare"
write $v/unregister 1 || fail "unregister"
bkalloc show $three >/tmp/show || fail "show"
grep -A1 "^device 2:" /tmp/show | grep -q "state spare" || fail "show: $(cat /tmp/show)"
grep -A1 "^device 0:" /tmp/show | grep -q "state rw" || fail "show: $(cat /tmp/show)"
write $BK/register "$three" || fail "register again"
expect_file_eq $v/dev-2/state spare
expect_file_eq $v/dev-0/state rw
out=$(allocs 6) || fail "alloc after register"
[ "$(echo "$out" | tr ' ' '\n' | grep -c '^2:')" = 0 ] || fail "allocations on the spare: $out"
write $v/unregister 1 || fail "unregister"
bkalloc fsck $three >/dev/null || fail "fsck"
EOF_GUEST
}

# A btree request parked because its second device is a spare (dev0
# starved, discards failing) is served once the spare is made rw: the write
# wakes it, it rebuilds and takes dev1 and dev2. The stuck report names the
# spare and says how to use it.
test_member_state_change_wakes_a_waiter() {
	disks 3 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
{
	scenario_header
	starved_devices
	cat <<'EOF_TOML'
[[device]]
free = 200
need_discard = 0
user = 0
btree_reserve = 2
EOF_TOML
} >/tmp/three.toml
three="$(disk 0) $(disk 1) $(disk 2)"
bkalloc scenario --force /tmp/three.toml $three >/dev/null || fail "scenario"
load_module
write $BK/register "$three allocator_stuck_timeout=1" || fail "register"
v=$(volume_dir)
u=${v##*/}
write $v/dev-2/state spare || fail "dev-2 spare"
step "a btree request parks: dev0 starved, dev2 a spare"
bkalloc alloc $u --kind btree >/tmp/a 2>&1 &
pid=$!
wait_waiters $v 1
wait_until 10 "a stuck report" grep -q "status=spare" $v/alloc_stuck
grep -q "dev2 is spare: nothing is allocated on it until rw is written to dev-2/state" $v/alloc_stuck ||
	fail "no hint: $(cat $v/alloc_stuck)"
step "dev-2 rw: the request wakes, rebuilds and is served on dev1 and dev2"
restarts=$(counter $v restarts)
write $v/dev-2/state rw || fail "dev-2 rw"
wait_until 10 "the request to end" sh -c "! kill -0 $pid"
wait $pid || fail "the btree request: $(cat /tmp/a)"
expect_eq "$(tr ' ' '\n' </tmp/a | cut -d: -f1 | sort | tr '\n' ' ')" "1 2 " "the request's devices"
expect_eq "$(nwaiters $v)" 0 "waiters"
expect_eq "$(counter $v restarts)" $((restarts + 1)) "restarts"
write $v/abort_waiting all
write $v/unregister 1 || fail "unregister"
EOF_GUEST
}

# Issue 17 #3 and #4: bcachefs #1108's recovery by fix 2 (metadata_replicas=1
# written while the replay waits) leaves the nodes the replay rewrote with
# one copy. Once discards have freed space, writing metadata_replicas=2
# back is all it takes: re-replication (the discard thread's second job)
# rewrites every short node with 2 replicas, rereplicate shows it, the
# replicated uevent comes, and fsck counts every node with 2 replicas.
test_rereplication_after_the_1108_recovery() {
	disks 2 3G
	vm_guest --timeout 400 <<'EOF_GUEST'
issue1108_scenario
load_module
bkalloc events --uevents >/tmp/ue 2>&1 &
ev=$!
wait_in_syscall $ev 7 "bkalloc events --uevents"
step "the #1108 replay wedges; fix 2: metadata_replicas=1"
register_bg "$(disk 0) $(disk 1) discard=0,replay_discard_priority=0"
v=$(volume_dir)
u=$(volume_uuid)
wait_waiters $v 1
expect_file_eq $v/rereplicate "state=idle pending=0 done=0"
write $v/options/metadata_replicas 1 || fail "metadata_replicas=1"
register_done 60
replayed_all "replay after fix 2"
step "discards free space; nothing is short at 1 replica"
wait_until 120 "dev0 need_discard released" sh -c \
	"[ \$(sed -n 's/^need_discard //p' $v/dev-0/usage) = 0 ] && [ \$(sed -n 's/^free //p' $v/dev-0/usage) -gt 100 ]"
wait_until 120 "dev1 need_discard released" sh -c "[ \$(sed -n 's/^need_discard //p' $v/dev-1/usage) = 0 ]"
expect_file_eq $v/rereplicate "state=idle pending=0 done=0"
step "metadata_replicas=2: every short node is rewritten with 2 replicas"
dmesg -c >/dev/null
write $v/options/metadata_replicas 2 || fail "metadata_replicas=2"
wait_until 120 "re-replication (rereplicate: $(cat $v/rereplicate))" grep -q "^state=done pending=0 done=" $v/rereplicate
r=$(cat $v/rereplicate)
echo "INFO: rereplicate: $r"
rewritten=${r##*done=}
[ "$rewritten" -gt 0 ] || fail "no node rewritten: $r"
dmesg | grep -q "re-replication done: every btree node is fully replicated again" || fail "no log line: $(dmesg | tail -n 3)"
wait_until 20 "the replicated uevent" grep -qF "$u change BKALLOC_EVENT=replicated" /tmp/ue
kill $ev
check_keys $u 2728 64
step "it stays done: nothing is rewritten again"
gen=$(counter $v checkpoint_generation)
sleep 3
expect_file_eq $v/rereplicate "$r"
expect_eq "$(counter $v checkpoint_generation)" "$gen" "checkpoint_generation with nothing to rewrite"
write $v/unregister 1 || fail "unregister"
step "fsck: every btree node has 2 replicas"
out=$(bkalloc fsck "$(disk 0)" "$(disk 1)") || fail "fsck: $out"
echo "$out" | tail -n 2
nodes=$(echo "$out" | sed -n 's/^fsck: .* in \([0-9]*\) nodes,.*/\1/p')
[ -n "$nodes" ] || fail "no node count: $out"
expect_eq "$(echo "$out" | grep '^btree nodes:')" "btree nodes: $nodes with 2 replica(s) (metadata_replicas 2)" "nodes by replicas"
echo "$out" | grep -q "degraded" && fail "degraded nodes left: $out"
true
EOF_GUEST
}

# Issue 17 #2: a member missing at register. Refused unless degraded=1 is
# asked; with it, the volume comes up on the others: the member shows as
# missing, nothing is allocated on it, its buckets cannot be freed nor its
# state written, and what its own table lacks (the user allocations on it
# that only the journal held when the machine went down) is kept by the
# others' checkpoints. Registered again with it, it is back: its table plus
# what was kept, its btree buckets no node uses need_discard, fsck clean. A
# member registered degraded without the others, while they went on without
# it, is refused when they meet again: the two histories diverged.
test_degraded_register_and_return() {
	disks 3 256M
	vm_guest --timeout 200 <<'EOF_GUEST' || return 1
format_disks 0 1 2
load_module
three="$(disk 0) $(disk 1) $(disk 2)"
write $BK/register "$three" || fail "register"
v=$(volume_dir)
u=${v##*/}
bkalloc insert $u --from 0 --count 300 >/dev/null || fail "insert"
bkalloc flush $u || fail "flush"
step "user buckets on dev 2 that only the journal holds, then a power cut"
n=0
for i in $(seq 60); do
	b=$(bkalloc alloc $u) || fail "alloc"
	case $b in 2:*) n=$((n + 1)) ;; esac
	[ $n -lt 4 ] || break
done
[ $n = 4 ] || fail "4 allocations on dev 2 in 60 tries: $n"
crash_now "with 4 user buckets of dev 2 journaled only"
EOF_GUEST
	vm_guest --timeout 200 <<'EOF_GUEST'
load_module
two="$(disk 0) $(disk 1)"
three="$two $(disk 2)"
step "dev 2 missing: refused without degraded=1"
dmesg -c >/dev/null
expect_fail "Invalid argument" write $BK/register "$two"
dmesg | grep -q "member 2 is missing: register every member, or add degraded=1" ||
	fail "no refusal message: $(dmesg | tail -n 3)"
expect_no_volume
step "degraded=1: up on dev 0 and 1, dev 2 missing"
write $BK/register "$two degraded=1" || fail "register degraded=1"
v=$(volume_dir)
u=${v##*/}
dmesg | grep -q "registered degraded: member 2 (uuid .*) is missing" || fail "no degraded message: $(dmesg | tail -n 3)"
expect_file_eq $v/dev-2/state missing
expect_file_eq $v/dev-0/state rw
bkalloc get $u --from 0 --count 300 --verify >/dev/null || fail "the keys, degraded"
for i in $(seq 8); do
	b=$(bkalloc alloc $u) || fail "alloc, degraded"
	case $b in 2:*) fail "allocated on the missing member: $b" ;; esac
done
expect_fail "No such device or address" bkalloc free $u 2:100
expect_fail "No such device or address" write $v/dev-2/state ro
expect_file_eq $v/dev-2/state missing
dmesg -c >/dev/null
expect_fail "Invalid argument" write $v/dev-0/state ro
dmesg | grep -q "1 rw member(s) would be left" || fail "dev-0 ro with dev 2 missing: $(dmesg | tail -n 2)"
step "the tree changes while dev 2 is missing (its node replicas retire)"
bkalloc insert $u --from 300 --count 300 >/dev/null || fail "insert, degraded"
bkalloc flush $u || fail "flush, degraded"
write $v/unregister 1 || fail "unregister"
step "still missing at the next register"
write $BK/register "$two degraded=1" || fail "register degraded=1 again"
expect_file_eq "$(volume_dir)/dev-2/state" missing
write "$(volume_dir)/unregister" 1 || fail "unregister"
step "fsck says what is missing and what is kept for it"
out=$(bkalloc fsck $two 2>&1) || fail "fsck of the present members: $out"
echo "$out" | grep -q "member 2 (.*) is missing (registered degraded): it holds the alloc table of generation [0-9]*; 4 bucket states are kept for it" ||
	fail "fsck of the present members: $out"
out=$(bkalloc fsck $three 2>&1) || fail "fsck with dev 2 back: $out"
echo "$out" | grep -q "member 2 was missing since generation [0-9]* and is back" || fail "fsck with dev 2 back: $out"
step "dev 2 is back: its table, the 4 allocations kept for it, the retired nodes need_discard"
dmesg -c >/dev/null
write $BK/register "$three" || fail "register with dev 2 back"
v=$(volume_dir)
dmesg | grep -q "member 2 ($(disk 2)) is back: its alloc table of generation [0-9]* and 4 bucket states kept for it" ||
	fail "no return message: $(dmesg | grep bkalloc | tail -n 4)"
dmesg | grep -q "$(disk 2): [0-9]* btree buckets no node uses" || fail "no reconcile of dev 2: $(dmesg | tail -n 4)"
expect_file_eq $v/dev-2/state rw
expect_eq "$(usage_of $v/dev-2 user)" 4 "user buckets on dev 2"
bkalloc get $u --from 0 --count 600 --verify >/dev/null || fail "the keys, back"
bkalloc alloc $u --replicas 3 >/dev/null || fail "a 3-replica allocation"
write $v/unregister 1 || fail "unregister"
bkalloc fsck $three >/dev/null || fail "fsck after the return"
step "metadata_replicas=1: the member without the root alone is refused"
bkalloc format --force --metadata-replicas 1 $two >/dev/null || fail "format two, 1 replica"
write $BK/register "$two" || fail "register two"
bkalloc insert $(volume_uuid) --from 0 --count 20 >/dev/null || fail "insert"
write "$(volume_dir)/unregister" 1 || fail "unregister"
dmesg -c >/dev/null
up=
for d in 0 1; do
	if write $BK/register "$(disk $d) degraded=1" 2>/dev/null; then
		up="$up $d"
		write "$(volume_dir)/unregister" 1 || fail "unregister dev $d"
	fi
done
[ $(echo $up | wc -w) = 1 ] || fail "members that came up alone:$up (expected the root's only)"
dmesg | grep -q "no readable replica on the present members" || fail "no message: $(dmesg | tail -n 3)"
expect_no_volume
step "two members each registered alone: refused when they meet"
bkalloc format --force $two >/dev/null || fail "format two"
write $BK/register "$two" || fail "register two"
bkalloc insert $(volume_uuid) --from 0 --count 20 >/dev/null || fail "insert"
write "$(volume_dir)/unregister" 1 || fail "unregister"
for d in 0 1; do
	write $BK/register "$(disk $d) degraded=1" || fail "dev $d alone, degraded=1"
	write "$(volume_dir)/unregister" 1 || fail "unregister dev $d"
done
dmesg -c >/dev/null
expect_fail "Invalid argument" write $BK/register "$two"
dmesg | grep -q "the two diverged" || fail "no divergence message: $(dmesg | tail -n 3)"
expect_no_volume
EOF_GUEST
}
