# SPDX-License-Identifier: GPL-2.0
# The journal, the btree and replay: inserted keys survive a flush and
# re-register, and a crash; replay splits nodes through the allocator, is
# unstuck by discards, and can be aborted and run again.

test_journal_insert_flush_reregister() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_small_nodes
load_module
register_pair
step "insert 600 keys, every one a journal entry; a full journal checkpoints"
bkalloc insert $u --from 0 --count 600 --step 3 || fail "insert"
echo "INFO: $(grep -E '^(btree_keys|btree_nodes|checkpoint_generation|journal_seq)' $v/counters | tr '\n' ' ')"
expect_eq "$(counter $v btree_keys)" 600 "btree_keys"
[ "$(counter $v btree_nodes)" -gt 75 ] || fail "600 keys in nodes of 8 made only $(counter $v btree_nodes) nodes"
bkalloc get $u 3 >/dev/null || fail "get 3"
expect_fail "not found" bkalloc get $u 4
bkalloc insert $u 3 "$(printf 'ab%.0s' $(seq 32))" >/dev/null || fail "overwrite key 3"
expect_eq "$(bkalloc get $u 3)" "3 $(printf 'ab%.0s' $(seq 32))" "overwritten value"
bkalloc insert $u 3 >/dev/null || fail "restore key 3"
step "flush: a checkpoint, the journal trimmed"
out=$(bkalloc flush $u) || fail "flush"
echo "INFO: $out"
expect_eq "$(counter $v journal_pending_entries)" 0 "journal entries pending after flush"
unregister_fsck "fsck after unregister"
step "register again: every key is there, nothing to replay"
write $BK/register "$(disk 0) $(disk 1)" || fail "register again"
expect_eq "$(cat $v/replay | cut -d' ' -f1-3)" "state=done replayed=0 total=0" "replay"
bkalloc get $u --from 0 --count 600 --step 3 --verify || fail "keys after re-register"
expect_eq "$(counter $v btree_keys)" 600 "btree_keys after re-register"
unregister_fsck "fsck"
EOF_GUEST
}

test_journal_replay_after_crash() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_small_nodes
load_module
register_pair
bkalloc insert $u --from 1000 --count 300 || fail "insert"
a=$(bkalloc alloc $u --kind user) || fail "alloc"
echo "$a" >/dev/null
echo "INFO: before the crash: $(grep -E '^(checkpoint_generation|journal_seq|journal_pending_entries)' $(volume_dir)/counters | tr '\n' ' ')"
crash_now "300 keys inserted and a user bucket allocated, no flush, no unregister"
EOF_GUEST
	vm_guest --timeout 240 <<'EOF_GUEST'
step "after the crash: register replays the journal"
load_module
register_pair "" "register after the crash"
u=$(volume_uuid)
replayed_all "replay"
bkalloc get $u --from 1000 --count 300 --verify || fail "acknowledged keys after the crash"
expect_eq "$(($(usage_of $v/dev-0 user) + $(usage_of $v/dev-1 user)))" 1 "user buckets (the one allocated before the crash)"
unregister_fsck "fsck after replay"
EOF_GUEST
}

test_replay_split_waits_for_discards() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
replay_scenario
load_module
step "defaults: replay splits, discards free the starved device, no user action"
register_pair "" "register with defaults"
u=$(volume_uuid)
r=$(cat $v/replay)
echo "INFO: replay: $r; discard_buckets_dev0 $(counter $v discard_buckets_dev0)"
expect_eq "$(echo $r | cut -d' ' -f1-3)" "state=done replayed=40 total=40" "replay"
check_keys $u 64 40
[ "$(counter $v discard_buckets_dev0)" -ge 1 ] || fail "dev0 was not discarded"
unregister_fsck "fsck"

