// SPDX-License-Identifier: GPL-2.0

//! `bkalloc scenario FILE DEV...`: writes the state a TOML file describes.
//!
//! ```toml
//! bucket_size = "64k"          # optional (64k)
//! node_max_entries = 1364      # optional (what fits in a bucket)
//! journal_blocks = 256         # optional (from the smallest device)
//!
//! [options]                    # any option of the table, as in `register`
//! metadata_replicas = 2
//! alloc_wait_policy = "wait"
//!
//! [btree]
//! keys = 2728                  # keys in the btree: 0, 2, 4, ...
//! fill = 100                   # percent of node_max_entries per node
//!
//! [journal]
//! keys = 64                    # inserts after the checkpoint: 1, 3, 5, ...
//! checkpoint_seq = 100         # the checkpoint covers entries up to this seq
//! records_per_entry = 16       # optional (84: one block per entry)
//!
//! [[device]]                   # one per DEV, in member order
//! buckets = 9501               # optional; if given, must equal the sum of the states
//! free = 1
//! need_discard = 9416
//! user = 64
//! btree = 3                    # optional; checked against the btree's placement
//! btree_reserve = 2
//! ```
//!
//! Buckets are laid out per device as sb | btree | user | need_discard | free; the sb count
//! follows from the layout. need_discard and user buckets get their first block written,
//! everything else not written stays sparse in an image file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bkcore::format::{default_journal_blocks, journal, max_node_entries, Layout, MIN_BUCKET_SIZE};
use bkcore::options::{OptId, Options, When};
use bkcore::uuid::Hyphenated;
use serde::Deserialize;

use crate::build::{btree_buckets_per_device, plan_tree, write_volume, DevicePlan, VolumePlan};
use crate::dev::Device;
use crate::size::{human, parse_size};

/// A size written as a number or a string with a suffix.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum SizeValue {
    /// Bytes.
    Bytes(u64),
    /// "64k" and the like.
    Text(String),
}

/// An option value: a number or a name.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum OptValue {
    /// A number (or 0/1 for a bool).
    Int(u64),
    /// A bool.
    Bool(bool),
    /// An enum name, or a number as text.
    Text(String),
}

/// The btree to leave behind.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct BtreeSpec {
    /// Keys in the btree.
    #[serde(default)]
    pub keys: u64,
    /// Percent of `node_max_entries` per node.
    #[serde(default = "hundred")]
    pub fill: u32,
}

fn hundred() -> u32 {
    100
}

impl Default for BtreeSpec {
    fn default() -> Self {
        Self { keys: 0, fill: 100 }
    }
}

/// The journal to leave behind.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct JournalSpec {
    /// Key inserts after the checkpoint.
    #[serde(default)]
    pub keys: u64,
    /// The checkpoint's journal sequence.
    #[serde(default)]
    pub checkpoint_seq: u64,
    /// Inserts per journal entry (default: what fits in one block, 84).
    pub records_per_entry: Option<u32>,
}

/// One device.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Total buckets (optional check).
    pub buckets: Option<u64>,
    /// Free buckets.
    #[serde(default)]
    pub free: u64,
    /// need_discard buckets.
    #[serde(default)]
    pub need_discard: u64,
    /// user buckets.
    #[serde(default)]
    pub user: u64,
    /// btree buckets (optional check).
    pub btree: Option<u64>,
    /// The device's btree reserve.
    #[serde(default = "two")]
    pub btree_reserve: u32,
}

fn two() -> u32 {
    2
}

/// A scenario file.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Bytes per bucket.
    pub bucket_size: Option<SizeValue>,
    /// Btree node cap.
    pub node_max_entries: Option<u32>,
    /// Journal blocks.
    pub journal_blocks: Option<u32>,
    /// Options.
    #[serde(default)]
    pub options: BTreeMap<String, OptValue>,
    /// The btree.
    #[serde(default)]
    pub btree: BtreeSpec,
    /// The journal.
    #[serde(default)]
    pub journal: JournalSpec,
    /// The devices.
    #[serde(default)]
    pub device: Vec<DeviceSpec>,
}

