// SPDX-License-Identifier: GPL-2.0

//! `bkalloc mutate`: save, then apply mutation after mutation on small images. Every apply
//! restores the pristine image first, the same seed and index make the same bytes, every
//! family (and every crafted case) comes up within 1000 indexes, every mutation changes
//! something, and where a mutation says `expect: refuse`, fsck finds an error too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bkalloc::cmd::mutate::{self, ApplyArgs, Family, Snapshot};
use bkalloc::volume::{load, Severity};
use bkcore::format::Checkpoint;
use common::*;

/// The small two-device volume with a second checkpoint generation (gen 2 in slot 0, its
/// own alloc table copy; gen 1 stays in slot 1), so that both slots and both table copies
/// hold something; plus a one-device volume for `--other`.
struct Setup {
    _dir: tempfile::TempDir,
    paths: Vec<PathBuf>,
    other: PathBuf,
    snap: PathBuf,
    pristine: Vec<Vec<u8>>,
}

fn setup() -> Setup {
    let dir = tempdir();
    let paths = small(dir.path());
    for p in &paths {
        let cp = checkpoint(p);
        let s = states(p);
        write_states(p, cp.generation + 1, &s);
        write_checkpoint(
            p,
            &Checkpoint {
                generation: cp.generation + 1,
                ..cp
            },
        );
    }
    let f = findings(&paths);
    assert!(
        f.iter().all(|(s, _, _)| *s != Severity::Error),
        "the test volume is clean: {f:#?}"
    );
    let other = dir.path().join("other.img");
    let (code, out) = run(&["format", "--size", "16M", s(&other)]);
    assert_eq!(code, 0, "{out}");
    let snap = dir.path().join("snap");
    let line = mutate::save(&snap, &paths).unwrap();
    assert!(line.starts_with("saved "), "{line}");
    let pristine = images(&paths);
    Setup {
        _dir: dir,
        paths,
        other,
        snap,
        pristine,
    }
}

fn images(paths: &[PathBuf]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn args(t: &Setup, seed: u64, index: Option<u64>, other: bool) -> ApplyArgs {
    ApplyArgs {
        snapshot: t.snap.clone(),
        seed,
        index,
        other: other.then(|| t.other.clone()),
        restore_only: index.is_none(),
        devices: t.paths.clone(),
    }
}

fn apply(t: &Setup, seed: u64, index: u64) -> String {
    mutate::apply(&args(t, seed, Some(index), true)).unwrap()
}

fn restore(t: &Setup) {
    mutate::apply(&args(t, 1, None, false)).unwrap();
}

/// (family, crafted case, expect) of a mutation line.
fn parse(line: &str) -> (String, Option<usize>, String) {
    let fam = line.split("; family ").nth(1).unwrap();
    let name = fam.split([' ', ';']).next().unwrap().to_string();
    let case = fam
        .strip_prefix("crafted (case ")
        .map(|r| r.split(' ').next().unwrap().parse().unwrap());
    let expect = line.rsplit("expect: ").next().unwrap().to_string();
    (name, case, expect)
}

#[test]
fn save_and_restore_only_on_the_command_line() {
    let t = setup();
    let snap2 = t.snap.with_extension("cli");
    let mut a = vec!["mutate", "save", s(&snap2)];
    a.extend(t.paths.iter().map(|p| s(p)));
    let (code, out) = run(&a);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("8 btree nodes in 16 replicas"), "{out}");
    assert!(
        out.contains("3 journal entries (3 after checkpoint generation 2"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&snap2).unwrap(),
        std::fs::read(&t.snap).unwrap(),
        "save is deterministic"
    );

    let mut a = vec!["mutate", "apply", s(&t.snap), "--seed", "7", "--index", "3"];
    a.extend(t.paths.iter().map(|p| s(p)));
    let (code, out) = run(&a);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    assert!(out.starts_with("mutation 3: member"), "{out}");
    assert_ne!(images(&t.paths), t.pristine);

    let mut a = vec!["mutate", "apply", s(&t.snap), "--restore-only"];
    a.extend(t.paths.iter().map(|p| s(p)));
    let (code, out) = run(&a);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("restored "), "{out}");
    assert_eq!(
        images(&t.paths),
        t.pristine,
        "restore-only gives the pristine images back"
    );

    // Usage errors: no index, wrong device count.
    let (code, _) = run(&[
        "mutate",
        "apply",
        s(&t.snap),
        s(&t.paths[0]),
        s(&t.paths[1]),
    ]);
    assert_eq!(code, 2);
    let (code, _) = run(&[
        "mutate",
        "apply",
        s(&t.snap),
        "--index",
        "1",
        s(&t.paths[0]),
    ]);
    assert_eq!(code, 2);
}

