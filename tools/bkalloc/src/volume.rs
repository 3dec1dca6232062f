// SPDX-License-Identifier: GPL-2.0

//! Reads a volume from its member devices and checks every invariant of the format.
//!
//! `show` and `fsck` both load through here: `show` prints the summary and the number of
//! findings, `fsck` prints every finding. Nothing here writes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;

use bkcore::buckets::{BucketCounts, BucketState};
use bkcore::format::layout::SB_COPIES;
use bkcore::format::superblock::{options_source, pick_copy};
use bkcore::format::{
    alloc_table, checkpoint, decode_entry, decode_node, journal, newest_checkpoint, BtreePtr,
    Checkpoint, ChildSpec, ErrorKind, FormatError, Layout, ParentMismatch, Pending, Record,
    Superblock, BLOCK_SIZE, MAX_MEMBERS,
};
use bkcore::replay_window::replay_window;
use bkcore::uuid::Hyphenated;

use crate::dev::Device;
use crate::progress::Progress;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// An invariant is violated: fsck fails.
    Error,
    /// Legal but worth knowing (degraded, torn, stale).
    Warning,
}

/// One fsck finding. `class` is a stable short name of the invariant.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The invariant: superblock, volume, member, alloc_table, sb_region, checkpoint,
    /// counts, journal, btree_node, btree_replicas, btree_bucket, btree_structure,
    /// btree_keys, degraded, leak.
    pub class: &'static str,
    /// What and where.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]: {}", self.class, self.message)
    }
}

/// A member device whose superblock decoded.
pub struct Member {
    /// The device.
    pub dev: Device,
    /// Its superblock (the copy [`pick_copy`] chose).
    pub sb: Superblock,
    /// Its layout.
    pub layout: Layout,
    /// Bucket states from the alloc table (`None` where the block did not decode).
    pub states: Vec<Option<BucketState>>,
    /// The alloc table copy read: the volume checkpoint's (`None`: no valid checkpoint
    /// names one, so nothing was read).
    pub alloc_copy: Option<usize>,
    /// Whether every alloc table block decoded.
    pub alloc_ok: bool,
    /// Per-state counts of the decoded states.
    pub counts: BucketCounts,
    /// Newest valid checkpoint of this member's two slots.
    pub checkpoint: Option<Checkpoint>,
    /// That checkpoint's pending records (bucket states kept for missing members).
    pub pending: Vec<Pending>,
    /// Valid journal entries of this volume, in region order.
    pub journal: Vec<JournalEntry>,
}

/// A journal entry as found on one member.
#[derive(Clone, Debug)]
pub struct JournalEntry {
    /// Sequence number.
    pub seq: u64,
    /// First block within the journal region.
    pub block: u32,
    /// The encoded entry (`len` bytes), to compare mirrors.
    pub bytes: Vec<u8>,
    /// Its records.
    pub records: Vec<Record>,
}

/// Journal summary over all members.
#[derive(Clone, Debug, Default)]
pub struct JournalSummary {
    /// Entries (distinct sequence numbers).
    pub entries: u64,
    /// Smallest and largest sequence number.
    pub range: Option<(u64, u64)>,
    /// Entries after the checkpoint (to replay).
    pub pending_entries: u64,
    /// Key inserts to replay.
    pub pending_keys: u64,
    /// Bucket state changes to replay.
    pub pending_bucket_changes: u64,
}

/// Btree summary.
#[derive(Clone, Debug, Default)]
pub struct BtreeSummary {
    /// Levels.
    pub depth: u32,
    /// Keys in leaves.
    pub keys: u64,
    /// Nodes reached.
    pub nodes: u64,
    /// Nodes with fewer replicas than `metadata_replicas`.
    pub degraded_nodes: u64,
    /// Nodes by number of replicas (index = replicas).
    pub by_replicas: [u64; bkcore::format::MAX_REPLICAS + 1],
}

