# SPDX-License-Identifier: GPL-2.0
# The runner shared by the long campaigns (`make crashtest`, `make
# reliability`): per kernel, build it and the module, run the campaign's VM
# tests, and turn each test's verdict and logs into one row of a report.
# Sourced, after lib.sh.
#
#   campaign_begin NAME          report dir $BKALLOC_CACHE/runs/NAME
#   campaign_run FLAVOUR ROW PATTERN...
#                                run the tests; ROW is called as
#                                `ROW VERDICT NAME SECS FLAVOUR LOGTEXT` per test
#                                and prints its row (or nothing); it adds to
#                                campaign_passed/campaign_failed itself
#   campaign_end HEADER COLUMNS [TRAILER...]
#                                print and save the report: HEADER, the
#                                COLUMNS line, the rows, the time taken, each
#                                TRAILER line and "N passed, N failed"; exit
#                                status 0 only without failures

campaign_begin() {
	campaign_name=$1
	campaign_dir=$BKALLOC_CACHE/runs/$1
	campaign_rows=$campaign_dir/rows
	campaign_report=$campaign_dir/report.txt
	campaign_passed=0
	campaign_failed=0
	campaign_start=$SECONDS
	mkdir -p "$campaign_dir"
	: >"$campaign_rows"
	"$TESTING_DIR/buildenv.sh" >/dev/null || die "build environment"
}

# The text of a test's logs (serial consoles and host log), without CRs
# and NULs.
campaign_logs() {
	cat "$BKALLOC_CACHE/runs/$1/$2"/serial-*.log "$BKALLOC_CACHE/runs/$1/$2"/test.log 2>/dev/null | tr -d '\r\0'
}

campaign_run() {
	local flavour=$1 row=$2 out verdict name secs
	shift 2
	"$TESTING_DIR/kernel.sh" "$flavour" >/dev/null || die "kernel $flavour"
	"$TESTING_DIR/module.sh" --clippy "$flavour" >/dev/null || die "module against $flavour"
	out=$campaign_dir/vm-$flavour.out
	"$TESTING_DIR/run-tests.sh" --kernel "$flavour" "$@" | tee "$out"
	# "# PASS name  12s  [min]" lines: one row per test.
	while read -r verdict name secs; do
		"$row" "$verdict" "$name" "$secs" "$flavour" "$(campaign_logs "$flavour" "$name")" >>"$campaign_rows"
	done < <(sed -n 's/^# \(PASS\|FAIL\) \([^ ]*\) *\([0-9]*s\) .*/\1 \2 \3/p' "$out")
	if ! grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$out"; then
		echo "$campaign_name: the VM tests on $flavour did not complete" >&2
		campaign_failed=$((campaign_failed + 1))
	fi
}

campaign_end() {
	local header=$1 columns=$2 line
	shift 2
	{
		echo "$header"
		echo "$columns"
		cat "$campaign_rows"
		echo "took $((SECONDS - campaign_start)) s; report: $campaign_report"
		for line in "$@"; do echo "$line"; done
		echo "$campaign_passed passed, $campaign_failed failed"
	} | tee "$campaign_report"
	[ $campaign_failed = 0 ]
}
