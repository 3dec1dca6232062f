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

. "$TESTING_DIR/campaign.sh"

cols='%-52s %-6s %8s %9s %7s\n'
mutations=0
# A row per test: a test that checks many cases says so in a "CASES: N"
# line (the image test: "N image mutations").
reliability_row() {
	local verdict=$1 name=$2 secs=$3 flavour=$4 text=$5 cases m fails
	cases=$(echo "$text" | sed -n 's/^\(INFO: \)\{0,1\}CASES: \([0-9]*\)$/\2/p' | tail -n1)
	m=$(echo "$text" | sed -n 's/^\([0-9]*\) image mutations$/\1/p' | tail -n1)
	[ -n "$m" ] && mutations=$((mutations + m)) && cases=$m
	fails=$(echo "$text" | grep -c '^FAIL:\|^  guest: FAIL:' || true)
	[ "$verdict" = PASS ] && fails=0 && campaign_passed=$((campaign_passed + 1))
	[ "$verdict" = FAIL ] && { [ "$fails" -gt 0 ] || fails=1; } && campaign_failed=$((campaign_failed + 1))
	printf "$cols" "$name" "$flavour" "${cases:-1}" "$fails" "$secs"
}

campaign_begin reliability
for flavour in $flavours; do
	campaign_run "$flavour" reliability_row "${tests[@]}"
done
campaign_end "bkalloc reliability campaign ($(date -u +%Y-%m-%dT%H:%MZ)): IMAGE_MUTATIONS=$IMAGE_MUTATIONS FUZZ_ROUNDS=$FUZZ_ROUNDS LOAD_SECONDS=$LOAD_SECONDS" \
	"$(printf "$cols" test kernel cases failures time)" "$mutations image mutations"
