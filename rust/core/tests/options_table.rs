// SPDX-License-Identifier: GPL-2.0

//! The option table: parse/print round trips, every bad value and unknown option refused.

use bkcore::options::{parse_list, OptErrorKind, OptId, OptType, Options, When, NR_OPTS, OPTIONS};
use proptest::prelude::*;

mod common;

#[test]
fn every_value_round_trips() {
    for d in &OPTIONS {
        let (lo, hi) = match d.ty {
            OptType::Uint { min, max } => (min, max),
            OptType::Bool => (0, 1),
            OptType::Enum(n) => (0, n.len() as u32 - 1),
        };
        for v in lo..=hi {
            let text = d.display(v).to_string();
            assert_eq!(d.parse(&text), Ok(v), "{} {text}", d.name);
            assert_eq!(d.parse(&format!("{text}\n")), Ok(v), "echo adds a newline");
        }
    }
}

#[test]
fn bad_values_are_refused() {
    use OptErrorKind::*;
    let cases: &[(&str, &str, OptErrorKind)] = &[
        ("metadata_replicas", "0", OutOfRange { min: 1, max: 4 }),
        ("metadata_replicas", "5", OutOfRange { min: 1, max: 4 }),
        ("metadata_replicas", "", BadValue),
        ("metadata_replicas", "-1", BadValue),
        ("metadata_replicas", "+2", BadValue),
        ("metadata_replicas", "2x", BadValue),
        ("metadata_replicas", "0x2", BadValue),
        ("metadata_replicas", "4294967296", BadValue),
        ("data_replicas", "99999999999", BadValue),
        (
            "allocator_stuck_timeout",
            "86401",
            OutOfRange { min: 0, max: 86400 },
        ),
        ("allocator_stuck_timeout", "1.5", BadValue),
        ("alloc_deadline", "1 2", BadValue),
        ("alloc_wait_policy", "Wait", BadValue),
        ("alloc_wait_policy", "0", BadValue),
        ("alloc_wait_policy", "waiting", BadValue),
        ("discard", "2", BadValue),
        ("discard", "true", BadValue),
        ("replay_discard_priority", "yes", BadValue),
    ];
    for (name, val, kind) in cases {
        let d = OptId::from_name(name).unwrap().desc();
        let e = d.parse(val).unwrap_err();
        assert_eq!(e.kind, *kind, "{name}={val:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn lists() {
    let items: Vec<_> = parse_list("metadata_replicas=1,discard=0").collect();
    assert_eq!(
        items,
        vec![Ok((OptId::MetadataReplicas, 1)), Ok((OptId::Discard, 0))]
    );
    assert_eq!(parse_list("").count(), 0);
    let e = parse_list("nosuch=1").next().unwrap().unwrap_err();
    assert_eq!((e.option, e.kind), ("nosuch", OptErrorKind::Unknown));
    assert_eq!(e.to_string(), "unknown option 'nosuch'");
    let e = parse_list("discard").next().unwrap().unwrap_err();
    assert_eq!(e.kind, OptErrorKind::MissingValue);
    let e = parse_list("bogus").next().unwrap().unwrap_err();
    assert_eq!(e.kind, OptErrorKind::Unknown);
    let mut o = Options::defaults();
    assert!(o
        .apply_list("metadata_replicas=1,nosuch=2", When::REGISTER)
        .is_err());
    assert_eq!(o, Options::defaults());
    // Every option is settable at runtime and register; only replicas at format.
    for d in &OPTIONS {
        assert!(d.settable.intersects(When::RUNTIME) && d.settable.intersects(When::REGISTER));
        let at_format = matches!(d.id, OptId::MetadataReplicas | OptId::DataReplicas);
        assert_eq!(d.settable.intersects(When::FORMAT), at_format, "{}", d.name);
        assert!(d.persistent);
    }
}

#[test]
fn register_lists_take_degraded_besides_options() {
    let mut o = Options::defaults();
    let f = o
        .apply_register_list("metadata_replicas=1, degraded=1,")
        .unwrap();
    assert!(f.degraded);
    assert_eq!(o.metadata_replicas(), 1);
    assert!(!o.apply_register_list("degraded=0").unwrap().degraded);
    assert!(!o.apply_register_list("discard=0").unwrap().degraded);
    // Bad input changes nothing and says what is expected.
    let before = o;
    let e = o.apply_register_list("discard=1,degraded=yes").unwrap_err();
    assert_eq!(e.kind, OptErrorKind::BadValue);
    assert_eq!(
        e.to_string(),
        "option 'degraded': bad value 'yes' (expected 0 or 1)"
    );
    assert_eq!(o, before);
    let e = o.apply_register_list("degraded=1,nosuch=1").unwrap_err();
    assert_eq!(e.kind, OptErrorKind::Unknown);
    assert_eq!(o, before);
    // Register-time rules hold for the options in it.
    assert!(Options::defaults()
        .apply_list("degraded=1", When::ANY)
        .is_err());
}

#[test]
fn display_lists_every_option() {
    let o = Options::defaults();
    let s = o.display().to_string();
    assert_eq!(
        s,
        "metadata_replicas=2,data_replicas=1,allocator_stuck_timeout=30,\
         alloc_wait_policy=wait,alloc_deadline=0,discard=1,replay_discard_priority=1,btree_cache_size=64"
    );
    let mut back = Options::defaults();
    back.apply_list(&s, When::ANY).unwrap();
    assert_eq!(back.set_mask().count_ones() as usize, NR_OPTS);
}

proptest! {
    #![proptest_config(common::config(256))]

    #[test]
    fn uint_parse_matches_std(v in any::<u64>()) {
        let d = OptId::AllocDeadline.desc();
        let text = v.to_string();
        let expect = u32::try_from(v).ok().filter(|v| *v <= 86_400);
        prop_assert_eq!(d.parse(&text).ok(), expect);
    }

    #[test]
    fn unknown_names_are_refused(name in "[a-z_]{1,30}") {
        prop_assume!(OptId::from_name(&name).is_none());
        let list = format!("{name}=1");
        let e = parse_list(&list).next().unwrap().unwrap_err();
        prop_assert_eq!(e.kind, OptErrorKind::Unknown);
    }
}
