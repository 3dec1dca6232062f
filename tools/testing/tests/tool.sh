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

# Issue 16: format and scenario refuse, without --force, a device that
# holds a volume, a partition table or a file system (the magics blkid
# looks for), and refuse a device a registered volume holds even with it.
test_format_refuses_what_it_would_overwrite() {
	disks 3 64M
	vm_guest <<'EOF_GUEST'
step "a bkalloc volume"
bkalloc format "$(disk 0)" "$(disk 1)" >/dev/null || fail "format empty disks"
out=$(bkalloc format "$(disk 0)" "$(disk 1)" 2>&1) && fail "format wrote over a bkalloc volume"
echo "$out" | grep -q "$(disk 0): holds a bkalloc signature; --force writes over it" || fail "format's refusal: $out"
{
	scenario_header
	starved_devices
} >/tmp/small.toml
out=$(bkalloc scenario /tmp/small.toml "$(disk 0)" "$(disk 1)" 2>&1) && fail "scenario wrote over a bkalloc volume"
echo "$out" | grep -q 'holds a bkalloc signature' || fail "scenario's refusal: $out"
bkalloc fsck "$(disk 0)" "$(disk 1)" >/dev/null || fail "the refusals changed the volume"
step "the signatures of other owners"
# sig OFFSET BYTES NAME [OFFSET2 BYTES2]: disk 2 zeroed, BYTES (printf
# escapes) at OFFSET (and BYTES2 at OFFSET2).
sig() {
	dd if=/dev/zero of="$(disk 2)" bs=64k count=2 2>/dev/null || fail "zero disk 2"
	printf "$2" | dd of="$(disk 2)" bs=1 seek=$1 conv=notrunc 2>/dev/null || fail "write $3"
	if [ $# -gt 3 ]; then
		printf "$5" | dd of="$(disk 2)" bs=1 seek=$4 conv=notrunc 2>/dev/null || fail "write $3"
	fi
	sync
	out=$(bkalloc format "$(disk 2)" 2>&1) && fail "format wrote over $3"
	echo "$out" | grep -q "holds a $3 signature" || fail "refusal of $3: $out"
	bkalloc format --force "$(disk 2)" >/dev/null || fail "format --force over $3"
}
sig 1080 '\123\357' "ext2/3/4"
sig 0 'XFSB' "xfs"
sig 65600 '_BHRfS_M' "btrfs"
sig 4120 '\306\205\163\366\116\032\105\312\202\145\365\177\110\272\155\201' "bcachefs"
sig 4086 'SWAPSPACE2' "swap"
sig 536 'LVM2 001' "LVM2 physical volume"
sig 512 'EFI PART' "GPT partition table"
sig 510 '\125\252' "MBR partition table" 450 '\203'
step "a device a registered volume holds, even with --force"
load_module
register_pair
out=$(bkalloc format --force "$(disk 0)" 2>&1) && fail "format wrote over a registered member"
echo "$out" | grep -q "in use" || fail "refusal of a busy device: $out"
unregister_fsck "fsck after the refused format"
bkalloc format --force "$(disk 0)" "$(disk 1)" >/dev/null || fail "format --force once unregistered"
EOF_GUEST
}

# Issue 16: the commands an administrator runs instead of sysfs files, and
# errors that say what is wrong.
test_admin_commands() {
	disks 2 64M
	vm_guest <<'EOF_GUEST'
step "without the module"
out=$(bkalloc list 2>&1) && fail "list without the module: $out"
echo "$out" | grep -q "module not loaded" || fail "list without the module: $out"
format_disks 0 1
load_module
expect_eq "$(bkalloc list)" "no volume registered" "list of nothing"
step "version: the module's ABI, and a version it does not know refused"
bkalloc version | grep -q "module ABI 1, features alloc free status insert get flush version$" ||
	fail "version: $(bkalloc version 2>&1)"
out=$(bkalloc version --abi 99 2>&1) && fail "ABI version 99 accepted"
echo "$out" | grep -q "does not speak ABI version 99" || fail "version 99: $out"
out=$(bkalloc version --abi 0 2>&1) && fail "ABI version 0 accepted"
step "register prints the uuid; list shows the volume"
u=$(bkalloc register "$(disk 0)" "$(disk 1)" -o alloc_deadline=5) || fail "register"
[ -d "$BK/$u" ] || fail "register printed '$u'"
expect_eq "$(cat $BK/$u/options/alloc_deadline)" 5 "the registration's option"
expect_eq "$(bkalloc list)" "$u state rw replay done waiters 0 members $(disk 0),$(disk 1)" "list"
bkalloc list --json | grep -q "\"uuid\": \"$u\"" || fail "list --json: $(bkalloc list --json)"
step "set-option: checked by the table, then by the volume"
bkalloc set-option $u alloc_deadline 9 | grep -q '^alloc_deadline 9 (opts_gen 1)$' || fail "set-option"
expect_eq "$(cat $BK/$u/options/alloc_deadline)" 9 "alloc_deadline after set-option"
out=$(bkalloc set-option $u metadata_replicas 7 2>&1) && fail "set-option out of range"
echo "$out" | grep -q "7 is out of range 1..=4" || fail "out of range: $out"
out=$(bkalloc set-option $u no_such 1 2>&1) && fail "set-option of no option"
echo "$out" | grep -q "no option 'no_such'" || fail "no option: $out"
out=$(bkalloc set-option $u metadata_replicas 3 2>&1) && fail "3 replicas on 2 members"
echo "$out" | grep -q "refused as invalid" || fail "the volume's refusal: $out"
expect_eq "$(cat $BK/$u/opts_gen)" 1 "opts_gen after the refusals"
step "usage, --json and --watch"
bkalloc usage $u | grep -qE "^dev-0 +[0-9]+ +[0-9]+ .* $(disk 0)\$" || fail "usage: $(bkalloc usage $u)"
bkalloc usage $u --json | grep -q '"need_discard":' || fail "usage --json: $(bkalloc usage $u --json)"
expect_eq "$(bkalloc usage $u --json --watch 1 --count 2 | wc -l)" 2 "usage --watch 1 --count 2"
step "status --json says what status says"
free0=$(bkalloc status $u | sed -n 's/^dev-0 free \([0-9]*\) .*/\1/p')
[ -n "$free0" ] || fail "status: $(bkalloc status $u)"
j=$(bkalloc status $u --json | tr -d ' \n')
echo "$j" | grep -q "\"dev\":0,\"free\":$free0," || fail "status --json, dev-0 free $free0: $j"
echo "$j" | grep -q '"waiters":0' || fail "status --json waiters: $j"
expect_eq "$(echo "$j" | grep -o '"dev":' | wc -l)" 2 "members in status --json"
step "errors name what is wrong"
out=$(bkalloc usage 11111111-2222-3333-4444-555555555555 2>&1) && fail "usage of no volume"
echo "$out" | grep -q "no volume with uuid 11111111-2222-3333-4444-555555555555 is registered" || fail "$out"
out=$(bkalloc register "$(disk 0)" "$(disk 1)" 2>&1) && fail "register twice"
echo "$out" | grep -q "in use" || fail "register twice: $out"
step "unregister"
bkalloc unregister $u || fail "unregister"
expect_eq "$(bkalloc list)" "no volume registered" "list after unregister"
out=$(bkalloc register "$(disk 0)" 2>&1) && fail "register one of two members"
echo "$out" | grep -q "refused as invalid" || fail "one member: $out"
bkalloc fsck "$(disk 0)" "$(disk 1)" >/dev/null || fail "fsck"
unload_module
EOF_GUEST
}