/// A loaded and checked volume.
pub struct Volume {
    /// Members by index (`None`: not given or unreadable).
    pub members: Vec<Option<Member>>,
    /// Devices whose superblock did not decode, or that belong elsewhere.
    pub rejected: Vec<(PathBuf, String)>,
    /// The superblock the volume's options come from: the member with the lowest `seq`
    /// ([`options_source`]), the newest write every member acknowledged.
    pub sb: Superblock,
    /// The newest valid checkpoint over all members: the volume's state, with alloc table
    /// copy `generation % 2` on every member.
    pub checkpoint: Option<Checkpoint>,
    /// Its pending records: bucket states kept for members missing when it was written.
    pub pending: Vec<Pending>,
    /// The journal.
    pub journal: JournalSummary,
    /// The btree, if a checkpoint was found.
    pub btree: Option<BtreeSummary>,
    /// Everything found wrong.
    pub findings: Vec<Finding>,
}

impl Volume {
    /// Findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    fn error(&mut self, class: &'static str, message: String) {
        self.findings.push(Finding {
            severity: Severity::Error,
            class,
            message,
        });
    }

    fn warn(&mut self, class: &'static str, message: String) {
        self.findings.push(Finding {
            severity: Severity::Warning,
            class,
            message,
        });
    }

    /// The loaded members.
    pub fn loaded(&self) -> impl Iterator<Item = (usize, &Member)> {
        self.members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.as_ref().map(|m| (i, m)))
    }
}

fn bucket_desc(dev: u8, bucket: u64) -> String {
    format!("member {dev} bucket {bucket}")
}

/// Opens `paths` read-only and loads and checks the volume. Fails only when no device has
/// a valid superblock (nothing to check against) or a device cannot be opened.
pub fn load(paths: &[PathBuf]) -> crate::Result<Volume> {
    let mut rejected = Vec::new();
    let mut findings = Vec::new();
    let mut found: Vec<(Device, Superblock)> = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        if paths[..i].contains(p) {
            return Err(format!("{}: given twice", p.display()));
        }
        let dev = Device::open_direct(p)?;
        match read_superblock(&dev, &mut findings)? {
            Ok(sb) => found.push((dev, sb)),
            Err(e) => {
                findings.push(Finding {
                    severity: Severity::Error,
                    class: "superblock",
                    message: format!("{}: {e}", p.display()),
                });
                rejected.push((p.clone(), e));
            }
        }
    }
    let Some(first) = found.first().map(|(_, sb)| *sb) else {
        return Err(match rejected.first() {
            Some((p, e)) => format!("{}: no valid superblock: {e}", p.display()),
            None => "no devices given".into(),
        });
    };

    let mut v = Volume {
        members: (0..first.member_count).map(|_| None).collect(),
        rejected,
        sb: first,
        checkpoint: None,
        pending: Vec::new(),
        journal: JournalSummary::default(),
        btree: None,
        findings,
    };

    for (dev, sb) in found {
        let path = dev.path.display().to_string();
        if let Err(field) = first.same_volume(&sb) {
            let what = if field == "volume_uuid" {
                format!(
                    "belongs to volume {}, not {}",
                    Hyphenated(&sb.volume_uuid),
                    Hyphenated(&first.volume_uuid)
                )
            } else {
                format!("disagrees with the other members on {field}")
            };
            v.error("volume", format!("{path}: {what}"));
            v.rejected.push((dev.path.clone(), what));
            continue;
        }
        let i = sb.member_index as usize;
        if let Some(other) = &v.members[i] {
            let msg = format!(
                "{path} and {} both claim member index {i}",
                other.dev.path.display()
            );
            v.error("member", msg);
            continue;
        }
        if dev.size < sb.bucket_count * sb.bucket_size as u64 {
            v.error(
                "superblock",
                format!(
                    "{path}: device has {} bytes, superblock says {} buckets of {}",
                    dev.size, sb.bucket_count, sb.bucket_size
                ),
            );
            continue;
        }
        let layout = sb.layout().expect("validated by decode");
        v.members[i] = Some(Member {
            dev,
            sb,
            layout,
            states: Vec::new(),
            alloc_copy: None,
            alloc_ok: false,
            counts: BucketCounts::new(),
            checkpoint: None,
            pending: Vec::new(),
            journal: Vec::new(),
        });
    }

    check_members(&mut v);
    // The checkpoints first: the volume's newest names the alloc table copy to read.
    for i in 0..v.members.len() {
        load_checkpoints(&mut v, i)?;
    }
    let newest = v
        .loaded()
        .filter(|(_, m)| m.checkpoint.is_some())
        .max_by_key(|(_, m)| m.checkpoint.map(|c| c.generation))
        .map(|(i, _)| i);
    if let Some(m) = newest.and_then(|i| v.members[i].as_ref()) {
        v.checkpoint = m.checkpoint;
        v.pending = m.pending.clone();
    }
    check_missing(&mut v);
    for i in 0..v.members.len() {
        load_alloc_table(&mut v, i)?;
        load_journal(&mut v, i)?;
    }
    check_checkpoints(&mut v);
    check_journal(&mut v);
    check_btree(&mut v)?;
    Ok(v)
}

