// SPDX-License-Identifier: GPL-2.0

//! format, show and scenario end to end, including the issue-1108 sample.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use bkalloc::build::{leaves_that_split, plan_tree};
use bkalloc::cmd::scenario;
use common::*;
use serde_json::Value;

fn json(paths: &[PathBuf]) -> Value {
    let mut args = vec!["show", "--json"];
    args.extend(paths.iter().map(|p| s(p)));
    let (code, out) = run(&args);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).expect("show --json parses")
}

#[test]
fn format_two_images() {
    let d = tempdir();
    let a = d.path().join("a.img");
    let b = d.path().join("b.img");
    let (code, out) = run(&["format", "--size", "64M", s(&a), s(&b)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("metadata_replicas 2"), "{out}");
    let (code, out) = run(&["fsck", s(&a), s(&b)]);
    assert_eq!(code, 0, "{out}");
    let j = json(&[a.clone(), b.clone()]);
    assert_eq!(j["member_count"], 2);
    assert_eq!(j["options"]["metadata_replicas"]["value"], 2);
    assert_eq!(j["options"]["metadata_replicas"]["set"], true);
    assert_eq!(j["options"]["alloc_wait_policy"]["value"], "wait");
    assert_eq!(j["btree"]["depth"], 1);
    assert_eq!(j["btree"]["keys"], 0);
    assert_eq!(j["journal"]["entries"], 0);
    for dev in j["devices"].as_array().unwrap() {
        let buckets = dev["bucket_count"].as_u64().unwrap();
        assert_eq!(buckets, 1024);
        let c = &dev["buckets"];
        let sb = c["sb"].as_u64().unwrap();
        assert_eq!(c["btree"], 1, "the empty root leaf, on both devices");
        assert_eq!(c["free"].as_u64().unwrap(), buckets - sb - 1);
        assert_eq!(dev["btree_reserve"], 2);
    }
    // Images stay sparse: metadata only.
    assert!(std::fs::metadata(&a).unwrap().blocks() * 512 < 2 << 20);
}

#[test]
fn format_options_and_errors() {
    let d = tempdir();
    let a = d.path().join("a.img");
    let (code, out) = run(&[
        "format",
        "--size",
        "16M",
        "--bucket-size",
        "128k",
        "--btree-reserve",
        "5",
        "--node-max-entries",
        "8",
        "--journal-blocks",
        "32",
        s(&a),
    ]);
    assert_eq!(code, 0, "{out}");
    let j = json(std::slice::from_ref(&a));
    assert_eq!(
        j["options"]["metadata_replicas"]["value"], 1,
        "one device: one replica"
    );
    let dev = &j["devices"][0];
    assert_eq!(dev["bucket_size"], 131072);
    assert_eq!(dev["btree_reserve"], 5);
    assert_eq!(dev["node_max_entries"], 8);
    assert_eq!(dev["node_size"], 4096);
    assert_eq!(dev["journal_blocks"], 32);
    // Refused: too many replicas, bad bucket size, missing image without --size.
    assert_eq!(run(&["format", "--metadata-replicas", "2", s(&a)]).0, 2);
    assert_eq!(run(&["format", "--bucket-size", "96k", s(&a)]).0, 2);
    assert_eq!(run(&["format", s(&d.path().join("nope.img"))]).0, 2);
    assert_eq!(run(&["format", "--data-replicas", "5", s(&a)]).0, 2);
    // show on something that is not a volume.
    let junk = d.path().join("junk.img");
    std::fs::write(&junk, vec![1u8; 8192]).unwrap();
    assert_eq!(run(&["show", s(&junk)]).0, 2);
    assert_eq!(run(&["fsck", s(&junk)]).0, 8, "fsck(8): operational error");
}

#[test]
fn scenario_errors_are_explained() {
    let bad = [
        (SMALL.replace("keys = 20", "keys = 20\nfill = 0"), "fill"),
        (
            SMALL.replace(
                "[[device]]\nfree = 20",
                "[[device]]\nbuckets = 7\nfree = 20",
            ),
            "buckets = 7",
        ),
        (
            SMALL.replace("[[device]]\nfree = 20", "[[device]]\nbtree = 1\nfree = 20"),
            "btree = 1",
        ),
        (
            SMALL.replace("metadata_replicas = 2", "metadata_replicas = 3"),
            "3 replicas",
        ),
        (
            SMALL.replace("metadata_replicas = 2", "nosuch = 3"),
            "unknown option",
        ),
        (
            SMALL.replace("[btree]", "[btree]\ncolour = 1"),
            "unknown field",
        ),
    ];
    for (text, want) in bad {
        let e = scenario::parse(&text)
            .and_then(|s| scenario::plan(&s))
            .unwrap_err();
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn issue_1108_sample() {
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/issue-1108.toml");
    let text = std::fs::read_to_string(&sample).unwrap();
    let plan = scenario::plan(&scenario::parse(&text).unwrap()).unwrap();
    let tree = plan_tree(plan.btree_keys, plan.fill_percent, plan.node_max_entries);
    assert!(
        leaves_that_split(&tree, plan.journal_keys, plan.node_max_entries) >= 1,
        "replay must split"
    );

    let d = tempdir();
    let p = [d.path().join("vde.img"), d.path().join("vdf.img")];
    let (code, out) = run(&["scenario", s(&sample), s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("replay splits 1 leaf node(s)"), "{out}");

    let j = json(&p);
    let dev = |i: usize, k: &str| j["devices"][i]["buckets"][k].as_u64().unwrap();
    assert_eq!((dev(0, "free"), dev(0, "need_discard")), (1, 9416));
    assert_eq!(j["devices"][0]["btree_reserve"], 2);
    assert_eq!((dev(1, "free"), dev(1, "need_discard")), (5109, 41681));
    assert_eq!(j["options"]["metadata_replicas"]["value"], 2);
    assert_eq!(j["btree"]["depth"], 2);
    assert_eq!(j["btree"]["keys"], 2728);
    assert_eq!(j["journal"]["pending_keys"], 64);
    assert_eq!(j["journal"]["first_seq"], 1001);
    assert_eq!(j["checkpoint"]["journal_seq"], 1000);
    assert_eq!(j["checkpoint"]["root"].as_array().unwrap().len(), 2);

    let (code, out) = run(&["show", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0);
    assert!(
        out.contains("buckets: free 1, need_discard 9416, sb 17, btree 3, user 32"),
        "{out}"
    );
    assert!(
        out.contains("buckets: free 5109, need_discard 41681, sb 18, btree 3, user 127"),
        "{out}"
    );

    let (code, out) = run(&["fsck", s(&p[0]), s(&p[1])]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 error(s), 0 warning(s)"), "{out}");

    // need_discard buckets hold data in their first block only; the rest is sparse.
    let l = layout(&p[0]);
    let st = states(&p[0]);
    let nd = st
        .iter()
        .position(|s| *s == bkcore::buckets::BucketState::NeedDiscard)
        .unwrap() as u64;
    let off = l.bucket_offset(nd).unwrap();
    assert!(read(&p[0], off, 4096).iter().any(|&b| b != 0));
    assert!(read(&p[0], off + 4096, 4096).iter().all(|&b| b == 0));
    let used: u64 = p
        .iter()
        .map(|x| std::fs::metadata(x).unwrap().blocks() * 512)
        .sum();
    let apparent: u64 = p.iter().map(|x| std::fs::metadata(x).unwrap().len()).sum();
    assert!(
        used < 260 << 20,
        "images must stay sparse: {used} bytes used"
    );
    assert!(apparent > 3 << 30);
}

/// The admin guide's options table is the option table, as `bkalloc options`
/// prints it.
#[test]
fn admin_guide_options_table_matches_the_option_table() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../Documentation/admin-guide.rst"
    ))
    .expect("read Documentation/admin-guide.rst");
    // rst comments around the table; a blank line on each side keeps them
    // apart from the table.
    let begin = "\n.. options table: begin\n\n";
    let start = guide.find(begin).expect("begin marker") + begin.len();
    let end = guide.find("\n.. options table: end\n").expect("end marker");
    assert_eq!(
        &guide[start..end],
        bkalloc::cmd::options::rst(),
        "Documentation/admin-guide.rst is stale: regenerate it with `bkalloc options --rst`"
    );
}

/// A reader that goes away (`bkalloc show DEV | head`) ends the tool by SIGPIPE, the
/// way it ends other Unix tools, not by a println! panic.
#[test]
fn a_closed_stdout_ends_the_tool_quietly() {
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    // A stream socket whose peer is gone fails every write with EPIPE, deterministically.
    let (ours, theirs) = UnixStream::pair().unwrap();
    drop(ours);
    let out = Command::new(env!("CARGO_BIN_EXE_bkalloc"))
        .arg("options")
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// Man pages and completions come from the command definitions: every command has its
/// page, and the completion scripts know every command.
#[test]
fn man_pages_and_completions_are_generated() {
    let d = tempdir();
    let dir = d.path().join("man");
    assert_eq!(run(&["man", s(&dir)]).0, 0);
    for page in [
        "bkalloc.1",
        "bkalloc-format.1",
        "bkalloc-fsck.1",
        "bkalloc-crash-points.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}: {text}");
    }
    let fsck = std::fs::read_to_string(dir.join("bkalloc-fsck.1")).unwrap();
    assert!(fsck.contains("fsck(8)"), "{fsck}");
    let format = std::fs::read_to_string(dir.join("bkalloc-format.1")).unwrap();
    assert!(format.contains("force"), "{format}");
    for shell in ["bash", "zsh", "fish"] {
        let (code, out) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        for word in ["format", "fsck", "scenario", "completions"] {
            assert!(out.contains(word), "{shell} completions lack {word}");
        }
    }
    assert_ne!(run(&["completions", "tcsh"]).0, 0);
}

/// `options --json`: every option of the table once, with the table's default, range and
/// moments.
#[test]
fn options_json_is_the_table() {
    use bkcore::options::{OptType, OPTIONS};
    let (code, out) = run(&["options", "--json"]);
    assert_eq!(code, 0, "{out}");
    let j: Value = serde_json::from_str(&out).expect("options --json parses");
    let all = j.as_array().expect("an array");
    assert_eq!(all.len(), OPTIONS.len());
    for (o, d) in all.iter().zip(OPTIONS.iter()) {
        assert_eq!(o["name"], d.name);
        match d.ty {
            OptType::Uint { min, max } => {
                assert_eq!(o["type"], "uint");
                assert_eq!(
                    (o["values"]["min"].as_u64(), o["values"]["max"].as_u64()),
                    (Some(u64::from(min)), Some(u64::from(max)))
                );
                assert_eq!(
                    o["default"].as_u64(),
                    Some(u64::from(d.default)),
                    "{}",
                    d.name
                );
            }
            OptType::Bool => assert_eq!(o["type"], "bool"),
            OptType::Enum(names) => {
                assert_eq!(
                    o["values"]["names"].as_array().map(Vec::len),
                    Some(names.len())
                );
                assert_eq!(o["default"], d.display(d.default).to_string());
            }
        }
        assert_eq!(o["persistent"], d.persistent);
        assert!(
            o["settable"].as_array().is_some_and(|a| !a.is_empty()),
            "{}",
            d.name
        );
    }
    assert_ne!(run(&["options", "--json", "--rst"]).0, 0);
}