#[test]
fn the_same_seed_and_index_make_the_same_bytes() {
    let t = setup();
    for i in 0..64 {
        let l1 = apply(&t, 1, i);
        let b1 = images(&t.paths);
        apply(&t, 1, i + 1000);
        let l2 = apply(&t, 1, i);
        assert_eq!(l1, l2);
        assert_eq!(b1, images(&t.paths), "index {i}: {l1}");
    }
    // Another seed is another sequence.
    let a: Vec<String> = (0..32).map(|i| apply(&t, 1, i)).collect();
    let b: Vec<String> = (0..32).map(|i| apply(&t, 2, i)).collect();
    assert_ne!(a, b);
}

#[test]
fn apply_restores_the_pristine_image_first() {
    let t = setup();
    let pairs = [
        (0, 1),
        (5, 2),
        (17, 400),
        (14, 30),
        (99, 98),
        (250, 251),
        (7, 7),
    ];
    for (i, j) in pairs {
        apply(&t, 3, i);
        let after_i_j = {
            apply(&t, 3, j);
            images(&t.paths)
        };
        restore(&t);
        assert_eq!(images(&t.paths), t.pristine);
        apply(&t, 3, j);
        assert_eq!(images(&t.paths), after_i_j, "index {i} then {j}");
    }
}

#[test]
fn every_family_and_every_crafted_case_within_1000() {
    let t = setup();
    let mut families: BTreeMap<String, usize> = BTreeMap::new();
    let mut cases = BTreeSet::new();
    let mut refuse = 0;
    for i in 0..1000 {
        let line = apply(&t, 1, i);
        assert!(line.starts_with(&format!("mutation {i}: member")), "{line}");
        let (fam, case, expect) = parse(&line);
        assert_eq!(fam, mutate::family_of(i).name(), "{line}");
        *families.entry(fam).or_default() += 1;
        cases.extend(case);
        refuse += usize::from(expect == "refuse");
        assert!(expect == "refuse" || expect == "either", "{line}");
        assert_ne!(images(&t.paths), t.pristine, "changed nothing: {line}");
    }
    assert_eq!(families.len(), 4, "{families:?}");
    assert_eq!(families["crafted"], 500);
    assert_eq!(families["bitflip"], 250);
    assert_eq!(families["truncate"], 188);
    assert_eq!(families["foreign"], 62);
    let missing: Vec<usize> = (0..mutate::crafted_cases())
        .filter(|c| !cases.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "crafted cases never applied: {missing:?}"
    );
    assert!(refuse > 300, "{refuse} refusals expected out of 1000");
    for f in [
        Family::Bitflip,
        Family::Truncate,
        Family::Crafted,
        Family::Foreign,
    ] {
        assert!((0..16).any(|i| mutate::family_of(i) == f));
    }
}

/// Whether the tool's own check finds something wrong: load fails or reports an error.
fn fsck_errors(paths: &[PathBuf]) -> Option<String> {
    match load(paths) {
        Err(e) => Some(e),
        Ok(v) => v
            .findings
            .iter()
            .find(|f| f.severity == Severity::Error)
            .map(|f| f.to_string()),
    }
}

