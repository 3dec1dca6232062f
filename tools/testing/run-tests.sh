#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run bkalloc's VM tests on one test kernel:
#   tools/testing/run-tests.sh [--kernel min|debug] [--list] [PATTERN...]
# Each test_* function of tools/testing/tests/*.sh runs in its own work
# directory under $BKALLOC_CACHE/runs/<flavour>/, under a watchdog. A test
# fails if it returns non-zero, overruns its watchdog, or if a guest log of
# it holds a kernel splat once userspace has started. Prints one line per test and "N passed, N failed".
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
passed=0
failed=0
for t in "${selected[@]}"; do
	file=${t%%:*}
	fn=${t##*:}
	name=${fn#test_}
	WORK=$runs/$name
	rm -rf "$WORK"
	mkdir -p "$WORK"
	start=$SECONDS
	# The whole test (all its boots) is bounded too: 20 minutes at most.
	WORK=$WORK timeout --signal=KILL $((1200 * TIMEOUT_FACTOR)) bash -c '
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
	# Only from the start of userspace on (the init's first line): before
	# it, no test code and no bkalloc has run. An earlier splat is the test
	# kernel's own (seen: KASAN in early CPU setup under TCG); it is shown,
	# not counted.
	early=$(for f in "$WORK"/serial-*.log; do
		[ -f "$f" ] && sed '/^BKALLOC-GUEST: /q' "$f"
	done | grep -E -m1 "$splats")
	[ -z "$early" ] || echo "NOTE $name: splat during kernel boot, before userspace: $early"
	splat=$(for f in "$WORK"/serial-*.log; do
		[ -f "$f" ] && sed -n '/^BKALLOC-GUEST: /,$p' "$f"
	done | grep -E -m1 "$splats")
	[ -z "$splat" ] || reason="${reason:+$reason; }kernel splat: $splat"
	if [ -z "$reason" ]; then
		printf 'PASS %-40s %4ds  [%s]\n' "$name" "$took" "$flavour"
		passed=$((passed + 1))
	else
		printf 'FAIL %-40s %4ds  [%s] %s\n' "$name" "$took" "$flavour" "$reason"
		echo "---- $WORK/test.log (last 40 lines)"
		tail -n 40 "$WORK/test.log"
		last=$(ls -1v "$WORK"/serial-*.log 2>/dev/null | tail -n1)
		if [ -n "$last" ]; then
			echo "---- $last (last 60 lines)"
			tail -n 60 "$last"
		fi
		echo "----"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]
