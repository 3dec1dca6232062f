// SPDX-License-Identifier: GPL-2.0

//! fsck reports each class of invariant violation on a crafted image, and passes a clean
//! one.

mod common;

use bkalloc::volume::Severity;
use bkcore::buckets::BucketState;
use bkcore::format::{alloc_table, journal, BtreePtr, Layout, Replica, BLOCK_SIZE};
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

/// fsck(8)'s exit statuses: 0 clean, 4 errors left, 8 operational, 16 usage.
#[test]
fn exit_status_as_fsck8() {
    let d = tempdir();
    let p = small(d.path());
    assert_eq!(run(&["fsck", s(&p[0]), s(&p[1])]).0, 0);
    let missing = d.path().join("missing.img");
    assert_eq!(run(&["fsck", s(&missing)]).0, 8);
    assert_eq!(run(&["fsck"]).0, 16);
    assert_eq!(run(&["fsck", "--no-such-flag", s(&p[0])]).0, 16);
    assert_eq!(run(&["fsck", "--help"]).0, 0);
    flip(&p[1], Layout::sb_offset(0) + 100);
    flip(&p[1], Layout::sb_offset(1) + 100);
    assert_eq!(run(&["fsck", s(&p[0]), s(&p[1])]).0, 4);
}

/// `fsck --json`: the same verdict, counts and findings as the text, and the same exit
/// status.
#[test]
fn json_report() {
    let d = tempdir();
    let p = small(d.path());
    let parse = |out: &str| -> serde_json::Value {
        serde_json::from_str(out).unwrap_or_else(|e| panic!("fsck --json: {e}: {out}"))
    };
    let (code, out) = run(&["fsck", "--json", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "{out}");
    let j = parse(&out);
    assert_eq!(j["clean"], true, "{out}");
    assert_eq!(
        (j["errors"].as_u64(), j["warnings"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (j["btree"]["keys"].as_u64(), j["btree"]["nodes"].as_u64()),
        (Some(20), Some(8))
    );
    assert_eq!(j["btree"]["nodes_by_replicas"]["2"], 8, "{out}");
    assert_eq!(
        (j["members"].as_u64(), j["journal_entries"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(j["findings"].as_array().map(Vec::len), Some(0));
    flip(&p[1], Layout::sb_offset(0) + 100);
    flip(&p[1], Layout::sb_offset(1) + 100);
    let (code, out) = run(&["fsck", "--json", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 4, "{out}");
    let j = parse(&out);
    assert_eq!(j["clean"], false, "{out}");
    let errors = findings(&p)
        .iter()
        .filter(|f| f.0 == Severity::Error)
        .count();
    assert!(errors > 0);
    assert_eq!(j["errors"].as_u64(), Some(errors as u64), "{out}");
    let listed = j["findings"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), findings(&p).len(), "{out}");
    assert!(
        listed
            .iter()
            .any(|f| f["severity"] == "error" && f["class"] == "superblock"),
        "{out}"
    );
}

#[test]
fn superblock_checksum() {
    let d = tempdir();
    let p = small(d.path());
    // Both copies: one alone is survivable (superblock_copy_torn).
    for copy in 0..2 {
        flip(&p[1], Layout::sb_offset(copy) + 100);
    }
    assert!(has_error(&p, "superblock"));
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 4);
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
    let copy = checkpoint(&p[1]).slot();
    flip(&p[1], layout(&p[1]).alloc_block_offset(copy, 0) + 48);
    assert!(has_error(&p, "alloc_table"));
}

#[test]
fn metadata_region_not_sb() {
    let d = tempdir();
    let p = small(d.path());
    // The decoder refuses the block, naming the bucket (the module does too).
    let region = |p: &[std::path::PathBuf], what: &str| {
        findings(p)
            .iter()
            .any(|(sev, c, m)| *sev == Severity::Error && *c == "alloc_table" && m.contains(what))
    };
    rewrite_states(&p[0], |s| s[1] = BucketState::Free, true);
    assert!(region(&p, "bucket 1 is in the metadata region but not sb"));
    let d2 = tempdir();
    let p = small(d2.path());
    rewrite_states(&p[0], |s| *s.last_mut().unwrap() = BucketState::Sb, true);
    assert!(region(&p, "is past the metadata region but marked sb"));
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

/// A journal entry's sequence twice on a member: an error among the entries
/// replay reads, a warning among those the checkpoint covers (the kernel
/// ignores them, and registers: CI's image mutation 25 of seed 1, a covered
/// entry's seq 237 -> 236, registered and then failed fsck).
#[test]
fn duplicate_journal_sequence_is_an_error_only_after_the_checkpoint() {
    let entry = |path: &std::path::Path, block: u32, seq: u64| {
        let sb = sb(path);
        let mut blk = vec![0u8; BLOCK_SIZE];
        let mut w = journal::EntryWriter::new(&mut blk).unwrap();
        w.push(&bkcore::format::Record::Insert {
            key: 999,
            value: [1; 32],
        })
        .unwrap();
        w.finish(&sb.volume_uuid, seq).unwrap();
        write(path, layout(path).journal_block_offset(block), &blk);
    };
    // The checkpoint covers up to 10: seq 5 at blocks 5 and 6 on every member.
    let d = tempdir();
    let p = small(d.path());
    for path in &p {
        entry(path, 5, 5);
        entry(path, 6, 5);
    }
    let f = findings(&p);
    assert!(
        f.iter().any(|(s, c, m)| *s == Severity::Warning
            && *c == "journal"
            && m.contains("journal sequence 5 appears twice")),
        "{f:#?}"
    );
    assert!(
        !f.iter()
            .any(|(s, c, _)| *s == Severity::Error && *c == "journal"),
        "{f:#?}"
    );
    // Seq 11, which replay reads, at block 5 too: an error.
    let d2 = tempdir();
    let p = small(d2.path());
    for path in &p {
        entry(path, 5, 11);
    }
    let f = findings(&p);
    assert!(
        f.iter().any(|(s, c, m)| *s == Severity::Error
            && *c == "journal"
            && m.contains("journal sequence 11 appears twice")),
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
fn newer_superblock_is_a_warning_and_same_seq_disagreement_an_error() {
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
    assert!(
        f.iter().any(|(_, _, m)| m.contains(
            "member 1: an option write to seq 2 did not reach every member; it was never acknowledged and is ignored"
        )),
        "{f:#?}"
    );
    let v = bkalloc::volume::load(&p).unwrap();
    assert!(
        v.sb.options.discard(),
        "options come from the lowest seq, the write every member acknowledged"
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
        let cp = checkpoint(path);
        for copy in 0..2 {
            targets.push((i, Layout::sb_offset(copy), 1024));
        }
        targets.push((i, l.checkpoint_offset(cp.slot()), 128));
        targets.push((
            i,
            l.alloc_block_offset(cp.slot(), 0),
            alloc_table::ALLOC_HEADER_SIZE as u64 + l.bucket_count,
        ));
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

/// Not a structure of any kind: what a write torn mid-block can leave.
fn garbage() -> Vec<u8> {
    (0..BLOCK_SIZE).map(|i| (i * 131 + 7) as u8).collect()
}

#[test]
fn superblock_copy_torn() {
    for copy in 0..2 {
        let d = tempdir();
        let p = small(d.path());
        write(&p[1], Layout::sb_offset(copy), &garbage());
        let f = findings(&p);
        assert!(
            f.len() == 1 && f[0].0 == Severity::Warning && f[0].1 == "superblock",
            "copy {copy}: {f:#?}"
        );
        let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
        assert_eq!(code, 0, "copy {copy}: {out}");
        let want = format!("{}: superblock copy {copy} is torn or invalid", s(&p[1]));
        assert!(
            out.contains("warning[superblock]") && out.contains(&want),
            "copy {copy}: {out}"
        );
        assert!(
            out.contains(&format!("copy {} (seq 1) is used", 1 - copy)),
            "{out}"
        );
        assert!(out.contains("0 error(s), 1 warning(s)"), "{out}");
    }
}

#[test]
fn option_write_cut_short_keeps_the_acknowledged_options() {
    let d = tempdir();
    let p = small(d.path());
    // The write reached member 0 (both copies, seq 2, discard off), never member 1.
    let old0 = sb(&p[0]);
    let mut sb0 = old0;
    sb0.seq += 1;
    sb0.options.set(OptId::Discard, 0).unwrap();
    write_sb(&p[0], &sb0);
    let f = findings(&p);
    assert!(
        !f.is_empty()
            && f.iter()
                .all(|(s, c, _)| *s == Severity::Warning && *c == "member"),
        "{f:#?}"
    );
    let v = bkalloc::volume::load(&p).unwrap();
    assert!(
        v.sb.options.discard(),
        "the volume's options are the old ones"
    );
    assert_eq!(v.sb.seq, 1);
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "warnings only: {out}");
    assert!(
        out.contains("warning[member]: member 0: an option write to seq 2 did not reach every member; it was never acknowledged and is ignored"),
        "{out}"
    );
    let (code, out) = run(&["show", "--json", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["options"]["discard"]["value"], 1, "{out}");

    // Cut shorter still: member 0's copy 0 only. Its copy 1 is older, a warning too.
    write_sb_copy(&p[0], 1, &old0);
    let f = findings(&p);
    assert!(f.iter().all(|(s, _, _)| *s == Severity::Warning), "{f:#?}");
    assert!(
        f.iter()
            .any(|(_, c, m)| *c == "superblock"
                && m.contains("superblock copy 1 is older (seq 1 < 2)")),
        "{f:#?}"
    );
    assert!(
        f.iter()
            .any(|(_, c, m)| *c == "member" && m.contains("an option write to seq 2")),
        "{f:#?}"
    );
    assert!(bkalloc::volume::load(&p).unwrap().sb.options.discard());
}

#[test]
fn flush_cut_short_between_checkpoints() {
    let d = tempdir();
    let p = small(d.path());
    // Generation g + 1: every member's alloc table copy, then the checkpoint on member 0
    // only.
    let g = checkpoint(&p[0]).generation;
    for path in &p {
        let s = states(path);
        write_states(path, g + 1, &s);
    }
    let mut cp = checkpoint(&p[0]);
    cp.generation = g + 1;
    write_checkpoint(&p[0], &cp);
    let f = findings(&p);
    assert!(f.iter().all(|(s, _, _)| *s == Severity::Warning), "{f:#?}");
    assert!(
        f.iter()
            .any(|(_, c, m)| *c == "checkpoint" && m.contains("member 1 checkpoint is older")),
        "{f:#?}"
    );
    let v = bkalloc::volume::load(&p).unwrap();
    assert_eq!(v.checkpoint.unwrap().generation, g + 1);
    assert!(v
        .loaded()
        .all(|(_, m)| m.alloc_ok && m.alloc_copy == Some(((g + 1) % 2) as usize)));
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "{out}");

    // Member 1's own counts describe the older table: a changed new table is not
    // compared with them (they would differ), but it is with member 0's.
    let d2 = tempdir();
    let p = small(d2.path());
    for path in &p {
        let mut s = states(path);
        *s.last_mut().unwrap() = BucketState::User;
        write_states(path, g + 1, &s);
    }
    let mut cp = checkpoint(&p[0]);
    cp.generation = g + 1;
    write_checkpoint(&p[0], &cp);
    let f = findings(&p);
    let counts: Vec<_> = f.iter().filter(|(_, c, _)| *c == "counts").collect();
    assert!(
        counts.len() == 1 && counts[0].2.starts_with("member 0 "),
        "{f:#?}"
    );
}

#[test]
fn torn_alloc_table_copy() {
    // The copy the newest checkpoint does not use: garbage there is no error.
    let d = tempdir();
    let p = small(d.path());
    let used = checkpoint(&p[1]).slot();
    let l = layout(&p[1]);
    write(&p[1], l.alloc_block_offset(1 - used, 0), &garbage());
    let f = findings(&p);
    assert!(f.iter().all(|(s, _, _)| *s != Severity::Error), "{f:#?}");
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "{out}");

    // The used copy: an error naming the member, the block and the field.
    write(&p[1], l.alloc_block_offset(used, 0), &garbage());
    assert!(has_error(&p, "alloc_table"));
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains(&format!(
            "error[alloc_table]: member 1 alloc table copy {used} block 0"
        )) && out.contains("field magic"),
        "{out}"
    );

    // A block of the used copy left from another generation: named by its field too.
    let d2 = tempdir();
    let p = small(d2.path());
    let cp = checkpoint(&p[1]);
    let s1 = states(&p[1]);
    write_states(&p[1], cp.generation + 2, &s1);
    let f = findings(&p);
    assert!(
        f.iter().any(|(s, c, m)| *s == Severity::Error
            && *c == "alloc_table"
            && m.contains("member 1 alloc table")
            && m.contains("block 0")
            && m.contains("field generation")),
        "{f:#?}"
    );
}

#[test]
fn version_1_superblock_is_refused() {
    let d = tempdir();
    let p = small(d.path());
    // Version 1: one superblock, in block 0; block 1 held checkpoint slot 0 (cleared).
    let to_v1 = |path: &std::path::Path| {
        write(path, 12, &1u32.to_le_bytes());
        reseal_sb(path, 0);
        write(path, Layout::sb_offset(1), &[0u8; BLOCK_SIZE]);
    };
    to_v1(&p[1]);
    let f = findings(&p);
    assert!(
        f.iter().any(|(sev, c, m)| *sev == Severity::Error
            && *c == "superblock"
            && m.contains(s(&p[1]))
            && m.contains("format version 1")),
        "{f:#?}"
    );
    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("format version 1"), "{out}");
    // Every member version 1: nothing to check against.
    to_v1(&p[0]);
    let e = bkalloc::volume::load(&p).err().unwrap();
    assert!(e.contains("format version 1"), "{e}");
    assert_eq!(run(&["fsck", s(&p[0]), s(&p[1])]).0, 8);
}

#[test]
fn superblock_copies_that_disagree() {
    // Both valid, the same seq, but not the same contents: one write, two results.
    let d = tempdir();
    let p = small(d.path());
    let mut other = sb(&p[1]);
    other.btree_reserve += 1;
    write_sb_copy(&p[1], 1, &other);
    // The core's pick_copy refuses the device, naming the field.
    let f = findings(&p);
    assert!(
        f.iter().any(|(sev, c, m)| *sev == Severity::Error
            && *c == "superblock"
            && m.contains("superblock copy 1: field seq at offset 48: differs from copy 0")),
        "{f:#?}"
    );

    // Copy 1 of another device altogether: the device is refused, naming the field.
    let d2 = tempdir();
    let p = small(d2.path());
    let q = write_scenario(d2.path(), "other", SMALL);
    write(
        &p[1],
        Layout::sb_offset(1),
        &read(&q[1], Layout::sb_offset(1), BLOCK_SIZE),
    );
    let f = findings(&p);
    assert!(
        f.iter().any(|(sev, c, m)| *sev == Severity::Error
            && *c == "superblock"
            && m.contains("superblock copy 1: field volume_uuid")),
        "{f:#?}"
    );
    assert!(has_error(&p, "member"), "member 1 is not loaded");
}
