// SPDX-License-Identifier: GPL-2.0

//! fsck reports each class of invariant violation on a crafted image, and passes a clean
//! one.

mod common;

use bkalloc::volume::Severity;
use bkcore::buckets::BucketState;
use bkcore::format::{journal, BtreePtr, Replica, BLOCK_SIZE};
use bkcore::options::OptId;
use common::*;

#[test]
fn clean_volume_passes() {
    let d = tempdir();
    let p = small(d.path());
    assert!(findings(&p).is_empty(), "{:#?}", findings(&p));
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 error(s), 0 warning(s)"), "{out}");
    assert!(
        out.contains("btree 20 keys in 8 nodes, journal 3 entries"),
        "{out}"
    );
}

#[test]
fn superblock_checksum() {
    let d = tempdir();
    let p = small(d.path());
    flip(&p[1], 100);
    assert!(has_error(&p, "superblock"));
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 1);
    assert!(
        out.contains("error[superblock]") && out.contains("crc32c at offset 8"),
        "{out}"
    );
}

#[test]
fn members_of_another_volume() {
    let d = tempdir();
    let a = small(d.path());
    let b = write_scenario(d.path(), "other", SMALL);
    let mixed = vec![a[0].clone(), b[1].clone()];
    assert!(has_error(&mixed, "volume"));
    assert!(
        has_error(&mixed, "member"),
        "member 1 of volume a is missing"
    );
}

#[test]
fn missing_member_and_duplicate_index() {
    let d = tempdir();
    let p = small(d.path());
    assert!(has_error(&p[..1], "member"));
    let copy = d.path().join("copy.img");
    std::fs::copy(&p[0], &copy).unwrap();
    let dup = vec![p[0].clone(), copy, p[1].clone()];
    assert!(findings(&dup)
        .iter()
        .any(|(_, c, m)| *c == "member" && m.contains("both claim")));
}

#[test]
fn alloc_table_checksum() {
    let d = tempdir();
    let p = small(d.path());
    flip(&p[1], layout(&p[1]).alloc_block_offset(0) + 40);
    assert!(has_error(&p, "alloc_table"));
}

#[test]
fn metadata_region_not_sb() {
    let d = tempdir();
    let p = small(d.path());
    rewrite_states(&p[0], |s| s[1] = BucketState::Free, true);
    assert!(has_error(&p, "sb_region"));
    let d2 = tempdir();
    let p = small(d2.path());
    rewrite_states(&p[0], |s| *s.last_mut().unwrap() = BucketState::Sb, true);
    assert!(has_error(&p, "sb_region"));
}

#[test]
fn counts_differ_from_alloc_table() {
    let d = tempdir();
    let p = small(d.path());
    rewrite_states(&p[1], |s| *s.last_mut().unwrap() = BucketState::User, false);
    assert!(has_error(&p, "counts"));
    let f = findings(&p);
    assert!(
        f.iter()
            .any(|(_, _, m)| m.contains("free 20 (alloc table 19)")),
        "{f:#?}"
    );
}

#[test]
fn checkpoints() {
    let d = tempdir();
    let p = small(d.path());
    // A torn newer checkpoint in the other slot: survivable, a warning.
    let l = layout(&p[0]);
    let cp = checkpoint(&p[0]);
    let mut torn = cp;
    torn.generation += 1;
    write_checkpoint(&p[0], &torn);
    flip(&p[0], l.checkpoint_offset(torn.slot()) + 30);
    let f = findings(&p);
    assert!(f.iter().all(|(s, _, _)| *s == Severity::Warning), "{f:#?}");
    assert!(f
        .iter()
        .any(|(_, c, m)| *c == "checkpoint" && m.contains("torn")));
    // No valid checkpoint anywhere: an error.
    for path in &p {
        let l = layout(path);
        for slot in 0..2 {
            write(path, l.checkpoint_offset(slot), &[0u8; BLOCK_SIZE]);
        }
    }
    assert!(has_error(&p, "checkpoint"));
}

#[test]
fn checkpoint_disagreement() {
    let d = tempdir();
    let p = small(d.path());
    let mut cp = checkpoint(&p[1]);
    cp.journal_seq += 1;
    write_checkpoint(&p[1], &cp);
    assert!(has_error(&p, "checkpoint"));
}

#[test]
fn btree_node_checksum() {
    let d = tempdir();
    let p = small(d.path());
    let root = checkpoint(&p[0]).root;
    let b = root.bucket_on(1).unwrap();
    flip(&p[1], layout(&p[1]).bucket_offset(b).unwrap() + 70);
    assert!(has_error(&p, "btree_node"));
}

