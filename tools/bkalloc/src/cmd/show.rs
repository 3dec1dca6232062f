// SPDX-License-Identifier: GPL-2.0

//! `bkalloc show`: superblock, options, per-state bucket counts per device, journal range,
//! btree depth and key count; human-readable or `--json`.

use std::path::PathBuf;

use bkcore::buckets::BucketState;
use bkcore::format::layout::SB_COPIES;
use bkcore::format::{Layout, MAX_MEMBERS};
use bkcore::options::{OptType, OPTIONS};
use bkcore::uuid::Hyphenated;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::size::human;
use crate::volume::{load, Severity, Volume};

/// One device in `--json`.
#[derive(Serialize)]
struct JsonDevice {
    path: String,
    member_index: u32,
    member_uuid: String,
    /// Its state (rw, ro, failed, spare), from the volume's newest superblock.
    state: String,
    superblock_seq: u64,
    bucket_size: u32,
    bucket_count: u64,
    btree_reserve: u32,
    sb_buckets: u32,
    superblock_offsets: [u64; SB_COPIES],
    checkpoint_offsets: [u64; 2],
    alloc_blocks: u32,
    alloc_offsets: [u64; 2],
    alloc_copy: Option<usize>,
    journal_offset: u64,
    journal_blocks: u32,
    node_max_entries: u32,
    node_size: u32,
    alloc_table_ok: bool,
    buckets: Map<String, Value>,
    checkpoint_generation: Option<u64>,
}

/// Builds the `--json` document.
pub fn to_json(v: &Volume) -> Value {
    let mut options = Map::new();
    for d in &OPTIONS {
        let raw = v.sb.options.get(d.id);
        let value = match d.ty {
            OptType::Enum(_) => json!(d.display(raw).to_string()),
            OptType::Uint { .. } | OptType::Bool => json!(raw),
        };
        options.insert(
            d.name.into(),
            json!({"value": value, "set": v.sb.options.is_set(d.id)}),
        );
    }
    let devices: Vec<JsonDevice> = v
        .loaded()
        .map(|(i, m)| {
            let mut buckets = Map::new();
            for s in BucketState::ALL {
                buckets.insert(s.name().into(), json!(m.counts.get(s)));
            }
            JsonDevice {
                path: m.dev.path.display().to_string(),
                member_index: i as u32,
                member_uuid: Hyphenated(&m.sb.member_uuid).to_string(),
                state: v.sb.member_states[i % MAX_MEMBERS].name().to_string(),
                superblock_seq: m.sb.seq,
                bucket_size: m.sb.bucket_size,
                bucket_count: m.sb.bucket_count,
                btree_reserve: m.sb.btree_reserve,
                sb_buckets: m.layout.sb_buckets,
                superblock_offsets: std::array::from_fn(Layout::sb_offset),
                checkpoint_offsets: std::array::from_fn(|s| m.layout.checkpoint_offset(s)),
                alloc_blocks: m.layout.alloc_blocks,
                alloc_offsets: std::array::from_fn(|c| m.layout.alloc_block_offset(c, 0)),
                alloc_copy: m.alloc_copy,
                journal_offset: m.layout.journal_offset,
                journal_blocks: m.layout.journal_blocks,
                node_max_entries: m.layout.node_max_entries,
                node_size: m.layout.node_size,
                alloc_table_ok: m.alloc_ok,
                buckets,
                checkpoint_generation: m.checkpoint.map(|c| c.generation),
            }
        })
        .collect();
    let checkpoint = v.checkpoint.map(|c| {
        let root: Vec<Value> = c
            .root
            .replicas()
            .iter()
            .map(|r| json!({"dev": r.dev, "bucket": r.bucket}))
            .collect();
        json!({
            "generation": c.generation,
            "journal_seq": c.journal_seq,
            "root_level": c.root_level,
            "root": root,
        })
    });
    let j = &v.journal;
    json!({
        "volume_uuid": Hyphenated(&v.sb.volume_uuid).to_string(),
        "member_count": v.sb.member_count,
        "members": v.sb.members().iter().map(|u| Hyphenated(u).to_string()).collect::<Vec<_>>(),
        "options": options,
        "devices": devices,
        "checkpoint": checkpoint,
        "journal": {
            "entries": j.entries,
            "first_seq": j.range.map(|r| r.0),
            "last_seq": j.range.map(|r| r.1),
            "pending_entries": j.pending_entries,
            "pending_keys": j.pending_keys,
            "pending_bucket_changes": j.pending_bucket_changes,
        },
        "btree": v.btree.as_ref().map(|b| json!({
            "depth": b.depth,
            "keys": b.keys,
            "nodes": b.nodes,
            "degraded_nodes": b.degraded_nodes,
        })),
        "errors": v.count(Severity::Error),
        "warnings": v.count(Severity::Warning),
        "rejected": v.rejected.iter().map(|(p, e)| json!({"path": p.display().to_string(), "error": e})).collect::<Vec<_>>(),
    })
}

