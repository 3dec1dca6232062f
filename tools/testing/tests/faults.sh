# SPDX-License-Identifier: GPL-2.0
# Torn writes and device faults: a superblock or alloc table write cut
# short, an option write that fails on one member (QEMU blkdebug, see
# VM_FAULTS in vm.sh). Nothing acknowledged is lost, nothing
# unacknowledged takes effect, and a damaged copy is named.

# Issue 12 #5: a torn write of superblock copy 0 (garbage in block 0, as a
# power cut in the middle of an option write leaves it) on one member.
test_torn_superblock_copy_is_survived() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
write $v/options/alloc_deadline 7 || fail "set alloc_deadline"
bkalloc insert $u --from 1 --count 20 >/dev/null || fail "insert"
write $v/unregister 1 || fail "unregister"
step "garbage in block 0 of disk 0: superblock copy 0 torn"
dd if=/dev/urandom of="$(disk 0)" bs=4096 count=1 conv=fsync 2>/dev/null || fail "dd"
dmesg -c >/dev/null
register_pair
expect_file_eq $v/options/alloc_deadline 7
bkalloc get $u --from 1 --count 20 --verify >/dev/null || fail "the 20 keys after the torn copy"
dmesg | grep -q "$(disk 0): superblock copy 0: " || fail "no message naming the torn copy: $(dmesg | tail -n 3)"
step "the next option write rewrites both copies: no message at the next register"
write $v/options/alloc_deadline 9 || fail "set alloc_deadline"
write $v/unregister 1 || fail "unregister"
dmesg -c >/dev/null
register_pair
expect_file_eq $v/options/alloc_deadline 9
dmesg | grep "superblock copy" && fail "a copy is still damaged after a rewrite"
step "both copies torn: refused, naming the device"
write $v/unregister 1 || fail "unregister"
dd if=/dev/urandom of="$(disk 1)" bs=4096 count=2 conv=fsync 2>/dev/null || fail "dd"
expect_fail "Invalid argument" write $BK/register "$(disk 0) $(disk 1)"
dmesg | grep -q "$(disk 1): not a valid bkalloc member: superblock" || fail "$(dmesg | tail -n 3)"
expect_no_volume
unload_module
EOF_GUEST
}

# Issue 12 #5: a checkpoint torn while writing its alloc table (garbage in
# the copy the newest checkpoint does not use) costs nothing; damage to the
# copy it uses is refused, naming device, copy and block.
test_torn_alloc_table_write_is_survived() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 240 <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
bkalloc insert $u --from 1 --count 20 >/dev/null || fail "insert"
bkalloc alloc $u >/dev/null || fail "alloc"
write $v/unregister 1 || fail "unregister"
before=$(bkalloc show "$(disk 0)" "$(disk 1)" | grep buckets:)
gen=$(bkalloc show "$(disk 0)" "$(disk 1)" | sed -n 's/^checkpoint: generation \([0-9]*\),.*/\1/p')
[ -n "$gen" ] || fail "no checkpoint generation in bkalloc show"
# 64 MiB of 64 KiB buckets: one alloc table block per copy, copy c at block 4 + c.
used=$((4 + gen % 2))
other=$((4 + (gen + 1) % 2))
step "generation $gen: garbage in alloc table block $other (the copy not in use) on both members"
for i in 0 1; do
	dd if=/dev/urandom of="$(disk $i)" bs=4096 seek=$other count=1 conv=fsync 2>/dev/null || fail "dd"
done
# Failing discards (the whole boot): the counts stay as they were (the
# unregister's checkpoint left a retired node need_discard).
register_pair
bkalloc get $u --from 1 --count 20 --verify >/dev/null || fail "the keys"
write $v/unregister 1 || fail "unregister"
expect_eq "$(bkalloc show "$(disk 0)" "$(disk 1)" | grep buckets:)" "$before" "bucket counts"
bkalloc fsck "$(disk 0)" "$(disk 1)" || fail "fsck after the unregister's checkpoint"
step "garbage in the copy the newest checkpoint uses: refused by name"
gen=$(bkalloc show "$(disk 0)" "$(disk 1)" | sed -n 's/^checkpoint: generation \([0-9]*\),.*/\1/p')
used=$((4 + gen % 2))
dd if=/dev/urandom of="$(disk 1)" bs=4096 seek=$used count=1 conv=fsync 2>/dev/null || fail "dd"
dmesg -c >/dev/null
expect_fail "Invalid argument" write $BK/register "$(disk 0) $(disk 1)"
dmesg | grep -q "$(disk 1): alloc table copy $((gen % 2)) block 0: " || fail "$(dmesg | tail -n 3)"
expect_no_volume
unload_module
EOF_GUEST
}

# Issue 12 #11: an option write whose superblock write fails on the second
# member returns the error, and is not in effect then or after a register
# (before the fix the first member's higher seq won at the next register).
test_option_write_failing_half_way_is_dropped() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_disks 0 1
EOF_GUEST
	VM_FAULTS="1:write:0 1:write:8" vm_guest --timeout 240 <<'EOF_GUEST'
load_module
register_pair
before=$(cat $v/options/alloc_deadline)
step "alloc_deadline 42: disk 1 fails every superblock write"
# QEMU's NVMe reports the backend's EIO as a write fault (sc 0x80), a
# medium error: ENODATA in the guest.
expect_fail "No data available" write $v/options/alloc_deadline 42
expect_file_eq $v/options/alloc_deadline "$before"
expect_file_eq $v/opts_gen 0
write $v/unregister 1 || fail "unregister"
dmesg -c >/dev/null
register_pair
expect_file_eq $v/options/alloc_deadline "$before"
dmesg | grep -q "did not reach every member" || fail "no message about the dropped write: $(dmesg | tail -n 3)"
write $v/unregister 1 || fail "unregister"
unload_module
EOF_GUEST
}

