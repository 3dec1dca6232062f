# SPDX-License-Identifier: GPL-2.0
# Hostile input: random bytes to every writable sysfs file of a volume and
# random ioctl payloads, numbers and pointers on /dev/bkalloc, from the
# project's own fuzzer (bkalloc fuzz); each case gets an error and changes
# nothing, unless the fuzzer worked out that it is valid.

# FUZZ_ROUNDS (default 300, 100 on the debug kernel) sets the first run's
# rounds; `make reliability` runs more.
test_hostile_sysfs_and_ioctl_input_changes_nothing() {
	disks 2 64M
	local rounds=${FUZZ_ROUNDS:-$([ "$FLAVOUR" = debug ] && echo 100 || echo 300)}
	{
		echo "rounds=$rounds"
		cat <<'EOF_GUEST'
# run_fuzz SEED [ARGS...]: runs bkalloc fuzz on $u and shows its findings;
# fails if the alloc whose result could not be written back kept its buckets
# (its "efault alloc" line: the user count must not grow), or unless every
# case behaved. The output stays in /tmp/fuzz-SEED.
run_fuzz() {
	_seed=$1
	shift
	_out=/tmp/fuzz-$_seed
	_rc=0
	bkalloc fuzz $u --seed $_seed "$@" >$_out 2>&1 || _rc=$?
	grep -E '^fuzz: (volume|valid|efault|note)' $_out | sed 's/^/INFO: /'
	grep '^fuzz: UNEXPECTED' $_out | head -n 20
	_last=$(tail -n 1 $_out)
	echo "INFO: $_last"
	_line=$(grep '^fuzz: efault alloc: ' $_out) || fail "fuzz --seed $_seed: no 'efault alloc' line: $_last"
	set -- $(echo "$_line" | sed -n 's/^fuzz: efault alloc: user \([0-9]*\)->\([0-9]*\), need_discard \([0-9]*\)->\([0-9]*\)$/\1 \2 \3 \4/p')
	[ $# = 4 ] || fail "cannot read '$_line'"
	[ "$2" -le "$1" ] ||
		fail "an alloc whose result could not be written back kept its buckets: user $1->$2"
	echo "$_last" | grep -qE '^fuzz: [0-9]+ cases \([0-9]+ sysfs writes, [0-9]+ ioctls\), 0 unexpected$' ||
		fail "fuzz --seed $_seed: $_last"
	expect_eq $_rc 0 "exit status of fuzz --seed $_seed"
}

# users: user buckets of the volume, summed over the members.
users() {
	_n=0
	for _c in $(bkalloc status $u | sed -n 's/^dev-[0-9]* .* user \([0-9]*\)$/\1/p'); do
		_n=$((_n + _c))
	done
	echo $_n
}

format_disks 0 1
load_module
register_pair discard=0
step "a few user buckets and keys"
for i in 1 2 3; do
	bkalloc alloc $u >/dev/null || fail "alloc $i"
done
bkalloc alloc $u --kind btree >/dev/null || fail "alloc --kind btree"
bkalloc insert $u --from 0 --count 8 >/dev/null || fail "insert"
before=$(users)
expect_eq $before 5 "user buckets before fuzzing"

step "fuzz --seed 1 --rounds $rounds"
run_fuzz 1 --rounds $rounds
# Every option file and abort_waiting, once per round.
expect_eq "$(sed -n 's/^fuzz: [0-9]* cases (\([0-9]*\) sysfs writes.*/\1/p' /tmp/fuzz-1)" \
	$((rounds * ($(ls $v/options | wc -l) + 1))) \
	"sysfs writes of $rounds rounds"

# The ABI's named refusals (reserved fields, counts, versions), each EINVAL.
grep '^fuzz: abi: ' /tmp/fuzz-1 | sed 's/^/INFO: /'
expect_eq "$(grep -c '^fuzz: abi: .*: EINVAL$' /tmp/fuzz-1)" 9 "ABI refusals answered EINVAL"
for case in "alloc, reserved field nonzero" "free, count over the maximum" "version, unknown version"; do
	grep -qx "fuzz: abi: $case: EINVAL" /tmp/fuzz-1 || fail "no EINVAL for '$case'"
done

step "fuzz --seed 2"
run_fuzz 2

step "the volume is as it was set up and still works"
expect_file_eq $v/options/discard 0
expect_file_eq $v/options/replay_discard_priority 1
expect_file_eq $v/options/metadata_replicas 2
expect_file_eq $v/options/data_replicas 1
expect_eq "$(nwaiters $v)" 0 "waiters after fuzzing"
# A fuzzed free may hit a user bucket it could not know was one: fewer is
# possible, more is a leak.
after=$(users)
[ $after -le $before ] || fail "user buckets grew from $before to $after"
bkalloc get $u --from 0 --count 8 --verify || fail "keys after fuzzing"
b=$(bkalloc alloc $u) || fail "alloc after fuzzing"
bkalloc free $u $b || fail "free $b"

step "unregister, fsck"
unregister_fsck "fsck after fuzzing"

step "no kernel splat"
# The module logs each refused option value ("bad value '<text>'"), which is
# fuzzer text: those lines are not the kernel's.
splat=$(dmesg | grep -v "bad value '" | grep -E 'Oops|BUG|WARNING|panic' | head -n 1)
[ -z "$splat" ] || fail "kernel log: $splat"
cases=0
for f in /tmp/fuzz-1 /tmp/fuzz-2; do
	cases=$((cases + $(tail -n 1 $f | sed -n 's/^fuzz: \([0-9]*\) cases.*/\1/p')))
done
echo "CASES: $cases"
unload_module
EOF_GUEST
	} | vm_guest --timeout $((300 + rounds))
}
