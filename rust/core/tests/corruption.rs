// SPDX-License-Identifier: GPL-2.0

//! Every single-byte corruption of the checksummed range of a superblock, checkpoint,
//! alloc table block, journal entry and btree node is detected (exhaustive over byte
//! positions, three corruption patterns each).

mod common;

use bkcore::buckets::BucketState;
use bkcore::format::{
    alloc_table, checkpoint, decode_entry, decode_node, BtreePtr, Checkpoint, ErrorKind, Layout,
    NodeHeader, Pending, Record, Replica, Superblock, BLOCK_SIZE, MAX_MEMBERS,
};
use bkcore::options::Options;
use bkcore::uuid::NIL;
use common::*;

const PATTERNS: [u8; 3] = [0x01, 0x80, 0xff];

fn each_corruption(buf: &[u8], range: std::ops::Range<usize>, ok: impl Fn(&[u8]) -> bool) {
    let mut b = buf.to_vec();
    assert!(ok(&b), "the uncorrupted structure must decode");
    for i in range {
        for p in PATTERNS {
            b[i] ^= p;
            assert!(!ok(&b), "corruption {p:#x} at byte {i} not detected");
            b[i] ^= p;
        }
    }
}

fn sample_sb() -> Superblock {
    let mut members = [NIL; 32];
    members[0] = [1; 16];
    members[1] = [2; 16];
    Superblock {
        volume_uuid: VOLUME,
        member_uuid: [2; 16],
        seq: 3,
        member_index: 1,
        member_count: 2,
        members,
        bucket_size: 1 << 16,
        btree_reserve: 2,
        bucket_count: 46_790,
        node_max_entries: 1364,
        journal_blocks: 256,
        options: Options::defaults(),
        member_states: Default::default(),
    }
}

#[test]
fn superblock_every_byte() {
    let mut buf = vec![0u8; BLOCK_SIZE];
    sample_sb().encode(&mut buf).unwrap();
    each_corruption(&buf, 0..BLOCK_SIZE, |b| Superblock::decode(b).is_ok());
}

#[test]
fn superblock_errors_name_field_and_offset() {
    let mut buf = vec![0u8; BLOCK_SIZE];
    sample_sb().encode(&mut buf).unwrap();
    buf[64] ^= 1;
    let e = Superblock::decode(&buf).unwrap_err();
    assert_eq!((e.field, e.offset), ("crc32c", 8));
    assert!(matches!(e.kind, ErrorKind::BadChecksum { .. }));
    // With the checksum fixed up, the field itself is named.
    let mut sb = sample_sb();
    sb.bucket_size = 3 << 16;
    assert_eq!(sb.encode(&mut buf).unwrap_err().field, "bucket_size");
    assert_eq!(
        format!("{}", sb.validate().unwrap_err()),
        "superblock: field bucket_size at offset 64: 196608 is not a power of two"
    );
    let short = Superblock::decode(&buf[..100]).unwrap_err();
    assert!(matches!(
        short.kind,
        ErrorKind::TooShort {
            need: 4096,
            have: 100
        }
    ));
}

#[test]
fn checkpoint_every_byte() {
    let cp = Checkpoint {
        generation: 9,
        journal_seq: 77,
        member_index: 1,
        root_level: 1,
        root: BtreePtr::new(&[
            Replica { dev: 0, bucket: 20 },
            Replica { dev: 1, bucket: 21 },
        ])
        .unwrap(),
        counts: bkcore::buckets::BucketCounts([1, 2, 3, 4, 5]),
        missing: [0; MAX_MEMBERS],
    };
    let mut buf = vec![0u8; BLOCK_SIZE];
    cp.encode(&mut buf, &VOLUME).unwrap();
    each_corruption(&buf, 0..BLOCK_SIZE, |b| {
        Checkpoint::decode(b, &VOLUME).is_ok()
    });
}