/// Reads both superblock copies of `dev` and picks one ([`pick_copy`]). A torn, invalid
/// or older copy next to a good one is a warning in `findings` (the member loads); the
/// inner error is why the device has no usable superblock.
fn read_superblock(
    dev: &Device,
    findings: &mut Vec<Finding>,
) -> crate::Result<std::result::Result<Superblock, String>> {
    let need = (SB_COPIES * BLOCK_SIZE) as u64;
    if dev.size < need {
        return Ok(Err(format!(
            "{} bytes, too small for the {SB_COPIES} superblock copies",
            dev.size
        )));
    }
    let copy = |c: usize| -> crate::Result<_> {
        Ok(Superblock::decode(
            &dev.read_vec(Layout::sb_offset(c), BLOCK_SIZE)?,
        ))
    };
    let (c0, c1) = (copy(0)?, copy(1)?);
    let sb = match pick_copy(c0, c1) {
        Ok(sb) => sb,
        Err(e) => {
            return Ok(Err(match (c0, c1) {
                // Version 1 kept one copy, in block 0: its version is the whole story.
                (
                    Err(
                        e0 @ FormatError {
                            kind: ErrorKind::UnsupportedVersion(_),
                            ..
                        },
                    ),
                    _,
                ) => e0.to_string(),
                (Err(e0), Err(e1)) => format!("copy 0: {e0}; copy 1: {e1}"),
                _ => e.to_string(),
            }));
        }
    };
    let path = dev.path.display();
    let used = usize::from(c0 != Ok(sb));
    for (c, res) in [c0, c1].into_iter().enumerate() {
        let (severity, message) = match res {
            Err(e) => (
                Severity::Warning,
                format!(
                    "{path}: superblock copy {c} is torn or invalid: {e}; copy {used} (seq {}) is used",
                    sb.seq
                ),
            ),
            Ok(other) if other.seq < sb.seq => (
                Severity::Warning,
                format!(
                    "{path}: superblock copy {c} is older (seq {} < {}): a superblock write was cut short; copy {used} is used",
                    other.seq, sb.seq
                ),
            ),
            Ok(_) => continue,
        };
        findings.push(Finding {
            severity,
            class: "superblock",
            message,
        });
    }
    Ok(Ok(sb))
}

