#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run bkalloc's VM tests on one test kernel:
#   tools/testing/run-tests.sh [--kernel min|debug] [--list] [PATTERN...]
# Each test_* function of tools/testing/tests/*.sh runs in its own work
# directory under $BKALLOC_CACHE/runs/<flavour>/, under a watchdog. A test
# fails if it returns non-zero, overruns its watchdog, or if a guest log of
# it holds a kernel splat once userspace has started. Prints KTAP (one result
# line per test) and "N passed, N failed", and writes results.ktap and
# results.xml (JUnit) in $BKALLOC_CACHE/runs/<flavour>/.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

flavour=min
list=0
patterns=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) flavour=$2; shift 2 ;;
	--list) list=1; shift ;;
	-*) die "unknown option $1" ;;
	*) patterns+=("$1"); shift ;;
	esac
done

# Every test function, as "file:function".
all_tests() {
	local f fn
	for f in "$TESTING_DIR"/tests/*.sh; do
		for fn in $(bash -c '. "$1"; declare -F' sh "$f" | awk '$3 ~ /^test_/ {print $3}'); do
			echo "$f:$fn"
		done
	done
}

selected=()
while read -r t; do
	name=${t##*:test_}
	if [ ${#patterns[@]} = 0 ]; then
		selected+=("$t")
	else
		for p in "${patterns[@]}"; do
			# shellcheck disable=SC2053
			[[ $name == $p ]] && { selected+=("$t"); break; }
		done
	fi
done < <(all_tests)
if [ $list = 1 ]; then
	for t in "${selected[@]}"; do echo "${t##*:test_}"; done
	exit 0
fi
[ ${#selected[@]} -gt 0 ] || die "no test matches ${patterns[*]}"

need_root
. "$TESTING_DIR/vm.sh"
vm_prepare "$flavour" || exit 1

# A kernel splat anywhere in a test's guest logs fails that test.
splats='BUG:|WARNING:|Oops|KASAN|possible circular locking|inconsistent lock state|blocked for more than|rust_panic|panicked at|Kernel panic|general protection fault|UBSAN|refcount_t:|list_add corruption|list_del corruption'

runs=$BKALLOC_CACHE/runs/$flavour
mkdir -p "$runs"
ktap=$runs/results.ktap
junit=$runs/results.xml
cases=$runs/.junit-cases
: >"$cases"

# Output is KTAP (the kernel's own test format, which `kunit.py parse` and CI
# systems read): a plan, one result line per test, everything else a "# "
# diagnostic. It is also written to results.ktap, and as JUnit XML to
# results.xml, in $runs.
out() {
	echo "$*" | tee -a "$ktap"
}
# diag: stdin as KTAP diagnostic lines.
diag() {
	sed 's/^/# /' | tee -a "$ktap"
}
xml_escape() {
	sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g' | tr -d '\000-\010\013\014\016-\037'
}

: >"$ktap"
out "KTAP version 1"
out "# bkalloc VM tests on the $flavour kernel: ${#selected[@]} test(s); logs in $runs"
out "1..${#selected[@]}"
toolchain_summary 2>&1 | diag
passed=0
failed=0
n=0
suite_start=$SECONDS
for t in "${selected[@]}"; do
	file=${t%%:*}
	fn=${t##*:}
	name=${fn#test_}
	n=$((n + 1))
	WORK=$runs/$name
	rm -rf "$WORK"
	mkdir -p "$WORK"
	start=$SECONDS
	# The whole test (all its boots) is bounded too: 20 minutes at most
	# (TEST_WATCHDOG seconds: `make reliability` runs longer campaigns).
	WORK=$WORK timeout --signal=KILL $((${TEST_WATCHDOG:-1200} * TIMEOUT_FACTOR)) bash -c '
		set -uo pipefail
		. "$1/lib.sh"
		. "$1/vm.sh"
		. "$2"
		set -e
		"$3"
	' sh "$TESTING_DIR" "$file" "$fn" >"$WORK/test.log" 2>&1
	rc=$?
	took=$((SECONDS - start))
	reason=
	if [ $rc = 137 ]; then
		reason="test watchdog expired"
	elif [ $rc != 0 ]; then
		reason=$(grep -E '^  guest: FAIL:|^FAIL:|^vm: boot .*(hung|crash)' "$WORK/test.log" | tail -n1 | sed 's/^ *//')
		[ -n "$reason" ] || reason="exit status $rc"
	fi
	# The console of every boot and the kernel log each boot saved at its
	# exit (the console can miss its last lines). Only from the start of
	# userspace on (the init's first line, in both): before
	# it, no test code and no bkalloc has run. An earlier splat is the test
	# kernel's own (seen: KASAN in early CPU setup under TCG); it is shown,
	# not counted.
	early=$(for f in "$WORK"/serial-*.log "$WORK"/kmsg-*.log; do
		[ -f "$f" ] && sed '/^BKALLOC-GUEST: /q' "$f"
	done | grep -E -m1 "$splats")
	[ -z "$early" ] || echo "NOTE $name: splat during kernel boot, before userspace: $early" | diag
	splat=$(for f in "$WORK"/serial-*.log "$WORK"/kmsg-*.log; do
		[ -f "$f" ] && sed -n '/^BKALLOC-GUEST: /,$p' "$f"
	done | grep -E -m1 "$splats")
	[ -z "$splat" ] || reason="${reason:+$reason; }kernel splat: $splat"
	# One line per test, and no "#" inside a KTAP reason.
	reason=${reason//$'\n'/ }
	reason=${reason//#/:}
	if [ -z "$reason" ]; then
		echo "PASS $(printf '%-40s %4ds' "$name" "$took")  [$flavour]" | diag
		out "ok $n $name"
		passed=$((passed + 1))
		echo "<testcase classname=\"bkalloc.vm.$flavour\" name=\"$name\" time=\"$took\"/>" >>"$cases"
	else
		{
			echo "FAIL $(printf '%-40s %4ds' "$name" "$took")  [$flavour] $reason"
			echo "---- $WORK/test.log (last 40 lines)"
			tail -n 40 "$WORK/test.log"
			last=$(ls -1v "$WORK"/serial-*.log 2>/dev/null | tail -n1)
			if [ -n "$last" ]; then
				echo "---- $last (last 60 lines)"
				tail -n 60 "$last"
			fi
			echo "----"
		} | diag
		out "not ok $n $name # $reason"
		failed=$((failed + 1))
		{
			echo "<testcase classname=\"bkalloc.vm.$flavour\" name=\"$name\" time=\"$took\">"
			echo "<failure message=\"$(echo "$reason" | xml_escape)\"><![CDATA[$(tail -n 40 "$WORK/test.log" | sed 's/]]>/]] >/g')]]></failure>"
			echo "</testcase>"
		} >>"$cases"
	fi
done
{
	echo '<?xml version="1.0" encoding="UTF-8"?>'
	echo "<testsuites>"
	echo "<testsuite name=\"bkalloc.vm.$flavour\" tests=\"$n\" failures=\"$failed\" time=\"$((SECONDS - suite_start))\">"
	cat "$cases"
	echo "</testsuite>"
	echo "</testsuites>"
} >"$junit"
rm -f "$cases"
echo "results: $ktap, $junit" | diag
echo "$passed passed, $failed failed"
[ $failed = 0 ]
