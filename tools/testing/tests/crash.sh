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

# Guest helpers of the workloads, for nm members (disks 0..nm-1) formatted
# with metadata_replicas rep: ack WORDS writes "bkack WORDS" to the next
# sector of the acknowledgement disk (disk nm) with O_DIRECT, after the
# sectors an earlier boot wrote.
crash_acks() {
	cat <<'EOF_GUEST'
members=
for i in $(seq 0 $((nm - 1))); do members="$members $(disk $i)"; done
members=${members# }
ACK=$(disk $nm)
# Sectors 0..2047 for the sequential workloads; concurrent_inserts gives
# each of its processes 512 sectors from 2048 on.
ackbase=0
ackn=$(dd if=$ACK bs=512 count=2048 2>/dev/null | tr -d '\0' | grep -c '^bkack ')
ack() {
	printf 'bkack %s\n' "$*" | dd of=$ACK bs=512 seek=$((ackbase + ackn)) count=1 conv=sync oflag=direct 2>/dev/null ||
		fail "ack $*"
	ackn=$((ackn + 1))
}
# crash_begin: a fresh volume of small nodes (splits at several levels),
# registered, v and u set, and acknowledged.
crash_begin() {
	bkalloc format --node-max-entries 8 --metadata-replicas $rep $members >/dev/null || fail "format"
	sync
	load_module
	write $BK/register "$members" || fail "register"
	v=$(volume_dir)
	u=${v##*/}
	ack registered $u
}
# The acknowledged changes besides inserts, each with its "begin" line:
# an alloc (its bucket joins $held), a free of the oldest bucket in $held,
# a flush, and the option write alloc_deadline=7.
acked_alloc() {
	ack begin alloc
	b=$(bkalloc alloc $u) || fail "alloc"
	ack alloc $b
	held="$held $b"
}
acked_free_oldest() {
	_b=${held# }
	_b=${_b%% *}
	ack begin free $_b
	bkalloc free $u $_b || fail "free $_b"
	ack free $_b
	held=${held#* $_b}
}
acked_flush() {
	ack begin flush
	bkalloc flush $u >/dev/null || fail "flush"
	ack flush
}
acked_option() {
	ack begin option alloc_deadline 7
	write $v/options/alloc_deadline 7 || fail "option"
	ack option alloc_deadline 7
}
# inserts FIRST LAST FLUSH_EVERY: keys FIRST..LAST, one at a time, each
# acknowledged; every 8th key an alloc, every 8th (from the 12th) a free of
# the oldest alloc this boot holds, every FLUSH_EVERY-th a flush (0: none), at key
# $option_at an option write. "begin" lines say what is in flight.
held=
inserts() {
	_flush_every=$3
	for k in $(seq $1 $2); do
		ack begin insert $k
		bkalloc insert $u $k >/dev/null || fail "insert $k"
		ack insert $k
		[ $((k % 8)) = 0 ] && acked_alloc
		[ $((k % 8)) = 4 ] && [ $k -ge 12 ] && [ -n "$held" ] && acked_free_oldest
		[ $_flush_every -gt 0 ] && [ $((k % _flush_every)) = 0 ] && acked_flush
		[ $k = "${option_at:-0}" ] && acked_option
	done
}
# concurrent_inserts W PER: W writers at once, writer w inserting keys
# w*RANGE+1.. (PER each, at most 256) in one process that acknowledges
# each (bkalloc insert --ack) into its own 512 sectors from 2048 + 512 w;
# meanwhile a shell loop with its own sectors (from 2048 + 512 W) makes
# allocs, frees of the oldest, a flush every third round and an option
# write, until the writers are done.
RANGE=100000
concurrent_inserts() {
	_pids=
	for w in $(seq 0 $(($1 - 1))); do
		bkalloc insert $u --from $((w * RANGE + 1)) --count $2 --ack $ACK:$((2048 + 512 * w)) >/dev/null &
		_pids="$_pids $!"
	done
	(
		alive() {
			for p in "$@"; do kill -0 $p 2>/dev/null && return 0; done
			return 1
		}
		ackbase=$((2048 + 512 * $1)) ackn=0 held= i=0
		# shellcheck disable=SC2086
		while [ $i -lt 200 ] && alive $_pids; do
			i=$((i + 1))
			acked_alloc
			[ $i -ge 3 ] && acked_free_oldest
			[ $((i % 3)) = 0 ] && acked_flush
			[ $i = 4 ] && acked_option
		done
		echo "INFO: concurrent: $i rounds of alloc, free and flush beside the writers"
	) &
	_admin=$!
	for p in $_pids; do
		wait $p || fail "writer $p"
	done
	wait $_admin || fail "allocs, frees and flushes"
}
EOF_GUEST
}

# The concurrent workload, all in the logged boot: format, register,
# W writers of n/W keys each with allocs, frees, flushes and an option
# write beside them, then unregister.
crash_concurrent_workload() {
	crash_acks
	cat <<'EOF_GUEST'
crash_begin
concurrent_inserts $W $((n / W))
echo "INFO: concurrent: $(grep -E '^(btree_keys|journal_entries_written) ' $v/counters | tr '\n' ' ')"
ack begin unregister
write $v/unregister 1 || fail "unregister"
ack unregistered
EOF_GUEST
}

# The first workload, all in the logged boot: format, register, keys 1..n
# with a flush every 10th and the option write half way, unregister.
crash_workload() {
	crash_acks
	cat <<'EOF_GUEST'
crash_begin
option_at=$((n / 2))
inserts 1 $n 10
ack begin unregister
write $v/unregister 1 || fail "unregister"
ack unregistered
echo "INFO: workload: $n inserts, $ackn acknowledgement lines"
EOF_GUEST
}

# The replay workload, before the logged boot: format, keys 1..n with no
# flush (more than the 64-block journal holds: a journal-full checkpoint,
# and entries past the wrap), then a power cut.
crash_replay_setup() {
	crash_acks
	cat <<'EOF_GUEST'
crash_begin
inserts 1 $n 0
crash_now "$n keys inserted, none flushed"
EOF_GUEST
}

# ... and in the logged boot: register replays what the journal holds (and
# checkpoints); then keys n+1..n+m with an option write half way,
# unregister.
crash_replay_workload() {
	crash_acks
	cat <<'EOF_GUEST'
load_module
ack begin register
write $BK/register "$members" || fail "register (replay)"
v=$(volume_dir)
u=${v##*/}
echo "INFO: replay: $(cat $v/replay)"
ack registered $u
option_at=$((n + m / 2))
inserts $((n + 1)) $((n + m)) 5
ack begin unregister
write $v/unregister 1 || fail "unregister"
ack unregistered
EOF_GUEST
}

# The checker, run in the last boot: disks 0..nm-1 are scratch members,
# disk nm is the log; with base=1, disk nm+1 is the logged image as it was
# before the logged boot (else it was zeros), and the acknowledgements in
# its last slice hold at every point. mib and ackmib size the slices.
# Every other reordered point also tears the last write it applies after
# 1..7 of its sectors (QEMU's NVMe makes one 512-byte sector atomic).
crash_checker() {
	cat <<'EOF_GUEST'
LOG=$(disk $nm)
BASE=$(disk $((nm + 1)))
ids=$(seq 0 $((nm - 1)))
members=
for i in $ids; do members="$members $(disk $i)"; done
members=${members# }
# reset_members: /tmp/m0.. as they were before the log.
reset_members() {
	for i in $ids; do
		rm -f /tmp/m$i
		if [ "$base" = 1 ]; then
			dd if="$BASE" of=/tmp/m$i bs=1M skip=$((i * mib)) count=$mib 2>/dev/null || fail "base $i"
		else
			truncate -s ${mib}M /tmp/m$i
		fi
	done
}
: >/tmp/base-acks
if [ "$base" = 1 ]; then
	dd if="$BASE" bs=1M skip=$((nm * mib)) count=$ackmib 2>/dev/null | tr -d '\0' | grep '^bkack ' >/tmp/base-acks
	echo "INFO: $(grep -vc '^bkack begin' /tmp/base-acks) acknowledgements before the log"
fi
bkalloc crash info $LOG
# By prefix, each prefix's reordered points right after it.
bkalloc crash points $LOG --subsets $subsets --seed $seed ${maxpoints:+--max-points $maxpoints} >/tmp/points.raw ||
	fail "crash points"
sort -s -n -k1,1 /tmp/points.raw >/tmp/points
total=$(wc -l </tmp/points)
slices= devslices=
for i in $ids; do
	slices="$slices --slice $((i * mib << 20)):$((mib << 20)):/tmp/m$i"
	devslices="$devslices --slice $((i * mib << 20)):$((mib << 20)):$(disk $i)"
done
acks="--slice $((nm * mib << 20)):$((ackmib << 20))"
# The members at the last point applied (prefix points come in order).
reset_members
load_module
at=0 checked=0 refused=0 prefix_points=0 reordered=0 torn=0 failures=0 in_checkpoint=0 in_replay=0
# bad WHAT: a crash point that lost or invented something; the run goes on.
bad() {
	echo "INFO: CRASH POINT FAILED: $*"
	ok=0
}
# check_point PREFIX ACKS DISCARD [ONLY]: ok=0 if it failed.
check_point() {
	ok=1
	_p=$1 _acks=$2 _disc=$3 _only=$4 _tear=
	# The prefix onto the copies (a reordered point's discards as zeros),
	# then onto the disks.
	if [ $_p -lt $at ]; then
		reset_members
		at=0
	fi
	bkalloc crash apply $LOG --from $at --to $_p --discard $([ -z "$_only" ] && echo $_disc || echo zero) \
		$slices >/dev/null || fail "apply to $_p"
	at=$_p
	for i in $ids; do
		dd if=/tmp/m$i of="$(disk $i)" bs=1M oflag=direct 2>/dev/null || fail "restore $i"
	done
	if [ -n "$_only" ]; then
		# Then some writes since its flush, on the disks.
		if [ $((reordered % 2)) = 1 ]; then
			_tear=$((reordered / 2 % 7 + 1))
			torn=$((torn + 1))
		fi
		bkalloc crash apply $LOG --to $_acks --only $_only --discard $_disc \
			${_tear:+--tear-last $_tear} $devslices >/dev/null || fail "apply $_only"
	fi
	what="point $_p${_only:+ + $_only}${_tear:+ torn after $_tear sectors} ($_disc)"
	cp /tmp/base-acks /tmp/acks
	bkalloc crash acks $LOG $acks --to $_acks >>/tmp/acks || fail "acks at $what"
	# What was acknowledged, and what was in flight (several things at
	# once with concurrent writers): "keys W N" per writer (its keys
	# W*RANGE+1.. are acknowledged up to the N-th), "flushes" and
	# "register" in flight, "allocs" in flight, "free B" in flight.
	acked=$(grep -v '^bkack begin' /tmp/acks | grep -c . || true)
	awk -v R=100000 '
		$2 == "begin" && ($3 == "flush" || $3 == "unregister") { ck++ }
		$2 == "flush" || $2 == "unregister" { ck-- }
		$2 == "begin" && $3 == "register" { rp = 1 }
		$2 == "registered" { rp = 0 }
		$2 == "begin" && $3 == "alloc" { al++ }
		$2 == "alloc" { al-- }
		$2 == "begin" && $3 == "free" { fr[$4] = 1 }
		$2 == "free" { delete fr[$3] }
		$2 == "insert" { n[int(($3 - 1) / R)]++ }
		END {
			print "flushes", ck + 0; print "register", rp + 0; print "allocs", al + 0
			for (b in fr) print "free", b
			for (w in n) print "keys", w, n[w]
		}' /tmp/acks >/tmp/inflight
	keys=$(awk '$1 == "keys" { k += $3 } END { print k + 0 }' /tmp/inflight)
	# A checkpoint in flight: a flush, or unregister's. A register in
	# flight replays the journal (and checkpoints after).
	grep -qx 'flushes [1-9][0-9]*' /tmp/inflight && in_checkpoint=$((in_checkpoint + 1))
	grep -qx 'register 1' /tmp/inflight && in_replay=$((in_replay + 1))
	inflight_alloc=$(awk '$1 == "allocs" { print $2 }' /tmp/inflight)
	inflight_free=$(awk '$1 == "free" { print $2 }' /tmp/inflight)
	write $BK/register "$members" >/tmp/reg 2>&1 &
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
	# Each writer's keys: its acknowledged ones, in order from its
	# first; the next may have been in flight, the one after never was.
	while read -r _w _n; do
		_first=$((_w * 100000 + 1))
		if [ $_n -gt 0 ] && ! bkalloc get $u --from $_first --count $_n --verify >/tmp/get 2>&1; then
			bad "$what: acknowledged keys $_first..$((_first + _n - 1)): $(tr '\n' ' ' </tmp/get)"
		fi
		if bkalloc get $u $((_first + _n + 1)) >/dev/null 2>&1; then
			bad "$what: key $((_first + _n + 1)) was never inserted but is there"
		fi
	done <<EOF_KEYS
$(awk '$1 == "keys" { print $2, $3; k = 1 } END { if (!k) print 0, 0 }' /tmp/inflight)
EOF_KEYS
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
	[ "$inflight_alloc" -gt 0 ] && freed=
	users=$(echo "$users" | grep -vxF "${inflight_free:-none}" || true)
	# No leak: the user buckets are the acknowledged ones, give or take
	# what was in flight.
	nuser=$(cat $v/dev-*/usage | awk '$1 == "user" { n += $2 } END { print n + 0 }')
	want=$(echo "$users" | grep -c . || true)
	lo=$want hi=$((want + inflight_alloc + $(echo "$inflight_free" | grep -c . || true)))
	if [ "$nuser" -lt $lo ] || [ "$nuser" -gt $hi ]; then
		bad "$what: $nuser user buckets, $want acknowledged (in flight: $(grep -v ' 0$' /tmp/inflight | grep -v '^keys' | tr '\n' ' '))"
	fi
	for b in $freed; do
		bkalloc free $u $b >/dev/null 2>&1 && bad "$what: bucket $b was freed (acknowledged) but is user"
	done
	for b in $users; do
		bkalloc free $u $b >/dev/null 2>&1 || bad "$what: bucket $b was allocated (acknowledged) but is not user"
	done
	write $v/unregister 1 || fail "$what: unregister"
	if ! bkalloc fsck $members >/tmp/fsck 2>&1; then
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
echo "INFO: $checked crash points: $prefix_points after a flush, $reordered reordered ($torn with a torn write); $in_checkpoint inside a checkpoint, $in_replay inside a replay; $refused refused before anything was acknowledged"
echo "CASES: $checked"
echo "CRASH POINTS: $((checked - failures)) passed, $failures failed"
[ $failures = 0 ] || fail "$failures of $checked crash points lost or invented something"
unload_module
EOF_GUEST
}

test_crash_points_keep_every_acknowledged_change() {
	local nm rep mib ackmib
	# make check: 50 inserts on the min kernel; on the (slower) debug
	# kernel 12, and at most 24 of their points (the min kernel checks every
	# point; debug's lock, memory and hang checks see each kind of path).
	local n=${CRASH_INSERTS:-$([ "$FLAVOUR" = debug ] && echo 12 || echo 50)}
	local maxpoints=${CRASH_POINTS:-$([ "$FLAVOUR" = debug ] && echo 24)}
	crash_record 2 2 "$n" crash_workload || return 1
	crash_check 0 "$maxpoints"
}

# Three members, one copy of each node: every node lives on one device,
# and a split's new nodes spread over three.
test_crash_points_three_members_one_replica() {
	local nm rep mib ackmib
	local n=${CRASH_INSERTS:-$([ "$FLAVOUR" = debug ] && echo 10 || echo 30)}
	local maxpoints=${CRASH_POINTS:-$([ "$FLAVOUR" = debug ] && echo 15)}
	crash_record 3 1 "$n" crash_workload || return 1
	crash_check 0 "$maxpoints"
}

# Four writers at once: inserts share journal entries and flushes (group
# commit), and allocs, frees, flushes and an option write run beside them,
# so a crash point may hold several changes in flight.
test_crash_points_concurrent_writers() {
	local nm rep mib ackmib
	local n=${CRASH_INSERTS:-$([ "$FLAVOUR" = debug ] && echo 32 || echo 96)}
	local maxpoints=${CRASH_POINTS:-$([ "$FLAVOUR" = debug ] && echo 16)}
	W=4 crash_record 2 2 "$n" crash_concurrent_workload 3 || return 1
	crash_check 0 "$maxpoints"
}

# A crash while register replays: a first boot leaves a journal of keys
# after a power cut; the logged boot registers (replay, its checkpoint) and
# goes on. Every key of the first boot is acknowledged at every point.
test_crash_points_inside_a_replay() {
	local nm rep mib ackmib
	local n=${CRASH_REPLAY_KEYS:-$([ "$FLAVOUR" = debug ] && echo 40 || echo 70)}
	local m=${CRASH_INSERTS_AFTER:-10}
	local maxpoints=${CRASH_POINTS:-$([ "$FLAVOUR" = debug ] && echo 16)}
	crash_record 2 2 "$n" crash_replay_setup || return 1
	cp --sparse=always "$WORK/logged.img" "$WORK/base.img"
	{
		echo "nm=$nm rep=$rep n=$n m=$m"
		crash_replay_workload
	} | vm_guest --timeout $((240 + 10 * m)) || return 1
	# A replay is a few flush windows: CRASH_REPLAY_SUBSETS reorders each
	# more often (make crashtest), for points inside it.
	CRASH_SUBSETS=${CRASH_REPLAY_SUBSETS:-${CRASH_SUBSETS:-2}} crash_check 1 "$maxpoints"
}

# crash_record NM REP N WORKLOAD [ACKMIB]: nm members of mib MiB each and
# an acknowledgement slice (ACKMIB MiB, default 1) under one log (sets the
# caller's locals nm, rep, mib and ackmib), and a boot that runs WORKLOAD
# with n (and W, the writers, if set).
crash_record() {
	nm=$1 rep=$2 mib=8 ackmib=${5:-1}
	logged_disks "$nm" $mib $ackmib
	{
		echo "nm=$nm rep=$rep n=$3 W=${W:-1}"
		$4
	} | vm_guest --timeout $((240 + 10 * $3))
}

# crash_check BASE MAXPOINTS: the checker boot over the last logged boot.
crash_check() {
	cp "$WORK/write.log" "$WORK/crash.log"
	echo "INFO: write log: $(($(stat -c %s "$WORK/crash.log") >> 10)) KiB"
	disks "$nm" ${mib}M
	attach_disk "$WORK/crash.log"
	[ "$1" = 1 ] && attach_disk "$WORK/base.img"
	{
		echo "nm=$nm mib=$mib ackmib=$ackmib base=$1"
		echo "subsets=${CRASH_SUBSETS:-2} seed=${CRASH_SEED:-1} maxpoints=$2"
		crash_checker
	} | vm_guest --timeout ${CRASH_TIMEOUT:-1500}
}