fn check_members(v: &mut Volume) {
    // Options come from the lowest seq: the newest write every member acknowledged.
    let sbs: Vec<(usize, Superblock)> = v.loaded().map(|(i, m)| (i, m.sb)).collect();
    let plain: Vec<Superblock> = sbs.iter().map(|(_, sb)| *sb).collect();
    let source = sbs.get(options_source(&plain)).copied();
    if let Some((_, sb)) = source {
        v.sb = sb;
    }
    let source = source.map_or(0, |(i, _)| i);
    let mut msgs = Vec::new();
    for (i, sb) in &sbs {
        if sb.seq > v.sb.seq {
            msgs.push((
                Severity::Warning,
                format!(
                    "member {i}: an option write to seq {} did not reach every member; it was never acknowledged and is ignored (options are member {}'s, seq {})",
                    sb.seq, source, v.sb.seq
                ),
            ));
        } else if sb.options != v.sb.options {
            msgs.push((
                Severity::Error,
                format!(
                    "member {i} has the same superblock seq {} but different options",
                    sb.seq
                ),
            ));
        }
    }
    for (sev, msg) in msgs {
        match sev {
            Severity::Error => v.error("member", msg),
            Severity::Warning => v.warn("member", msg),
        }
    }
}

/// Members not given: an error, unless the newest checkpoint records them missing (the
/// volume was registered degraded), then a warning saying what is kept for them.
fn check_missing(v: &mut Volume) {
    let missing = v.checkpoint.map_or([0; MAX_MEMBERS], |c| c.missing);
    for (i, &since) in missing.iter().enumerate().take(v.members.len()) {
        let uuid = Hyphenated(&v.sb.members[i]);
        match (&v.members[i], since) {
            (None, 0) => v.error("member", format!("member {i} ({uuid}) not given or unreadable")),
            (None, since) => {
                let kept = v.pending.iter().filter(|p| p.member == i as u32).count();
                v.warn(
                    "member",
                    format!("member {i} ({uuid}) is missing (registered degraded): it holds the alloc table of generation {since}; {kept} bucket states are kept for it"),
                );
            }
            (Some(_), 0) => {}
            (Some(_), since) => v.warn(
                "member",
                format!("member {i} was missing since generation {since} and is back: the next register restores its alloc table"),
            ),
        }
    }
}

fn load_alloc_table(v: &mut Volume, i: usize) -> crate::Result<()> {
    // A member that was missing holds the copy of the generation it left at, and the
    // states kept for it go on top, as register does.
    let cp = v.checkpoint.map(|c| {
        let since = c.missing[i];
        if since == 0 {
            c
        } else {
            Checkpoint {
                generation: since,
                ..c
            }
        }
    });
    let back = v.checkpoint.is_some_and(|c| c.missing[i] != 0);
    let kept: Vec<Pending> = v
        .pending
        .iter()
        .filter(|p| back && p.member == i as u32)
        .copied()
        .collect();
    let Some(m) = v.members[i].as_mut() else {
        return Ok(());
    };
    let l = m.layout;
    // Which copy is current is the volume checkpoint's to say; without one, do not guess.
    let Some(cp) = cp else {
        m.states = vec![None; l.bucket_count as usize];
        m.alloc_copy = None;
        m.alloc_ok = false;
        m.counts = BucketCounts::new();
        v.error(
            "alloc_table",
            format!("member {i}: alloc table unreadable: no valid checkpoint names which of its two copies is current"),
        );
        return Ok(());
    };
    let copy = cp.slot();
    let region = m.dev.read_vec(
        l.alloc_block_offset(copy, 0),
        l.alloc_blocks as usize * BLOCK_SIZE,
    )?;
    let mut errors = Vec::new();
    m.states = Vec::with_capacity(l.bucket_count as usize);
    m.alloc_copy = Some(copy);
    m.alloc_ok = true;
    for (b, blk) in region.chunks(BLOCK_SIZE).enumerate() {
        let id = alloc_table::BlockId {
            volume: &m.sb.volume_uuid,
            member: i as u32,
            block: b as u32,
            generation: cp.generation,
        };
        match alloc_table::decode_block(blk, &l, id) {
            Ok(ab) => m.states.extend(ab.iter().map(Some)),
            Err(e) => {
                m.alloc_ok = false;
                m.states
                    .extend((0..l.alloc_block_states(b as u32)).map(|_| None));
                errors.push(format!(
                    "member {i} alloc table copy {copy} block {b} (generation {}): {e}",
                    cp.generation
                ));
            }
        }
    }
    for p in kept {
        if let Some(slot) = m.states.get_mut(p.bucket as usize) {
            *slot = Some(p.state);
        }
    }
    m.counts = BucketCounts::new();
    m.states.iter().flatten().for_each(|s| m.counts.add(*s));
    // (The decoder checks that `sb` marks exactly the metadata region.)
    for e in errors {
        v.error("alloc_table", e);
    }
    Ok(())
}

