// SPDX-License-Identifier: GPL-2.0

//! Fuzz targets, as bounded property tests: no decoder panics on any input.
//!
//! Two kinds of input per decoder: arbitrary bytes (they mostly stop at the magic), and a
//! valid encoding with random bytes changed and the checksum fixed up, which reaches every
//! field check. When such a mutant is accepted, re-encoding its value must give the same
//! bytes back (the encoding is canonical: no field is silently ignored).

mod common;

use bkcore::crc32c::crc32c;
use bkcore::format::{
    alloc_table, btree_node, checkpoint, decode_entry, decode_node, journal, BtreePtr, Checkpoint,
    ChildSpec, Layout, NodeHeader, NodeWriter, Replica, Superblock, BLOCK_SIZE,
};
use bkcore::options::{parse_list, Options, When, OPTIONS};
use common::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn mutate(buf: &mut [u8], edits: &[(usize, u8)], limit: usize) {
    for &(pos, val) in edits {
        let i = pos % limit.max(1);
        buf[i] = val;
    }
}

fn fix_crc(buf: &mut [u8], crc_off: usize, from: usize, to: usize) {
    if to <= buf.len() && from <= to {
        let c = crc32c(&buf[from..to]);
        buf[crc_off..crc_off + 4].copy_from_slice(&c.to_le_bytes());
    }
}

fn len_field(buf: &[u8], off: usize) -> usize {
    u32::from_le_bytes(buf[off..off + 4].try_into().unwrap()) as usize
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    vec((any::<usize>(), any::<u8>()), 1..8)
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn fuzz_arbitrary_bytes(data in vec(any::<u8>(), 0..9000)) {
        let l = Layout::new(1 << 16, 5000, 16, 100).unwrap();
        let _ = Superblock::decode(&data);
        let _ = Checkpoint::decode(&data, &VOLUME);
        let _ = alloc_table::decode_block(&data, &l, alloc_id(0, 1));
        let _ = decode_entry(&data, &VOLUME);
        let _ = journal::entry_len(&data);
        let _ = decode_node(&data, &VOLUME, u32::MAX);
        let _ = btree_node::node_len(&data);
        let _ = bkcore::uuid::parse(&String::from_utf8_lossy(&data));
        // Arbitrary bytes behind valid magics.
        for magic in [&b"bkalloc\0"[..], b"BKCP", b"BKAT", b"BKJE", b"BKBN"] {
            let mut d = data.clone();
            if d.len() >= magic.len() {
                d[..magic.len()].copy_from_slice(magic);
            }
            let _ = Superblock::decode(&d);
            let _ = Checkpoint::decode(&d, &VOLUME);
            let _ = alloc_table::decode_block(&d, &l, alloc_id(0, 0));
            let _ = decode_entry(&d, &VOLUME);
            let _ = decode_node(&d, &VOLUME, u32::MAX);
        }
    }

    #[test]
    fn fuzz_superblock_mutants(sb in superblock(), e in edits()) {
        let mut buf = vec![0u8; BLOCK_SIZE];
        sb.encode(&mut buf).unwrap();
        mutate(&mut buf, &e, 1100); // the populated part
        fix_crc(&mut buf, 8, 12, BLOCK_SIZE);
        if let Ok(back) = Superblock::decode(&buf) {
            let mut again = vec![0u8; BLOCK_SIZE];
            back.encode(&mut again).unwrap();
            prop_assert_eq!(again, buf);
        }
    }

    #[test]
    fn fuzz_checkpoint_mutants(cp in checkpoint(), e in edits()) {
        let mut buf = vec![0u8; BLOCK_SIZE];
        cp.encode(&mut buf, &VOLUME).unwrap();
        mutate(&mut buf, &e, 140);
        fix_crc(&mut buf, 4, 8, BLOCK_SIZE);
        if let Ok(back) = Checkpoint::decode(&buf, &VOLUME) {
            let mut again = vec![0u8; BLOCK_SIZE];
            back.encode(&mut again, &VOLUME).unwrap();
            prop_assert_eq!(again, buf);
        }
    }

    #[test]
    fn fuzz_degraded_checkpoint_mutants((cp, pending) in degraded_checkpoint(), e in edits()) {
        let mut buf = vec![0u8; BLOCK_SIZE];
        cp.encode_with(&mut buf, &VOLUME, &pending).unwrap();
        // The populated part: header, missing, and the pending records and one more.
        let end = checkpoint::off::PENDING + (pending.len() + 1) * checkpoint::PENDING_SIZE;
        mutate(&mut buf, &e, end.min(BLOCK_SIZE));
        fix_crc(&mut buf, 4, 8, BLOCK_SIZE);
        if let Ok(back) = Checkpoint::decode(&buf, &VOLUME) {
            let kept: Vec<_> = checkpoint::pending(&buf).collect();
            let mut again = vec![0u8; BLOCK_SIZE];
            back.encode_with(&mut again, &VOLUME, &kept).unwrap();
            prop_assert_eq!(again, buf);
        }
    }

    #[test]
    fn fuzz_alloc_block_mutants((l, states) in alloc_case(), e in edits()) {
        let mut buf = encode_alloc(&l, &states);
        mutate(&mut buf, &e, BLOCK_SIZE);
        fix_crc(&mut buf, 4, 8, BLOCK_SIZE);
        if let Ok(b) = alloc_table::decode_block(&buf, &l, alloc_id(3, 0)) {
            let s: Vec<_> = b.iter().collect();
            prop_assert_eq!(encode_alloc(&l, &s), buf);
        }
    }

    #[test]
    fn fuzz_journal_entry_mutants((seq, recs) in entry(), e in edits()) {
        let mut buf = encode_entry(seq, &recs);
        let n = buf.len();
        mutate(&mut buf, &e, n);
        let len = len_field(&buf, 32);
        fix_crc(&mut buf, 4, 8, len);
        if let Ok(ent) = decode_entry(&buf, &VOLUME) {
            let back = encode_entry(ent.seq(), &ent.records().collect::<Vec<_>>());
            prop_assert_eq!(&back[..len], &buf[..len]);
        }
    }

    #[test]
    fn fuzz_btree_node_mutants(spec in node(120), e in edits()) {
        let size = 6 * BLOCK_SIZE;
        let (mut buf, len) = encode_node(&spec, 120, size);
        mutate(&mut buf, &e, len + 16);
        let len = len_field(&buf, 48);
        fix_crc(&mut buf, 4, 8, len);
        if let Ok(n) = decode_node(&buf, &VOLUME, 120) {
            let mut again = vec![0u8; size];
            let mut w = NodeWriter::new(&mut again, n.header(), 120).unwrap();
            for (k, v) in n.leaves() {
                w.push_leaf(k, v).unwrap();
            }
            for (k, p) in n.children() {
                w.push_child(k, &p).unwrap();
            }
            prop_assert_eq!(w.finish(&VOLUME).unwrap(), len);
            prop_assert_eq!(&again[..len], &buf[..len]);
        }
    }

    #[test]
    fn fuzz_option_lists(s in "[a-z_=,0-9 ]{0,60}") {
        for (id, v) in parse_list(&s).flatten() {
            let d = id.desc();
            let text = d.display(v).to_string();
            prop_assert_eq!(d.parse(&text), Ok(v));
        }
        let mut o = Options::defaults();
        let before = o;
        if o.apply_list(&s, When::ANY).is_err() {
            prop_assert_eq!(o, before);
        }
        let _ = OPTIONS.len();
    }
}

