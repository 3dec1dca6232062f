# SPDX-License-Identifier: GPL-2.0
# Corrupted images registered by the real module. One volume is taken to a
# crash image (a checkpoint, then journaled inserts, allocs and frees) and
# copied with `bkalloc mutate save`; then, IMAGE_MUTATIONS times (default
# 200 for `make check`; `make reliability` runs more), `bkalloc mutate
# apply` writes the pristine copy back and damages it one way: bit flips,
# a torn tail, a field set to a hostile value with a valid checksum, or a
# member of another volume (disk 2), across superblocks, checkpoints, alloc
# tables, journal entries and btree nodes. Register must refuse with a
# message in the kernel log, or come up consistent (it answers, and fsck
# passes after unregister); never leave a device held (EBUSY at the next
# register), and never splat (the harness checks the log). IMAGE_SEED
# (default 1) picks another sequence of mutations.

test_corrupt_images_refused_or_consistent() {
	disks 3 64M
	# make check: 200 on the min kernel, 100 on the (slower) debug kernel.
	local n=${IMAGE_MUTATIONS:-$([ "$FLAVOUR" = debug ] && echo 100 || echo 200)}
	local seed=${IMAGE_SEED:-1}
	{
		echo "n=$n"
		echo "seed=$seed"
		cat <<'EOF_GUEST'
# bk_errors: the module's error lines (level err or worse) logged since
# the last dmesg -c.
bk_errors() {
	dmesg -r | sed -n 's/^<[0-3]>\(\[[^]]*\] *\)\{0,1\}\(bkalloc: .*\)$/\2/p'
}

step "a crash image: 340 keys in nodes of 8, user buckets, 40 inserts and a free journaled after the checkpoint"
format_small_nodes
bkalloc format "$(disk 2)" >/dev/null || fail "format disk 2 (another volume)"
load_module
# Discards fail all the boot (FAILING_DISCARDS): freed buckets stay
# need_discard, so the saved image does not depend on the discard thread's
# timing.
register_pair
bkalloc insert $u --from 0 --count 300 >/dev/null || fail "insert 300"
: >/tmp/users
for i in 1 2 3 4; do
	bkalloc alloc $u >>/tmp/users || fail "alloc $i"
done
for b in $(head -n 2 /tmp/users); do
	bkalloc free $u $b || fail "free $b"
done
bkalloc flush $u >/dev/null || fail "flush"
bkalloc insert $u --from 300 --count 40 >/dev/null || fail "insert 40 after the flush"
b=$(bkalloc alloc $u) || fail "alloc after the flush"
bkalloc free $u $b || fail "free $b after the flush"
echo "INFO: $(grep -E '^(btree_keys|btree_nodes|checkpoint_generation|journal_seq|journal_pending_entries)' $v/counters | tr '\n' ' ')"
# Registered and idle: O_DIRECT reads see what a crash now would leave.
out=$(bkalloc mutate save /tmp/snap "$(disk 0)" "$(disk 1)") || fail "mutate save: $out"
echo "INFO: $out"
write $v/unregister 1 || fail "unregister"

step "the saved crash image itself registers, replays and is consistent"
out=$(bkalloc mutate apply /tmp/snap --restore-only "$(disk 0)" "$(disk 1)") || fail "restore: $out"
register_pair
echo "INFO: pristine image: $(cat $v/replay)"
case $(cat $v/replay) in "state=done"*) ;; *) fail "replay of the pristine image: $(cat $v/replay)" ;; esac
bkalloc get $u --from 0 --count 340 --verify >/dev/null || fail "keys of the pristine image"
write $v/unregister 1 || fail "unregister"
bkalloc fsck "$(disk 0)" "$(disk 1)" >/dev/null || fail "fsck of the pristine image after register"

step "$n image mutations (seed $seed)"
refused=0
accepted=0
named=0
surprises=0
fams="bitflip truncate crafted foreign"
for f in $fams; do
	eval "r_$f=0 a_$f=0"
done
i=0
while [ $i -lt $n ]; do
	line=$(bkalloc mutate apply /tmp/snap --seed $seed --index $i --other "$(disk 2)" "$(disk 0)" "$(disk 1)" 2>&1) ||
		fail "mutate apply --index $i: $line"
	fam=${line#*; family }
	fam=${fam%%[ ;]*}
	case " $fams " in *" $fam "*) ;; *) fail "no family in '$line'" ;; esac
	expect=${line##*expect: }
	dmesg -c >/dev/null
	if out=$(write $BK/register "$(disk 0) $(disk 1)" 2>&1); then
		set -- $BK/*-*
		[ $# = 1 ] && [ -d "$1" ] || fail "$line: register succeeded but volumes are: $*"
		v=$1
		u=${v##*/}
		r=$(cat $v/replay)
		case $r in "state=done"*) ;; *) fail "$line: registered, but replay: $r" ;; esac
		st=$(bkalloc status $u 2>&1) || fail "$line: registered, but status: $st"
		write $v/unregister 1 || fail "$line: unregister"
		if ! fk=$(bkalloc fsck "$(disk 0)" "$(disk 1)" 2>&1); then
			echo "$fk" | grep -m 5 '^error' | sed 's/^/INFO: fsck: /'
			fail "$line: registered, but fsck after unregister: $(echo "$fk" | tail -n 1)"
		fi
		accepted=$((accepted + 1))
		eval "a_$fam=\$((a_$fam + 1))"
		if [ "$expect" = refuse ]; then
			surprises=$((surprises + 1))
			[ $surprises -le 10 ] && echo "INFO: came up consistent where a refusal was expected: $line"
		fi
	else
		case $out in
		*"Device or resource busy"*) fail "$line: register: EBUSY, a device an earlier case left held: $out" ;;
		esac
		set -- $BK/*-*
		[ ! -e "$1" ] || fail "$line: register failed ($out) but a volume is registered: $*"
		errs=$(bk_errors)
		nerr=$(echo "$errs" | grep -c . || true)
		[ "$nerr" -ge 1 ] || fail "$line: register failed ($out) with no bkalloc error in the kernel log: $(dmesg | tail -n 3)"
		echo "$errs" | grep -qE "$(disk 0)|$(disk 1)|volume " && named=$((named + 1))
		refused=$((refused + 1))
		eval "r_$fam=\$((r_$fam + 1))"
		[ $refused -le 5 ] && echo "INFO: refused ($nerr error line(s)): $line => $(echo "$errs" | head -n 1)"
	fi
	i=$((i + 1))
	[ $((i % 100)) = 0 ] && echo "INFO: $i/$n: $refused refused, $accepted accepted"
done
echo "INFO: $n image mutations: $refused refused, $accepted accepted and consistent"
for f in $fams; do
	eval "echo \"INFO:   $f: \$r_$f refused, \$a_$f accepted\""
done
echo "INFO: refusals naming a device or the volume: $named of $refused"
echo "INFO: came up consistent where the tool expected a refusal: $surprises"
# The line `make reliability` counts.
echo "$n image mutations"

step "the pristine image again: registers, every key verifies"
out=$(bkalloc mutate apply /tmp/snap --restore-only "$(disk 0)" "$(disk 1)") || fail "restore: $out"
dmesg -c >/dev/null
register_pair
bkalloc get $u --from 0 --count 340 --verify || fail "keys after $n mutations"
write $v/unregister 1 || fail "unregister"
bkalloc fsck "$(disk 0)" "$(disk 1)" >/dev/null || fail "fsck"
unload_module
EOF_GUEST
	} | VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout $((240 + 2 * n))
	echo "$n image mutations"
}
