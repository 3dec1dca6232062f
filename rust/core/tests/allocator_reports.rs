// SPDX-License-Identifier: GPL-2.0

//! What a blocked request tells the user: the stuck report (#1108's facts, size bounds,
//! a full buffer), the `waiters` line, the infeasible message; and the latency
//! histogram behind `restart_latency_ns_p50/p99`.

use bkcore::latency::{bucket_upper, Histogram, NR_BUCKETS};
use bkcore::member_state::MemberState;
use bkcore::options::{OptId, Options, WaitPolicy};
use bkcore::placement::{DevSnapshot, Kind};
use bkcore::request::{build, build_with, Overrides, RequestSpec};
use bkcore::stuck::{
    DiscardState, InfeasibleMsg, StuckReport, WaiterLine, WakeReason, MAX_LINE, MAX_REPORT,
};
use bkcore::watermark::Watermark;
use core::fmt::{self, Write};
use proptest::prelude::*;

mod common;

/// A fixed buffer that refuses (with `fmt::Error`) anything that does not fit, the way
/// the kernel's sysfs page buffer does.
struct Buf<const N: usize> {
    data: [u8; N],
    len: usize,
    cap: usize,
}

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Self::with_cap(N)
    }
    fn with_cap(cap: usize) -> Self {
        Buf {
            data: [0; N],
            len: 0,
            cap: cap.min(N),
        }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.data[..self.len]).unwrap()
    }
}