fn degraded_sample() -> (Checkpoint, Vec<Pending>) {
    let mut missing = [0; MAX_MEMBERS];
    missing[0] = 7;
    missing[3] = 5;
    let cp = Checkpoint {
        generation: 9,
        journal_seq: 77,
        member_index: 1,
        root_level: 0,
        root: BtreePtr::new(&[Replica { dev: 1, bucket: 20 }]).unwrap(),
        counts: bkcore::buckets::BucketCounts([1, 2, 3, 4, 5]),
        missing,
    };
    let pending = vec![
        Pending {
            member: 0,
            bucket: 30,
            state: BucketState::User,
        },
        Pending {
            member: 0,
            bucket: 31,
            state: BucketState::NeedDiscard,
        },
        Pending {
            member: 3,
            bucket: 2,
            state: BucketState::User,
        },
    ];
    (cp, pending)
}

#[test]
fn degraded_checkpoint_every_byte() {
    let (cp, pending) = degraded_sample();
    let mut buf = vec![0u8; BLOCK_SIZE];
    cp.encode_with(&mut buf, &VOLUME, &pending).unwrap();
    each_corruption(&buf, 0..BLOCK_SIZE, |b| {
        Checkpoint::decode(b, &VOLUME).is_ok()
    });
}

/// `buf` with `f` applied and its checksum made good again: what a writer with a bug (not
/// a torn write) would leave.
fn resealed(buf: &[u8], f: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut b = buf.to_vec();
    f(&mut b);
    let c = bkcore::crc32c::crc32c(&b[8..BLOCK_SIZE]);
    b[4..8].copy_from_slice(&c.to_le_bytes());
    b
}

#[test]
fn degraded_checkpoint_fields_are_checked_on_both_sides() {
    let (cp, pending) = degraded_sample();
    let mut buf = vec![0u8; BLOCK_SIZE];
    cp.encode_with(&mut buf, &VOLUME, &pending).unwrap();
    // Encoding refuses what decoding would, naming the same field.
    let field = |cp: &Checkpoint, p: &[Pending]| {
        let mut b = vec![0u8; BLOCK_SIZE];
        cp.encode_with(&mut b, &VOLUME, p).unwrap_err().field
    };
    let mut own = cp;
    own.missing[1] = 3;
    assert_eq!(field(&own, &pending), "missing");
    let mut future = cp;
    future.missing[0] = 9;
    assert_eq!(field(&future, &pending), "missing");
    let mut present = pending.clone();
    present[2].member = 2;
    assert_eq!(field(&cp, &present), "pending.member");
    let mut unordered = pending.clone();
    unordered.swap(0, 1);
    assert_eq!(field(&cp, &unordered), "pending.bucket");
    let mut twice = pending.clone();
    twice[1].bucket = 30;
    assert_eq!(field(&cp, &twice), "pending.bucket");
    let mut sb = pending.clone();
    sb[0].state = BucketState::Sb;
    assert_eq!(field(&cp, &sb), "pending.state");
    let many: Vec<Pending> = (0..=checkpoint::MAX_PENDING as u64)
        .map(|bucket| Pending {
            member: 0,
            bucket,
            state: BucketState::User,
        })
        .collect();
    assert_eq!(field(&cp, &many), "nr_pending");
    assert!(cp
        .encode_with(&mut vec![0u8; BLOCK_SIZE], &VOLUME, &many[1..])
        .is_ok());
    // Decoding, of a block whose checksum is good.
    let e = |b: Vec<u8>| Checkpoint::decode(&b, &VOLUME).unwrap_err();
    let p0 = checkpoint::off::PENDING;
    let cases: [(&str, Vec<u8>); 6] = [
        (
            "missing",
            resealed(&buf, |b| b[checkpoint::off::MISSING + 8] = 1),
        ),
        (
            "nr_pending",
            resealed(&buf, |b| b[checkpoint::off::NR_PENDING + 1] = 1),
        ),
        (
            "pending.state",
            resealed(&buf, |b| b[p0 + checkpoint::off::P_STATE] = 3),
        ),
        (
            "pending.state",
            resealed(&buf, |b| b[p0 + checkpoint::off::P_STATE] = 9),
        ),
        (
            "pending.reserved",
            resealed(&buf, |b| b[p0 + checkpoint::off::P_RESERVED] = 1),
        ),
        // A fourth record past nr_pending: the rest of the block is reserved.
        (
            "reserved",
            resealed(&buf, |b| b[p0 + 3 * checkpoint::PENDING_SIZE] = 1),
        ),
    ];
    for (want, b) in cases {
        assert_eq!(e(b).field, want);
    }
    // Every member present: the layout of a checkpoint before degraded registration.
    let whole = Checkpoint {
        missing: [0; MAX_MEMBERS],
        ..cp
    };
    let mut old = vec![0u8; BLOCK_SIZE];
    whole.encode(&mut old, &VOLUME).unwrap();
    assert!(!Checkpoint::decode(&old, &VOLUME).unwrap().degraded());
    assert_eq!(checkpoint::pending(&old).count(), 0);
}

