// SPDX-License-Identifier: GPL-2.0

//! The allocator's pure policy: reserves per watermark, device choice (ok / blocked /
//! infeasible, degrade), and requests built from the options. #1108's numbers are the
//! main example.

use bkcore::member_state::MemberState;
use bkcore::options::{OptId, OptType, Options, WaitPolicy, OPTIONS};
use bkcore::placement::{
    choose, could_serve_mask, degrade, statuses, tally, DevSnapshot, Kind, Reason, Request,
    Verdict, MAX_REPLICAS,
};
use bkcore::request::{build, build_with, Overrides, RequestError};
use bkcore::watermark::{reserve, reserves, usable, Watermark};
use proptest::prelude::*;

mod common;

/// #1108's device vde: 1 free, 9416 need_discard, btree reserve 2.
fn dev0() -> DevSnapshot {
    DevSnapshot {
        index: 0,
        nbuckets: 9469,
        free: 1,
        open: 0,
        need_discard: 9416,
        btree_reserve: 2,
        online: true,
        state: MemberState::Rw,
    }
}

/// #1108's device vdf: 5109 free, 41681 need_discard.
fn dev1() -> DevSnapshot {
    DevSnapshot {
        index: 1,
        nbuckets: 46938,
        free: 5109,
        open: 0,
        need_discard: 41681,
        btree_reserve: 2,
        online: true,
        state: MemberState::Rw,
    }
}

fn btree(replicas: u32) -> Request {
    Request::new(Kind::Btree, replicas, Watermark::Btree)
}

fn dev(index: u32, free: u64, need_discard: u64) -> DevSnapshot {
    DevSnapshot {
        index,
        nbuckets: 1000,
        free,
        open: 0,
        need_discard,
        btree_reserve: 2,
        online: true,
        state: MemberState::Rw,
    }
}

fn ok(v: Verdict) -> Vec<u32> {
    match v {
        Verdict::Ok(c) => c.devs().to_vec(),
        other => panic!("expected ok, got {other:?}"),
    }
}

#[test]
fn reserves_per_watermark() {
    // normal keeps btree_reserve + nbuckets/64, btree keeps btree_reserve, reclaim 0.
    assert_eq!(reserves(2, 9469), [2 + 9469 / 64, 2, 0]);
    assert_eq!(reserves(2, 46938), [2 + 733, 2, 0]);
    assert_eq!(reserve(Watermark::Normal, 0, 63), 0);
    assert_eq!(reserve(Watermark::Normal, 0, 64), 1);
    let d0 = dev0();
    assert_eq!(d0.reserve(Watermark::Btree), 2);
    assert_eq!(d0.usable(Watermark::Btree), 0, "1 free < reserve 2");
    assert_eq!(d0.usable(Watermark::Reclaim), 1);
    assert_eq!(d0.usable(Watermark::Normal), 0);
    assert_eq!(dev1().usable(Watermark::Btree), 5107);
    assert_eq!(dev1().usable(Watermark::Normal), 5109 - 735);
    // need_discard never counts; open buckets come out of free.
    assert_eq!(usable(0, 0, 0), 0);
    assert_eq!(usable(10, 3, 2), 5);
    assert_eq!(usable(10, 30, 0), 0);
    assert_eq!(
        (Watermark::parse("reclaim\n"), Watermark::parse("high")),
        (Some(Watermark::Reclaim), None)
    );
}

#[test]
fn issue_1108() {
    let devs = [dev0(), dev1()];
    assert_eq!(
        choose(&devs, &btree(2)),
        Verdict::Blocked { now: 1, later: 2 }
    );
    let why: Vec<_> = statuses(&devs, &btree(2)).map(|(_, s)| s).collect();
    assert_eq!(
        why,
        [
            Err(Reason::BelowReserve {
                usable_before_reserve: 1,
                reserve: 2
            }),
            Ok(5107)
        ]
    );
    assert_eq!(ok(choose(&devs, &btree(1))), [1]);
    assert_eq!(could_serve_mask(&devs, &btree(2)), 0b11);
    // degrade proceeds on dev1 alone.
    assert_eq!(degrade(&devs, &btree(2)).unwrap().devs(), &[1]);
    assert_eq!(degrade(&devs, &btree(1)), None, "ok is not degraded");
    // Discards on dev0 free 99 more: both serve, most usable first.
    let devs = [
        DevSnapshot {
            free: 100,
            need_discard: 9317,
            ..dev0()
        },
        dev1(),
    ];
    assert_eq!(ok(choose(&devs, &btree(2))), [1, 0]);
    // At reclaim, dev0's single free bucket is usable.
    let reclaim = Request::new(Kind::Btree, 2, Watermark::Reclaim);
    assert_eq!(ok(choose(&[dev0(), dev1()], &reclaim)), [1, 0]);
}