#[test]
fn replicas_on_one_device() {
    let d = tempdir();
    let p = small(d.path());
    let root_ptr = checkpoint(&p[0]).root;
    let mut root = node_at(&p[0], root_ptr.bucket_on(0).unwrap());
    let (k, child) = root.children[0];
    let r = child.replicas();
    let same = BtreePtr::new(&[
        r[0],
        Replica {
            dev: r[0].dev,
            bucket: r[1].bucket,
        },
    ])
    .unwrap();
    root.children[0] = (k, same);
    write_node(&p, &root_ptr, &root);
    assert!(has_error(&p, "btree_replicas"));
}

#[test]
fn referenced_bucket_is_free_or_need_discard() {
    for state in [
        BucketState::Free,
        BucketState::NeedDiscard,
        BucketState::User,
    ] {
        let d = tempdir();
        let p = small(d.path());
        let b = checkpoint(&p[0]).root.bucket_on(0).unwrap();
        rewrite_states(&p[0], |s| s[b as usize] = state, true);
        assert!(has_error(&p, "btree_bucket"), "{state}");
        let f = findings(&p);
        assert!(
            f.iter()
                .any(|(_, c, m)| *c == "btree_bucket" && m.contains(state.name())),
            "{f:#?}"
        );
    }
}

#[test]
fn keys_out_of_order() {
    let d = tempdir();
    let p = small(d.path());
    // Find a leaf: walk the first children down from the root.
    let mut ptr = checkpoint(&p[0]).root;
    loop {
        let n = node_at(&p[0], ptr.bucket_on(0).unwrap());
        if n.hdr.level == 0 {
            break;
        }
        ptr = n.children[0].1;
    }
    let b = ptr.bucket_on(0).unwrap();
    let off = layout(&p[0]).bucket_offset(b).unwrap();
    // Swap the keys of entries 0 and 1 (40-byte leaf entries from offset 64).
    let k0 = read(&p[0], off + 64, 8);
    let k1 = read(&p[0], off + 104, 8);
    write(&p[0], off + 64, &k1);
    write(&p[0], off + 104, &k0);
    reseal_node(&p[0], b);
    assert!(has_error(&p, "btree_keys"));
}

#[test]
fn node_range_disagrees_with_parent() {
    let d = tempdir();
    let p = small(d.path());
    let root_ptr = checkpoint(&p[0]).root;
    let root = node_at(&p[0], root_ptr.bucket_on(0).unwrap());
    let child_ptr = root.children[1].1;
    let mut child = node_at(&p[0], child_ptr.bucket_on(0).unwrap());
    child.hdr.max_key = u64::MAX - 1;
    write_node(&p, &child_ptr, &child);
    assert!(has_error(&p, "btree_structure"));
}

#[test]
fn double_reference() {
    let d = tempdir();
    let p = small(d.path());
    let root_ptr = checkpoint(&p[0]).root;
    let mut root = node_at(&p[0], root_ptr.bucket_on(0).unwrap());
    root.children[1].1 = root.children[0].1;
    write_node(&p, &root_ptr, &root);
    let f = findings(&p);
    assert!(
        f.iter().any(|(s, c, m)| *s == Severity::Error
            && *c == "btree_replicas"
            && m.contains("referenced twice")),
        "{f:#?}"
    );
}

#[test]
fn journal_gap_and_mirror_disagreement() {
    let d = tempdir();
    let p = small(d.path());
    // Entries 11, 12, 13 are at journal blocks 0, 1, 2: drop 12 everywhere.
    for path in &p {
        write(
            path,
            layout(path).journal_block_offset(1),
            &[0u8; BLOCK_SIZE],
        );
    }
    let f = findings(&p);
    assert!(
        f.iter()
            .any(|(s, c, m)| *s == Severity::Error && *c == "journal" && m.contains("gap")),
        "{f:#?}"
    );

    let d2 = tempdir();
    let p = small(d2.path());
    // Member 1's copy of entry 13 differs.
    let sb = sb(&p[1]);
    let mut blk = vec![0u8; BLOCK_SIZE];
    let mut w = journal::EntryWriter::new(&mut blk).unwrap();
    w.push(&bkcore::format::Record::Insert {
        key: 999,
        value: [1; 32],
    })
    .unwrap();
    w.finish(&sb.volume_uuid, 13).unwrap();
    write(&p[1], layout(&p[1]).journal_block_offset(2), &blk);
    assert!(has_error(&p, "journal"));

    // The first entry after the checkpoint is missing.
    let d3 = tempdir();
    let p = small(d3.path());
    for path in &p {
        write(
            path,
            layout(path).journal_block_offset(0),
            &[0u8; BLOCK_SIZE],
        );
    }
    let f = findings(&p);
    assert!(
        f.iter()
            .any(|(_, c, m)| *c == "journal" && m.contains("missing")),
        "{f:#?}"
    );
}