#[test]
fn alloc_block_every_byte() {
    let l = Layout::new(1 << 16, 3000, 16, 100).unwrap();
    let states = region_states(&l, (0..3000).map(|i| BucketState::ALL[i % 5]));
    let buf = encode_alloc(&l, &states);
    each_corruption(&buf, 0..BLOCK_SIZE, |b| {
        alloc_table::decode_block(b, &l, alloc_id(3, 0)).is_ok()
    });
}

#[test]
fn journal_entry_every_byte() {
    // Two blocks' worth of records, both kinds.
    let recs: Vec<Record> = (0..100u64)
        .map(|i| {
            if i % 3 == 0 {
                Record::BucketState {
                    member: 1,
                    bucket: i,
                    state: BucketState::NeedDiscard,
                }
            } else {
                Record::Insert {
                    key: i * 11,
                    value: [i as u8; 32],
                }
            }
        })
        .collect();
    let buf = encode_entry(5, &recs);
    let len = 48 + 48 * recs.len();
    assert_eq!(buf.len(), 2 * BLOCK_SIZE);
    each_corruption(&buf, 0..len, |b| decode_entry(b, &VOLUME).is_ok());
}

fn node_every_byte(level: u8, n: u64) {
    let hdr = NodeHeader {
        level,
        seq: 4,
        min_key: 10,
        max_key: 100_000,
    };
    let spec = NodeSpec {
        hdr,
        leaves: if level == 0 {
            (0..n).map(|i| (10 + i * 7, [i as u8; 32])).collect()
        } else {
            vec![]
        },
        children: if level > 0 {
            (0..n)
                .map(|i| {
                    let p = BtreePtr::new(&[
                        Replica {
                            dev: 0,
                            bucket: 100 + i,
                        },
                        Replica {
                            dev: 1,
                            bucket: 200 + i,
                        },
                    ])
                    .unwrap();
                    (10 + i * 7, p)
                })
                .collect()
        } else {
            vec![]
        },
    };
    let (buf, len) = encode_node(&spec, 200, 4 * BLOCK_SIZE);
    each_corruption(&buf, 0..len, |b| decode_node(b, &VOLUME, 200).is_ok());
}

#[test]
fn btree_leaf_every_byte() {
    node_every_byte(0, 150);
}

#[test]
fn btree_interior_every_byte() {
    node_every_byte(2, 120);
}