#[test]
fn infeasible_vs_blocked() {
    // More replicas than devices: never.
    assert_eq!(
        choose(&[dev0(), dev1()], &btree(3)),
        Verdict::Infeasible { later: 2 }
    );
    assert_eq!(choose(&[], &btree(1)), Verdict::Infeasible { later: 0 });
    assert!(matches!(
        choose(&[dev0(), dev1()], &btree(5)),
        Verdict::Infeasible { .. }
    ));
    // Only need_discard beyond the reserve: blocked, not infeasible.
    assert_eq!(
        choose(&[dev(0, 0, 3)], &btree(1)),
        Verdict::Blocked { now: 0, later: 1 }
    );
    // free + need_discard exactly the reserve: never (at this watermark).
    assert_eq!(
        choose(&[dev(0, 1, 1)], &btree(1)),
        Verdict::Infeasible { later: 0 }
    );
    // One more need_discard bucket and it could.
    assert_eq!(
        choose(&[dev(0, 1, 2)], &btree(1)),
        Verdict::Blocked { now: 0, later: 1 }
    );
    // ... and at reclaim, the same device serves now.
    let reclaim = Request::new(Kind::Btree, 1, Watermark::Reclaim);
    assert_eq!(ok(choose(&[dev(0, 1, 1)], &reclaim)), [0]);
    // Everything open beyond the reserve: blocked (opens are released or committed).
    let held = DevSnapshot {
        open: 8,
        ..dev(0, 10, 0)
    };
    assert_eq!(held.check(&btree(1)), Err(Reason::AllOpen { open: 8 }));
    assert_eq!(
        choose(&[held], &btree(1)),
        Verdict::Blocked { now: 0, later: 1 }
    );
    // Full of data (nothing free, nothing to discard): ENOSPC, not a sleep.
    assert_eq!(dev(0, 0, 0).check(&btree(1)), Err(Reason::NoFreeBuckets));
    assert_eq!(
        choose(&[dev(0, 0, 0), dev(1, 50, 0)], &btree(2)),
        Verdict::Infeasible { later: 1 }
    );
    // Offline devices never count.
    let off = DevSnapshot {
        online: false,
        state: MemberState::Rw,
        ..dev(1, 500, 500)
    };
    assert_eq!(
        choose(&[dev(0, 50, 0), off], &btree(2)),
        Verdict::Infeasible { later: 1 }
    );
    // per_dev: 3 buckets on each device.
    let three = Request {
        per_dev: 3,
        ..btree(1)
    };
    assert_eq!(
        dev(0, 4, 0).check(&three),
        Err(Reason::TooFew {
            usable: 2,
            needed: 3
        })
    );
    assert_eq!(
        choose(&[dev(0, 4, 0)], &three),
        Verdict::Infeasible { later: 0 }
    );
    assert_eq!(
        choose(&[dev(0, 4, 1)], &three),
        Verdict::Blocked { now: 0, later: 1 }
    );
    assert_eq!(ok(choose(&[dev(0, 5, 0)], &three)), [0]);
}

#[test]
fn choice_order_distinctness_and_all_or_nothing() {
    // Most usable first, ties to the lower index, offline skipped.
    let off = DevSnapshot {
        online: false,
        state: MemberState::Rw,
        ..dev(0, 900, 0)
    };
    let devs = [
        off,
        dev(3, 50, 0),
        dev(1, 50, 0),
        dev(2, 80, 0),
        dev(4, 10, 0),
    ];
    assert_eq!(ok(choose(&devs, &btree(3))), [2, 1, 3]);
    assert_eq!(ok(choose(&devs, &btree(4))), [2, 1, 3, 4]);
    assert_eq!(
        choose(&devs, &btree(5)),
        Verdict::Infeasible { later: 4 },
        "5 > MAX_REPLICAS"
    );
    // A device listed twice counts once (the first snapshot), never chosen twice.
    let twice = [dev(0, 100, 0), dev(0, 100, 0)];
    assert_eq!(choose(&twice, &btree(2)), Verdict::Infeasible { later: 1 });
    assert_eq!(
        statuses(&twice, &btree(2)).nth(1).unwrap().1,
        Err(Reason::Duplicate)
    );
    // All or nothing: 2 of 3 usable gives no choice, only a verdict.
    let devs = [dev(0, 100, 0), dev(1, 0, 10), dev(2, 100, 0)];
    assert_eq!(
        choose(&devs, &btree(3)),
        Verdict::Blocked { now: 2, later: 3 }
    );
    assert_eq!(degrade(&devs, &btree(3)).unwrap().devs(), &[0, 2]);
    // Nothing serves now: degrade has nothing to offer.
    let devs = [dev(0, 0, 10), dev(1, 0, 10)];
    assert_eq!(degrade(&devs, &btree(2)), None);
    // Infeasible is never degraded, even with a device that serves.
    assert_eq!(degrade(&[dev(0, 100, 0)], &btree(2)), None);
    // Zero replicas: trivially ok.
    assert_eq!(ok(choose(&[], &btree(0))), Vec::<u32>::new());
}

