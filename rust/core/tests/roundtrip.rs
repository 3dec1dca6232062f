// SPDX-License-Identifier: GPL-2.0

//! Round trips of every on-disk structure over random contents, and canonical encoding:
//! re-encoding a decoded value gives back the same bytes.

mod common;

use bkcore::format::{
    alloc_table, checkpoint, decode_entry, decode_node, superblock::SB_SIZE, Checkpoint,
    Superblock, BLOCK_SIZE,
};
use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn superblock_round_trip(sb in superblock()) {
        let mut buf = vec![0u8; SB_SIZE];
        sb.encode(&mut buf).unwrap();
        let back = Superblock::decode(&buf).unwrap();
        prop_assert_eq!(back, sb);
        let mut again = vec![0u8; SB_SIZE];
        back.encode(&mut again).unwrap();
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn checkpoint_round_trip(cp in checkpoint()) {
        let mut buf = vec![0u8; BLOCK_SIZE];
        cp.encode(&mut buf, &VOLUME).unwrap();
        prop_assert_eq!(Checkpoint::decode(&buf, &VOLUME).unwrap(), cp);
        let other = [7u8; 16];
        prop_assert!(Checkpoint::decode(&buf, &other).is_err());
    }

    #[test]
    fn degraded_checkpoint_round_trip((cp, pending) in degraded_checkpoint()) {
        let mut buf = vec![0u8; BLOCK_SIZE];
        cp.encode_with(&mut buf, &VOLUME, &pending).unwrap();
        let back = Checkpoint::decode(&buf, &VOLUME).unwrap();
        prop_assert_eq!(back, cp);
        prop_assert!(back.degraded());
        prop_assert_eq!(checkpoint::pending(&buf).collect::<Vec<_>>(), pending.clone());
        let mut again = vec![0u8; BLOCK_SIZE];
        back.encode_with(&mut again, &VOLUME, &pending).unwrap();
        prop_assert_eq!(again, buf);
    }

    #[test]
    fn alloc_block_round_trip((l, states) in alloc_case()) {
        let buf = encode_alloc(&l, &states);
        let b = alloc_table::decode_block(&buf, &l, alloc_id(3, 0)).unwrap();
        prop_assert_eq!(b.iter().collect::<Vec<_>>(), states.clone());
        prop_assert_eq!(b.counts().total(), states.len() as u64);
        prop_assert!(alloc_table::decode_block(&buf, &l, alloc_id(2, 0)).is_err());
    }

    #[test]
    fn journal_entry_round_trip((seq, recs) in entry()) {
        let buf = encode_entry(seq, &recs);
        prop_assert_eq!(buf.len() % BLOCK_SIZE, 0);
        prop_assert_eq!(bkcore::format::journal::entry_len(&buf).unwrap(), buf.len());
        let e = decode_entry(&buf, &VOLUME).unwrap();
        prop_assert_eq!(e.seq(), seq);
        prop_assert_eq!(e.blocks() * BLOCK_SIZE, buf.len());
        prop_assert_eq!(e.records().collect::<Vec<_>>(), recs);
    }

    #[test]
    fn btree_node_round_trip(spec in node(200)) {
        let (buf, len) = encode_node(&spec, 200, 12 * BLOCK_SIZE);
        prop_assert!(buf[len..].iter().all(|&b| b == 0), "tail zeroed");
        let n = decode_node(&buf, &VOLUME, 200).unwrap();
        prop_assert_eq!(n.header(), spec.hdr);
        prop_assert_eq!(n.encoded_len(), len);
        let leaves: Vec<_> = n.leaves().map(|(k, v)| (k, *v)).collect();
        prop_assert_eq!(leaves, spec.leaves.clone());
        prop_assert_eq!(n.children().collect::<Vec<_>>(), spec.children.clone());
        for (i, (k, _)) in spec.leaves.iter().enumerate() {
            prop_assert_eq!(n.search(*k), Ok(i));
        }
        for (i, (k, _)) in spec.children.iter().enumerate() {
            prop_assert_eq!(n.child_for(*k).map(|c| c.0), Some(i));
            let (lo, hi) = n.child_range(i).unwrap();
            prop_assert!(lo == *k && hi >= lo && hi <= spec.hdr.max_key);
        }
        // Too small a cap is refused on decode.
        if n.len() > 4 {
            prop_assert!(decode_node(&buf, &VOLUME, n.len() as u32 - 1).is_err());
        }
    }
}