/// Sequence numbers and generations near `u64::MAX` in a checksum-valid structure are
/// refused at decode, naming the field: the module adds one to them.
#[test]
fn counters_past_max_counter_are_refused() {
    use bkcore::format::MAX_COUNTER;
    let refused = |e: bkcore::format::FormatError, field: &str| {
        assert_eq!(e.field, field);
        assert!(
            matches!(e.kind, ErrorKind::OutOfRange { value, max, .. } if value > max && max == MAX_COUNTER),
            "{e}"
        );
    };
    let mut buf = vec![0u8; BLOCK_SIZE];
    for seq in [MAX_COUNTER + 1, u64::MAX] {
        let mut sb = sample_sb();
        sb.seq = seq;
        match sb.encode(&mut buf) {
            Ok(()) => refused(Superblock::decode(&buf).unwrap_err(), "seq"),
            Err(e) => refused(e, "seq"),
        }
        let cp = Checkpoint {
            generation: seq,
            journal_seq: 1,
            member_index: 0,
            root_level: 0,
            root: BtreePtr::new(&[Replica { dev: 0, bucket: 20 }]).unwrap(),
            counts: bkcore::buckets::BucketCounts([1, 2, 3, 4, 5]),
            missing: [0; MAX_MEMBERS],
        };
        match cp.encode(&mut buf, &VOLUME) {
            Ok(()) => refused(Checkpoint::decode(&buf, &VOLUME).unwrap_err(), "generation"),
            Err(e) => refused(e, "generation"),
        }
        let cp = Checkpoint {
            generation: 1,
            journal_seq: seq,
            ..cp
        };
        match cp.encode(&mut buf, &VOLUME) {
            Ok(()) => refused(
                Checkpoint::decode(&buf, &VOLUME).unwrap_err(),
                "journal_seq",
            ),
            Err(e) => refused(e, "journal_seq"),
        }
        let entry = encode_entry(seq, &[]);
        refused(decode_entry(&entry, &VOLUME).unwrap_err(), "seq");
    }
    // MAX_COUNTER itself is fine.
    let mut sb = sample_sb();
    sb.seq = MAX_COUNTER;
    sb.encode(&mut buf).unwrap();
    assert_eq!(Superblock::decode(&buf).unwrap().seq, MAX_COUNTER);
}

