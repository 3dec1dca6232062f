// SPDX-License-Identifier: GPL-2.0

//! `bkalloc fsck`: every finding, one per line; exit status 1 if any is an error.

use std::path::PathBuf;

use crate::volume::{load, Severity};

/// Runs fsck: prints findings to stdout; returns whether the volume is clean (warnings
/// allowed).
pub fn run(devices: &[PathBuf]) -> crate::Result<bool> {
    let v = load(devices)?;
    for f in &v.findings {
        println!("{f}");
    }
    let (e, w) = (v.count(Severity::Error), v.count(Severity::Warning));
    let b = v.btree.clone().unwrap_or_default();
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
