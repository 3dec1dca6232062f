# SPDX-License-Identifier: GPL-2.0
# Load and races: workers allocate, free and insert for a bounded time
# while options flip, aborts fire and flushes run; then the volume is
# unregistered and the module removed under the same load. Every waiter
# ends, nothing stays open, fsck agrees with the counts, and every
# acknowledged insert is there at the next register. LOAD_SECONDS (default
# 15) sets each phase's length: `make reliability` runs it longer.
#
# Requests must really wait: device 0 starts with 4 free buckets of its 40
# (the rest need_discard) and its discards fail (blkdebug), so it runs dry
# at once and every request that needs it blocks, until an option write
# restarts it, an abort or a deadline ends it, or `discard=0` (for a moment
# every 15 flips) releases its need_discard buckets without a discard.

test_load_and_races() {
	disks 2 256M
	local secs=${LOAD_SECONDS:-15}
	{
		echo "secs=$secs"
		cat <<'EOF_GUEST'
{
scenario_header "node_max_entries = 64"
cat <<'EOF_TOML'
[[device]]
free = 40
need_discard = 0
user = 0
btree_reserve = 2
[[device]]
free = 1500
need_discard = 60
user = 0
btree_reserve = 2
EOF_TOML
} >/tmp/load.toml
bkalloc scenario --force /tmp/load.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario"
load_module
register_pair
# dev0 nearly dry from the start, whatever the kernel's speed: take its free
# buckets down to 4 (its normal reserve is 2) and free them (need_discard:
# its discards fail) before the load begins.
: >/tmp/hoard
while [ "$(usage_of $v/dev-0 free)" -gt 4 ]; do
	bkalloc alloc $u --replicas 2 >>/tmp/hoard || fail "hoarding dev0's buckets"
done
while read -r pair; do
	bkalloc free $u $pair || fail "free $pair"
done </tmp/hoard
echo "INFO: dev0 at the start: $(grep -E '^(free|need_discard) ' $v/dev-0/usage | tr '\n' ' ')"

# workers TAG: start the load; each worker stops when /tmp/stop exists.
# Inserts of worker k use keys k*1000000 + i % 300; acknowledged ones are listed
# in /tmp/acked-k.
workers() {
	rm -f /tmp/stop
	pids=
	for k in 1 2; do
		(
			i=0
			while [ ! -e /tmp/stop ]; do
				# 300 keys per worker, written again and again: the
				# tree stays small enough for the dry dev0 (a tree that
				# outgrows a device is ENOSPC, not a race).
				key=$((k * 1000000 + i % 300))
				bkalloc insert $u --from $key --count 1 >/dev/null 2>&1 && echo $key >>/tmp/acked-$k
				i=$((i + 1))
			done
		) &
		pids="$pids $!"
	done
	for k in 3 4; do
		(
			while [ ! -e /tmp/stop ]; do
				b=$(bkalloc alloc $u 2>/dev/null) && bkalloc free $u $b 2>/dev/null
			done
		) &
		pids="$pids $!"
	done
	(
		i=0
		while [ ! -e /tmp/stop ]; do
			i=$((i + 1))
			echo $((i % 2 + 1)) >$v/options/metadata_replicas 2>/dev/null
			echo $((i % 2 + 1)) >$v/options/data_replicas 2>/dev/null
			echo $((i % 3)) >$v/options/alloc_deadline 2>/dev/null
			case $((i % 3)) in
			0) echo wait ;; 1) echo fail ;; 2) echo degrade ;;
			esac >$v/options/alloc_wait_policy 2>/dev/null
			# Discards (failing on dev0), and a release every 15 flips (3 s on min).
			echo $((i % 15 != 0)) >$v/options/discard 2>/dev/null
			sleep 0.2
		done
	) &
	pids="$pids $!"
	(
		while [ ! -e /tmp/stop ]; do
			echo all >$v/abort_waiting 2>/dev/null
			bkalloc flush $u >/dev/null 2>&1
			sleep 0.3
		done
	) &
	pids="$pids $!"
}

# stop_workers: every worker ends within a minute. A request blocked on
# the dry dev0 with policy wait waits for what the flipper no longer does:
# discard=0 gives dev0 its capacity back (a later register or checkpoint
# needs it too), and aborts end the rest.
stop_workers() {
	touch /tmp/stop
	[ -d "$v" ] && write $v/options/discard 0
	wait_until 60 "every worker to stop" sh -c \
		"echo all >$v/abort_waiting 2>/dev/null; for p in $pids; do kill -0 \$p 2>/dev/null && exit 1; done; exit 0"
	wait
	return 0
}

step "phase 1: ${secs}s of load with option flips, aborts and flushes"
workers
sleep $secs
stop_workers
expect_eq "$(nwaiters $v)" 0 "waiters left"
for i in 0 1; do
	expect_eq "$(usage_of $v/dev-$i open)" 0 "dev-$i open buckets"
done
acked=$(cat /tmp/acked-* 2>/dev/null | wc -l)
echo "INFO: phase 1: $acked inserts acknowledged, opts_gen $(cat $v/opts_gen), $(counter $v allocs) allocs, $(counter $v waits) waits, $(counter $v aborts) aborts, $(counter $v restarts) restarts, $(counter $v timeouts) timeouts, $(counter $v degraded) degraded, $(counter $v released_buckets) released"
[ "$acked" -gt 0 ] || fail "no insert went through in ${secs}s"
[ "$(counter $v waits)" -gt 0 ] || fail "no request waited: the load did not test waits"
ended=$(( $(counter $v aborts) + $(counter $v restarts) + $(counter $v timeouts) + $(counter $v degraded) ))
[ $ended -gt 0 ] || fail "no wait was ended by an abort, an option write or a deadline"
[ "$(counter $v released_buckets)" -gt 0 ] || fail "discard=0 released nothing on the dry device"
unregister_fsck "fsck after phase 1"

step "phase 2: unregister, then rmmod, under the same load"
register_pair
workers
sleep $((secs / 2 + 1))
write $v/unregister 1 || fail "unregister under load"
# Workers keep /dev/bkalloc open now and then (the module is busy then):
# rmmod goes through between two of them.
wait_until 30 "rmmod under load" rmmod bkalloc
stop_workers
[ ! -e $BK ] || fail "/sys/fs/bkalloc still there after rmmod"

step "every acknowledged insert is there"
load_module
# discard=0: the replay may split nodes, and dev0 may be dry.
register_pair discard=0
n=0
for key in $(cat /tmp/acked-1 /tmp/acked-2 2>/dev/null | sort -u); do
	bkalloc get $u --from $key --count 1 --verify >/dev/null || fail "acknowledged key $key lost"
	n=$((n + 1))
done
echo "INFO: $n acknowledged inserts verified"
echo "CASES: $n"
unregister_fsck "fsck at the end"
unload_module
EOF_GUEST
	} | VM_FAULTS=0:discard:any vm_guest --timeout $((secs * 12 + 300))
}
