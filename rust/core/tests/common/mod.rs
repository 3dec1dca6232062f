// SPDX-License-Identifier: GPL-2.0

//! proptest strategies for every on-disk structure, shared by the test files.

#![allow(dead_code)]

use bkcore::buckets::{BucketCounts, BucketState};
use bkcore::format::{
    alloc_table, btree_node::NodeWriter, checkpoint::MAX_PENDING, journal::EntryWriter,
    max_node_entries, BtreePtr, Checkpoint, Layout, NodeHeader, Pending, Record, Replica,
    Superblock, Value, BLOCK_SIZE, MAX_COUNTER, MAX_LEVEL, MAX_MEMBERS,
};
use bkcore::member_state::MemberState;
use bkcore::options::{OptId, OptType, Options, OPTIONS};
use bkcore::uuid::{Uuid, NIL};
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

pub(crate) const VOLUME: Uuid = [0x42; 16];

/// `cases` cases, and no regression files: with this crate's layout proptest would
/// write them next to the kernel sources. A failure prints its minimal input instead.
pub(crate) fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

pub(crate) fn uuid() -> impl Strategy<Value = Uuid> {
    any::<[u8; 16]>().prop_map(|mut u| {
        u[0] |= 1;
        u
    })
}

pub(crate) fn options(members: u32) -> impl Strategy<Value = Options> {
    let per_opt: Vec<_> = OPTIONS
        .iter()
        .map(|d| {
            let max = match d.ty {
                OptType::Uint { max, .. } => max,
                OptType::Bool => 1,
                OptType::Enum(n) => n.len() as u32 - 1,
            };
            let max = if matches!(d.id, OptId::MetadataReplicas | OptId::DataReplicas) {
                max.min(members)
            } else {
                max
            };
            let min = match d.ty {
                OptType::Uint { min, .. } => min,
                _ => 0,
            };
            (any::<bool>(), min..=max)
        })
        .collect();
    per_opt.prop_map(move |vals| {
        let mut o = Options::defaults();
        for (id, (set, v)) in OptId::ALL.into_iter().zip(vals) {
            if set {
                o.set(id, v).unwrap();
            }
        }
        // An unset option takes its default, which must fit the volume too.
        for id in [OptId::MetadataReplicas, OptId::DataReplicas] {
            if o.get(id) > members {
                o.set(id, members).unwrap();
            }
        }
        o
    })
}

pub(crate) fn superblock() -> impl Strategy<Value = Superblock> {
    (
        1u32..=MAX_MEMBERS as u32,
        16u32..=20,
        1000u64..=3_000_000,
        16u32..=1024,
    )
        .prop_flat_map(|(count, shift, buckets, jblocks)| {
            let bs = 1u32 << shift;
            (
                Just((count, bs, buckets, jblocks)),
                0..count,
                uuid(),
                vec(uuid(), count as usize),
                1u64..=MAX_COUNTER,
                4u32..=max_node_entries(bs),
                0u32..=100,
                options(count),
            )
        })
        .prop_map(
            |((count, bs, buckets, jblocks), index, volume, uuids, seq, nme, reserve, options)| {
                let mut members = [NIL; MAX_MEMBERS];
                for (i, (m, u)) in members.iter_mut().zip(uuids).enumerate() {
                    *m = u;
                    m[1] = i as u8; // distinct
                }
                // Every state on the members in use (from seq's bits), rw past them.
                let mut member_states = [MemberState::Rw; MAX_MEMBERS];
                for (i, s) in member_states.iter_mut().take(count as usize).enumerate() {
                    *s = MemberState::ALL[((seq >> (2 * (i % 32))) & 3) as usize];
                }
                Superblock {
                    volume_uuid: volume,
                    member_uuid: members[index as usize],
                    seq,
                    member_index: index,
                    member_count: count,
                    members,
                    bucket_size: bs,
                    btree_reserve: reserve,
                    bucket_count: buckets,
                    node_max_entries: nme,
                    journal_blocks: jblocks,
                    options,
                    member_states,
                }
            },
        )
}

