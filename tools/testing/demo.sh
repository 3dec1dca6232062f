#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: set everything up, boot the test VM with two NVMe disks, write
# bcachefs #1108's state onto them, and show a btree allocation that wedges
# bcachefs being reported and unstuck three ways, with the guest console
# live on the terminal. (Replay itself comes with the journal work.)
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
VM_CONSOLE=/dev/stdout vm_guest --timeout 600 <<'EOF_GUEST'
exec 2>&1
say() { printf '\n==== %s\n' "$*"; }
ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
step "bcachefs #1108's state on two NVMe disks (samples/issue-1108.toml)"
bkalloc scenario /samples/issue-1108.toml "$(disk 0)" "$(disk 1)" >/dev/null || fail "scenario"
bkalloc show "$(disk 0)" "$(disk 1)" | grep -E '^device|buckets:|metadata_replicas'
load_module
write $BK/register "$(disk 0) $(disk 1) discard=0,replay_discard_priority=0,allocator_stuck_timeout=3" || fail "register"
v=$(volume_dir)
u=${v##*/}
say "the volume is up and its sysfs directory exists: $v"
ls "$v" | tr '\n' ' '; echo

step "the hang: a btree split needs 2 buckets on 2 distinct devices at watermark btree"
bkalloc alloc $u --kind btree >/tmp/split 2>&1 &
pid=$!
wait_waiters $v 1
echo "waiters: $(cat $v/waiters)"
echo "(in bcachefs this sleeps forever; here a stuck report follows after allocator_stuck_timeout=3 s)"
wait_until 10 "the stuck report" grep -q needs $v/alloc_stuck
say "alloc_stuck"
cat $v/alloc_stuck

step "fix 2: restartable waiters: echo 1 > options/metadata_replicas"
t0=$(ms)
write $v/options/metadata_replicas 1
wait_until 10 "the request to finish" sh -c "! kill -0 $pid"
fix2=$(( $(ms) - t0 ))
echo "granted $(cat /tmp/split) ${fix2} ms after the write; $(grep restart_latency_ns_p50 $v/counters)"
granted=$(cat /tmp/split)
write $v/options/metadata_replicas 2

step "fix 4: the escape hatch: echo all > abort_waiting"
bkalloc alloc $u --kind btree >/tmp/split 2>&1 &
pid=$!
wait_waiters $v 1
t0=$(ms)
write $v/abort_waiting all
wait $pid
fix4=$(( $(ms) - t0 ))
echo "the request ended in ${fix4} ms: $(cat /tmp/split)"

step "fix 3: prioritised discards: discard=1, replay_discard_priority=1"
bkalloc alloc $u --kind btree >/tmp/split 2>&1 &
pid=$!
wait_waiters $v 1
t0=$(ms)
write $v/options/replay_discard_priority 1
write $v/options/discard 1
wait_until 60 "the request to finish" sh -c "! kill -0 $pid"
fix3=$(( $(ms) - t0 ))
echo "granted $(cat /tmp/split) ${fix3} ms after enabling discards"
granted="$granted $(cat /tmp/split)"
dmesg | grep 'starved dev' | head -n 3
wait_until 300 "all discards" sh -c "[ \$(sed -n 's/^need_discard //p' $v/dev-1/usage) = 0 ]"
grep -E '^(discard|starved)' $v/counters
for i in 0 1; do echo "dev-$i: $(tr '\n' ' ' <$v/dev-$i/usage)"; done
# The demo's buckets stood in for btree nodes; give them back.
bkalloc free $u $granted
write $v/unregister 1
bkalloc fsck "$(disk 0)" "$(disk 1)" | tail -n 1

say "summary"
printf '%-44s %s\n' "fix" "time to unstick"
printf '%-44s %s\n' "1 recovery option (register metadata_replicas=1)" "needs replay (journal work)"
printf '%-44s %s\n' "2 options write, waiter restarts" "${fix2} ms"
printf '%-44s %s\n' "3 prioritised discards" "${fix3} ms"
printf '%-44s %s\n' "4 abort_waiting" "${fix4} ms"
unload_module
EOF_GUEST
echo "disk images after the demo: $(du -sh "$(disk_image 0)" | cut -f1), $(du -sh "$(disk_image 1)" | cut -f1) allocated"
