// SPDX-License-Identifier: GPL-2.0

//! `bkalloc fsck`: every finding, one per line (or one JSON object); not clean if
//! any is an error.

use std::path::PathBuf;

use crate::volume::{load, Severity};

/// Runs fsck: prints findings to stdout (`json`: one object); returns whether the
/// volume is clean (warnings allowed).
pub fn run(devices: &[PathBuf], json: bool) -> crate::Result<bool> {
    let v = load(devices)?;
    let (e, w) = (v.count(Severity::Error), v.count(Severity::Warning));
    let b = v.btree.clone().unwrap_or_default();
    if json {
        let findings: Vec<serde_json::Value> = v
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "severity": match f.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    },
                    "class": f.class,
                    "message": f.message,
                })
            })
            .collect();
        // Nodes by their number of replicas, "1": n, "2": m, ...
        let by: serde_json::Map<String, serde_json::Value> = (1..b.by_replicas.len())
            .filter(|&r| b.by_replicas[r] > 0)
            .map(|r| (r.to_string(), serde_json::json!(b.by_replicas[r])))
            .collect();
        let doc = serde_json::json!({
            "clean": e == 0,
            "errors": e,
            "warnings": w,
            "members": v.loaded().count(),
            "metadata_replicas": v.sb.options.metadata_replicas(),
            "btree": { "keys": b.keys, "nodes": b.nodes, "nodes_by_replicas": by },
            "journal_entries": v.journal.entries,
            "findings": findings,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(e == 0);
    }
    for f in &v.findings {
        println!("{f}");
    }
    // Nodes written while metadata_replicas was lower say so here, even
    // when the superblock's value is that lower one now.
    let by: Vec<String> = (1..b.by_replicas.len())
        .filter(|&r| b.by_replicas[r] > 0)
        .map(|r| format!("{} with {r} replica(s)", b.by_replicas[r]))
        .collect();
    if !by.is_empty() {
        println!(
            "btree nodes: {} (metadata_replicas {})",
            by.join(", "),
            v.sb.options.metadata_replicas()
        );
    }
    println!(
        "fsck: {} member(s) checked, btree {} keys in {} nodes, journal {} entries: {e} error(s), {w} warning(s)",
        v.loaded().count(),
        b.keys,
        b.nodes,
        v.journal.entries
    );
    Ok(e == 0)
}
