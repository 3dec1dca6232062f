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
    println!(
        "fsck: {} member(s) checked, btree {} keys in {} nodes, journal {} entries: {e} error(s), {w} warning(s)",
        v.loaded().count(),
        b.keys,
        b.nodes,
        v.journal.entries
    );
    Ok(e == 0)
}