pub(crate) fn replica() -> impl Strategy<Value = Replica> {
    (0u8..MAX_MEMBERS as u8, any::<u64>()).prop_map(|(dev, bucket)| Replica { dev, bucket })
}

pub(crate) fn ptr() -> impl Strategy<Value = BtreePtr> {
    vec(replica(), 1..=4).prop_map(|r| BtreePtr::new(&r).unwrap())
}

pub(crate) fn state() -> impl Strategy<Value = BucketState> {
    (0usize..5).prop_map(|i| BucketState::ALL[i])
}

pub(crate) fn counts() -> impl Strategy<Value = BucketCounts> {
    any::<[u64; 5]>().prop_map(BucketCounts)
}

pub(crate) fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        1u64..=MAX_COUNTER,
        0u64..=MAX_COUNTER,
        0u32..MAX_MEMBERS as u32,
        0u8..=MAX_LEVEL,
        ptr(),
        counts(),
    )
        .prop_map(
            |(generation, journal_seq, member_index, root_level, root, counts)| Checkpoint {
                generation,
                journal_seq,
                member_index,
                root_level,
                root,
                counts,
                missing: [0; MAX_MEMBERS],
            },
        )
}

/// A checkpoint of a degraded volume: some members missing (each since an earlier
/// generation) and pending records of theirs, sorted and one per bucket.
pub(crate) fn degraded_checkpoint() -> impl Strategy<Value = (Checkpoint, Vec<Pending>)> {
    (
        checkpoint().prop_filter("a generation before", |cp| cp.generation > 1),
        btree_set(0u32..MAX_MEMBERS as u32, 1..4),
        btree_set((0u32..4, any::<u64>()), 0..MAX_PENDING),
        vec(
            prop_oneof![
                Just(BucketState::Free),
                Just(BucketState::NeedDiscard),
                Just(BucketState::Btree),
                Just(BucketState::User),
            ],
            MAX_PENDING,
        ),
    )
        .prop_map(|(mut cp, missing, pending, states)| {
            for m in missing {
                // Never the member holding this copy: it was there to write it.
                let m = if m == cp.member_index {
                    (m + 1) % MAX_MEMBERS as u32
                } else {
                    m
                };
                cp.missing[m as usize] = 1 + u64::from(m) % (cp.generation - 1);
            }
            let ms: Vec<u32> = (0..MAX_MEMBERS as u32)
                .filter(|&m| cp.missing[m as usize] != 0)
                .collect();
            let mut pending: Vec<Pending> = if ms.is_empty() {
                Vec::new()
            } else {
                pending
                    .into_iter()
                    .zip(states)
                    .map(|((m, bucket), state)| Pending {
                        member: ms[m as usize % ms.len()],
                        bucket,
                        state,
                    })
                    .collect()
            };
            pending.sort();
            pending.dedup_by_key(|p| (p.member, p.bucket));
            (cp, pending)
        })
}

pub(crate) fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (any::<u64>(), any::<Value>()).prop_map(|(key, value)| Record::Insert { key, value }),
        (any::<u32>(), any::<u64>(), state()).prop_map(|(member, bucket, state)| {
            Record::BucketState {
                member,
                bucket,
                state,
            }
        }),
    ]
}

/// A journal entry: seq and records.
pub(crate) fn entry() -> impl Strategy<Value = (u64, Vec<Record>)> {
    (1u64..=MAX_COUNTER, vec(record(), 0..=300))
}

/// Encodes an entry; returns the buffer cut to whole blocks.
pub(crate) fn encode_entry(seq: u64, recs: &[Record]) -> Vec<u8> {
    let mut buf = vec![0u8; bkcore::format::journal::MAX_ENTRY_SIZE];
    let mut w = EntryWriter::new(&mut buf).unwrap();
    for r in recs {
        w.push(r).unwrap();
    }
    let n = w.finish(&VOLUME, seq).unwrap();
    buf.truncate(n);
    buf
}