#[test]
fn journal_bucket_record_in_metadata_region() {
    let d = tempdir();
    let p = small(d.path());
    let mut blk = vec![0u8; BLOCK_SIZE];
    let vol = sb(&p[0]).volume_uuid;
    let mut w = journal::EntryWriter::new(&mut blk).unwrap();
    w.push(&bkcore::format::Record::BucketState {
        member: 0,
        bucket: 0,
        state: BucketState::Free,
    })
    .unwrap();
    w.finish(&vol, 14).unwrap();
    for path in &p {
        write(path, layout(path).journal_block_offset(3), &blk);
    }
    assert!(has_error(&p, "journal"));
}

#[test]
fn degraded_nodes_are_a_warning() {
    let d = tempdir();
    let p = write_scenario(
        d.path(),
        "deg",
        &SMALL.replace("metadata_replicas = 2", "metadata_replicas = 1"),
    );
    assert!(findings(&p).is_empty());
    for path in &p {
        let mut sb = sb(path);
        sb.options.set(OptId::MetadataReplicas, 2).unwrap();
        sb.seq += 1;
        write_sb(path, &sb);
    }
    let f = findings(&p);
    assert!(
        !f.is_empty()
            && f.iter()
                .all(|(s, c, _)| *s == Severity::Warning && *c == "degraded"),
        "{f:#?}"
    );
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning[degraded]")
            && out.contains("written with 1 replica(s), metadata_replicas is 2"),
        "{out}"
    );
}

#[test]
fn leaked_btree_bucket_is_a_warning() {
    let d = tempdir();
    let p = small(d.path());
    rewrite_states(&p[1], |s| *s.last_mut().unwrap() = BucketState::Btree, true);
    let f = findings(&p);
    assert!(
        f.len() == 1 && f[0].0 == Severity::Warning && f[0].1 == "leak",
        "{f:#?}"
    );
}

#[test]
fn older_superblock_is_a_warning_and_same_seq_disagreement_an_error() {
    let d = tempdir();
    let p = small(d.path());
    let mut sb1 = sb(&p[1]);
    sb1.options.set(OptId::Discard, 0).unwrap();
    write_sb(&p[1], &sb1);
    assert!(has_error(&p, "member"));
    sb1.seq += 1;
    write_sb(&p[1], &sb1);
    let f = findings(&p);
    assert!(
        f.iter()
            .all(|(s, c, _)| *s == Severity::Warning && *c == "member"),
        "{f:#?}"
    );
    let v = bkalloc::volume::load(&p).unwrap();
    assert!(
        !v.sb.options.discard(),
        "options come from the newest superblock"
    );
}

#[test]
fn random_damage_never_panics() {
    // Deterministic pseudo-random single-byte damage to every written structure, one at a
    // time: loading must return findings or an error, never panic, and notice it.
    let d = tempdir();
    let p = small(d.path());
    let mut targets = Vec::new(); // (device, offset, bytes that matter)
    for (i, path) in p.iter().enumerate() {
        let l = layout(path);
        targets.push((i, 0, 1024));
        targets.push((i, l.checkpoint_offset(checkpoint(path).slot()), 128));
        targets.push((i, l.alloc_block_offset(0), 32 + l.bucket_count));
        for j in 0..3 {
            targets.push((i, l.journal_block_offset(j), 48 + 2 * 48));
        }
        for (b, s) in states(path).iter().enumerate() {
            if *s == BucketState::Btree {
                targets.push((i, l.bucket_offset(b as u64).unwrap(), 64 + 4 * 48));
            }
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noticed = 0;
    for _ in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (dev, base, len) = targets[(x % targets.len() as u64) as usize];
        let off = base + (x >> 32) % len;
        flip(&p[dev], off);
        match bkalloc::volume::load(&p) {
            Ok(v) if v.findings.is_empty() => {}
            _ => noticed += 1,
        }
        flip(&p[dev], off);
    }
    // A few land past a short leaf's last entry, which no checksum covers.
    assert!(noticed > 300, "only {noticed} of 400 flips noticed");
    assert!(findings(&p).is_empty());
}
