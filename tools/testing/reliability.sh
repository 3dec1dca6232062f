#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make reliability`: the campaign of issue 12 in full, on both kernels:
# device faults (QEMU blkdebug), torn writes, corrupted images registered by
# the module (IMAGE_MUTATIONS, default 1200), hostile sysfs and ioctl input
# (FUZZ_ROUNDS, default 2000), free racing checkpoints, and load with races
# (LOAD_SECONDS, default 120). `make check` runs the same tests with small
# figures. Ends with a table (test, kernel, cases, failures, time), saved
# to $BKALLOC_CACHE/runs/reliability/report.txt, a line "N image mutations"
# and "N passed, N failed". KERNEL=min limits the kernels.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_root
export IMAGE_MUTATIONS=${IMAGE_MUTATIONS:-1200}
export FUZZ_ROUNDS=${FUZZ_ROUNDS:-2000}
export LOAD_SECONDS=${LOAD_SECONDS:-120}
# A campaign test runs longer than make check's 20-minute watchdog allows.
export TEST_WATCHDOG=${TEST_WATCHDOG:-5400}
flavours=${KERNEL:-min debug}
# The campaign's tests (see each file for what it proves).
tests=(
	'torn_*' 'option_write_failing*' 'failing_discards*' '*_makes_the_volume_read_only'
	'hostile_*' 'corrupt_images*' 'free_racing*' 'failed_register_drains*' 'load_and_races'
)

report_dir=$BKALLOC_CACHE/runs/reliability
mkdir -p "$report_dir"
report=$report_dir/report.txt
rows=$report_dir/rows
: >"$rows"
start_all=$SECONDS
"$TESTING_DIR/buildenv.sh" >/dev/null || die "build environment"
passed=0
failed=0
mutations=0
for flavour in $flavours; do
	"$TESTING_DIR/kernel.sh" "$flavour" >/dev/null || die "kernel $flavour"
	"$TESTING_DIR/module.sh" --clippy "$flavour" >/dev/null || die "module against $flavour"
	out=$report_dir/vm-$flavour.out
	"$TESTING_DIR/run-tests.sh" --kernel "$flavour" "${tests[@]}" | tee "$out"
	runs=$BKALLOC_CACHE/runs/$flavour
	# "# PASS name  12s  [min]" lines: one row per test.
	while read -r verdict name secs _; do
		logs=$(ls "$runs/$name"/serial-*.log "$runs/$name"/test.log 2>/dev/null)
		# A test that checks many cases says so in a "CASES: N" line
		# (the image test: "N image mutations").
		cases=$(cat $logs 2>/dev/null | tr -d '\r' | sed -n 's/^\(INFO: \)\{0,1\}CASES: \([0-9]*\)$/\2/p' | tail -n1)
		m=$(cat $logs 2>/dev/null | tr -d '\r' | sed -n 's/^\([0-9]*\) image mutations$/\1/p' | tail -n1)
		[ -n "$m" ] && mutations=$((mutations + m)) && cases=$m
		fails=$(cat $logs 2>/dev/null | tr -d '\r' | grep -c '^FAIL:\|^  guest: FAIL:' || true)
		[ "$verdict" = PASS ] && fails=0 && passed=$((passed + 1))
		[ "$verdict" = FAIL ] && { [ "$fails" -gt 0 ] || fails=1; } && failed=$((failed + 1))
		printf '%-52s %-6s %8s %9s %7s\n' "$name" "$flavour" "${cases:-1}" "$fails" "$secs" >>"$rows"
	done < <(sed -n 's/^# \(PASS\|FAIL\) \([^ ]*\) *\([0-9]*s\) .*/\1 \2 \3/p' "$out")
	if ! grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out"; then
		echo "reliability: the VM tests on $flavour did not complete" >&2
		failed=$((failed + 1))
	fi
done
{
	echo "bkalloc reliability campaign ($(date -u +%Y-%m-%dT%H:%MZ)): IMAGE_MUTATIONS=$IMAGE_MUTATIONS FUZZ_ROUNDS=$FUZZ_ROUNDS LOAD_SECONDS=$LOAD_SECONDS"
	printf '%-52s %-6s %8s %9s %7s\n' test kernel cases failures time
	cat "$rows"
	echo "took $((SECONDS - start_all)) s; report: $report"
	echo "$mutations image mutations"
	echo "$passed passed, $failed failed"
} | tee "$report"
[ $failed = 0 ]