fn load_checkpoints(v: &mut Volume, i: usize) -> crate::Result<()> {
    let Some(m) = v.members[i].as_mut() else {
        return Ok(());
    };
    let mut best = None;
    let mut msgs = Vec::new();
    for slot in 0..2 {
        let blk = m
            .dev
            .read_vec(m.layout.checkpoint_offset(slot), BLOCK_SIZE)?;
        match Checkpoint::decode(&blk, &m.sb.volume_uuid) {
            Ok(cp) => {
                if cp.slot() != slot {
                    msgs.push((
                        Severity::Error,
                        format!(
                            "member {i} slot {slot}: generation {} belongs in slot {}",
                            cp.generation,
                            cp.slot()
                        ),
                    ));
                } else if cp.member_index != i as u32 {
                    msgs.push((
                        Severity::Error,
                        format!(
                            "member {i} slot {slot}: says it is on member {}",
                            cp.member_index
                        ),
                    ));
                } else {
                    best = newest_checkpoint(best, Some(cp));
                    if best == Some(cp) {
                        m.pending = checkpoint::pending(&blk).collect();
                    }
                }
            }
            // Never written, or another volume's: not a finding.
            Err(FormatError {
                kind: ErrorKind::BadMagic | ErrorKind::WrongVolume,
                ..
            }) => {}
            Err(e) => msgs.push((
                Severity::Warning,
                format!("member {i} slot {slot} is torn or corrupt: {e}"),
            )),
        }
    }
    m.checkpoint = best;
    for (sev, msg) in msgs {
        match sev {
            Severity::Error => v.error("checkpoint", msg),
            Severity::Warning => v.warn("checkpoint", msg),
        }
    }
    Ok(())
}

fn load_journal(v: &mut Volume, i: usize) -> crate::Result<()> {
    let Some(m) = v.members[i].as_mut() else {
        return Ok(());
    };
    let l = m.layout;
    let mut p = Progress::new(
        format!("member {i}: reading journal"),
        l.journal_blocks as u64,
    );
    let region = m
        .dev
        .read_vec(l.journal_offset, l.journal_blocks as usize * BLOCK_SIZE)?;
    p.add(l.journal_blocks as u64);
    let mut warnings = Vec::new();
    let mut b = 0usize;
    while b < l.journal_blocks as usize {
        let at = &region[b * BLOCK_SIZE..];
        let Ok(len) = journal::entry_len(at) else {
            b += 1;
            continue;
        };
        if len > at.len() {
            warnings.push(format!(
                "member {i} journal block {b}: entry of {len} bytes runs past the end of the journal"
            ));
            b += 1;
            continue;
        }
        match decode_entry(at, &m.sb.volume_uuid) {
            Ok(e) => {
                m.journal.push(JournalEntry {
                    seq: e.seq(),
                    block: b as u32,
                    bytes: at[..e.encoded_len()].to_vec(),
                    records: e.records().collect(),
                });
                b += e.blocks();
            }
            Err(FormatError {
                kind: ErrorKind::WrongVolume,
                ..
            }) => b += 1,
            Err(e) => {
                warnings.push(format!(
                    "member {i} journal block {b}: torn or corrupt entry: {e}"
                ));
                b += 1;
            }
        }
    }
    for w in warnings {
        v.warn("journal", w);
    }
    Ok(())
}

