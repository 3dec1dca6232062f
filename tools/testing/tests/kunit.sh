# SPDX-License-Identifier: GPL-2.0
# The module's KUnit suites (the wait list alone) run when it loads; every
# case must pass. The results are read from KUnit's debugfs file, the suite's
# own KTAP, not grepped from the kernel log.

test_kunit_waitlist() {
	disks 1 64M
	vm_guest <<'EOF_GUEST'
load_module
r=/sys/kernel/debug/kunit/bkalloc_waitlist/results
[ -f $r ] || fail "no $r: the bkalloc_waitlist suite did not run (KUnit debugfs: $(ls /sys/kernel/debug/kunit 2>&1 | tr '\n' ' '))"
cat $r
for case in fifo_order_on_a_shared_device no_overtaking_while_an_earlier_waiter_blocks \
	device_wake_is_targeted removal_wakes_nobody timeout_and_wake_all \
	an_unseen_abort_is_not_overwritten wake_racing_park; do
	grep -qE "^ *ok [0-9]+ $case\$" $r || fail "KUnit case $case did not pass: $(grep -E "$case" $r | tail -n 3)"
done
! grep -qE '^ *not ok ' $r || fail "a KUnit case failed: $(grep -E 'not ok' $r | head -n 3)"
expect_eq "$(grep -cE '^ *ok [0-9]+ ' $r)" 8 "ok lines in $r (7 cases and the suite)"
grep -qE '^ok [0-9]+ bkalloc_waitlist$' $r || fail "the bkalloc_waitlist suite did not pass: $(tail -n 2 $r)"
unload_module
EOF_GUEST
}