/// Renders the human-readable report.
pub fn to_text(v: &Volume) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line(format!(
        "volume {}: {} member(s)",
        Hyphenated(&v.sb.volume_uuid),
        v.sb.member_count
    ));
    line("options:".into());
    for d in &OPTIONS {
        let raw = v.sb.options.get(d.id);
        let set = if v.sb.options.is_set(d.id) {
            ""
        } else {
            " (default)"
        };
        let unit = if d.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", d.unit)
        };
        line(format!("  {:<24} {}{unit}{set}", d.name, d.display(raw)));
    }
    match &v.checkpoint {
        Some(c) => {
            let root: Vec<String> = c
                .root
                .replicas()
                .iter()
                .map(|r| format!("{}:{}", r.dev, r.bucket))
                .collect();
            line(format!(
                "checkpoint: generation {}, journal_seq {}, root level {} at {}",
                c.generation,
                c.journal_seq,
                c.root_level,
                root.join(",")
            ));
        }
        None => line("checkpoint: none valid".into()),
    }
    let j = &v.journal;
    line(match j.range {
        Some((a, b)) => format!(
            "journal: {} entries, seq {a}..={b}; to replay: {} entries, {} keys, {} bucket changes",
            j.entries, j.pending_entries, j.pending_keys, j.pending_bucket_changes
        ),
        None => "journal: empty".into(),
    });
    if let Some(b) = &v.btree {
        line(format!(
            "btree: depth {}, {} keys, {} nodes",
            b.depth, b.keys, b.nodes
        ));
    }
    for (i, m) in v.loaded() {
        let sb = &m.sb;
        let l = &m.layout;
        line(format!(
            "device {i}: {} (member uuid {}, superblock seq {})",
            m.dev.path.display(),
            Hyphenated(&sb.member_uuid),
            sb.seq
        ));
        line(format!("  state {}", v.sb.member_states[i % MAX_MEMBERS]));
        line(format!(
            "  bucket_size {}, buckets {} ({}), btree_reserve {}",
            human(sb.bucket_size as u64),
            sb.bucket_count,
            human(l.device_bytes()),
            sb.btree_reserve
        ));
        let current = m
            .alloc_copy
            .map_or(String::new(), |c| format!(" (copy {c} current)"));
        line(format!(
            "  layout: {} sb buckets (superblock copies at {} and {}, checkpoint slots at {} and {}, alloc table 2 x {} blocks at {} and {}{current}, journal {} blocks at {}), node {} entries / {}",
            l.sb_buckets,
            Layout::sb_offset(0),
            Layout::sb_offset(1),
            l.checkpoint_offset(0),
            l.checkpoint_offset(1),
            l.alloc_blocks,
            l.alloc_block_offset(0, 0),
            l.alloc_block_offset(1, 0),
            l.journal_blocks,
            l.journal_offset,
            l.node_max_entries,
            human(l.node_size as u64)
        ));
        let counts: Vec<String> = BucketState::ALL
            .iter()
            .map(|s| format!("{} {}", s.name(), m.counts.get(*s)))
            .collect();
        let bad = if m.alloc_ok {
            ""
        } else if m.alloc_copy.is_none() {
            " (alloc table not read: no valid checkpoint names its current copy)"
        } else {
            " (alloc table damaged: partial)"
        };
        line(format!("  buckets: {}{bad}", counts.join(", ")));
    }
    for (p, e) in &v.rejected {
        line(format!("not shown: {}: {e}", p.display()));
    }
    let (e, w) = (v.count(Severity::Error), v.count(Severity::Warning));
    if e + w > 0 {
        line(format!(
            "{e} error(s), {w} warning(s): run `bkalloc fsck` for details"
        ));
    }
    o
}

/// Runs `show`; returns whether every given device was shown.
pub fn run(devices: &[PathBuf], as_json: bool) -> crate::Result<bool> {
    let v = load(devices)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&v)).expect("json")
        );
    } else {
        print!("{}", to_text(&v));
    }
    Ok(v.rejected.is_empty())
}
