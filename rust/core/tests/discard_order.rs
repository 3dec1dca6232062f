// SPDX-License-Identifier: GPL-2.0
//! Discard ordering: the starved device first during replay priority.

use bkcore::discard_order::{deficit, pick, Pick, BULK, STARVED_MAX};
use bkcore::member_state::MemberState;
use bkcore::placement::DevSnapshot;
use bkcore::watermark::Watermark;

fn dev(index: u32, nbuckets: u64, free: u64, need_discard: u64) -> DevSnapshot {
    DevSnapshot {
        index,
        nbuckets,
        free,
        open: 0,
        need_discard,
        btree_reserve: 2,
        online: true,
        state: MemberState::Rw,
    }
}

/// bcachefs #1108's devices.
fn issue_1108() -> [DevSnapshot; 2] {
    [dev(0, 9469, 1, 9416), dev(1, 46938, 5109, 41681)]
}

#[test]
fn starved_device_first_with_priority() {
    let devs = issue_1108();
    assert_eq!(deficit(&devs[0], Watermark::Btree), 2);
    assert_eq!(deficit(&devs[1], Watermark::Btree), 0);
    let p = pick(&devs, 0b11, Some(Watermark::Btree), true, false).unwrap();
    assert_eq!(
        p,
        Pick {
            dev: 0,
            max_buckets: 10,
            starved: true
        }
    );
}

#[test]
fn most_need_discard_first_without_priority_or_waiters() {
    let devs = issue_1108();
    let bulk = Pick {
        dev: 1,
        max_buckets: BULK,
        starved: false,
    };
    assert_eq!(
        pick(&devs, 0b11, Some(Watermark::Btree), false, false),
        Some(bulk)
    );
    assert_eq!(pick(&devs, 0, None, true, false), Some(bulk));
}

#[test]
fn during_replay_only_starved_devices() {
    let devs = issue_1108();
    // The replay's split waits on dev0: served as before.
    assert_eq!(
        pick(&devs, 0b11, Some(Watermark::Btree), true, true).map(|p| p.dev),
        Some(0)
    );
    // Nobody waits, or nobody starves: no bulk batch while replay runs.
    assert_eq!(pick(&devs, 0, None, true, true), None);
    assert_eq!(pick(&devs, 0b10, Some(Watermark::Btree), true, true), None);
}

#[test]
fn only_devices_waiters_could_use_count_as_starved() {
    let devs = issue_1108();
    // Waiters only use dev1, which is not starved: bulk order.
    assert_eq!(
        pick(&devs, 0b10, Some(Watermark::Btree), true, false).map(|p| p.starved),
        Some(false)
    );
}

#[test]
fn batches_are_bounded_and_nothing_to_do_is_none() {
    let devs = [dev(0, 100_000, 0, 50_000)];
    let p = pick(&devs, 1, Some(Watermark::Normal), true, false).unwrap();
    assert!(p.starved && p.max_buckets == STARVED_MAX);
    assert_eq!(
        pick(
            &[dev(0, 100, 50, 0)],
            1,
            Some(Watermark::Btree),
            true,
            false
        ),
        None
    );
    let mut off = dev(0, 100, 0, 10);
    off.online = false;
    assert_eq!(pick(&[off], 1, Some(Watermark::Btree), true, false), None);
}

#[test]
fn failing_devices_back_off_and_log_rarely() {
    use bkcore::discard_order::{backoff_ms, log_failure, BACKOFF_MAX_MS};
    let pauses: Vec<u64> = (0..10).map(backoff_ms).collect();
    assert_eq!(
        pauses,
        [0, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 64000, 64000]
    );
    assert_eq!(backoff_ms(u32::MAX), BACKOFF_MAX_MS);
    let logged = (1..=1000).filter(|&f| log_failure(f)).count();
    assert_eq!(logged, 10); // 1, 2, 4, ..., 512
    assert!(!log_failure(0));
}
