#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: set everything up, boot the test VM with two NVMe disks, write
# bcachefs #1108's state onto them (samples/issue-1108.toml), show the journal
# replay wedging in a btree split, and unstick it four ways, with the guest
# console live on the terminal and a summary table at the end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need_root
log "preparing the build environment, the min kernel, the module and the tool"
log "(the first run on a machine builds a kernel: about 10 minutes)"
. "$TESTING_DIR/vm.sh"
vm_prepare min
WORK=$BKALLOC_CACHE/runs/demo
rm -rf "$WORK"
mkdir -p "$WORK"
disks 2 3G
VM_CONSOLE=/dev/stdout vm_guest --timeout 900 <<'EOF_GUEST'
exec 2>&1
say() { printf '\n==== %s\n' "$*"; }
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
counts() { for i in 0 1; do echo "  dev-$i: $(grep -E '^(free|need_discard|btree|user) ' $1/dev-$i/usage | tr '\n' ' ')"; done; }
keys_ok() { if (check_keys $1 2728 64) >/dev/null 2>&1; then echo "all 2792"; else echo "MISSING"; fi; }
wedged="discard=0,replay_discard_priority=0"

step "bcachefs #1108's state on two NVMe disks (samples/issue-1108.toml)"
issue1108_scenario
bkalloc show "$(disk 0)" "$(disk 1)" | grep -E '^device|buckets:|metadata_replicas|journal'
load_module

step "the hang: register with $wedged; replay splits a full leaf"
register_bg "$(disk 0) $(disk 1) $wedged,allocator_stuck_timeout=3"
v=$(volume_dir)
u=$(volume_uuid)
wait_waiters $v 1
echo "replay:  $(cat $v/replay)"
echo "waiters: $(cat $v/waiters)"
echo "(bcachefs sleeps here forever; bkalloc reports after allocator_stuck_timeout=3 s)"
wait_until 10 "the stuck report" grep -q "allocator stuck" $v/alloc_stuck
say "alloc_stuck"
cat $v/alloc_stuck

step "fix 2: restartable waiters: echo 1 > options/metadata_replicas"
t0=$(ms)
write $v/options/metadata_replicas 1
register_done 120
fix2=$(( $(ms) - t0 ))
echo "replay done ${fix2} ms after the write: $(cat $v/replay)"
k2=$(keys_ok $u)
echo "keys readable: $k2"
counts $v

step "fix 2, finished: once space is freed, echo 2 > options/metadata_replicas; re-replication"
wait_until 120 "the need_discard buckets released" sh -c \
	"[ \$(sed -n 's/^need_discard //p' $v/dev-0/usage) = 0 ] && [ \$(sed -n 's/^need_discard //p' $v/dev-1/usage) = 0 ]"
counts $v
t0=$(ms)
write $v/options/metadata_replicas 2
echo "rereplicate just after the write: $(cat $v/rereplicate)"
wait_until 120 "re-replication" grep -q "^state=done pending=0" $v/rereplicate
rerep=$(( $(ms) - t0 ))
echo "rereplicate ${rerep} ms after the write: $(cat $v/rereplicate)"
dmesg | grep "re-replication" | tail -n 2
write $v/unregister 1
out=$(bkalloc fsck "$(disk 0)" "$(disk 1)") || fail "fsck: $out"
echo "$out" | grep -E "replica\(s\)|^fsck" | tail -n 3
nodes=$(echo "$out" | sed -n 's/^fsck: .* in \([0-9]*\) nodes,.*/\1/p')
two=$(echo "$out" | grep '^btree nodes:' | grep -o '[0-9]* with 2 replica' | cut -d' ' -f1)
replicated="${two:-0} of $nodes nodes with 2 replicas"

step "fix 1: the recovery option: register ... metadata_replicas=1 (fresh copy of the state)"
issue1108_scenario
t0=$(ms)
write $BK/register "$(disk 0) $(disk 1) $wedged,metadata_replicas=1" || fail "register"
fix1=$(( $(ms) - t0 ))
v=$(volume_dir)
u=$(volume_uuid)
echo "register returned in ${fix1} ms: $(cat $v/replay)"
k1=$(keys_ok $u)
echo "keys readable: $k1"
write $v/unregister 1

step "fix 4: the escape hatch: echo all > abort_waiting (fresh copy of the state)"
issue1108_scenario
register_bg "$(disk 0) $(disk 1) $wedged"
v=$(volume_dir)
wait_waiters $v 1
t0=$(ms)
write $v/abort_waiting all
wait_until 20 "register to fail" sh -c "! kill -0 $regpid"
wait $regpid && fail "register succeeded after abort"
fix4=$(( $(ms) - t0 ))
echo "register failed ${fix4} ms after the write: $(cat /tmp/reg)"
dmesg | grep "replay failed" | tail -n 1
t0=$(ms)
write $BK/register "$(disk 0) $(disk 1) $wedged,alloc_deadline=3,alloc_wait_policy=fail" 2>/tmp/reg &&
	fail "register succeeded with policy fail"
fix4b=$(( $(ms) - t0 ))
echo "with alloc_deadline=3, alloc_wait_policy=fail: register failed after ${fix4b} ms: $(cat /tmp/reg)"
echo "the devices are free again, nothing was written: the state is still wedged"

step "fix 3: prioritised discards: register with the defaults (discard=1, replay_discard_priority=1)"
t0=$(ms)
write $BK/register "$(disk 0) $(disk 1)" || fail "register"
fix3=$(( $(ms) - t0 ))
v=$(volume_dir)
u=$(volume_uuid)
echo "register returned in ${fix3} ms: $(cat $v/replay)"
dmesg | grep "discarded .* buckets" | head -n 3
k3=$(keys_ok $u)
echo "keys readable: $k3"
echo "discarding the rest in the background; progress every 5 s:"
while [ "$(sed -n 's/^need_discard //p' $v/dev-1/usage)" != 0 ] || [ "$(sed -n 's/^need_discard //p' $v/dev-0/usage)" != 0 ]; do
	echo "  $(grep -E '^(discards_issued|discard_buckets) ' $v/counters | tr '\n' ' ')"
	sleep 5
done
grep -E '^(discards_issued|discard_buckets|starved_discard_buckets)' $v/counters | tr '\n' ' '; echo
counts $v
write $v/unregister 1
bkalloc fsck "$(disk 0)" "$(disk 1)" | tail -n 1

say "summary: bcachefs #1108's replay, unstuck four ways"
printf '%-56s %-18s %s\n' "fix" "time" "keys after"
printf '%-56s %-18s %s\n' "1 register ... metadata_replicas=1" "${fix1} ms (replay)" "$k1"
printf '%-56s %-18s %s\n' "2 echo 1 > options/metadata_replicas (waiter restarts)" "${fix2} ms" "$k2"
printf '%-56s %-18s %s\n' "3 prioritised discards (defaults)" "${fix3} ms (replay)" "$k3"
printf '%-56s %-18s %s\n' "4 echo all > abort_waiting (register fails)" "${fix4} ms" "replayed by fix 3"
printf '%-56s %-18s %s\n' "4 alloc_deadline=3, alloc_wait_policy=fail" "${fix4b} ms" "replayed by fix 3"
echo "after fix 2, echo 2 > options/metadata_replicas: fully replicated again: $replicated (${rerep} ms)"
unload_module
EOF_GUEST
echo "disk images after the demo: $(du -sh "$(disk_image 0)" | cut -f1), $(du -sh "$(disk_image 1)" | cut -f1) allocated"
