#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: every test bkalloc has, setting up whatever it needs.
#   1. host: cargo test, rustfmt and clippy for the core and the tool, and
#      the module's layers (tools/testing/layers.py: no import cycle);
#   2. the module: rustfmt (kernel style), built with CLIPPY=1 against both
#      test kernels, no warnings allowed;
#   3. VM tests on the min kernel, then on the debug kernel.
# Ends with "N passed, N failed" over all steps and VM tests; exits non-zero
# if anything failed. KERNEL=min (or BKALLOC_FLAVOURS) limits the kernels;
# T="PATTERN..." runs only the VM tests whose names match (no host steps).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_root
host_cargo_check
total_start=$SECONDS
passed=0
failed=0
# Patterns of VM tests to run (make check T="journal_* issue1108_*"): then
# only those run, with what they need built; no host steps.
patterns=${T:-}
flavours=${KERNEL:-${BKALLOC_FLAVOURS:-min debug}}

# step NAME CMD...: run CMD, print one result line with its time, keep its
# output on failure.
step() {
	local name=$1 out start rc
	shift
	start=$SECONDS
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc = 0 ]; then
		printf 'PASS %-40s %4ds\n' "$name" $((SECONDS - start))
		passed=$((passed + 1))
	else
		printf 'FAIL %-40s %4ds\n' "$name" $((SECONDS - start))
		echo "$out" | tail -n 60
		failed=$((failed + 1))
	fi
}

# ktap_parses FLAVOUR PASSED FAILED: the run's results.ktap, read by the
# kernel's own KTAP parser (kunit.py parse, which exits 1 for failed tests as
# for parse errors, so its JSON is what counts), has those counts.
ktap_parses() {
	local r=runs/$1
	in_chroot /bin/sh -c 'cd /build/linux &&
		python3 tools/testing/kunit/kunit.py parse --json="$1/results.json" "$1/results.ktap" >/dev/null' \
		sh "/cache/$r" || true
	python3 - "$BKALLOC_CACHE/$r/results.json" "$2" "$3" <<'EOF_PY'
import json, sys
m = json.load(open(sys.argv[1]))["misc"]
want = {"passed": int(sys.argv[2]), "failed": int(sys.argv[3]), "errors": 0, "crashed": 0}
got = {k: m[k] for k in want}
print(f"kunit.py parse: {got}")
sys.exit(0 if got == want else 1)
EOF_PY
}

if [ -z "$patterns" ]; then
	step "host: resolver tests (toolchain policy)" \
		python3 -m unittest discover -s "$TOOLCHAIN_DIR" -p 'test_*.py'
	step "host: module layers (no import cycle, Documentation/design.rst)" sh -c \
		"python3 -m unittest discover -s '$TESTING_DIR' -p 'test_layers.py' && python3 '$TESTING_DIR/layers.py' '$TOP_DIR'"
	step "host: bench report (tools/testing/bench_report.py)" \
		python3 -m unittest discover -s "$TESTING_DIR" -p 'test_bench_report.py'
	for c in rust/core tools/bkalloc; do
		m=$TOP_DIR/$c/Cargo.toml
		step "host: cargo test $c" cargo test --quiet --locked --manifest-path "$m"
		step "host: cargo fmt $c" cargo fmt --check --manifest-path "$m"
		step "host: cargo clippy $c" cargo clippy --quiet --locked --all-targets --manifest-path "$m" -- -D warnings
	done
fi

step "build environment" "$TESTING_DIR/buildenv.sh"
toolchain_summary
[ -n "$patterns" ] || step "module: rustfmt (kernel .rustfmt.toml)" in_chroot \
	rustfmt --check --edition 2021 --config-path /build/linux/.rustfmt.toml /src/rust/bkalloc.rs

for flavour in $flavours; do
	step "kernel: $flavour" "$TESTING_DIR/kernel.sh" "$flavour"
	step "module: CLIPPY=1 against $flavour" "$TESTING_DIR/module.sh" --clippy "$flavour"
	echo "VM tests on the $flavour kernel:"
	out=$BKALLOC_CACHE/vm-tests-$flavour.out
	start=$SECONDS
	# shellcheck disable=SC2086
	"$TESTING_DIR/run-tests.sh" --kernel "$flavour" $patterns | tee "$out"
	p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$out")
	f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$out")
	if [ -z "$p" ]; then
		echo "FAIL VM tests on $flavour did not complete"
		failed=$((failed + 1))
	else
		printf '%s %-40s %4ds\n' "$([ "$f" = 0 ] && echo PASS || echo FAIL)" \
			"VM tests on $flavour: $p passed, $f failed" $((SECONDS - start))
		passed=$((passed + p))
		failed=$((failed + f))
		step "VM tests on $flavour: KTAP read by kunit.py parse" ktap_parses "$flavour" "$p" "$f"
	fi
	[ -n "$patterns" ] || [ "$flavour" != min ] ||
		step "make shell: a scripted console session (min)" "$TESTING_DIR/shell-session.sh" min
done

echo "make check took $((SECONDS - total_start)) s (budget: 60 minutes cold, CI's limit 90)"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