# Issue 12 #8: a device whose discards fail keeps its buckets need_discard
# (nothing is freed that was not discarded), is retried with a pause that
# doubles, and logs a few lines, not one a second; the other member's
# discards go on.
test_failing_discards_back_off() {
	disks 2 64M
	vm_guest --timeout 120 <<'EOF_GUEST'
starved_scenario
EOF_GUEST
	VM_FAULTS="0:discard:any" vm_guest --timeout 240 <<'EOF_GUEST'
load_module
dmesg -c >/dev/null
register_pair
wait_until 30 "dev-1's need_discard buckets discarded" sh -c \
	"[ \$(sed -n 's/^need_discard //p' $v/dev-1/usage) = 0 ]"
sleep 12
fails=$(dmesg | grep -c "dev0 ($(disk 0)): discard failed")
echo "INFO: $fails lines about dev0's failing discards in ~14 s"
dmesg | grep "discard failed" | sed 's/^/INFO: /' | head -n 5
[ "$fails" -ge 2 ] || fail "the failing device was not retried: $(dmesg | tail -n 3)"
[ "$fails" -le 4 ] || fail "$fails log lines: not rate limited"
expect_eq "$(usage_of $v/dev-0 need_discard)" 300 "dev-0 need_discard (none freed undiscarded)"
expect_eq "$(usage_of $v/dev-0 free)" 1 "dev-0 free"
expect_eq "$(counter $v discard_buckets_dev0)" 0 "discard_buckets_dev0"
unregister_fsck "fsck"
unload_module
EOF_GUEST
}

# Issue 12 #13 and the campaign's device faults: a checkpoint whose write
# fails on one member made later checkpoints rewrite its nodes in place,
# though a member may hold that checkpoint. Now the volume goes read-only
# at once, says why in `state`, refuses changes, keeps serving reads, and
# the next register recovers every acknowledged change from the journal.
test_checkpoint_write_error_makes_the_volume_read_only() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_small_nodes
EOF_GUEST
	# Checkpoint slot 0 (block 2, sector 16) of disk 1: the format wrote
	# generation 1 to slot 1, so the next checkpoint goes there.
	VM_FAULTS="1:write:16" vm_guest --timeout 240 <<'EOF_GUEST'
load_module
register_pair
expect_file_eq $v/state rw
bkalloc insert $u --from 1 --count 60 >/dev/null || fail "insert"
step "the flush fails on disk 1: read-only"
expect_fail "No data available" bkalloc flush $u
expect_file_eq $v/state "ro: checkpoint failed (error -61)"
dmesg | grep -q "checkpoint failed (error -61): read-only now" || fail "no message: $(dmesg | tail -n 3)"
expect_fail "Read-only file system" bkalloc insert $u --from 100 --count 1
expect_fail "Read-only file system" bkalloc alloc $u
expect_fail "Read-only file system" bkalloc flush $u
expect_fail "Read-only file system" write $v/options/alloc_deadline 5
bkalloc get $u --from 1 --count 60 --verify >/dev/null || fail "reads in read-only"
write $v/unregister 1 || fail "unregister"
dmesg | grep -q "checkpoint failed (error -61): read-only" || fail "$(dmesg | tail -n 3)"
EOF_GUEST
	vm_guest --timeout 240 <<'EOF_GUEST'
load_module
register_pair
expect_file_eq $v/state rw
# Member 0 may hold the failed checkpoint (it was written before disk 1's
# failed): then it covers the keys, else the journal does.
echo "INFO: $(cat $v/replay)"
bkalloc get $u --from 1 --count 60 --verify >/dev/null || fail "the 60 keys after the read-only boot"
unregister_fsck "fsck"
EOF_GUEST
}

# A journal write that fails on one member is not acknowledged, and the
# volume goes read-only; what was acknowledged before survives.
test_journal_write_error_makes_the_volume_read_only() {
	disks 2 64M
	vm_guest --timeout 240 <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
bkalloc insert $u --from 1 --count 20 >/dev/null || fail "insert"
write $v/unregister 1 || fail "unregister"
EOF_GUEST
	VM_FAULTS="1:write:any" vm_guest --timeout 240 <<'EOF_GUEST'
load_module
register_pair
expect_file_eq $v/state rw
# A listener on state is woken when it changes.
bkalloc events $u --count 1 --timeout 30 >/tmp/ev 2>&1 &
ev=$!
wait_in_syscall $ev 7 "bkalloc events"
expect_fail "No data available" bkalloc insert $u --from 100 --count 1
expect_file_eq $v/state "ro: journal write failed (error -61)"
wait_until 10 "the listener to end" sh -c "! kill -0 $ev"
wait $ev || fail "bkalloc events: $(cat /tmp/ev)"
expect_eq "$(cat /tmp/ev)" "state: ro: journal write failed (error -61)" "the listener's line"
expect_fail "Read-only file system" bkalloc insert $u --from 101 --count 1
bkalloc get $u --from 1 --count 20 --verify >/dev/null || fail "reads in read-only"
write $v/unregister 1 || fail "unregister"
EOF_GUEST
	vm_guest --timeout 240 <<'EOF_GUEST'
load_module
register_pair
bkalloc get $u --from 1 --count 20 --verify >/dev/null || fail "the 20 acknowledged keys"
unregister_fsck "fsck"
EOF_GUEST
}