/// A btree node's contents.
#[derive(Clone, Debug)]
pub(crate) struct NodeSpec {
    pub hdr: NodeHeader,
    pub leaves: Vec<(u64, Value)>,
    pub children: Vec<(u64, BtreePtr)>,
}

pub(crate) fn node(max_entries: usize) -> impl Strategy<Value = NodeSpec> {
    (
        0u8..=3,
        0u64..=MAX_COUNTER,
        btree_set(any::<u64>(), 1..=max_entries + 1),
    )
        .prop_flat_map(move |(level, seq, keys)| {
            let mut keys: Vec<u64> = keys.into_iter().collect();
            // One key (not an entry) widens the range on either side.
            let lo = keys
                .remove(0)
                .min(keys.first().copied().unwrap_or(u64::MAX));
            let hi = keys.last().copied().unwrap_or(lo).max(lo);
            let n = keys.len();
            (
                Just((level, seq, lo, keys)),
                hi..=u64::MAX,
                vec(any::<Value>(), n),
                vec(ptr(), n),
            )
        })
        .prop_map(|((level, seq, lo, mut keys), hi, values, ptrs)| {
            if level > 0 {
                if keys.is_empty() {
                    keys.push(lo);
                }
                keys[0] = lo;
            }
            let hdr = NodeHeader {
                level,
                seq,
                min_key: lo,
                max_key: hi,
            };
            if level == 0 {
                NodeSpec {
                    hdr,
                    leaves: keys.into_iter().zip(values).collect(),
                    children: vec![],
                }
            } else {
                let mut ptrs = ptrs;
                while ptrs.len() < keys.len() {
                    ptrs.push(BtreePtr::new(&[Replica::default()]).unwrap());
                }
                NodeSpec {
                    hdr,
                    leaves: vec![],
                    children: keys.into_iter().zip(ptrs).collect(),
                }
            }
        })
}

/// Encodes a node into a buffer of `size` bytes; returns the buffer and `len`.
pub(crate) fn encode_node(spec: &NodeSpec, max_entries: u32, size: usize) -> (Vec<u8>, usize) {
    let mut buf = vec![0xa5u8; size];
    let mut w = NodeWriter::new(&mut buf, spec.hdr, max_entries).unwrap();
    for (k, v) in &spec.leaves {
        w.push_leaf(*k, v).unwrap();
    }
    for (k, p) in &spec.children {
        w.push_child(*k, p).unwrap();
    }
    let len = w.finish(&VOLUME).unwrap();
    (buf, len)
}

/// A small layout and the states of alloc block 0 (the last, partial block).
pub(crate) fn alloc_case() -> impl Strategy<Value = (Layout, Vec<BucketState>)> {
    (100u64..=4056).prop_flat_map(|buckets| {
        let l = Layout::new(1 << 16, buckets, 16, 100).unwrap();
        (Just(l), vec(state(), buckets as usize)).prop_map(|(l, states)| {
            let states = region_states(&l, states.into_iter());
            (l, states)
        })
    })
}

/// `states` made to respect the layout: `sb` exactly in the metadata region (elsewhere an
/// `sb` becomes `free`), as the decoder demands.
pub(crate) fn region_states(
    l: &Layout,
    states: impl Iterator<Item = BucketState>,
) -> Vec<BucketState> {
    states
        .enumerate()
        .map(|(b, s)| match (l.is_sb_bucket(b as u64), s) {
            (true, _) => BucketState::Sb,
            (false, BucketState::Sb) => BucketState::Free,
            (false, s) => s,
        })
        .collect()
}

/// Alloc table block `block` of member `member`, generation 7.
pub(crate) fn alloc_id(member: u32, block: u32) -> alloc_table::BlockId<'static> {
    alloc_table::BlockId {
        volume: &VOLUME,
        member,
        block,
        generation: 7,
    }
}

pub(crate) fn encode_alloc(l: &Layout, states: &[BucketState]) -> Vec<u8> {
    let mut buf = vec![0u8; BLOCK_SIZE];
    alloc_table::encode_block(&mut buf, l, alloc_id(3, 0), states.iter().copied()).unwrap();
    buf
}
