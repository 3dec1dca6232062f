# SPDX-License-Identifier: GPL-2.0
# The module's KUnit suites run when it loads; every case must pass. The
# results are read from KUnit's debugfs files, each suite's own KTAP, not
# grepped from the kernel log.

test_kunit_suites() {
	disks 1 64M
	vm_guest <<'EOF_GUEST'
load_module
# kunit_suite SUITE CASE...: every CASE of SUITE passed, and nothing else ran.
kunit_suite() {
	suite=$1
	shift
	r=/sys/kernel/debug/kunit/$suite/results
	[ -f $r ] || fail "no $r: the $suite suite did not run (KUnit debugfs: $(ls /sys/kernel/debug/kunit 2>&1 | tr '\n' ' '))"
	cat $r
	for case in "$@"; do
		grep -qE "^ *ok [0-9]+ $case\$" $r || fail "KUnit case $case did not pass: $(grep -E "$case" $r | tail -n 3)"
	done
	! grep -qE '^ *not ok ' $r || fail "a KUnit case failed: $(grep -E 'not ok' $r | head -n 3)"
	expect_eq "$(grep -cE '^ *ok [0-9]+ ' $r)" $(($# + 1)) "ok lines in $r ($# cases and the suite)"
	grep -qE "^ok [0-9]+ $suite\$" $r || fail "the $suite suite did not pass: $(tail -n 2 $r)"
}
kunit_suite bkalloc_waitlist fifo_order_on_a_shared_device \
	no_overtaking_while_an_earlier_waiter_blocks device_wake_is_targeted \
	removal_wakes_nobody timeout_and_wake_all an_unseen_abort_is_not_overwritten \
	wake_racing_park kick_before_idle_is_kept
kunit_suite bkalloc_btree the_root_stops_at_the_deepest_encodable_level \
	clean_leaves_past_the_bound_are_evicted \
	the_format_limit_is_the_default short_nodes_are_marked_with_their_paths
unload_module
EOF_GUEST
}