fn check_checkpoints(v: &mut Volume) {
    let Some(cp) = v.checkpoint else {
        v.error("checkpoint", "no valid checkpoint on any member".into());
        return;
    };
    let mut msgs = Vec::new();
    for (i, m) in v.loaded() {
        let Some(mine) = m.checkpoint else {
            msgs.push((
                Severity::Error,
                "checkpoint",
                format!("member {i} has no valid checkpoint"),
            ));
            continue;
        };
        if cp.missing[i] != 0 {
            // Back from missing: check_missing says so; its checkpoint is its own old one.
            continue;
        }
        if mine.generation < cp.generation {
            // Every member's alloc table copy is written before any checkpoint, so this
            // member has generation cp's table; its own counts describe the older one and
            // are not compared.
            msgs.push((
                Severity::Warning,
                "checkpoint",
                format!(
                    "member {i} checkpoint is older (generation {} < {}): a flush was cut short between checkpoints; the next register's checkpoint repairs it",
                    mine.generation, cp.generation
                ),
            ));
            continue;
        }
        if (mine.journal_seq, mine.root_level, mine.root)
            != (cp.journal_seq, cp.root_level, cp.root)
        {
            msgs.push((
                Severity::Error,
                "checkpoint",
                format!(
                    "member {i} checkpoint generation {} disagrees with another member's",
                    mine.generation
                ),
            ));
        }
        if m.alloc_ok && mine.counts != m.counts {
            let mut diffs = Vec::new();
            for s in BucketState::ALL {
                if mine.counts.get(s) != m.counts.get(s) {
                    diffs.push(format!(
                        "{s} {} (alloc table {})",
                        mine.counts.get(s),
                        m.counts.get(s)
                    ));
                }
            }
            msgs.push((
                Severity::Error,
                "counts",
                format!(
                    "member {i} checkpoint counts differ from its alloc table: {}",
                    diffs.join(", ")
                ),
            ));
        }
    }
    for (sev, class, msg) in msgs {
        match sev {
            Severity::Error => v.error(class, msg),
            Severity::Warning => v.warn(class, msg),
        }
    }
}

fn check_journal(v: &mut Volume) {
    let mut msgs: Vec<(Severity, String)> = Vec::new();
    let covered = v.checkpoint.map_or(0, |c| c.journal_seq);
    // What is wrong in an entry the checkpoint covers plays no part in
    // replay (the kernel's policy): a warning, not an error.
    let severity = |seq: u64| {
        if v.checkpoint.is_some() && seq <= covered {
            Severity::Warning
        } else {
            Severity::Error
        }
    };
    // seq -> (member, block, bytes) of the first copy seen.
    let mut by_seq: BTreeMap<u64, (usize, &JournalEntry)> = BTreeMap::new();
    for (i, m) in v.loaded() {
        let mut seen = std::collections::HashSet::new();
        for e in &m.journal {
            if !seen.insert(e.seq) {
                msgs.push((
                    severity(e.seq),
                    format!("member {i}: journal sequence {} appears twice", e.seq),
                ));
                continue;
            }
            match by_seq.get(&e.seq) {
                Some((j, other)) if other.block != e.block || other.bytes != e.bytes => {
                    msgs.push((
                        severity(e.seq),
                        format!("members {j} and {i} disagree on journal entry {}", e.seq),
                    ));
                }
                Some(_) => {}
                None => {
                    by_seq.insert(e.seq, (i, e));
                }
            }
        }
    }
    for (i, m) in v.loaded() {
        let have: std::collections::HashSet<u64> = m.journal.iter().map(|e| e.seq).collect();
        let missing: Vec<u64> = by_seq
            .keys()
            .filter(|s| !have.contains(s))
            .copied()
            .collect();
        if let (Some(a), Some(b)) = (missing.first(), missing.last()) {
            msgs.push((
                Severity::Warning,
                format!(
                    "member {i} lacks {} journal entries of the mirror (seq {a}..={b})",
                    missing.len()
                ),
            ));
        }
    }
    let seqs: Vec<u64> = by_seq.keys().copied().collect();
    // The kernel's policy: entries after the checkpoint run without a gap;
    // covered ones play no part. (With no valid checkpoint the volume does
    // not register at all, which the checkpoint check reports.)
    if v.checkpoint.is_some() {
        if let Err(lost) = replay_window(seqs.iter().copied(), covered) {
            msgs.push((Severity::Error, lost.to_string()));
        }
    }
    let mut s = JournalSummary {
        entries: seqs.len() as u64,
        range: seqs.first().zip(seqs.last()).map(|(a, b)| (*a, *b)),
        ..Default::default()
    };
    for (seq, (i, e)) in &by_seq {
        let pending = *seq > covered;
        if pending {
            s.pending_entries += 1;
        }
        for r in &e.records {
            match *r {
                Record::Insert { .. } => s.pending_keys += u64::from(pending),
                Record::BucketState {
                    member,
                    bucket,
                    state,
                } => {
                    s.pending_bucket_changes += u64::from(pending);
                    let what = format!("journal entry {seq} (member {i}): bucket state record for member {member} bucket {bucket}");
                    let sev = severity(*seq);
                    if member >= v.sb.member_count {
                        msgs.push((sev, format!("{what}: no such member")));
                    } else if let Some(m) = v.members[member as usize].as_ref() {
                        if bucket >= m.layout.bucket_count {
                            msgs.push((sev, format!("{what}: no such bucket")));
                        } else if m.layout.is_sb_bucket(bucket) || state == BucketState::Sb {
                            msgs.push((
                                sev,
                                format!("{what}: the metadata region never changes state"),
                            ));
                        }
                    }
                }
            }
        }
    }
    v.journal = s;
    for (sev, msg) in msgs {
        match sev {
            Severity::Error => v.error("journal", msg),
            Severity::Warning => v.warn("journal", msg),
        }
    }
}