step "replay_discard_priority=0: replay blocks in the split; replay_discard_priority=1 gets it going"
replay_scenario
register_bg "$(disk 0) $(disk 1) replay_discard_priority=0" 30
v=$(volume_dir)
wait_waiters $v 1
sleep 2
kill -0 $regpid || fail "register finished with replay_discard_priority=0: $(cat /tmp/reg)"
case $(cat $v/replay) in "state=running replayed=0 total=40"*) ;; *) fail "replay: $(cat $v/replay)" ;; esac
grep -q "watermark=btree replicas=2" $v/waiters || fail "waiter: $(cat $v/waiters)"
expect_eq "$(counter $v discard_buckets)" 0 "buckets discarded during the replay"
t0=$(cut -d' ' -f1 /proc/uptime)
write $v/options/replay_discard_priority 1
register_done 60
echo "INFO: from replay_discard_priority=1 to replay done: $(awk -v t0=$t0 '{printf "%d ms", ($1 - t0) * 1000}' /proc/uptime); $(cat $v/replay)"
check_keys $(volume_uuid) 64 40
unregister_fsck "fsck"
EOF_GUEST
}

# Issue 12 #18: register reads the tree and the journal without the volume
# lock, so `cat replay` answers `pending` while it reads. It held the lock
# through both reads, and every file of the volume waited for them.
test_replay_file_answers_while_register_reads() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_small_nodes
load_module
register_pair
bkalloc insert $u --from 0 --count 600 --step 3 >/dev/null || fail "insert"
echo "INFO: $(counter $v btree_nodes) nodes of 2 replicas"
write $v/unregister 1 || fail "unregister"
EOF_GUEST
	# 10 requests a second: reading the tree's nodes takes many seconds.
	VM_DRIVE_OPTS=throttling.iops-total=10 vm_guest --timeout 300 <<'EOF_GUEST'
load_module
register_bg "$(disk 0) $(disk 1)" 120
v=$(volume_dir)
t0=$(cut -d' ' -f1 /proc/uptime)
cat $v/replay >/tmp/replay &
cat=$!
wait_until 3 "cat replay to answer while register reads" sh -c "! kill -0 $cat"
echo "INFO: replay: $(cat /tmp/replay)"
case $(cat /tmp/replay) in "state=pending "*) ;; *) fail "replay while register reads: $(cat /tmp/replay)" ;; esac
kill -0 $regpid || fail "register ended before the check: the read was too quick to show anything"
register_done 240
echo "INFO: register read for $(awk -v t0=$t0 '{printf "%d ms", ($1 - t0) * 1000}' /proc/uptime) after the directory appeared"
bkalloc get $(volume_uuid) --from 0 --count 600 --step 3 --verify >/dev/null || fail "keys"
write $(volume_dir)/unregister 1
EOF_GUEST
}

test_replay_abort_then_replay_again() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
replay_scenario
load_module
step "replay blocked; abort_waiting: register fails with ECANCELED, nothing written"
sum0=$(dd if=$(disk 0) bs=1M count=2 2>/dev/null | md5sum)
register_bg "$(disk 0) $(disk 1) replay_discard_priority=0" 30
v=$(volume_dir)
wait_waiters $v 1
write $v/abort_waiting all
wait_until 20 "register to return" sh -c "! kill -0 $regpid"
wait $regpid && fail "register succeeded after abort"
grep -qi "canceled" /tmp/reg || fail "register error: $(cat /tmp/reg)"
expect_no_volume
expect_eq "$(dd if=$(disk 0) bs=1M count=2 2>/dev/null | md5sum)" "$sum0" "metadata of dev0 after the failed replay"
dmesg | grep -q "replay failed after 0 of 40 keys" || fail "no replay failure message"
step "the devices are free: a second register with room replays everything"
register_pair "metadata_replicas=1" "second register"
expect_eq "$(cut -d' ' -f1-3 $v/replay)" "state=done replayed=40 total=40" "second replay"
check_keys $(volume_uuid) 64 40
unregister_fsck "fsck"
EOF_GUEST
}