impl<const N: usize> Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        if end > self.cap {
            return Err(fmt::Error);
        }
        self.data[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn issue_1108() -> [DevSnapshot; 2] {
    [
        DevSnapshot {
            index: 0,
            nbuckets: 9469,
            free: 1,
            open: 0,
            need_discard: 9416,
            btree_reserve: 2,
            online: true,
            state: MemberState::Rw,
        },
        DevSnapshot {
            index: 1,
            nbuckets: 46938,
            free: 5109,
            open: 0,
            need_discard: 41681,
            btree_reserve: 2,
            online: true,
            state: MemberState::Rw,
        },
    ]
}

fn render(r: &StuckReport<'_>) -> String {
    let mut b = Buf::<4096>::new();
    r.write_to(&mut b).expect("fits a page");
    let s = b.as_str().to_string();
    assert_eq!(s, r.to_string(), "Display and write_to agree");
    s
}

fn check_bounds(s: &str) {
    assert!(s.len() < MAX_REPORT, "{} bytes:\n{s}", s.len());
    assert!(s.ends_with('\n'));
    for line in s.lines() {
        assert!(
            line.len() + 1 < MAX_LINE,
            "{} bytes: {line}",
            line.len() + 1
        );
    }
}

#[test]
fn stuck_report_for_1108() {
    let o = Options::defaults();
    let spec = build(Kind::Btree, &o, 0);
    let devs = issue_1108();
    // The #1108 state: discards on, not run ahead of the replay.
    let off = DiscardState {
        enabled: true,
        replay_priority: false,
        in_flight: 0,
        discarded: 0,
        failing: 0,
    };
    let r = StuckReport {
        id: 7,
        spec: &spec,
        age_ms: 30012,
        devs: &devs,
        discard: off,
        waiters: 1,
    };
    let s = render(&r);
    println!("{s}");
    check_bounds(&s);
    for want in [
        "id=7 kind=btree replicas=2 per_dev=1 watermark=btree gen=0 age_ms=30012\n",
        "needs 2 buckets on 2 distinct devices at watermark btree: 1 device can serve now, 2 \
         could",
        "dev0: free=1 open=0 need_discard=9416 reserve=2 usable=0 status=below_reserve\n",
        "dev1: free=5109 open=0 need_discard=41681 reserve=2 usable=5107 status=ok\n",
        "discard: enabled=1 replay_priority=0 in_flight=0 discarded=0\n",
        "waiters: 1\n",
        "hint: dev0 has 9416 need_discard buckets waiting for discard: \
         options/replay_discard_priority=1 runs it first\n",
        "hint: or lower options/metadata_replicas to 1 (1 device can serve now)\n",
        "hint: or options/alloc_wait_policy=degrade",
        "hint: or write 7 or all to abort_waiting",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    assert!(!s.contains("hint: dev1"), "dev1 is not starved");

    // Discards prioritised but failing on dev0; policy already degrade: no degrade hint.
    let mut o2 = o;
    o2.set(OptId::AllocWaitPolicy, WaitPolicy::Degrade as u32)
        .unwrap();
    let spec2 = build(Kind::Btree, &o2, 3);
    let failing = DiscardState {
        enabled: true,
        replay_priority: true,
        in_flight: 4,
        discarded: 120,
        failing: 1,
    };
    let s = render(&StuckReport {
        spec: &spec2,
        discard: failing,
        ..r
    });
    assert!(s.contains("gen=3"));
    assert!(s.contains("wait: policy=degrade deadline_s=0 stuck_timeout_s=30\n"));
    assert!(s.contains(
        "hint: discards to dev0 fail: its 9416 need_discard buckets wait for a retry; \
         options/discard=0 releases them without a discard\n"
    ));
    assert!(s.contains("in_flight=4 discarded=120"));
    assert!(!s.contains("alloc_wait_policy=degrade"));

    // An explicit replicas override: lowering the option would not help, so no such hint.
    let ov = Overrides {
        replicas: Some(2),
        ..Overrides::NONE
    };
    let spec3 = build_with(Kind::User, &o, 0, ov).unwrap();
    let s = render(&StuckReport { spec: &spec3, ..r });
    assert!(!s.contains("data_replicas"), "{s}");
    assert!(s.contains("at watermark normal"));
    assert!(s.contains("reserve=149 usable=0 status=below_reserve"));
}

#[test]
fn stuck_report_other_states() {
    let o = Options::defaults();
    let spec = build(Kind::User, &o, 1);
    let mut devs = issue_1108();
    devs[1].online = false;
    devs[0].free = 0;
    devs[0].need_discard = 0;
    let r = StuckReport {
        id: 1,
        spec: &spec,
        age_ms: 0,
        devs: &devs,
        discard: DiscardState::default(),
        waiters: 3,
    };
    let s = render(&r);
    check_bounds(&s);
    assert!(
        s.contains("needs 1 bucket on 1 device at watermark normal"),
        "{s}"
    );
    assert!(s.contains("only 0 devices could ever serve"));
    assert!(s.contains("status=no_free_buckets"));
    assert!(s.contains("status=offline"));
    assert!(s.contains("hint: dev0 cannot serve watermark normal even after discards"));
    assert!(s.contains("hint: or dev1 is offline"));

    // A member that is not rw: its state, and how to allocate on it again.
    for state in [MemberState::Ro, MemberState::Failed, MemberState::Spare] {
        let mut devs = issue_1108();
        devs[0].state = state;
        let r = StuckReport { devs: &devs, ..r };
        let s = render(&r);
        check_bounds(&s);
        assert!(s.contains(&format!("status={state}")), "{s}");
        assert!(
            s.contains(&format!(
                "dev0 is {state}: nothing is allocated on it until rw is written to dev-0/state"
            )),
            "{s}"
        );
    }

    // Open buckets hold the rest; a per_dev request.
    let ov = Overrides {
        per_dev: Some(3),
        ..Overrides::NONE
    };
    let spec = build_with(Kind::Btree, &o, 1, ov).unwrap();
    let held = [DevSnapshot {
        index: 2,
        nbuckets: 100,
        free: 10,
        open: 8,
        need_discard: 0,
        btree_reserve: 2,
        online: true,
        state: MemberState::Rw,
    }];
    let s = render(&StuckReport {
        spec: &spec,
        devs: &held,
        ..r
    });
    assert!(s.contains("needs 3 buckets on each of 2 distinct devices at watermark btree"));
    assert!(s.contains("status=all_open"));
    assert!(s.contains("dev2 has 8 open buckets"));
}

#[test]
fn many_devices_are_summed_up() {
    let o = Options::defaults();
    let spec = build(Kind::Btree, &o, u64::MAX);
    let devs: Vec<_> = (0..32u32)
        .map(|i| DevSnapshot {
            index: i,
            nbuckets: u64::MAX,
            free: 1,
            open: u64::MAX,
            need_discard: u64::MAX / 3,
            btree_reserve: u32::MAX,
            online: i % 2 == 0,
            state: MemberState::Rw,
        })
        .collect();
    let r = StuckReport {
        id: u64::MAX,
        spec: &spec,
        age_ms: u64::MAX,
        devs: &devs,
        discard: DiscardState {
            enabled: true,
            replay_priority: true,
            in_flight: u32::MAX,
            discarded: u64::MAX,
            failing: u64::MAX,
        },
        waiters: u64::MAX,
    };
    let s = render(&r);
    check_bounds(&s);
    assert!(s.contains("... 24 more devices"), "{s}");
}

#[test]
fn a_full_buffer_is_an_error_not_a_panic() {
    let o = Options::defaults();
    let spec = build(Kind::Btree, &o, 0);
    let devs = issue_1108();
    let r = StuckReport {
        id: 7,
        spec: &spec,
        age_ms: 1,
        devs: &devs,
        discard: DiscardState::default(),
        waiters: 1,
    };
    let full = render(&r);
    for cap in 0..full.len() {
        let mut b = Buf::<4096>::with_cap(cap);
        assert_eq!(r.write_to(&mut b), Err(fmt::Error), "cap {cap}");
        assert!(full.starts_with(b.as_str()));
    }
}

#[test]
fn waiters_line() {
    let l = WaiterLine {
        id: 3,
        age_ms: 1500,
        watermark: Watermark::Btree,
        replicas: 2,
        devs: 0b11,
        opts_gen: 4,
        woken: 2,
        last_wake: WakeReason::Options,
    };
    assert_eq!(
        l.to_string(),
        "id=3 age_ms=1500 watermark=btree replicas=2 devs=0,1 gen=4 woken=2 last_wake=options"
    );
    let l = WaiterLine {
        devs: 0,
        last_wake: WakeReason::None,
        ..l
    };
    assert!(l
        .to_string()
        .contains("devs=none gen=4 woken=2 last_wake=none"));
    let l = WaiterLine {
        devs: 1 << 31 | 1 << 5,
        ..l
    };
    assert!(l.to_string().contains("devs=5,31 "));
    let names: Vec<_> = WakeReason::ALL.iter().map(|w| w.name()).collect();
    assert_eq!(
        names,
        [
            "none",
            "options",
            "buckets_freed",
            "discard",
            "device",
            "abort",
            "timeout",
            "signal"
        ]
    );
    for w in WakeReason::ALL {
        assert_eq!(WakeReason::from_u8(w.to_u8()), w);
    }
    assert_eq!(WakeReason::from_u8(200), WakeReason::None);
}

#[test]
fn infeasible_message() {
    let o = Options::defaults();
    let spec = build(Kind::Btree, &o, 0);
    let mut devs = issue_1108();
    devs[0].free = 0;
    devs[0].need_discard = 2;
    let m = InfeasibleMsg {
        spec: &spec,
        devs: &devs,
    }
    .to_string();
    assert_eq!(
        m,
        "cannot allocate: needs 2 buckets on 2 distinct devices at watermark btree; only 1 \
         device could ever serve it: dev0 free=0 need_discard=2 reserve=2; lower \
         options/metadata_replicas to 1"
    );
    let spec5 = RequestSpec {
        replicas: 5,
        ..spec
    };
    let m = InfeasibleMsg {
        spec: &spec5,
        devs: &devs,
    }
    .to_string();
    assert!(m.ends_with("but at most 4 replicas are possible"), "{m}");
}

fn spec_strategy() -> impl Strategy<Value = RequestSpec> {
    (
        common::options(4),
        prop::sample::select(Kind::ALL.to_vec()),
        any::<u64>(),
        (
            prop::option::of(1u32..=4),
            prop::option::of(prop::sample::select(Watermark::ALL.to_vec())),
            prop::option::of(any::<u32>()),
            prop::option::of(prop_oneof![1u32..4, 1u32..=u32::MAX]),
        ),
    )
        .prop_map(
            |(o, kind, g, (replicas, watermark, deadline_secs, per_dev))| {
                let ov = Overrides {
                    replicas,
                    watermark,
                    deadline_secs,
                    per_dev,
                    ..Overrides::NONE
                };
                build_with(kind, &o, g, ov).unwrap()
            },
        )
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..10, 2 => 0u64..100_000, 2 => any::<u64>(), 1 => Just(u64::MAX)]
}

fn snapshot() -> impl Strategy<Value = DevSnapshot> {
    (
        prop_oneof![3 => 0u32..32, 1 => any::<u32>()],
        count(),
        count(),
        count(),
        count(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(
            |(index, nbuckets, free, open, need_discard, btree_reserve, online)| DevSnapshot {
                index,
                nbuckets,
                free,
                open,
                need_discard,
                btree_reserve,
                online,
                state: MemberState::Rw,
            },
        )
}

proptest! {
    #![proptest_config(common::config(3000))]

    #[test]
    fn stuck_report_is_bounded_for_any_input(
        spec in spec_strategy(),
        devs in prop::collection::vec(snapshot(), 0..34),
        id in any::<u64>(),
        age_ms in any::<u64>(),
        waiters in any::<u64>(),
        discard in (any::<bool>(), any::<bool>(), any::<u32>(), any::<u64>(), any::<u64>()),
        cap in 0usize..4096,
    ) {
        let r = StuckReport {
            id,
            spec: &spec,
            age_ms,
            devs: &devs,
            discard: DiscardState {
                enabled: discard.0,
                replay_priority: discard.1,
                in_flight: discard.2,
                discarded: discard.3,
                failing: discard.4,
            },
            waiters,
        };
        let mut b = Buf::<4096>::new();
        prop_assert!(r.write_to(&mut b).is_ok());
        let s = b.as_str();
        prop_assert!(s.len() < MAX_REPORT, "{} bytes", s.len());
        for line in s.lines() {
            prop_assert!(line.len() + 1 < MAX_LINE, "{} bytes: {}", line.len() + 1, line);
        }
        // A smaller buffer: an error, the text a prefix, never a panic.
        let mut small = Buf::<4096>::with_cap(cap);
        let res = r.write_to(&mut small);
        prop_assert_eq!(res.is_ok(), cap >= s.len());
        prop_assert!(s.starts_with(small.as_str()));
        // The other formatters never panic either.
        let m = InfeasibleMsg { spec: &spec, devs: &devs }.to_string();
        prop_assert!(m.len() < 1024, "{} bytes: {}", m.len(), m);
    }
}

// ---- latency --------------------------------------------------------------------------

#[test]
fn latency_percentiles() {
    let mut h = Histogram::new();
    assert_eq!((h.count(), h.percentile(500), h.percentile(990)), (0, 0, 0));
    // 1..=1000 ns: p50 is sample 500 (in 480..=511: 256..=511 cut in 8), p99
    // sample 990 (in 960..=1023), p100 the maximum, 1000.
    for ns in 1..=1000u64 {
        h.record(ns);
    }
    assert_eq!(h.count(), 1000);
    assert_eq!(h.percentile(500), 511);
    assert_eq!(h.percentile(990), 1000);
    assert_eq!(h.max(), 1000);
    assert_eq!(h.percentile(1000), 1000);
    assert_eq!(h.percentile(0), 1, "p0 is the minimum's bucket");
    assert_eq!(h.percentile(5000), 1000, "clamped to p100");

    // 99 fast restarts and one slow one: p50 fast, p99 still fast, p100 slow.
    let mut h = Histogram::new();
    for _ in 0..99 {
        h.record(40_000);
    }
    h.record(3_000_000_000);
    // 40 000 is in 36 864 ..= 40 959 (2^15 cut in 8 buckets of 4096).
    assert_eq!(h.percentile(500), 40_959);
    assert_eq!(h.percentile(990), 40_959);
    assert_eq!(h.percentile(1000), 3_000_000_000);
    assert_eq!(h.max(), 3_000_000_000);
    // With 2 % slow, p99 is slow: 3e9 is in 2 952 790 016 ..= 3 221 225 471 (2^31
    // cut in 8), bounded by the maximum.
    h.record(3_000_000_000);
    assert_eq!(h.percentile(990), 3_000_000_000);
    h.record(2_990_000_000);
    assert_eq!(h.percentile(990), 3_000_000_000);

    // Edges: 0 and u64::MAX, merge and reset.
    let mut a = Histogram::new();
    a.record(0);
    a.record(u64::MAX);
    assert_eq!(a.percentile(500), 0);
    assert_eq!(a.percentile(1000), u64::MAX);
    let mut b = Histogram::new();
    b.merge(&a);
    b.merge(&h);
    assert_eq!(b.count(), a.count() + h.count());
    assert_eq!(b.max(), u64::MAX);
    assert_eq!(b.bucket(0), 1);
    assert_eq!(b.bucket(NR_BUCKETS), 0);
    b.reset();
    assert_eq!(b, Histogram::new());
}

proptest! {
    #![proptest_config(common::config(2000))]

    #[test]
    fn percentile_bounds_the_true_quantile(
        mut v in prop::collection::vec(prop_oneof![0u64..5000, any::<u64>()], 1..300),
        p in 0u32..=1000,
    ) {
        let mut h = Histogram::new();
        for &x in &v {
            h.record(x);
        }
        v.sort_unstable();
        let n = v.len() as u64;
        let rank = (n * u64::from(p)).div_ceil(1000).max(1);
        let truth = v[(rank - 1) as usize];
        let ub = h.percentile(p);
        prop_assert!(truth <= ub);
        // At most 1/8 over the truth below 2^40 (exact below 8), and never over the
        // maximum.
        if truth < 1 << 40 {
            prop_assert!(ub - truth <= truth / 8, "{} vs {}", truth, ub);
        }
        let max = *v.last().unwrap_or(&0);
        prop_assert_eq!(h.max(), max);
        prop_assert!(ub <= max);
        prop_assert!(ub == max || (0..NR_BUCKETS).any(|i| bucket_upper(i) == ub));
    }
}

mod ctl_abi_roundtrip {
    use bkcore::ctl_abi::*;

    #[test]
    fn every_structure_round_trips() {
        let mut a = AllocArgs {
            uuid: [7; 16],
            kind: 1,
            replicas: 2,
            watermark: FROM_OPTIONS,
            deadline_secs: 9,
            n: 2,
            ..Default::default()
        };
        a.buckets[1] = BucketRef {
            dev: 1,
            pad: 0,
            bucket: 1 << 40,
        };
        let mut buf = vec![0u8; AllocArgs::SIZE];
        a.encode(&mut buf);
        assert_eq!(AllocArgs::decode(&buf), Some(a));
        assert_eq!(AllocArgs::decode(&buf[..AllocArgs::SIZE - 1]), None);

        let f = FreeArgs {
            uuid: [1; 16],
            n: 1,
            pad: 0,
            buckets: a.buckets,
        };
        let mut buf = vec![0u8; FreeArgs::SIZE];
        f.encode(&mut buf);
        assert_eq!(FreeArgs::decode(&buf), Some(f));

        let mut s = StatusArgs {
            uuid: [2; 16],
            opts_gen: 5,
            waiters: 3,
            members: 2,
            ..Default::default()
        };
        s.devs[1] = DevStatus {
            free: 1,
            open: 2,
            need_discard: 3,
            btree: 4,
            user: 5,
        };
        let mut buf = vec![0u8; StatusArgs::SIZE];
        s.encode(&mut buf);
        assert_eq!(StatusArgs::decode(&buf), Some(s));
    }

    #[test]
    fn key_value_structures_round_trip_at_their_offsets() {
        let mut value = [0u8; 32];
        for (i, b) in value.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }

        let i = InsertArgs {
            uuid: [3; 16],
            key: 0x0102_0304_0506_0708,
            value,
            seq: u64::MAX - 1,
        };
        assert_eq!(InsertArgs::SIZE, 64);
        let mut buf = vec![0u8; InsertArgs::SIZE];
        i.encode(&mut buf);
        assert_eq!(&buf[..16], &[3; 16]);
        assert_eq!(&buf[16..24], &i.key.to_le_bytes());
        assert_eq!(&buf[24..56], &value);
        assert_eq!(&buf[56..64], &i.seq.to_le_bytes());
        assert_eq!(InsertArgs::decode(&buf), Some(i));
        assert_eq!(InsertArgs::decode(&buf[..InsertArgs::SIZE - 1]), None);

        let g = GetArgs {
            uuid: [4; 16],
            key: 17,
            found: 1,
            pad: 0,
            value,
        };
        assert_eq!(GetArgs::SIZE, 64);
        let mut buf = vec![0xffu8; GetArgs::SIZE];
        g.encode(&mut buf);
        assert_eq!(&buf[..16], &[4; 16]);
        assert_eq!(&buf[16..24], &17u64.to_le_bytes());
        assert_eq!(&buf[24..28], &1u32.to_le_bytes());
        assert_eq!(&buf[28..32], &[0; 4], "pad is written as zero");
        assert_eq!(&buf[32..64], &value);
        assert_eq!(GetArgs::decode(&buf), Some(g));
        assert_eq!(GetArgs::decode(&buf[..GetArgs::SIZE - 1]), None);
        // A garbage pad is read back, so the module can refuse it.
        buf[28..32].copy_from_slice(&[9; 4]);
        let d = GetArgs::decode(&buf).unwrap();
        assert_eq!(d.pad, 0x0909_0909);
        assert!(!d.reserved_zero());
        let missing = GetArgs {
            uuid: [4; 16],
            key: 18,
            ..Default::default()
        };
        let mut buf = vec![0u8; GetArgs::SIZE];
        missing.encode(&mut buf);
        assert_eq!(GetArgs::decode(&buf), Some(missing));
        assert_eq!(missing.value, [0; 32]);

        let f = FlushArgs {
            uuid: [5; 16],
            generation: 12,
            journal_seq: 1 << 33,
        };
        assert_eq!(FlushArgs::SIZE, 32);
        let mut buf = vec![0u8; FlushArgs::SIZE];
        f.encode(&mut buf);
        assert_eq!(&buf[..16], &[5; 16]);
        assert_eq!(&buf[16..24], &12u64.to_le_bytes());
        assert_eq!(&buf[24..32], &(1u64 << 33).to_le_bytes());
        assert_eq!(FlushArgs::decode(&buf), Some(f));
        assert_eq!(FlushArgs::decode(&buf[..FlushArgs::SIZE - 1]), None);

        let v = VersionArgs {
            abi: ABI_VERSION,
            features: FEATURES,
            ..Default::default()
        };
        assert_eq!(VersionArgs::SIZE, core::mem::size_of::<VersionArgs>());
        let mut buf = vec![0u8; VersionArgs::SIZE];
        v.encode(&mut buf);
        assert_eq!(VersionArgs::decode(&buf), Some(v));
        assert!(v.reserved_zero() && v.known_version());
        let future = VersionArgs {
            abi: ABI_VERSION + 1,
            ..v
        };
        assert!(!future.known_version());
        assert!(!VersionArgs { abi: 0, ..v }.known_version());
        assert!(!VersionArgs {
            reserved: [0, 1],
            ..v
        }
        .reserved_zero());
        // One feature bit per ioctl number, VERSION's included.
        assert_eq!(FEATURES.count_ones(), 7);
    }

    #[test]
    fn ioctl_numbers_follow_linux_iowr() {
        // _IOWR('B', 1, 104) as the kernel's macros compute it.
        assert_eq!(IOC_ALLOC, 0xc000_0000 | (104 << 16) | (0x42 << 8) | 1);
        assert_eq!(IOC_INSERT, 0xc000_0000 | (64 << 16) | (0x42 << 8) | 4);
        assert_eq!(IOC_GET, 0xc000_0000 | (64 << 16) | (0x42 << 8) | 5);
        assert_eq!(IOC_FLUSH, 0xc000_0000 | (32 << 16) | (0x42 << 8) | 6);
        let all = [
            IOC_ALLOC,
            IOC_FREE,
            IOC_STATUS,
            IOC_INSERT,
            IOC_GET,
            IOC_FLUSH,
            IOC_VERSION,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| a != b), "{a:#x} repeats");
        }
    }
}