struct Work {
    ptr: BtreePtr,
    level: u8,
    min: u64,
    max: u64,
    parent: String,
}

fn check_btree(v: &mut Volume) -> crate::Result<()> {
    let Some(cp) = v.checkpoint else {
        return Ok(());
    };
    let replicas_wanted = v.sb.options.metadata_replicas() as usize;
    let mut sum = BtreeSummary {
        depth: cp.root_level as u32 + 1,
        ..Default::default()
    };
    let mut msgs: Vec<(Severity, &'static str, String)> = Vec::new();
    let mut referenced: HashMap<(u8, u64), String> = HashMap::new();
    let mut stack = vec![Work {
        ptr: cp.root,
        level: cp.root_level,
        min: 0,
        max: u64::MAX,
        parent: "the checkpoint".into(),
    }];
    while let Some(w) = stack.pop() {
        let name = format!(
            "level {} node [{}..={}] (from {})",
            w.level, w.min, w.max, w.parent
        );
        let where_ = w
            .ptr
            .replicas()
            .iter()
            .map(|r| format!("{}:{}", r.dev, r.bucket))
            .collect::<Vec<_>>()
            .join(",");
        let name = format!("{name} at {where_}");
        if let Some(n) = sum.by_replicas.get_mut(w.ptr.len()) {
            *n += 1;
        }
        if w.ptr.len() < replicas_wanted {
            sum.degraded_nodes += 1;
            msgs.push((
                Severity::Warning,
                "degraded",
                format!(
                    "{name}: written with {} replica(s), metadata_replicas is {replicas_wanted}",
                    w.ptr.len()
                ),
            ));
        }
        if !w.ptr.has_distinct_devs() {
            msgs.push((
                Severity::Error,
                "btree_replicas",
                format!("{name}: two replicas on the same device"),
            ));
        }
        let mut decoded: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut double = false;
        for r in w.ptr.replicas() {
            let at = bucket_desc(r.dev, r.bucket);
            if let Some(prev) = referenced.insert((r.dev, r.bucket), name.clone()) {
                msgs.push((
                    Severity::Error,
                    "btree_replicas",
                    format!("{at} is referenced twice: by {prev} and by {name}"),
                ));
                double = true;
                continue;
            }
            if r.dev as u32 >= v.sb.member_count {
                msgs.push((
                    Severity::Error,
                    "btree_replicas",
                    format!("{name}: replica on member {} which does not exist", r.dev),
                ));
                continue;
            }
            let Some(m) = v.members[r.dev as usize].as_ref() else {
                continue; // missing member, already reported
            };
            let l = m.layout;
            if r.bucket >= l.bucket_count || l.is_sb_bucket(r.bucket) {
                msgs.push((
                    Severity::Error,
                    "btree_bucket",
                    format!("{name}: {at} is not a data bucket"),
                ));
                continue;
            }
            match m.states.get(r.bucket as usize).copied().flatten() {
                Some(BucketState::Btree) => {}
                Some(s @ (BucketState::Free | BucketState::NeedDiscard)) => msgs.push((
                    Severity::Error,
                    "btree_bucket",
                    format!("{at} is referenced by {name} but is {s}"),
                )),
                Some(s) => msgs.push((
                    Severity::Error,
                    "btree_bucket",
                    format!("{at} is referenced by {name} but marked {s}, not btree"),
                )),
                None => {}
            }
            let buf = m
                .dev
                .read_vec(l.bucket_offset(r.bucket).unwrap(), l.node_size as usize)?;
            match decode_node(&buf, &v.sb.volume_uuid, l.node_max_entries) {
                Ok(n) => {
                    let len = n.encoded_len();
                    decoded.push((buf, len));
                }
                Err(e) => {
                    let class = match e.kind {
                        ErrorKind::Unordered { .. } | ErrorKind::OutsideRange(_) => "btree_keys",
                        _ => "btree_node",
                    };
                    msgs.push((Severity::Error, class, format!("{name}: replica {at}: {e}")));
                }
            }
        }
        if double {
            continue; // a cycle or shared subtree: do not walk it twice
        }
        let Some((buf, len)) = decoded.first() else {
            continue;
        };
        if decoded
            .iter()
            .any(|(b, l)| l != len || b[..*l] != buf[..*len])
        {
            msgs.push((
                Severity::Error,
                "btree_replicas",
                format!("{name}: replicas differ"),
            ));
        }
        let n = decode_node(buf, &v.sb.volume_uuid, u32::MAX).expect("decoded above");
        sum.nodes += 1;
        let spec = ChildSpec {
            level: w.level,
            min: w.min,
            max: w.max,
        };
        if let Err(e) = n.check_parent(&spec) {
            msgs.push((Severity::Error, "btree_structure", format!("{name}: {e}")));
            // On another level, its children cannot be placed.
            if matches!(e, ParentMismatch::Level { .. }) {
                continue;
            }
        }
        if n.is_leaf() {
            sum.keys += n.len() as u64;
            continue;
        }
        for (i, (_, ptr)) in n.children().enumerate() {
            let c = n.child_spec(i).expect("interior");
            stack.push(Work {
                ptr,
                level: c.level,
                min: c.min,
                max: c.max,
                parent: format!("level {} node at {where_}", w.level),
            });
        }
    }
    // Buckets marked btree that no node uses.
    for (i, m) in v.loaded() {
        let leaked: Vec<u64> = m
            .states
            .iter()
            .enumerate()
            .filter(|(b, s)| {
                **s == Some(BucketState::Btree) && !referenced.contains_key(&(i as u8, *b as u64))
            })
            .map(|(b, _)| b as u64)
            .collect();
        if let Some(first) = leaked.first() {
            msgs.push((
                Severity::Warning,
                "leak",
                format!(
                    "member {i}: {} bucket(s) marked btree but not in the btree (first: {first})",
                    leaked.len()
                ),
            ));
        }
    }
    v.btree = Some(sum);
    for (sev, class, msg) in msgs {
        match sev {
            Severity::Error => v.error(class, msg),
            Severity::Warning => v.warn(class, msg),
        }
    }
    Ok(())
}
