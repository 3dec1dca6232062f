# SPDX-License-Identifier: GPL-2.0
# The discard thread: real discards (holes in the backing files), need_discard
# buckets become free, the starved device first, and waiters unstuck.

test_discard_punches_holes_and_frees_buckets() {
	disks 2 64M
	vm_guest <<'EOF_GUEST'
starved_scenario
EOF_GUEST
	local before0 before1 after0 after1
	before0=$(allocated_bytes "$(disk_image 0)")
	before1=$(allocated_bytes "$(disk_image 1)")
	vm_guest <<'EOF_GUEST'
load_module
register_pair "" "register"
wait_until 30 "every need_discard bucket discarded" sh -c \
	"[ \$(sed -n 's/^need_discard //p' $v/dev-0/usage) = 0 ] && [ \$(sed -n 's/^need_discard //p' $v/dev-1/usage) = 0 ]"
# The scenario left dev 0 with 1 free bucket and 300 need_discard.
expect_eq "$(usage_of $v/dev-0 free)" 301 "dev-0 free after discards"
expect_eq "$(counter $v discard_buckets)" 400 "discard_buckets"
expect_eq "$(counter $v discard_buckets_dev0)" 300 "discard_buckets_dev0"
echo "INFO: discards_issued $(counter $v discards_issued) for 400 buckets"
[ "$(counter $v discards_issued)" -lt 400 ] || fail "contiguous buckets were not merged into one discard"
unregister_fsck "fsck after discards"
EOF_GUEST
	after0=$(allocated_bytes "$(disk_image 0)")
	after1=$(allocated_bytes "$(disk_image 1)")
	echo "INFO: disk0 allocated $before0 -> $after0 bytes, disk1 $before1 -> $after1 bytes"
	# 300 and 100 discarded buckets each held one 4 KiB data block.
	[ $((before0 - after0)) -ge $((300 * 4096 * 9 / 10)) ] || { echo "FAIL: disk0 allocation dropped by $((before0 - after0)) bytes only"; return 1; }
	[ $((before1 - after1)) -ge $((100 * 4096 * 9 / 10)) ] || { echo "FAIL: disk1 allocation dropped by $((before1 - after1)) bytes only"; return 1; }
}

# Issue 12 #8: discard=0 means what nodiscard means to every filesystem:
# freed buckets are released without a discard, so capacity comes back. A
# device whose discards fail keeps its need_discard buckets (retried with
# backoff); discard=0 is then the way to get them back.
test_discard_unsticks_a_starved_waiter() {
	disks 2 64M
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout 180 <<'EOF_GUEST'
starved_scenario
load_module
step "discards fail: a request needing the starved device blocks"
dmesg -c >/dev/null
register_pair
bkalloc alloc $u --kind btree >/tmp/a1 2>&1 &
pid=$!
wait_waiters $v 1
wait_until 10 "a failed discard on dev0" sh -c "dmesg | grep -q 'dev0 .*: discard failed'"
sleep 2
kill -0 $pid || fail "alloc ended while every discard fails: $(cat /tmp/a1)"
expect_eq "$(counter $v discard_buckets)" 0 "buckets discarded while discards fail"
expect_eq "$(usage_of $v/dev-0 need_discard)" 300 "dev-0 need_discard while discards fail"
step "discard=0: the starved device's buckets are released first, without a discard; the waiter proceeds"
dmesg -c >/dev/null
write $v/options/discard 0
wait_until 20 "the alloc to finish" sh -c "! kill -0 $pid"
wait $pid || fail "alloc failed: $(cat /tmp/a1)"
set -- $(cat /tmp/a1)
[ $# = 2 ] && [ "${1%%:*}" != "${2%%:*}" ] || fail "not two replicas on distinct devices: $(cat /tmp/a1)"
dmesg | grep -q "released .* buckets (0 discards) on starved dev0" || fail "dev0 was not served as starved: $(dmesg | grep bkalloc | tail -n 3)"
wait_until 20 "every need_discard bucket released" sh -c \
	"[ \$(sed -n 's/^need_discard //p' $v/dev-0/usage) = 0 ] && [ \$(sed -n 's/^need_discard //p' $v/dev-1/usage) = 0 ]"
expect_eq "$(counter $v released_buckets)" 400 "released_buckets"
expect_eq "$(counter $v discard_buckets)" 0 "discard_buckets"
step "a free with discard=0 is capacity again at once"
b=$(bkalloc alloc $u) || fail "alloc"
free0=$(($(usage_of $v/dev-0 free) + $(usage_of $v/dev-1 free)))
bkalloc free $u $b || fail "free $b"
wait_until 10 "the freed bucket released" sh -c \
	"[ \$(cat $v/dev-0/usage $v/dev-1/usage | sed -n 's/^free //p' | awk '{ n += \$1 } END { print n }') = $((free0 + 1)) ]"
unregister_fsck "fsck"
EOF_GUEST
	vm_guest --timeout 180 <<'EOF_GUEST'
starved_scenario
load_module
step "defaults: a blocked request completes with no user action"
register_pair
bkalloc alloc $u --kind btree --replicas 2 >/dev/null || fail "alloc with discards on"
[ "$(counter $v discard_buckets)" -ge 1 ] || fail "no discard"
unregister_fsck "fsck"
EOF_GUEST
}