/// Parses a scenario file's text.
pub fn parse(text: &str) -> crate::Result<Scenario> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// Turns a scenario into a volume plan (no I/O).
pub fn plan(s: &Scenario) -> crate::Result<VolumePlan> {
    let bucket_size = match &s.bucket_size {
        None => 64 << 10,
        Some(SizeValue::Bytes(b)) => *b,
        Some(SizeValue::Text(t)) => parse_size(t)?,
    };
    let bucket_size = u32::try_from(bucket_size)
        .ok()
        .filter(|b| b.is_power_of_two() && *b >= MIN_BUCKET_SIZE)
        .ok_or_else(|| format!("bucket_size {bucket_size}: must be a power of two >= 64k"))?;
    let n = s.device.len();
    if n == 0 {
        return Err("no [[device]] given".into());
    }

    let mut options = Options::defaults();
    // An unset metadata_replicas would default to 2: make single-device scenarios work.
    if n < 2 {
        options.set(OptId::MetadataReplicas, 1).expect("in range");
    }
    let mut list = String::new();
    for (k, v) in &s.options {
        let v = match v {
            OptValue::Int(i) => i.to_string(),
            OptValue::Bool(b) => u8::from(*b).to_string(),
            OptValue::Text(t) => t.clone(),
        };
        list.push_str(&format!("{k}={v},"));
    }
    options
        .apply_list(&list, When::ANY)
        .map_err(|e| format!("[options]: {e}"))?;
    options
        .check_members(n as u32)
        .map_err(|e| format!("[options]: {e}"))?;

    let cap = s.node_max_entries.unwrap_or(max_node_entries(bucket_size));
    if !(1..=100).contains(&s.btree.fill) {
        return Err(format!(
            "[btree] fill {}: must be 1..=100 (percent)",
            s.btree.fill
        ));
    }
    let levels = plan_tree(s.btree.keys, s.btree.fill, cap);
    let nodes: usize = levels.iter().map(Vec::len).sum();
    let replicas = options.metadata_replicas() as usize;
    let btree = btree_buckets_per_device(nodes, n, replicas);

    // Bucket counts: sb depends on the count (alloc table size), so iterate to the
    // smallest fixed point.
    let rest: Vec<u64> = s
        .device
        .iter()
        .zip(&btree)
        .map(|(d, bt)| d.free + d.need_discard + d.user + bt)
        .collect();
    let min_rest = rest.iter().copied().min().unwrap_or(0);
    let journal_blocks = s
        .journal_blocks
        .unwrap_or_else(|| default_journal_blocks(bucket_size, min_rest));
    let mut devices = Vec::new();
    for (i, (d, r)) in s.device.iter().zip(&rest).enumerate() {
        if let Some(want) = d.btree {
            if want != btree[i] {
                return Err(format!(
                    "device {i}: btree = {want}, but the btree's {nodes} node(s) x {replicas} replica(s) put {} on it",
                    btree[i]
                ));
            }
        }
        let mut sb = 0u64;
        let count = loop {
            let count = r + sb;
            let l = Layout::new(bucket_size, count.max(1), journal_blocks, cap)
                .or_else(|_| Layout::new(bucket_size, count + 1_000_000, journal_blocks, cap))
                .map_err(|e| format!("device {i}: {e}"))?;
            let want = l.sb_buckets as u64;
            if want == sb {
                break count;
            }
            sb = want;
        };
        if let Some(b) = d.buckets {
            if b != count {
                return Err(format!(
                    "device {i}: buckets = {b}, but sb {sb} + btree {} + user {} + need_discard {} + free {} = {count}",
                    btree[i], d.user, d.need_discard, d.free
                ));
            }
        }
        devices.push(DevicePlan {
            bucket_count: count,
            btree_reserve: d.btree_reserve,
            need_discard: d.need_discard,
            user: d.user,
        });
    }
    Ok(VolumePlan {
        bucket_size,
        node_max_entries: cap,
        journal_blocks,
        options,
        devices,
        btree_keys: s.btree.keys,
        fill_percent: s.btree.fill,
        journal_keys: s.journal.keys,
        checkpoint_seq: s.journal.checkpoint_seq,
        records_per_entry: s
            .journal
            .records_per_entry
            .unwrap_or(journal::RECORDS_PER_BLOCK as u32),
    })
}

/// Runs `scenario`; prints a summary to stdout.
pub fn run(file: &Path, devices: &[PathBuf], force: bool) -> crate::Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let s = parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    if s.device.len() != devices.len() {
        return Err(format!(
            "{} describes {} device(s), {} given",
            file.display(),
            s.device.len(),
            devices.len()
        ));
    }
    let p = plan(&s).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut devs = Vec::new();
    for (i, (path, d)) in devices.iter().zip(&p.devices).enumerate() {
        if devices[..i].contains(path) {
            return Err(format!("{}: given twice", path.display()));
        }
        devs.push(Device::open_sized(
            path,
            d.bucket_count * p.bucket_size as u64,
        )?);
    }
    crate::signature::refuse_overwrite(&devs, force)?;
    let r = write_volume(&p, &devs)?;
    println!(
        "scenario {}: volume {}, btree depth {} ({} nodes, {} keys), {} journal entries ({} keys); replay splits {} leaf node(s)",
        file.display(),
        Hyphenated(&r.volume_uuid),
        r.depth,
        r.nodes,
        p.btree_keys,
        r.journal_entries,
        p.journal_keys,
        r.leaves_that_split
    );
    for (i, (d, (l, c))) in devs.iter().zip(&r.devices).enumerate() {
        let counts: Vec<String> = bkcore::buckets::BucketState::ALL
            .iter()
            .map(|s| format!("{} {}", s.name(), c.get(*s)))
            .collect();
        println!(
            "  member {i}: {}: {} buckets ({}): {}",
            d.path.display(),
            l.bucket_count,
            human(l.device_bytes()),
            counts.join(", ")
        );
    }
    Ok(())
}
