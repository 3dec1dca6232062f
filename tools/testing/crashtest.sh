#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make crashtest`: durability at every crash point, in full (issue 13).
# The crash tests record every write of a workload (QEMU blklogwrites),
# then register the members as a power cut at each crash point would leave
# them and check every acknowledged change (tests/crash.sh). `make check`
# runs them small. CRASH_INSERTS (default 400) sizes the workload,
# CRASH_SUBSETS (default 8) the reordered points per flush window
# (CRASH_REPLAY_SUBSETS, default 40, in the replay workload's),
# CRASH_SEED (default 1) picks them. Ends with a table (test, kernel, crash
# points, reordered, torn, inside a checkpoint, inside a replay, failures,
# time), saved to
# $BKALLOC_CACHE/runs/crashtest/report.txt, and "N passed, N failed"
# counting crash points. KERNEL=debug runs them on the debug kernel.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_root
export CRASH_INSERTS=${CRASH_INSERTS:-400}
export CRASH_SUBSETS=${CRASH_SUBSETS:-8}
# The replay workload's windows are few: reorder them more.
export CRASH_REPLAY_SUBSETS=${CRASH_REPLAY_SUBSETS:-40}
export CRASH_SEED=${CRASH_SEED:-1}
export TEST_WATCHDOG=${TEST_WATCHDOG:-7200}
export CRASH_TIMEOUT=${CRASH_TIMEOUT:-7000}
flavours=${KERNEL:-min}

report_dir=$BKALLOC_CACHE/runs/crashtest
mkdir -p "$report_dir"
report=$report_dir/report.txt
rows=$report_dir/rows
: >"$rows"
start_all=$SECONDS
"$TESTING_DIR/buildenv.sh" >/dev/null || die "build environment"
passed=0
failed=0
for flavour in $flavours; do
	"$TESTING_DIR/kernel.sh" "$flavour" >/dev/null || die "kernel $flavour"
	"$TESTING_DIR/module.sh" --clippy "$flavour" >/dev/null || die "module against $flavour"
	out=$report_dir/vm-$flavour.out
	"$TESTING_DIR/run-tests.sh" --kernel "$flavour" 'crash_*' | tee "$out"
	runs=$BKALLOC_CACHE/runs/$flavour
	while read -r verdict name secs _; do
		logs=$(ls "$runs/$name"/serial-*.log 2>/dev/null)
		text=$(cat $logs 2>/dev/null | tr -d '\r')
		# "CRASH POINTS: P passed, F failed" and the checker's summary line.
		set -- $(echo "$text" | sed -n 's/^CRASH POINTS: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' | tail -n1)
		p=${1:-0} f=${2:-0}
		[ "$verdict" = FAIL ] && [ "$f" = 0 ] && f=1
		reordered=$(echo "$text" | sed -n 's/^INFO: [0-9]* crash points: [0-9]* after a flush, \([0-9]*\) reordered.*/\1/p' | tail -n1)
		torn=$(echo "$text" | sed -n 's/^INFO: [0-9]* crash points: .*(\([0-9]*\) with a torn write).*/\1/p' | tail -n1)
		incp=$(echo "$text" | sed -n 's/^INFO: [0-9]* crash points: .*; \([0-9]*\) inside a checkpoint.*/\1/p' | tail -n1)
		inrp=$(echo "$text" | sed -n 's/^INFO: [0-9]* crash points: .* \([0-9]*\) inside a replay.*/\1/p' | tail -n1)
		passed=$((passed + p))
		failed=$((failed + f))
		printf '%-48s %-6s %7s %9s %5s %13s %9s %8s %7s\n' "$name" "$flavour" "$((p + f))" "${reordered:-0}" "${torn:-0}" "${incp:-0}" "${inrp:-0}" "$f" "$secs" >>"$rows"
	done < <(sed -n 's/^# \(PASS\|FAIL\) \([^ ]*\) *\([0-9]*s\) .*/\1 \2 \3/p' "$out")
	if ! grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out"; then
		echo "crashtest: the VM tests on $flavour did not complete" >&2
		failed=$((failed + 1))
	fi
done
{
	echo "bkalloc crash test ($(date -u +%Y-%m-%dT%H:%MZ)): CRASH_INSERTS=$CRASH_INSERTS CRASH_SUBSETS=$CRASH_SUBSETS CRASH_SEED=$CRASH_SEED"
	printf '%-48s %-6s %7s %9s %5s %13s %9s %8s %7s\n' test kernel points reordered torn in_checkpoint in_replay failures time
	cat "$rows"
	echo "took $((SECONDS - start_all)) s; report: $report"
	echo "$passed passed, $failed failed"
} | tee "$report"
[ $failed = 0 ]