#[test]
fn reason_texts() {
    let r = btree(1);
    let cases = [
        (
            dev(0, 1, 9416),
            "below_reserve",
            "1 free not open, not above the reserve of 2",
        ),
        (
            dev(0, 0, 7),
            "all_need_discard",
            "no free buckets, 7 need_discard",
        ),
        (
            dev(0, 0, 0),
            "no_free_buckets",
            "no free or need_discard buckets",
        ),
    ];
    for (d, name, text) in cases {
        let e = d.check(&r).unwrap_err();
        assert_eq!(e.name(), name);
        assert_eq!(e.to_string(), text);
    }
}

#[test]
fn requests_from_options() {
    let mut o = Options::defaults();
    let b = build(Kind::Btree, &o, 7);
    assert_eq!(b.replicas, 2, "metadata_replicas default");
    assert_eq!(b.watermark, Watermark::Btree);
    assert_eq!(
        (b.deadline_secs, b.policy, b.stuck_timeout_secs),
        (0, WaitPolicy::Wait, 30)
    );
    assert_eq!(b.opts_gen, 7);
    assert_eq!(b.request(), btree(2));
    let u = build(Kind::User, &o, 7);
    assert_eq!((u.replicas, u.watermark), (1, Watermark::Normal));

    // An option write: the old spec is stale, the rebuild has the new values.
    o.apply_list(
        "metadata_replicas=1,alloc_deadline=5,alloc_wait_policy=degrade,allocator_stuck_timeout=2",
        bkcore::options::When::RUNTIME,
    )
    .unwrap();
    assert!(!b.is_stale(7));
    assert!(b.is_stale(8));
    let b2 = b.rebuild(&o, 8);
    assert!(!b2.is_stale(8));
    assert_eq!(b2.replicas, 1);
    assert_eq!(
        (b2.deadline_secs, b2.policy, b2.stuck_timeout_secs),
        (5, WaitPolicy::Degrade, 2)
    );
    assert_eq!(b2, build(Kind::Btree, &o, 8), "a rebuild is a build");
    // #1108 unstuck by the rebuild alone.
    assert!(matches!(
        choose(&[dev0(), dev1()], &b2.request()),
        Verdict::Ok(_)
    ));

    // Explicit values (the ioctl) survive a rebuild; the rest follows the options.
    let ov = Overrides {
        replicas: Some(2),
        watermark: Some(Watermark::Reclaim),
        deadline_secs: Some(9),
        per_dev: Some(3),
        for_user: false,
    };
    let x = build_with(Kind::User, &o, 8, ov).unwrap();
    assert_eq!(
        (x.replicas, x.watermark, x.deadline_secs, x.per_dev),
        (2, Watermark::Reclaim, 9, 3)
    );
    assert!(!x.replicas_from_options());
    o.set(OptId::AllocWaitPolicy, WaitPolicy::Fail as u32)
        .unwrap();
    let x2 = x.rebuild(&o, 9);
    assert_eq!(
        (x2.replicas, x2.watermark, x2.deadline_secs, x2.per_dev),
        (2, Watermark::Reclaim, 9, 3)
    );
    assert_eq!(x2.policy, WaitPolicy::Fail);
    assert_eq!(
        build_with(Kind::User, &o, 9, Overrides::NONE),
        Ok(build(Kind::User, &o, 9))
    );
    assert_eq!(
        build_with(
            Kind::Btree,
            &o,
            9,
            Overrides {
                replicas: Some(5),
                ..Overrides::NONE
            }
        ),
        Err(RequestError::BadReplicas(5))
    );
}

#[test]
fn option_ranges_fit_max_replicas() {
    for id in [OptId::MetadataReplicas, OptId::DataReplicas] {
        match OPTIONS[id.index()].ty {
            OptType::Uint { min, max } => {
                assert!(min >= 1 && max as usize <= MAX_REPLICAS)
            }
            _ => panic!("replicas are a number"),
        }
    }
}

// ---- properties ----------------------------------------------------------------------

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..6, 2 => 0u64..300, 1 => any::<u64>()]
}