#[test]
fn writer_refuses_invalid_nodes() {
    let hdr = NodeHeader {
        level: 1,
        seq: 1,
        min_key: 10,
        max_key: 20,
    };
    let mut buf = vec![0u8; BLOCK_SIZE];
    let p = BtreePtr::new(&[Replica { dev: 0, bucket: 5 }]).unwrap();
    let mut w = NodeWriter::new(&mut buf, hdr, 100).unwrap();
    assert!(
        w.push_child(11, &p).is_err(),
        "first child key must be min_key"
    );
    assert!(
        w.push_leaf(10, &[0; 32]).is_err(),
        "no leaf entry in an interior node"
    );
    w.push_child(10, &p).unwrap();
    assert!(w.push_child(10, &p).is_err(), "keys strictly increase");
    assert!(w.push_child(21, &p).is_err(), "key beyond max_key");
    assert!(
        w.push_child(15, &BtreePtr::default()).is_err(),
        "empty pointer"
    );
    w.push_child(15, &p).unwrap();
    w.finish(&VOLUME).unwrap();
    let w = NodeWriter::new(&mut buf, hdr, 100).unwrap();
    assert!(w.finish(&VOLUME).is_err(), "empty interior node");
    let mut tiny = vec![0u8; 100];
    let mut w = NodeWriter::new(&mut tiny, NodeHeader { level: 0, ..hdr }, 100).unwrap();
    assert!(
        w.push_leaf(10, &[0; 32]).is_err(),
        "no room in a 100-byte buffer"
    );
}

/// The parent/child check the module's load and the tool's fsck share.
#[test]
fn children_are_checked_against_their_parent() {
    let p = BtreePtr::new(&[Replica { dev: 0, bucket: 5 }]).unwrap();
    let mut pbuf = vec![0u8; BLOCK_SIZE];
    let phdr = NodeHeader {
        level: 1,
        seq: 1,
        min_key: 0,
        max_key: 99,
    };
    let mut w = NodeWriter::new(&mut pbuf, phdr, 100).unwrap();
    w.push_child(0, &p).unwrap();
    w.push_child(50, &p).unwrap();
    w.finish(&VOLUME).unwrap();
    let parent = decode_node(&pbuf, &VOLUME, 100).unwrap();
    let second = parent.child_spec(1).unwrap();
    assert_eq!(
        second,
        ChildSpec {
            level: 0,
            min: 50,
            max: 99
        }
    );
    assert_eq!(parent.child_spec(2), None);
    let leaf = |min_key, max_key, level| {
        let mut buf = vec![0u8; BLOCK_SIZE];
        let hdr = NodeHeader {
            level,
            seq: 1,
            min_key,
            max_key,
        };
        let mut w = NodeWriter::new(&mut buf, hdr, 100).unwrap();
        if level == 0 {
            w.push_leaf(min_key, &[1; 32]).unwrap();
        } else {
            w.push_child(min_key, &p).unwrap();
        }
        w.finish(&VOLUME).unwrap();
        buf
    };
    let ok = leaf(50, 99, 0);
    assert_eq!(
        decode_node(&ok, &VOLUME, 100)
            .unwrap()
            .check_parent(&second),
        Ok(())
    );
    let wide = leaf(40, 99, 0);
    let e = decode_node(&wide, &VOLUME, 100)
        .unwrap()
        .check_parent(&second)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "node covers [40..=99], its parent says [50..=99]"
    );
    let high = leaf(50, 99, 1);
    let e = decode_node(&high, &VOLUME, 100)
        .unwrap()
        .check_parent(&second)
        .unwrap_err();
    assert_eq!(e.to_string(), "node has level 1, expected 0");
    // A leaf has no children to say anything of.
    assert_eq!(decode_node(&ok, &VOLUME, 100).unwrap().child_spec(0), None);
}
