# SPDX-License-Identifier: GPL-2.0
# The bkalloc tool inside the guest, on NVMe block devices: format, show,
# fsck, and the issue-1108 scenario with the seed's counts.

test_tool_on_nvme() {
	disks 3 256M
	vm_guest <<'EOF_GUEST'
step "format three devices as one volume"
bkalloc format --bucket-size 128k --metadata-replicas 3 --data-replicas 2 \
	"$(disk 0)" "$(disk 1)" "$(disk 2)" || fail "format"
out=$(bkalloc show "$(disk 0)" "$(disk 1)" "$(disk 2)") || fail "show"
echo "$out" | grep -q ': 3 member(s)$' || fail "show: member count: $out"
echo "$out" | grep -qE '^  metadata_replicas +3$' || fail "show: metadata_replicas"
echo "$out" | grep -qE '^  data_replicas +2$' || fail "show: data_replicas"
expect_eq "$(echo "$out" | grep -c 'bucket_size 128 KiB, buckets 2048 ')" 3 "bucket size and count on each member"
bkalloc show --json "$(disk 0)" "$(disk 1)" "$(disk 2)" | grep -q '"bucket_size": 131072' || fail "show --json"
step "fsck passes on a fresh volume"
bkalloc fsck "$(disk 0)" "$(disk 1)" "$(disk 2)" || fail "fsck on a fresh volume"
step "fsck fails on a corrupted alloc table and names it"
# After format (checkpoint generation 1) the alloc table in use is copy 1: block 4 + 1.
printf '\377' | dd of="$(disk 1)" bs=1 seek=$((5 * 4096 + 100)) conv=notrunc 2>/dev/null
out=$(bkalloc fsck "$(disk 0)" "$(disk 1)" "$(disk 2)") && fail "fsck passed on a corrupted alloc table"
echo "$out" | grep -q 'alloc_table' || fail "fsck does not name the alloc table: $out"
EOF_GUEST
}

test_tool_issue_1108_scenario() {
	disks 2 3G
	vm_guest --timeout 300 <<'EOF_GUEST'
step "write samples/issue-1108.toml onto two NVMe devices"
bkalloc scenario /samples/issue-1108.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario"
out=$(bkalloc show "$(disk 0)" "$(disk 1)")
echo "$out"
echo "$out" | grep -q 'buckets: free 1, need_discard 9416,' || fail "device 0 counts"
echo "$out" | grep -q 'buckets: free 5109, need_discard 41681,' || fail "device 1 counts"
echo "$out" | grep -qE '^  metadata_replicas +2$' || fail "metadata_replicas 2"
expect_eq "$(echo "$out" | grep -c 'btree_reserve 2')" 2 "btree_reserve of both devices"
step "fsck passes on the scenario"
bkalloc fsck "$(disk 0)" "$(disk 1)" || fail "fsck"
EOF_GUEST
	# need_discard and user buckets hold data in their first block: the
	# images are no longer empty, but stay sparse.
	local a
	a=$(allocated_bytes "$(disk_image 1)")
	echo "disk 1 allocated: $a bytes"
	[ "$a" -ge $((41681 * 4096)) ] || { echo "FAIL: disk 1 holds less data than its need_discard buckets"; return 1; }
	[ "$a" -lt $((1024 * 1024 * 1024)) ] || { echo "FAIL: disk 1 is not sparse"; return 1; }
}

# Issue 16: show and fsck read past the page cache. The module writes with
# bios while it holds the devices, so pages an earlier `bkalloc show` left
# cached went stale, and the next show printed the old checkpoint.
test_tool_reads_what_a_registered_volume_wrote() {
	disks 2 64M
	vm_guest <<'EOF_GUEST'
format_disks 0 1
load_module
register_pair
gen() { bkalloc show "$(disk 0)" "$(disk 1)" | sed -n 's/^checkpoint: generation \([0-9]*\),.*/\1/p'; }
g0=$(gen)
[ -n "$g0" ] || fail "no checkpoint generation in bkalloc show"
bkalloc insert $u --from 1 --count 5 >/dev/null || fail "insert"
bkalloc flush $u >/dev/null || fail "flush"
want=$(counter $v checkpoint_generation)
expect_eq "$(gen)" "$want" "the checkpoint generation bkalloc show reads while registered (was $g0)"
write $v/unregister 1
EOF_GUEST
}
