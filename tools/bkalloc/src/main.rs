// SPDX-License-Identifier: GPL-2.0

//! `bkalloc`: format, inspect, check and craft bkalloc member devices.
//!
//! Exit status: 0 success (fsck: no errors, warnings allowed); 1 fsck found errors, or
//! show could not read every device; 2 bad usage or an I/O error.

use std::path::PathBuf;
use std::process::ExitCode;

use bkalloc::cmd;
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

// Commands on member devices. Commands that drive a registered volume through
// /dev/bkalloc (alloc, free, insert, get, flush, status) get their own variants here,
// implemented in a `ctl` module beside `cmd`.
#[derive(Subcommand)]
enum Command {
    /// Create a new volume on the devices (destroys what is there).
    Format(cmd::format::FormatArgs),
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
        Command::Format(args) => cmd::format::run(&args).map(|()| true),
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
