# SPDX-License-Identifier: GPL-2.0
# Durability at every crash point. A workload runs on members whose every
# write, discard and flush QEMU's blklogwrites records in one log (see
# logged_disks in vm.sh); after each change it is told is durable, it
# writes an acknowledgement to the log's last slice with O_DIRECT, so the
# log orders those too. A second boot rebuilds the members as they would
# be after a power cut at each crash point (`bkalloc crash points`: after
# every flush, plus CRASH_SUBSETS random subsets of the writes since each
# flush, with discarded ranges as zeros or old data), registers them and
# checks every acknowledged change: keys with their values, user buckets
# still allocated, freed ones not, option writes; no key never inserted;
# fsck clean. Register may refuse only a state nothing was acknowledged
# in. CRASH_INSERTS (default 50) sizes the workload, CRASH_POINTS caps the
# points checked (default: all), CRASH_SUBSETS (default 2) sets the
# reordered points per flush window and CRASH_SEED picks them.

# The workload, run in the logged boot. Keys 1..n, one at a time, each
# acknowledged; every 8th key an alloc, every 8th (from the 12th) a free of
# the oldest held alloc, every 10th a flush, once an option write; then
# unregister. "begin" lines say what was in flight.
crash_workload() {
	cat <<'EOF_GUEST'
ACK=$(disk 2)
ackn=0
ack() {
	printf 'bkack %s\n' "$*" | dd of=$ACK bs=512 seek=$ackn count=1 conv=sync oflag=direct 2>/dev/null ||
		fail "ack $*"
	ackn=$((ackn + 1))
}
bkalloc format --node-max-entries 8 --metadata-replicas 2 "$(disk 0)" "$(disk 1)" >/dev/null || fail "format"
sync
load_module
register_pair
ack registered $u
held=
for k in $(seq 1 $n); do
	ack begin insert $k
	bkalloc insert $u $k >/dev/null || fail "insert $k"
	ack insert $k
	if [ $((k % 8)) = 0 ]; then
		ack begin alloc
		b=$(bkalloc alloc $u) || fail "alloc"
		ack alloc $b
		held="$held $b"
	fi
	if [ $((k % 8)) = 4 ] && [ $k -ge 12 ]; then
		set -- $held
		ack begin free $1
		bkalloc free $u $1 || fail "free $1"
		ack free $1
		shift
		held="$*"
	fi
	if [ $((k % 10)) = 0 ]; then
		ack begin flush
		bkalloc flush $u >/dev/null || fail "flush"
		ack flush
	fi
	if [ $k = $((n / 2)) ]; then
		ack begin option alloc_deadline 7
		write $v/options/alloc_deadline 7 || fail "option"
		ack option alloc_deadline 7
	fi
done
ack begin unregister
write $v/unregister 1 || fail "unregister"
ack unregistered
echo "INFO: workload: $n inserts, $ackn acknowledgement lines"
EOF_GUEST
}

