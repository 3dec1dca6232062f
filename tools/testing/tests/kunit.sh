# SPDX-License-Identifier: GPL-2.0
# The module's KUnit suites (the wait list alone) run when it loads; every
# case must pass.

test_kunit_waitlist() {
	disks 1 64M
	vm_guest <<'EOF_GUEST'
load_module
out=$(dmesg | grep -E '^\[ *[0-9.]+\] +(# Subtest: bkalloc|(not )?ok [0-9]+ )')
echo "$out" | grep -q 'Subtest: bkalloc_waitlist' || fail "the bkalloc_waitlist suite did not run: $(dmesg | tail -n 5)"
for case in fifo_order_on_a_shared_device no_overtaking_while_an_earlier_waiter_blocks \
	device_wake_is_targeted removal_wakes_nobody timeout_and_wake_all wake_racing_park; do
	dmesg | grep -qE "^\[ *[0-9.]+\] +ok [0-9]+ $case\$" || fail "KUnit case $case did not pass: $(dmesg | grep -E "$case" | tail -n 3)"
done
dmesg | grep -qE '^\[ *[0-9.]+\] +not ok [0-9]+ ' && fail "a KUnit case failed: $(dmesg | grep -E 'not ok' | head -n 3)"
dmesg | grep -qE '^\[ *[0-9.]+\] ok [0-9]+ bkalloc_waitlist$' || fail "the bkalloc_waitlist suite did not pass"
unload_module
EOF_GUEST
}