/// Re-seals a superblock after an edit (crc32c of bytes 12..4096 at 8).
fn reseal_sb(buf: &mut [u8]) {
    let crc = bkcore::crc32c::crc32c(&buf[12..BLOCK_SIZE]);
    buf[8..12].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn older_version_and_bad_member_states_are_refused_by_name() {
    let mut buf = vec![0u8; BLOCK_SIZE];
    sample_sb().encode(&mut buf).unwrap();
    buf[12..16].copy_from_slice(&1u32.to_le_bytes());
    reseal_sb(&mut buf);
    let e = Superblock::decode(&buf).unwrap_err();
    assert_eq!(
        (e.field, e.kind),
        ("version", ErrorKind::UnsupportedVersion(1))
    );
    assert!(
        e.to_string().contains("format version 1 is not supported"),
        "{e}"
    );

    // Member 1 ro: a state, read back.
    sample_sb().encode(&mut buf).unwrap();
    buf[256 + 1] = 1;
    reseal_sb(&mut buf);
    let sb = Superblock::decode(&buf).unwrap();
    assert_eq!(sb.member_states[1], bkcore::member_state::MemberState::Ro);
    assert_eq!(sb.member_states[0], bkcore::member_state::MemberState::Rw);
    // No state 4; none for a member past member_count (2).
    for (at, v, kind) in [
        (
            257,
            4,
            ErrorKind::OutOfRange {
                value: 4,
                min: 0,
                max: 3,
            },
        ),
        (258, 1, ErrorKind::NotZero),
    ] {
        sample_sb().encode(&mut buf).unwrap();
        buf[at] = v;
        reseal_sb(&mut buf);
        let e = Superblock::decode(&buf).unwrap_err();
        assert_eq!((e.field, e.offset, e.kind), ("member_states", at, kind));
        assert!(e.to_string().contains("member_states"), "{e}");
    }
}

#[test]
fn a_torn_superblock_copy_falls_back_to_the_other() {
    let old = sample_sb();
    let new = Superblock { seq: 4, ..old };
    let torn = Err(bkcore::format::FormatError::new(
        "superblock",
        "crc32c",
        8,
        ErrorKind::BadMagic,
    ));
    use bkcore::format::superblock::pick_copy;
    // Cut short after copy 0: copy 0 new, copy 1 old; the newer wins.
    assert_eq!(pick_copy(Ok(new), Ok(old)).unwrap().seq, 4);
    assert_eq!(pick_copy(Ok(old), Ok(new)).unwrap().seq, 4);
    // Either one torn: the other.
    assert_eq!(pick_copy(torn, Ok(old)).unwrap().seq, 3);
    assert_eq!(pick_copy(Ok(new), torn).unwrap().seq, 4);
    assert_eq!(pick_copy(torn, torn).unwrap_err().field, "crc32c");
    // Two valid copies of different devices: refused, naming the field.
    let other = Superblock {
        volume_uuid: [9; 16],
        ..old
    };
    assert_eq!(
        pick_copy(Ok(old), Ok(other)).unwrap_err().field,
        "volume_uuid"
    );
    let twin = Superblock {
        member_index: 0,
        member_uuid: [1; 16],
        ..old
    };
    assert_eq!(
        pick_copy(Ok(old), Ok(twin)).unwrap_err().field,
        "member_index"
    );
    let bigger = Superblock {
        bucket_count: old.bucket_count + 1,
        ..old
    };
    assert_eq!(
        pick_copy(Ok(old), Ok(bigger)).unwrap_err().field,
        "bucket_count"
    );
    // One seq, two contents: not one write's two copies.
    let mut opts = old.options;
    opts.set(bkcore::options::OptId::Discard, 0).unwrap();
    let same_seq = Superblock {
        options: opts,
        ..old
    };
    assert_eq!(pick_copy(Ok(old), Ok(same_seq)).unwrap_err().field, "seq");
}

#[test]
fn options_come_from_the_write_every_member_finished() {
    use bkcore::format::superblock::options_source;
    let a = sample_sb();
    // Member 0 took a write (seq 4) that failed on member 1 (still 3): member 1's.
    let sbs = [Superblock { seq: 4, ..a }, a];
    assert_eq!(options_source(&sbs), 1);
    assert_eq!(options_source(&[a, a]), 0);
    assert_eq!(options_source(&[a]), 0);
}

#[test]
fn alloc_block_of_another_generation_is_refused() {
    let l = Layout::new(1 << 16, 3000, 16, 100).unwrap();
    let states = region_states(&l, (0..3000).map(|i| BucketState::ALL[i % 5]));
    let buf = encode_alloc(&l, &states);
    let mut id = alloc_id(3, 0);
    id.generation = 5;
    let e = alloc_table::decode_block(&buf, &l, id).unwrap_err();
    assert_eq!(
        (e.field, e.kind),
        (
            "generation",
            ErrorKind::Mismatch {
                expected: 5,
                found: 7
            }
        )
    );
}

#[test]
fn alloc_block_sb_exactly_in_the_metadata_region() {
    let l = Layout::new(1 << 16, 3000, 16, 100).unwrap();
    let good = region_states(&l, (0..3000).map(|_| BucketState::Free));
    let sb = l.sb_buckets as usize;
    for (bucket, to, inside) in [
        (0, BucketState::Free, true),
        (sb - 1, BucketState::User, true),
        (sb, BucketState::Sb, false),
        (2999, BucketState::Sb, false),
    ] {
        let mut states = good.clone();
        states[bucket] = to;
        let buf = encode_alloc(&l, &states);
        let e = alloc_table::decode_block(&buf, &l, alloc_id(3, 0)).unwrap_err();
        assert_eq!(
            (e.field, e.kind),
            (
                "states",
                ErrorKind::SbRegion {
                    bucket: bucket as u64,
                    inside
                }
            )
        );
    }
}