#[test]
fn a_refusal_is_what_fsck_finds_too() {
    let t = setup();
    let mut wrong = Vec::new();
    for i in 0..1000 {
        let line = apply(&t, 5, i);
        // fsck does not replay bucket state records against the tree; register does
        // (a live node's bucket made user is refused by its reconcile step).
        let fsck_gap = line.contains("state 5 (user) (it is btree now)");
        if parse(&line).2 == "refuse" && fsck_errors(&t.paths).is_none() && !fsck_gap {
            wrong.push(line);
        }
    }
    assert!(
        wrong.is_empty(),
        "expect: refuse, but fsck finds nothing:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn foreign_members_without_other_are_crafted() {
    let t = setup();
    let mut seen = 0;
    for i in 0..64 {
        if mutate::family_of(i) != Family::Foreign {
            continue;
        }
        let line = mutate::apply(&args(&t, 1, Some(i), false)).unwrap();
        assert!(line.contains("another volume"), "{line}");
        assert!(line.ends_with("expect: refuse"), "{line}");
        assert!(fsck_errors(&t.paths).is_some(), "{line}");
        seen += 1;
    }
    assert_eq!(seen, 4);
}

/// Nothing panics on a snapshot of a damaged volume: save may refuse, apply may find
/// less to aim at, but every index still gives a line or an error.
#[test]
fn snapshots_of_damaged_images_do_not_panic() {
    let t = setup();
    let snap2 = t.snap.with_extension("damaged");
    let mut saved = 0;
    for i in 0..160 {
        apply(&t, 9, i);
        if mutate::save(&snap2, &t.paths).is_err() {
            continue;
        }
        saved += 1;
        let a = ApplyArgs {
            snapshot: snap2.clone(),
            ..args(&t, 9, Some(0), true)
        };
        for j in [i, i + 1, i + 2, i + 3] {
            let _ = mutate::apply(&ApplyArgs {
                index: Some(j),
                ..a.clone()
            });
        }
    }
    assert!(saved > 40, "only {saved} damaged images could be saved");
}

#[test]
fn corrupt_snapshot_files_are_refused() {
    let t = setup();
    let raw = std::fs::read(&t.snap).unwrap();
    assert!(Snapshot::decode(&raw).is_ok());
    for cut in [0, 7, 8, 16, 40, 100, raw.len() / 2, raw.len() - 1] {
        assert!(Snapshot::decode(&raw[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad = raw.clone();
    bad[200] ^= 1;
    let e = Snapshot::decode(&bad).unwrap_err();
    assert!(e.contains("checksum"), "{e}");
    // Trailing bytes (a snapshot kept on a block device) are fine.
    let mut long = raw.clone();
    long.extend_from_slice(&[0u8; 4096]);
    assert!(Snapshot::decode(&long).is_ok());
    assert!(Snapshot::decode(b"BKMUTSN1\x01\0\0\0\xff\xff\xff\xff").is_err());
}

/// The same on a file system that takes O_DIRECT (the default temporary directory is
/// usually one; on tmpfs this covers the buffered fallback again).
#[test]
fn direct_io_images() {
    let dir = tempfile::tempdir().unwrap();
    let paths = small(dir.path());
    let snap = dir.path().join("snap");
    mutate::save(&snap, &paths).unwrap();
    let pristine = images(&paths);
    let a = ApplyArgs {
        snapshot: snap,
        seed: 11,
        index: None,
        other: None,
        restore_only: false,
        devices: paths.clone(),
    };
    let mut lines = Vec::new();
    for i in 0..48 {
        lines.push(
            mutate::apply(&ApplyArgs {
                index: Some(i),
                ..a.clone()
            })
            .unwrap(),
        );
        assert_ne!(images(&paths), pristine, "{}", lines.last().unwrap());
    }
    mutate::apply(&ApplyArgs {
        restore_only: true,
        ..a.clone()
    })
    .unwrap();
    assert_eq!(images(&paths), pristine);
    let again = mutate::apply(&ApplyArgs {
        index: Some(47),
        ..a.clone()
    })
    .unwrap();
    assert_eq!(&again, lines.last().unwrap());
}
