# SPDX-License-Identifier: GPL-2.0
# The measurements of `make bench` (tools/testing/bench.sh), each with its
# baseline in the same boot; `make check` runs them small so the harness
# cannot rot. The guest prints one "BENCH <json>" line per run; the host's
# bench_report.py turns them into the results table, results.json and the
# plots (in BENCH_RESULTS, default the test's work directory).
# BENCH_INSERTS (default 64) and BENCH_TRIALS (default 20) size the runs.

# Durable inserts through /dev/bkalloc by 1, 2, 4 and 8 writers on two
# members, against the device's own 4 KiB write + flush loop on a third
# disk; the flushes each member completed, from /sys/block/*/stat (field
# 16), count per run. Then the #1108 replay (samples/issue-1108.toml) with
# prioritised discards, against the same replay with every need_discard
# bucket free (replay's own elapsed_ms; BENCH_REPLAYS of each, default 1,
# the report takes the medians), and the module's memory per bucket
# and per key (its counters) after it. Then the discard thread's rate over
# BENCH_DISCARDS (default 3000: batches of 1024) contiguous need_discard
# buckets, from its tracepoint's timestamps, against BLKDISCARD over the
# same ranges (BENCH_DISCARD_ROUNDS rounds, default 1; the report takes the
# round with the median ratio). The allocation fast path (BENCH_FASTPATH iterations,
# default 10000, of a 2-replica alloc and release in memory) against a
# mutex and counter in the module (bench.rs, in debugfs), with its parts
# (the lock round trips, the request build and placement). In a second boot, wake-to-restart (BENCH_TRIALS, default
# 20): an option write that lets a parked alloc through, against the same
# write with nobody waiting. In a third, scale: register of four sparse
# members of 1M buckets (against 4096 buckets each), of a tree of
# BENCH_KEYS keys (default 100000, against 1000; then on a node cache of an
# eighth of its leaves, against that bound), and the replay rate of
# BENCH_REPLAY_KEYS journaled keys (default 2000) against durable inserts
# by one writer.
test_bench_inserts_replay_and_restarts() {
	# The debug kernel runs the same paths, smaller: its checks are the
	# point there, not the figures.
	if [ "$FLAVOUR" = debug ]; then
		local BENCH_INSERTS=${BENCH_INSERTS:-32}
		local BENCH_FASTPATH=${BENCH_FASTPATH:-2000} BENCH_TRIALS=${BENCH_TRIALS:-8}
		local BENCH_KEYS=${BENCH_KEYS:-20000} BENCH_REPLAY_KEYS=${BENCH_REPLAY_KEYS:-500}
	fi
	disks 3 3G
	# Not piped: vm_guest must run in this shell to number its boots (and
	# keep each boot's log).
	vm_guest --timeout $((240 + ${BENCH_INSERTS:-64} / 4)) < <(
		echo "n=${BENCH_INSERTS:-64} discards=${BENCH_DISCARDS:-3000} discard_rounds=${BENCH_DISCARD_ROUNDS:-1} fastpath=${BENCH_FASTPATH:-10000} replays=${BENCH_REPLAYS:-1}"
		cat <<'EOF_GUEST'
# flushes: flush requests completed by disks 0 and 1, summed.
flushes() {
	_f=0
	for _d in "$(disk 0)" "$(disk 1)"; do
		_f=$((_f + $(awk '{ print $16 }' /sys/block/${_d#/dev/}/stat)))
	done
	echo $_f
}
format_disks 0 1
load_module
register_pair
step "baseline: the device's own write + flush, $n times"
line=$(bkalloc bench write-flush "$(disk 2)" --count $n) || fail "bench write-flush"
echo "BENCH $line" >>/tmp/bench
key=1
for w in 1 2 4 8; do
	step "$n inserts by $w writer(s)"
	f0=$(flushes)
	line=$(bkalloc bench inserts $u --writers $w --count $((n / w)) --first $key) || fail "bench inserts, $w writers"
	df=$(($(flushes) - f0))
	[ $df -gt 0 ] || fail "no flush counted for $w writers"
	echo "BENCH ${line%\}},\"members\":2,\"flushes\":$df}" >>/tmp/bench
	key=$((key + n))
done
bkalloc get $u --from 1 --count $((key - 1)) --verify >/dev/null || fail "the inserted keys"
step "the allocation fast path, in the module, against a mutex and counter there"
f=/sys/kernel/debug/bkalloc/$u/fastpath
[ -f $f ] || fail "no $f (debugfs)"
write $f $fastpath || fail "fastpath $fastpath"
read -r _ it _ fp _ bl _ lk _ pl <$f || fail "reading $f"
[ "$it" = $fastpath ] && [ -n "$pl" ] || fail "fastpath ran $it iterations, not $fastpath: $(cat $f)"
echo "BENCH {\"bench\":\"fastpath\",\"iterations\":$it,\"fastpath_ns\":$fp,\"baseline_ns\":$bl,\"locks_ns\":$lk,\"placement_ns\":$pl}" >>/tmp/bench
unregister_fsck "fsck after the inserts"
step "the #1108 replay with prioritised discards, then on every need_discard bucket free"
# replay_ms [OPTIONS]: registers disks 0 and 1 and prints the replay's
# elapsed_ms once it is done; leaves the volume unregistered.
replay_ms() {
	register_pair "${1:-}"
	case $(cat $v/replay) in "state=done"*) ;; *) fail "replay: $(cat $v/replay)" ;; esac
	sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p' $v/replay
	# What the module holds for the volume, per bucket and per key.
	echo "$(cat $v/dev-*/usage | awk '$1 == "buckets" { n += $2 } END { print n + 0 }') $(counter $v memory_bucket_bytes) $(counter $v btree_keys) $(counter $v memory_btree_bytes)" >/tmp/memory
	write $v/unregister 1 || fail "unregister"
}
# The same images, but what was need_discard is free already.
awk '/^\[\[device\]\]/ { d++ } /^free = / { f[d] = $3; next } /^need_discard = / { n[d] = $3; next }
	{ print } /^btree_reserve/ { print "free = " f[d] + n[d]; print "need_discard = 0" }' \
	/samples/issue-1108.toml >/tmp/free.toml
# Replays of tens of ms vary by several ms from one to the next under TCG:
# $replays of each, alternating, and the report takes the medians.
prio_all=
free_all=
i=0
while [ $i -lt $replays ]; do
	issue1108_scenario
	prio=$(replay_ms)
	bkalloc scenario --force /tmp/free.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario (all free)"
	free=$(replay_ms)
	[ -n "$prio" ] && [ -n "$free" ] || fail "no replay times: '$prio' '$free'"
	prio_all=${prio_all:+$prio_all,}$prio
	free_all=${free_all:+$free_all,}$free
	i=$((i + 1))
done
echo "BENCH {\"bench\":\"replay_1108\",\"prioritised_ms\":[$prio_all],\"all_free_ms\":[$free_all]}" >>/tmp/bench
read -r nb bb nk kb </tmp/memory
[ "$nb" -gt 0 ] && [ "$nk" -gt 0 ] || fail "no memory figures: $(cat /tmp/memory)"
echo "BENCH {\"bench\":\"memory\",\"buckets\":$nb,\"bucket_bytes\":$bb,\"keys\":$nk,\"btree_bytes\":$kb}" >>/tmp/bench
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs nodev $T || fail "no tracefs"
round=1
while [ $round -le $discard_rounds ]; do
	step "discard round $round of $discard_rounds: the discard thread over $discards need_discard buckets, then BLKDISCARD over the same ranges"
	bench_scenario 1 100 0 4000 $discards >/tmp/discard.toml
	bkalloc scenario --force /tmp/discard.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario (discards)"
	echo >$T/trace
	echo 1 >$T/events/bkalloc/bkalloc_discard/enable
	register_pair
	wait_until 600 "the discard thread to empty dev0" grep -qx 'need_discard 0' $v/dev-0/usage
	echo 0 >$T/events/bkalloc/bkalloc_discard/enable
	cp $T/trace /tmp/discard-trace
	write $v/unregister 1 || fail "unregister (discards)"
	line=$(bkalloc bench discard "$(disk 0)" --bucket-size 65536 --trace /tmp/discard-trace --dev 0) ||
		fail "bench discard: $(grep -c bkalloc_discard /tmp/discard-trace) events"
	echo "BENCH $line" >>/tmp/bench
	round=$((round + 1))
done
bench_print
EOF_GUEST
	) || return 1
	# Discards fail in this boot: dev0's need_discard never comes back, so
	# only the option write can let a 2-replica request through.
	VM_FAULTS=$FAILING_DISCARDS vm_guest --timeout $((180 + ${BENCH_TRIALS:-20} / 4)) < <(
		echo "trials=${BENCH_TRIALS:-20}"
		cat <<'EOF_GUEST'
load_module
step "wake-to-restart, $trials trials: dev0 is starved, so 2 replicas wait and 1 does not"
{
	scenario_header
	starved_devices 3000
} >/tmp/restart.toml
bkalloc scenario --force /tmp/restart.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario"
register_pair
line=$(bkalloc bench restart $u --trials $trials) || fail "bench restart"
echo "BENCH $line" >>/tmp/bench
unregister_fsck "fsck after the restarts"
bench_print
EOF_GUEST
	) || return 1
	# Scale: four sparse members of 1M buckets each, a tree of BENCH_KEYS
	# keys built by the tool, and a replay of BENCH_REPLAY_KEYS keys, each
	# registered with its small twin on the same disks (the baseline).
	disks 4 64G
	vm_guest --timeout $((240 + ${BENCH_KEYS:-100000} / 2000)) < <(
		echo "keys=${BENCH_KEYS:-100000} replay=${BENCH_REPLAY_KEYS:-2000}"
		cat <<'EOF_GUEST'
load_module
all="$(disk 0) $(disk 1) $(disk 2) $(disk 3)"
step "register 4 members of 1M buckets, against 4 of 4096"
# shellcheck disable=SC2086
bkalloc format --force --bucket-size 16M $all >/dev/null || fail "format (16M buckets)"
# shellcheck disable=SC2086
line=$(bkalloc bench register $all --label buckets_small) || fail "register (4096 buckets each)"
echo "BENCH $line" >>/tmp/bench
# shellcheck disable=SC2086
bkalloc format --force $all >/dev/null || fail "format (64k buckets)"
# shellcheck disable=SC2086
line=$(bkalloc bench register $all --label buckets_1m) || fail "register (1M buckets each)"
echo "BENCH $line" >>/tmp/bench
# scenario_keys KEYS JOURNAL: a two-member volume on disks 0 and 1 with
# KEYS keys in its btree and JOURNAL more in its journal.
scenario_keys() {
	bench_scenario 2 $1 $2 100000 0 >/tmp/keys.toml
	bkalloc scenario --force /tmp/keys.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario ($1 keys, $2 in the journal)"
}
step "register a tree of $keys keys, against one of 1000; replay $replay keys"
scenario_keys 1000 0
line=$(bkalloc bench register "$(disk 0)" "$(disk 1)" --label keys_small) || fail "register (1000 keys)"
echo "BENCH $line" >>/tmp/bench
scenario_keys $keys 0
line=$(bkalloc bench register "$(disk 0)" "$(disk 1)" --label keys_large) || fail "register ($keys keys)"
echo "BENCH $line" >>/tmp/bench
# The same tree on a node cache of an eighth of its leaves (at least 1 MiB).
mib=$((keys * 40 / 8 / 1048576 + 1))
line=$(bkalloc bench register "$(disk 0)" "$(disk 1)" --options btree_cache_size=$mib --label keys_cached) ||
	fail "register ($keys keys, btree_cache_size=$mib)"
echo "BENCH $line" >>/tmp/bench
scenario_keys 1000 $replay
line=$(bkalloc bench register "$(disk 0)" "$(disk 1)" --label replay) || fail "register (replay of $replay keys)"
echo "BENCH $line" >>/tmp/bench
# The baseline of the replay rate: durable inserts by one writer, now.
register_pair
line=$(bkalloc bench inserts $u --writers 1 --count 200 --first 2000001) || fail "bench inserts"
echo "BENCH ${line%\}},\"label\":\"replay_baseline\"}" >>/tmp/bench
unregister_fsck "fsck after the scale runs"
bench_print
EOF_GUEST
	) || return 1
	# The report from the boots' lines (make bench: into BENCH_RESULTS).
	python3 "$TESTING_DIR/bench_report.py" "${BENCH_RESULTS:-$WORK/results}" "$WORK"/serial-*.log
}