# The checker, run in the second boot: disks 0 and 1 are scratch members,
# disk 2 is the log. MIB and ACKOFF describe the slices.
crash_checker() {
	cat <<'EOF_GUEST'
LOG=$(disk 2)
bkalloc crash info $LOG
# By prefix, each prefix's reordered points right after it.
bkalloc crash points $LOG --subsets $subsets --seed $seed ${maxpoints:+--max-points $maxpoints} >/tmp/points.raw ||
	fail "crash points"
sort -s -n -k1,1 /tmp/points.raw >/tmp/points
total=$(wc -l </tmp/points)
slices="--slice 0:$((mib << 20)):/tmp/m0 --slice $((mib << 20)):$((mib << 20)):/tmp/m1"
acks="--slice $((2 * mib << 20)):$((ackmib << 20))"
# The members at the last point applied (prefix points come in order).
rm -f /tmp/m0 /tmp/m1
truncate -s ${mib}M /tmp/m0
truncate -s ${mib}M /tmp/m1
load_module
at=0 checked=0 refused=0 prefix_points=0 reordered=0 failures=0 in_checkpoint=0
# bad WHAT: a crash point that lost or invented something; the run goes on.
bad() {
	echo "INFO: CRASH POINT FAILED: $*"
	ok=0
}
# check_point PREFIX ACKS DISCARD [ONLY]: ok=0 if it failed.
check_point() {
	ok=1
	_p=$1 _acks=$2 _disc=$3 _only=$4
	if [ -z "$_only" ]; then
		if [ $_p -lt $at ]; then
			rm -f /tmp/m0 /tmp/m1
			truncate -s ${mib}M /tmp/m0
			truncate -s ${mib}M /tmp/m1
			at=0
		fi
		bkalloc crash apply $LOG --from $at --to $_p --discard $_disc $slices >/dev/null || fail "apply to $_p"
		at=$_p
		for i in 0 1; do
			dd if=/tmp/m$i of="$(disk $i)" bs=1M oflag=direct 2>/dev/null || fail "restore $i"
		done
	else
		# The prefix, then some writes since its flush, on copies.
		bkalloc crash apply $LOG --from $at --to $_p $slices >/dev/null || fail "apply to $_p"
		at=$_p
		for i in 0 1; do
			dd if=/tmp/m$i of="$(disk $i)" bs=1M oflag=direct 2>/dev/null || fail "restore $i"
		done
		bkalloc crash apply $LOG --to $_acks --only $_only --discard $_disc \
			--slice 0:$((mib << 20)):$(disk 0) --slice $((mib << 20)):$((mib << 20)):$(disk 1) >/dev/null ||
			fail "apply $_only"
	fi
	what="point $_p${_only:+ + $_only} ($_disc)"
	bkalloc crash acks $LOG $acks --to $_acks >/tmp/acks || fail "acks at $what"
	# What was acknowledged, and what was in flight.
	keys=$(grep -c '^bkack insert ' /tmp/acks)
	acked=$(grep -v '^bkack begin' /tmp/acks | grep -c . || true)
	lastbegin=$(grep '^bkack begin' /tmp/acks | tail -n 1)
	# A checkpoint in flight: a flush, or unregister's.
	case $lastbegin in "bkack begin flush" | "bkack begin unregister") in_checkpoint=$((in_checkpoint + 1)) ;; esac
	write $BK/register "$(disk 0) $(disk 1)" >/tmp/reg 2>&1 &
	regpid=$!
	wait_until 60 "register at $what" sh -c "! kill -0 $regpid"
	if ! wait $regpid; then
		# Refusing is a failure once anything was acknowledged.
		if grep -q '^bkack registered' /tmp/acks; then
			bad "$what: register refused after $acked acknowledgements: $(cat /tmp/reg); $(dmesg | grep bkalloc | tail -n 2 | tr '\n' ' ')"
			return
		fi
		refused=$((refused + 1))
		return 0
	fi
	v=$(volume_dir)
	u=${v##*/}
	case $(cat $v/replay) in "state=done"*) ;; *) bad "$what: replay $(cat $v/replay)" ;; esac
	if [ $keys -gt 0 ] && ! bkalloc get $u --from 1 --count $keys --verify >/tmp/get 2>&1; then
		bad "$what: acknowledged keys 1..$keys: $(tr '\n' ' ' </tmp/get)"
	fi
	# Key keys+1 may have been in flight; keys+2 was never inserted.
	if bkalloc get $u $((keys + 2)) >/dev/null 2>&1; then
		bad "$what: key $((keys + 2)) was never inserted but is there"
	fi
	if grep -q '^bkack option alloc_deadline 7' /tmp/acks && [ "$(cat $v/options/alloc_deadline)" != 7 ]; then
		bad "$what: acknowledged alloc_deadline=7 reads $(cat $v/options/alloc_deadline)"
	fi
	# Buckets: the last acknowledged alloc or free of each. A free fails
	# unless the bucket is user: a freed one must refuse it, an allocated
	# one take it (undone with the rest at the next restore; fsck checks
	# what the frees leave).
	users=$(awk '$2 == "alloc" { for (i = 3; i <= NF; i++) s[$i] = 1 }
		$2 == "free" { for (i = 3; i <= NF; i++) s[$i] = 0 }
		END { for (b in s) if (s[b]) print b }' /tmp/acks)
	freed=$(awk '$2 == "alloc" { for (i = 3; i <= NF; i++) s[$i] = 1 }
		$2 == "free" { for (i = 3; i <= NF; i++) s[$i] = 0 }
		END { for (b in s) if (!s[b]) print b }' /tmp/acks)
	# An alloc in flight may have been given a freed bucket again (and
	# holds one more); a free in flight may have taken its bucket.
	inflight_alloc=0 inflight_free=
	case $lastbegin in
	"bkack begin alloc"*) freed= inflight_alloc=1 ;;
	"bkack begin free "*) inflight_free=${lastbegin#bkack begin free } ;;
	esac
	users=$(echo "$users" | grep -vxF "${inflight_free:-none}" || true)
	# No leak: the user buckets are the acknowledged ones, give or take
	# what was in flight.
	nuser=$(cat $v/dev-*/usage | awk '$1 == "user" { n += $2 } END { print n + 0 }')
	want=$(echo "$users" | grep -c . || true)
	lo=$want hi=$((want + inflight_alloc))
	[ -n "$inflight_free" ] && hi=$((hi + 1))
	if [ "$nuser" -lt $lo ] || [ "$nuser" -gt $hi ]; then
		bad "$what: $nuser user buckets, $want acknowledged (in flight: ${lastbegin#bkack begin })"
	fi
	for b in $freed; do
		bkalloc free $u $b >/dev/null 2>&1 && bad "$what: bucket $b was freed (acknowledged) but is user"
	done
	for b in $users; do
		bkalloc free $u $b >/dev/null 2>&1 || bad "$what: bucket $b was allocated (acknowledged) but is not user"
	done
	write $v/unregister 1 || fail "$what: unregister"
	if ! bkalloc fsck "$(disk 0)" "$(disk 1)" >/tmp/fsck 2>&1; then
		bad "$what: fsck: $(grep -m 3 '^error' /tmp/fsck | tr '\n' ' ')"
	fi
}
while read -r p acksupto disc only; do
	check_point $p $acksupto $disc "$only"
	checked=$((checked + 1))
	[ $ok = 1 ] || failures=$((failures + 1))
	if [ -z "$only" ]; then prefix_points=$((prefix_points + 1)); else reordered=$((reordered + 1)); fi
	[ $((checked % 50)) = 0 ] && echo "INFO: $checked/$total crash points checked"