# Issue 12 #14: a register that fails removes the volume's files from
# inside the `register` write. With one lock class for every attribute,
# lockdep (debug kernel) took draining an option file that another writer
# was in for recursive locking on the `register` file.
test_failed_register_drains_busy_files() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
replay_scenario
EOF_GUEST
	# Slow disks: each option write (four superblock writes and flushes per
	# member) keeps its file busy for a while.
	VM_DRIVE_OPTS=throttling.iops-total=200 vm_guest --timeout 600 <<'EOF_GUEST'
load_module
register_bg "$(disk 0) $(disk 1) replay_discard_priority=0" 60
v=$(volume_dir)
wait_waiters $v 1
step "option writers busy in two files while abort_waiting fails the register"
for f in alloc_deadline allocator_stuck_timeout; do
	(
		i=0
		while [ -e $v/options/$f ]; do
			i=$((i % 50 + 1))
			echo $i >$v/options/$f 2>/dev/null
		done
	) &
done
sleep 2
write $v/abort_waiting all
wait_until 60 "register to return" sh -c "! kill -0 $regpid"
wait $regpid && fail "register succeeded after abort"
wait
expect_no_volume
dmesg | grep -A3 "possible recursive locking" && fail "lockdep: recursive locking on the sysfs files"
unload_module
EOF_GUEST
}

# Issue 12 #15: an entry after a missing one was acknowledged (appends are
# serialised, each flushed before the next), so a gap means acknowledged
# entries were lost. Register used to replay up to the gap and drop the rest
# with a warning; now it refuses, naming the entry, and fsck agrees.
test_journal_gap_refuses_register() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_small_nodes
load_module
register_pair
bkalloc insert $u --from 1 --count 20 >/dev/null || fail "insert"
crash_now "20 keys journaled after the format's checkpoint, no checkpoint since"
EOF_GUEST
	vm_guest --timeout 240 <<'EOF_GUEST'
bkalloc show "$(disk 0)" "$(disk 1)" | grep '^journal:' | sed 's/^/INFO: before: /'
step "entry 10 (journal block 9) lost on both members; entries 11..20 still there"
set -- $(bkalloc show --json "$(disk 0)" "$(disk 1)" | sed -n 's/.*"journal_offset": *\([0-9]*\).*/\1/p')
[ $# = 2 ] || fail "journal offsets: $*"
for i in 0 1; do
	eval off=\$$((i + 1))
	dd if=/dev/zero of="$(disk $i)" bs=4096 seek=$((off / 4096 + 9)) count=1 conv=fsync 2>/dev/null ||
		fail "blanking journal block 9 of disk $i"
done
# (Not "want": expect_fail sets that.)
lost="journal entry 10 is missing on every member but entry 11 is there (10 entries after the gap)"
out=$(bkalloc fsck "$(disk 0)" "$(disk 1)" 2>&1) && fail "fsck passed a journal with a gap"
echo "$out" | grep -qF "$lost" || fail "fsck: $(echo "$out" | grep -i journal)"
load_module
expect_fail "Invalid argument" write $BK/register "$(disk 0) $(disk 1)"
dmesg | grep -qF "$lost" || fail "no message naming the lost entry: $(dmesg | tail -n 3)"
expect_no_volume
step "nothing was written: the same refusal again, not EBUSY"
expect_fail "Invalid argument" write $BK/register "$(disk 0) $(disk 1)"
EOF_GUEST
}