fn snapshot() -> impl Strategy<Value = DevSnapshot> {
    (
        0u32..6,
        prop_oneof![3 => 0u64..2000, 1 => any::<u64>()],
        count(),
        count(),
        count(),
        prop_oneof![4 => 0u32..5, 1 => any::<u32>()],
        (
            prop::bool::weighted(0.85),
            prop_oneof![5 => Just(MemberState::Rw), 1 => prop::sample::select(MemberState::ALL.to_vec())],
        ),
    )
        .prop_map(
            |(index, nbuckets, free, open, need_discard, btree_reserve, (online, state))| {
                DevSnapshot {
                    index,
                    nbuckets,
                    free,
                    open,
                    need_discard,
                    btree_reserve,
                    online,
                    state,
                }
            },
        )
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(Kind::ALL.to_vec()),
        0u32..6,
        prop::sample::select(Watermark::ALL.to_vec()),
        prop_oneof![4 => Just(1u32), 1 => 0u32..4],
    )
        .prop_map(|(kind, replicas, watermark, per_dev)| Request {
            kind,
            replicas,
            watermark,
            per_dev,
        })
}

/// The model: first snapshot of each index, its usable and potential counts.
fn model(devs: &[DevSnapshot], r: &Request) -> Vec<(u32, u64, bool)> {
    let need = u64::from(r.per_dev.max(1));
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for d in devs {
        if seen.contains(&d.index) {
            continue;
        }
        seen.push(d.index);
        let res = reserve(r.watermark, d.btree_reserve, d.nbuckets);
        let (u, p) = if d.online && d.state == MemberState::Rw {
            (
                usable(d.free, d.open, res),
                (u128::from(d.free) + u128::from(d.need_discard)).saturating_sub(u128::from(res)),
            )
        } else {
            (0, 0)
        };
        out.push((d.index, u, p >= u128::from(need)));
    }
    out
}

proptest! {
    #![proptest_config(common::config(4000))]

    #[test]
    fn choice_matches_the_model(devs in prop::collection::vec(snapshot(), 0..8), r in request()) {
        let need = u64::from(r.per_dev.max(1));
        let m = model(&devs, &r);
        let now = m.iter().filter(|(_, u, _)| *u >= need).count();
        let later = m.iter().filter(|(_, _, c)| *c).count();
        prop_assert!(now <= later);
        prop_assert_eq!(tally(&devs, &r), (now as u32, later as u32));
        let want = r.replicas as usize;
        match choose(&devs, &r) {
            Verdict::Ok(c) => {
                prop_assert!(want <= MAX_REPLICAS && now >= want);
                prop_assert_eq!(c.len(), want);
                let mut prev: Option<(u64, u32)> = None;
                for &i in c.devs() {
                    let &(_, u, _) = m.iter().find(|(j, _, _)| *j == i).unwrap();
                    prop_assert!(u >= need, "chosen dev{} has {} usable", i, u);
                    if let Some((pu, pi)) = prev {
                        prop_assert!(pu > u || (pu == u && pi < i), "order");
                    }
                    prev = Some((u, i));
                }
                let mut sorted = c.devs().to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), c.len(), "distinct");
                // Best: no unchosen device beats the last chosen one.
                if let Some((lu, li)) = prev {
                    for &(i, u, _) in &m {
                        if !c.contains(i) && u >= need {
                            prop_assert!(u < lu || (u == lu && i > li));
                        }
                    }
                }
                prop_assert_eq!(degrade(&devs, &r), None);
            }
            Verdict::Blocked { now: n, later: l } => {
                prop_assert!(want <= MAX_REPLICAS && now < want && later >= want);
                prop_assert_eq!((n as usize, l as usize), (now, later));
                match degrade(&devs, &r) {
                    Some(c) => {
                        prop_assert!(now >= 1);
                        prop_assert!(!c.is_empty() && c.len() < want && c.len() == now);
                        for &i in c.devs() {
                            let &(_, u, _) = m.iter().find(|(j, _, _)| *j == i).unwrap();
                            prop_assert!(u >= need);
                        }
                    }
                    None => prop_assert_eq!(now, 0),
                }
            }
            Verdict::Infeasible { later: l } => {
                prop_assert!(want > MAX_REPLICAS || later < want);
                prop_assert_eq!(l as usize, later);
                prop_assert_eq!(degrade(&devs, &r), None);
            }
        }
        // The mask names exactly the devices that could serve (first snapshots).
        let mask = m.iter().filter(|(_, _, c)| *c).fold(0u64, |a, (i, _, _)| a | 1 << i);
        prop_assert_eq!(could_serve_mask(&devs, &r), mask);
    }

    #[test]
    fn ok_iff_enough_devices_have_a_usable_bucket(
        devs in prop::collection::vec(snapshot(), 0..8),
        replicas in 1u32..=4,
        w in prop::sample::select(Watermark::ALL.to_vec()),
    ) {
        let r = Request::new(Kind::User, replicas, w);
        let usable_devs = model(&devs, &r).iter().filter(|(_, u, _)| *u >= 1).count();
        prop_assert_eq!(
            matches!(choose(&devs, &r), Verdict::Ok(_)),
            usable_devs >= replicas as usize
        );
    }
}