done </tmp/points
echo "INFO: $checked crash points: $prefix_points after a flush, $reordered reordered; $in_checkpoint inside a checkpoint; $refused refused before anything was acknowledged"
echo "CASES: $checked"
echo "CRASH POINTS: $((checked - failures)) passed, $failures failed"
[ $failures = 0 ] || fail "$failures of $checked crash points lost or invented something"
unload_module
EOF_GUEST
}

test_crash_points_keep_every_acknowledged_change() {
	# make check: 50 inserts on the min kernel; on the (slower) debug
	# kernel 12, and at most 60 of their points.
	local n=${CRASH_INSERTS:-$([ "$FLAVOUR" = debug ] && echo 12 || echo 50)}
	local maxpoints=${CRASH_POINTS:-$([ "$FLAVOUR" = debug ] && echo 60)}
	local mib=8 ackmib=1
	logged_disks 2 $mib $ackmib
	{
		echo "n=$n"
		crash_workload
	} | vm_guest --timeout $((240 + 10 * n)) || return 1
	cp "$WORK/write.log" "$WORK/crash.log"
	echo "INFO: write log: $(($(stat -c %s "$WORK/crash.log") >> 10)) KiB"
	disks 2 ${mib}M
	attach_disk "$WORK/crash.log"
	{
		echo "mib=$mib ackmib=$ackmib"
		echo "subsets=${CRASH_SUBSETS:-2} seed=${CRASH_SEED:-1} maxpoints=$maxpoints"
		crash_checker
	} | vm_guest --timeout ${CRASH_TIMEOUT:-1500}
}