# Issue 12 #12: a free is journaled, then applied in memory; a checkpoint
# in between covered the record while its alloc table still said user, so
# a crash before the next checkpoint lost the free. Frees race flushes;
# after each flush the frees are paused and the on-disk metadata (what a
# crash then would leave) is copied; each copy is put back and registered,
# and every free acknowledged before it must have survived.
test_free_racing_checkpoints_survives_a_crash() {
	disks 2 256M
	vm_guest --timeout 900 <<'EOF_GUEST'
# children PID: the processes whose parent is PID (busybox has no pgrep).
children() {
	for s in /proc/[0-9]*/stat; do
		read -r pid _ _ ppid _ <"$s" 2>/dev/null && [ "$ppid" = "$1" ] && echo "$pid"
	done
}
format_disks 0 1
load_module
# discard=0: freed buckets are released without a discard, so nothing but
# the module's metadata writes changes the disks meanwhile; a second free
# of a bucket whose free survived fails with EINVAL (it is no longer user).
register_pair discard=0
: >/tmp/pairs
for i in $(seq 1 150); do
	bkalloc alloc $u --replicas 2 | tr ' ' '\n' >>/tmp/pairs || fail "alloc $i"
done
bkalloc flush $u >/dev/null || fail "flush"
# The metadata region (superblocks, checkpoints, alloc tables, journal); the
# tree's one node is past it and no insert changes it.
meta=$(bkalloc show --json "$(disk 0)" "$(disk 1)" | sed -n 's/.*"sb_buckets": *\([0-9]*\).*/\1/p' | head -n1)
[ "$meta" -gt 0 ] || fail "no sb_buckets in bkalloc show --json"
: >/tmp/acked
(
	while read -r pair; do
		bkalloc free $u $pair && echo "$pair" >>/tmp/acked
	done </tmp/pairs
) &
frees=$!
k=0
while kill -0 $frees 2>/dev/null && [ $k -lt 30 ]; do
	bkalloc flush $u >/dev/null || fail "flush $k"
	# Pause the frees (one in flight finishes first), copy, go on.
	kill -STOP $frees 2>/dev/null
	for c in $(children $frees); do kill -STOP $c; done
	for c in $(children $frees); do
		wait_until 10 "free $c to stop" sh -c "grep -q '^[^ ]* ([^)]*) [TZ]' /proc/$c/stat 2>/dev/null || ! [ -e /proc/$c ]"
	done
	k=$((k + 1))
	cp /tmp/acked /tmp/acked-$k
	for i in 0 1; do
		# O_DIRECT: the module writes with bios, past the page cache.
		dd if="$(disk $i)" of=/tmp/snap-$k-$i bs=64k count=$meta iflag=direct 2>/dev/null || fail "copy $k"
	done
	for c in $(children $frees); do kill -CONT $c; done
	kill -CONT $frees 2>/dev/null
done
wait $frees
echo "INFO: $k crash images, $(wc -l </tmp/acked) frees"
[ $k -ge 5 ] || fail "only $k crash images"
write $v/unregister 1 || fail "unregister"
lost=0
for j in $(seq 1 $k); do
	for i in 0 1; do
		dd if=/tmp/snap-$j-$i of="$(disk $i)" bs=64k conv=fsync 2>/dev/null || fail "restore $j"
	done
	write $BK/register "$(disk 0) $(disk 1) discard=0" || fail "register crash image $j"
	n=0
	while read -r pair; do
		n=$((n + 1))
		if bkalloc free $u $pair 2>/dev/null; then
			echo "INFO: image $j: the free of $pair (acknowledged before it) was lost"
			lost=$((lost + 1))
		fi
	done </tmp/acked-$j
	write $BK/$u/unregister 1 || fail "unregister image $j"
done
[ $lost = 0 ] || fail "$lost acknowledged frees lost across $k crash images"
unload_module
EOF_GUEST
}

