// SPDX-License-Identifier: GPL-2.0

//! `bkalloc format`: a new volume over the given devices, with an empty btree.

use std::path::PathBuf;

use bkcore::format::{default_journal_blocks, max_node_entries, MIN_BUCKET_SIZE};
use bkcore::options::{OptId, Options};
use bkcore::uuid::Hyphenated;

use crate::build::{write_volume, DevicePlan, VolumePlan};
use crate::dev::Device;
use crate::size::human;

/// What `format` was asked for (also its command line).
#[derive(Clone, Debug, clap::Args)]
pub struct FormatArgs {
    /// Bucket size (power of two, >= 64k).
    #[arg(long, default_value = "64k", value_parser = crate::size::parse_size)]
    pub bucket_size: u64,
    /// Buckets per device kept for btree allocations.
    #[arg(long, default_value_t = 2)]
    pub btree_reserve: u32,
    /// Copies of each btree node [default: the option table's (2), at most
    /// one per device].
    #[arg(long)]
    pub metadata_replicas: Option<u32>,
    /// Copies of each user bucket [default: the option table's (1)].
    #[arg(long)]
    pub data_replicas: Option<u32>,
    /// Cap on btree node entries (small values make nodes split early, for tests)
    /// [default: what fits in a bucket].
    #[arg(long)]
    pub node_max_entries: Option<u32>,
    /// Journal size in 4 KiB blocks [default: ~1/128 of the smallest device, 64..=2048].
    #[arg(long)]
    pub journal_blocks: Option<u32>,
    /// Write over a device that holds a file system, a partition table or a volume.
    #[arg(long)]
    pub force: bool,
    /// Create image files, or grow them sparsely, to this size.
    #[arg(long, value_parser = crate::size::parse_size)]
    pub size: Option<u64>,
    /// Block devices or image files, in member order.
    #[arg(required = true)]
    pub devices: Vec<PathBuf>,
}

/// Runs `format`; prints a summary to stdout.
pub fn run(a: &FormatArgs) -> crate::Result<()> {
    let bucket_size = u32::try_from(a.bucket_size)
        .ok()
        .filter(|b| b.is_power_of_two() && *b >= MIN_BUCKET_SIZE)
        .ok_or_else(|| {
            format!(
                "--bucket-size {}: must be a power of two >= 64k",
                a.bucket_size
            )
        })?;
    let mut options = Options::defaults();
    let n = a.devices.len() as u32;
    let meta = a
        .metadata_replicas
        .unwrap_or(options.get(OptId::MetadataReplicas).min(n));
    let data = a.data_replicas.unwrap_or(options.get(OptId::DataReplicas));
    for (id, v) in [(OptId::MetadataReplicas, meta), (OptId::DataReplicas, data)] {
        options.set(id, v).map_err(|kind| {
            let value = v.to_string();
            let e = bkcore::options::OptError {
                option: id.desc().name,
                value: &value,
                kind,
            };
            e.to_string()
        })?;
    }
    options.check_members(n).map_err(|e| e.to_string())?;

    let mut devs = Vec::new();
    for (i, p) in a.devices.iter().enumerate() {
        if a.devices[..i].contains(p) {
            return Err(format!("{}: given twice", p.display()));
        }
        let d = match a.size {
            Some(s) => Device::open_sized(p, s)?,
            None => {
                if !p.exists() {
                    return Err(format!(
                        "{}: does not exist (give --size to create an image file)",
                        p.display()
                    ));
                }
                Device::open(p, true)?
            }
        };
        devs.push(d);
    }
    crate::signature::refuse_overwrite(&devs, a.force)?;
    let counts: Vec<u64> = devs.iter().map(|d| d.size / bucket_size as u64).collect();
    let smallest = counts.iter().copied().min().unwrap_or(0);
    let journal_blocks = a
        .journal_blocks
        .unwrap_or_else(|| default_journal_blocks(bucket_size, smallest));
    let plan = VolumePlan {
        bucket_size,
        node_max_entries: a.node_max_entries.unwrap_or(max_node_entries(bucket_size)),
        journal_blocks,
        options,
        devices: counts
            .iter()
            .map(|&c| DevicePlan {
                bucket_count: c,
                btree_reserve: a.btree_reserve,
                need_discard: 0,
                user: 0,
            })
            .collect(),
        btree_keys: 0,
        fill_percent: 100,
        journal_keys: 0,
        checkpoint_seq: 0,
        records_per_entry: 1,
    };
    let r = write_volume(&plan, &devs)?;
    println!(
        "formatted volume {} on {} device(s): bucket size {}, metadata_replicas {}, data_replicas {}",
        Hyphenated(&r.volume_uuid),
        devs.len(),
        human(bucket_size as u64),
        meta,
        data
    );
    for (i, (d, (l, c))) in devs.iter().zip(&r.devices).enumerate() {
        println!(
            "  member {i}: {}: {} buckets ({}), {} free",
            d.path.display(),
            l.bucket_count,
            human(l.device_bytes()),
            c.get(bkcore::buckets::BucketState::Free)
        );
    }
    Ok(())
}
