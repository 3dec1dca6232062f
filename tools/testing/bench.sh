#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench` (issue 15): bkalloc's speed against the physical limit,
# measured in the test VM with each baseline run in the same boot (TCG
# timings are not absolute; ratios are). Runs the bench_* VM tests with
# BENCH_INSERTS (default 2000), BENCH_TRIALS (default 1000), BENCH_DISCARDS
# (default 20000), BENCH_KEYS (default 1000000), BENCH_REPLAY_KEYS
# (default 20000), BENCH_FASTPATH (default 1000000) and BENCH_REPLAYS
# (default 11: the #1108 replay's repeats, a replay is tens of ms),
# BENCH_DISCARD_ROUNDS (default 3: discard rounds, the median ratio) on KERNEL (default
# min), and writes into
# $BKALLOC_CACHE/runs/bench/results: results.txt (the table), results.json
# (one object per benchmark: name, value, unit, baseline, ratio, target,
# met), runs.json (every run's figures), latency-cdf.svg and
# throughput.svg. The last line is "results: DIR". Exit status 0 when the
# benchmarks ran, whether or not their targets are met (the table says).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_root
export BENCH_INSERTS=${BENCH_INSERTS:-2000}
export BENCH_TRIALS=${BENCH_TRIALS:-1000}
export BENCH_DISCARDS=${BENCH_DISCARDS:-20000}
export BENCH_KEYS=${BENCH_KEYS:-1000000}
export BENCH_FASTPATH=${BENCH_FASTPATH:-1000000}
export BENCH_REPLAY_KEYS=${BENCH_REPLAY_KEYS:-20000}
export BENCH_REPLAYS=${BENCH_REPLAYS:-11}
export BENCH_DISCARD_ROUNDS=${BENCH_DISCARD_ROUNDS:-3}
flavour=${KERNEL:-min}
export BENCH_RESULTS=$BKALLOC_CACHE/runs/bench/results
rm -rf "$BENCH_RESULTS"
mkdir -p "$BENCH_RESULTS"
"$TESTING_DIR/buildenv.sh" >/dev/null || die "build environment"
"$TESTING_DIR/kernel.sh" "$flavour" >/dev/null || die "kernel $flavour"
"$TESTING_DIR/module.sh" --clippy "$flavour" >/dev/null || die "module against $flavour"
out=$BKALLOC_CACHE/runs/bench/vm-$flavour.out
"$TESTING_DIR/run-tests.sh" --kernel "$flavour" 'bench_*' | tee "$out"
grep -qE '^[0-9]+ passed, 0 failed$' "$out" || die "the benchmarks did not run to the end (see $out)"
echo
echo "bkalloc bench ($(date -u +%Y-%m-%dT%H:%MZ)): BENCH_INSERTS=$BENCH_INSERTS BENCH_TRIALS=$BENCH_TRIALS BENCH_DISCARDS=$BENCH_DISCARDS BENCH_KEYS=$BENCH_KEYS BENCH_REPLAY_KEYS=$BENCH_REPLAY_KEYS BENCH_FASTPATH=$BENCH_FASTPATH BENCH_REPLAYS=$BENCH_REPLAYS BENCH_DISCARD_ROUNDS=$BENCH_DISCARD_ROUNDS KERNEL=$flavour"
cat "$BENCH_RESULTS/results.txt"
echo "results: $BENCH_RESULTS"