# Group commit: inserts from concurrent writers share journal entries (and
# so flushes), each writer told its key is durable only once the entry
# holding it is; a lone writer still writes one entry per insert. Every
# key survives a power cut with no checkpoint after the inserts (replay
# from the shared entries) and fsck agrees.
test_concurrent_inserts_share_journal_entries() {
	disks 2 64M
	vm_guest --timeout 300 <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
step "one writer: one entry per insert"
e0=$(counter $v journal_entries_written)
bkalloc bench inserts $u --writers 1 --count 40 --first 1 >/dev/null || fail "1 writer"
expect_eq "$(($(counter $v journal_entries_written) - e0))" 40 "entries written for 40 inserts by one writer"
step "eight writers: 320 inserts share entries"
bkalloc flush $u >/dev/null || fail "flush"
e0=$(counter $v journal_entries_written)
bkalloc bench inserts $u --writers 8 --count 40 --first 1001 >/dev/null || fail "8 writers"
e=$(($(counter $v journal_entries_written) - e0))
echo "INFO: 320 inserts by 8 writers in $e journal entries"
[ $e -ge 1 ] && [ $e -lt 320 ] || fail "320 concurrent inserts took $e journal entries: none was shared"
bkalloc get $u --from 1001 --count 320 --verify || fail "the concurrent keys"
crash_now "320 concurrent inserts in $e entries, none checkpointed"
EOF_GUEST
	vm_guest --timeout 240 <<'EOF_GUEST'
load_module
register_pair "" "register after the crash"
# (A journal-full checkpoint may have covered some of them.)
replayed_all "replay of the concurrent inserts"
bkalloc get $u --from 1 --count 40 --verify || fail "the single writer's keys"
bkalloc get $u --from 1001 --count 320 --verify || fail "the concurrent keys after the crash"
unregister_fsck "fsck after replay"
EOF_GUEST
}

# The node cache: a tree of 40 leaves (2.2 MB of keys and values) on a
# 1 MiB btree_cache_size. Register evicts past the bound, a full read
# reads leaves again, inserts that dirty every leaf make the insert path
# checkpoint, and the bound follows runtime writes; every key survives a
# re-register.
test_btree_cache_bounds_memory() {
	disks 2 256M
	vm_guest --timeout 300 <<'EOF_GUEST'
# resident VOLDIR MAX: the cached leaves take at most MAX bytes.
resident() {
	_b=$(counter $1 btree_cache_bytes)
	[ "$_b" -le $2 ] || fail "btree_cache_bytes $_b past $2"
	echo "INFO: btree_cache_bytes $_b, misses $(counter $1 btree_cache_misses), evictions $(counter $1 btree_cache_evictions)"
}
load_module
bench_scenario 2 40000 0 2000 0 >/tmp/tree.toml
bkalloc scenario --force /tmp/tree.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario"
step "register on 1 MiB: leaves past it are evicted"
register_pair "btree_cache_size=1"
expect_file_eq $v/options/btree_cache_size 1
expect_eq "$(counter $v btree_keys)" 40000 "btree_keys"
[ "$(counter $v btree_cache_evictions)" -gt 0 ] || fail "no leaf evicted at register"
resident $v 1048576
step "every key read: evicted leaves are read again, the bound holds"
bkalloc get $u --from 0 --count 40000 --step 2 --verify || fail "the tree's keys"
[ "$(counter $v btree_cache_misses)" -gt 0 ] || fail "no leaf read again"
resident $v 1048576
step "inserts into every leaf: the insert path checkpoints to keep the bound"
g0=$(counter $v checkpoint_generation)
bkalloc insert $u --from 1 --count 60 --step 1334 || fail "inserts"
g=$(counter $v checkpoint_generation)
[ "$g" -gt "$g0" ] || fail "60 leaves dirtied, no checkpoint (generation $g0 -> $g)"
resident $v 1048576
bkalloc get $u --from 1 --count 60 --step 1334 --verify || fail "the inserted keys"
step "the bound follows runtime writes"
write $v/options/btree_cache_size 64
bkalloc get $u --from 0 --count 40000 --step 2 --verify >/dev/null || fail "the tree's keys on 64 MiB"
[ "$(counter $v btree_cache_bytes)" -gt 1048576 ] || fail "64 MiB: the cache did not grow"
write $v/options/btree_cache_size 1
resident $v 1048576
expect_fail "Invalid argument" write $v/options/btree_cache_size 0
unregister_fsck "fsck after the cached inserts"
step "re-register: every key is there"
register_pair
expect_file_eq $v/options/btree_cache_size 1
bkalloc get $u --from 0 --count 40000 --step 2 --verify || fail "the tree's keys after re-register"
bkalloc get $u --from 1 --count 60 --step 1334 --verify || fail "the inserted keys after re-register"
unregister_fsck "fsck at the end"
EOF_GUEST
}
