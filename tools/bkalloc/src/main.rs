// SPDX-License-Identifier: GPL-2.0

//! `bkalloc`: format, inspect, check and craft bkalloc member devices.
//!
//! Exit status: 0 success (fsck: no errors, warnings allowed); 1 fsck found errors, or
//! show could not read every device; 2 bad usage or an I/O error.

use std::path::PathBuf;
use std::process::ExitCode;

use bkalloc::cmd;
use bkalloc::size::parse_size;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bkalloc",
    version,
    about = "bkalloc member devices: format, show, fsck, scenario"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s)
}

// Commands on member devices. Commands that drive a registered volume through
// /dev/bkalloc (alloc, free, insert, get, flush, status) get their own variants here,
// implemented in a `ctl` module beside `cmd`.
#[derive(Subcommand)]
enum Command {
    /// Create a new volume on the devices (destroys what is there).
    Format {
        /// Bucket size (power of two, >= 64k).
        #[arg(long, default_value = "64k", value_parser = size_arg)]
        bucket_size: u64,
        /// Buckets per device kept for btree allocations.
        #[arg(long, default_value_t = 2)]
        btree_reserve: u32,
        /// Copies of each btree node [default: 2, or 1 with one device].
        #[arg(long)]
        metadata_replicas: Option<u32>,
        /// Copies of each user bucket.
        #[arg(long, default_value_t = 1)]
        data_replicas: u32,
        /// Cap on btree node entries (small values make nodes split early, for tests)
        /// [default: what fits in a bucket].
        #[arg(long)]
        node_max_entries: Option<u32>,
        /// Journal size in 4 KiB blocks [default: ~1/128 of the smallest device, 64..=2048].
        #[arg(long)]
        journal_blocks: Option<u32>,
        /// Create image files, or grow them sparsely, to this size.
        #[arg(long, value_parser = size_arg)]
        size: Option<u64>,
        /// Block devices or image files, in member order.
        #[arg(required = true)]
        devices: Vec<PathBuf>,
    },
    /// Show superblock, options, bucket counts, journal and btree.
    Show {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Member devices (all of them for the btree and journal checks).
        #[arg(required = true)]
        devices: Vec<PathBuf>,
    },
    /// Check every invariant of the format; exit 1 naming each violation.
    Fsck {
        /// All member devices of the volume.
        #[arg(required = true)]
        devices: Vec<PathBuf>,
    },
    /// Print the option table (names, values, defaults, where settable).
    Options,
    /// Write the state a TOML scenario file describes (see samples/).
    Scenario {
        /// The scenario file.
        file: PathBuf,
        /// One device per [[device]] of the file, in order.
        #[arg(required = true)]
        devices: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Command::Format {
            bucket_size,
            btree_reserve,
            metadata_replicas,
            data_replicas,
            node_max_entries,
            journal_blocks,
            size,
            devices,
        } => cmd::format::run(&cmd::format::FormatArgs {
            bucket_size,
            btree_reserve,
            metadata_replicas,
            data_replicas,
            node_max_entries,
            journal_blocks,
            size,
            devices,
        })
        .map(|()| true),
        Command::Show { json, devices } => cmd::show::run(&devices, json),
        Command::Fsck { devices } => cmd::fsck::run(&devices),
        Command::Options => {
            print!("{}", cmd::options::markdown());
            Ok(true)
        }
        Command::Scenario { file, devices } => cmd::scenario::run(&file, &devices).map(|()| true),
    };
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bkalloc: {e}");
            ExitCode::from(2)
        }
    }
}
