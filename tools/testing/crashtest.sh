#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make crashtest`: durability at every crash point, in full (issue 13).
# The crash tests record every write of a workload (QEMU blklogwrites),
# then register the members as a power cut at each crash point would leave
# them and check every acknowledged change (tests/crash.sh). `make check`
# runs them small. CRASH_INSERTS (default 200) sizes the workloads,
# CRASH_SUBSETS (default 8) the reordered points per flush window,
# CRASH_REPLAY_KEYS (default 100: a 48-key replay) the journal a replay
# finds and CRASH_REPLAY_SUBSETS (default 100) the reordered points per
# window of that replay's workload (a replay is three flush windows), and
# CRASH_SEED (default 1) picks them. Ends with a table (test, kernel, crash
# points, reordered, torn, inside a checkpoint, inside a replay, failures,
# time), saved to
# $BKALLOC_CACHE/runs/crashtest/report.txt, and "N passed, N failed"
# counting crash points. KERNEL=debug runs them on the debug kernel.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_root
export CRASH_INSERTS=${CRASH_INSERTS:-200}
export CRASH_SUBSETS=${CRASH_SUBSETS:-8}
# The replay workload's windows are few: reorder them more.
export CRASH_REPLAY_KEYS=${CRASH_REPLAY_KEYS:-100}
export CRASH_REPLAY_SUBSETS=${CRASH_REPLAY_SUBSETS:-100}
export CRASH_SEED=${CRASH_SEED:-1}
export TEST_WATCHDOG=${TEST_WATCHDOG:-7200}
export CRASH_TIMEOUT=${CRASH_TIMEOUT:-7000}
flavours=${KERNEL:-min}
. "$TESTING_DIR/campaign.sh"

cols='%-48s %-6s %7s %9s %5s %13s %9s %8s %7s\n'
# A row from the checker's "CRASH POINTS: P passed, F failed" and summary
# lines; crash points count, not tests.
crash_row() {
	local verdict=$1 name=$2 secs=$3 flavour=$4 text=$5 p f
	set -- $(echo "$text" | sed -n 's/^CRASH POINTS: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -n1)
	p=${1:-0} f=${2:-0}
	[ "$verdict" = FAIL ] && [ "$f" = 0 ] && f=1
	summary() { echo "$text" | sed -n "s/^INFO: [0-9]* crash points: $1.*/\\1/p" | tail -n1; }
	campaign_passed=$((campaign_passed + p))
	campaign_failed=$((campaign_failed + f))
	printf "$cols" "$name" "$flavour" "$((p + f))" "$(summary '[0-9]* after a flush, \([0-9]*\) reordered')" \
		"$(summary '.*(\([0-9]*\) with a torn write)')" "$(summary '.*; \([0-9]*\) inside a checkpoint')" \
		"$(summary '.* \([0-9]*\) inside a replay')" "$f" "$secs"
}

campaign_begin crashtest
for flavour in $flavours; do
	campaign_run "$flavour" crash_row 'crash_*'
done
campaign_end "bkalloc crash test ($(date -u +%Y-%m-%dT%H:%MZ)): CRASH_INSERTS=$CRASH_INSERTS CRASH_SUBSETS=$CRASH_SUBSETS CRASH_REPLAY_SUBSETS=$CRASH_REPLAY_SUBSETS CRASH_SEED=$CRASH_SEED" \
	"$(printf "$cols" test kernel points reordered torn in_checkpoint in_replay failures time)"
