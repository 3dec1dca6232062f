#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: every test bkalloc has, setting up whatever it needs.
#   1. host: cargo test, rustfmt and clippy for the core and the tool;
#   2. the module: rustfmt (kernel style), built with CLIPPY=1 against both
#      test kernels, no warnings allowed;
#   3. VM tests on the min kernel, then on the debug kernel.
# Ends with "N passed, N failed" over all steps and VM tests; exits non-zero
# if anything failed. BKALLOC_FLAVOURS="min" limits the kernels.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

need_root
passed=0
failed=0

# step NAME CMD...: run CMD, print one result line, keep its output on failure.
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

crates="rust/core tools/bkalloc"
for c in $crates; do
	m=$TOP_DIR/$c/Cargo.toml
	step "host: cargo test $c" cargo test --quiet --locked --manifest-path "$m"
	step "host: cargo fmt $c" cargo fmt --check --manifest-path "$m"
	step "host: cargo clippy $c" cargo clippy --quiet --locked --all-targets --manifest-path "$m" -- -D warnings
done

step "build environment" "$TESTING_DIR/buildenv.sh"
step "module: rustfmt (kernel .rustfmt.toml)" in_chroot \
	rustfmt --check --edition 2021 --config-path /build/linux/.rustfmt.toml /src/rust/bkalloc.rs

for flavour in ${BKALLOC_FLAVOURS:-min debug}; do
	step "kernel: $flavour" "$TESTING_DIR/kernel.sh" "$flavour"
	step "module: CLIPPY=1 against $flavour" "$TESTING_DIR/module.sh" --clippy "$flavour"
	echo "VM tests on the $flavour kernel:"
	out=$BKALLOC_CACHE/vm-tests-$flavour.out
	"$TESTING_DIR/run-tests.sh" --kernel "$flavour" | tee "$out"
	p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$out")
	f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$out")
	if [ -z "$p" ]; then
		echo "FAIL VM tests on $flavour did not complete"
		failed=$((failed + 1))
	else
		passed=$((passed + p))
		failed=$((failed + f))
	fi
done

echo "$passed passed, $failed failed"
[ $failed = 0 ]
