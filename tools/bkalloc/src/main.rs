// SPDX-License-Identifier: GPL-2.0

//! `bkalloc`: format, inspect, check and craft bkalloc member devices, and drive a
//! registered volume through `/dev/bkalloc` (alloc, free, status, insert, get, flush), or
//! throw hostile input at it (fuzz).
//!
//! Exit status: 0 success (fsck: no errors, warnings allowed); 1 show could not read
//! every device, get did not find a key, get --verify found a key missing or wrong, or
//! fuzz saw an unexpected outcome; 2 bad usage, an I/O error or a failed ioctl. fsck
//! exits as fsck(8) does: 4 errors left, 8 an operational error, 16 a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use bkalloc::cmd;
use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bkalloc",
    version,
    about = "bkalloc member devices (format, show, fsck, scenario, mutate) and registered volumes \
             (alloc, free, status, insert, get, flush, fuzz)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

// Commands on member devices, then commands that drive a registered volume
// through /dev/bkalloc (module `ctl`).
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
    /// Check every invariant of the format, naming each violation. Exit status as
    /// fsck(8): 0 clean, 4 errors left (nothing is repaired), 8 an operational error
    /// (a device cannot be read as a member), 16 a usage error.
    Fsck {
        /// One JSON object: the findings, their counts and what was checked.
        #[arg(long)]
        json: bool,
        /// All member devices of the volume.
        #[arg(required = true)]
        devices: Vec<PathBuf>,
    },
    /// Print the option table (names, values, defaults, where settable).
    Options {
        /// As the reStructuredText table of Documentation/admin-guide.rst.
        #[arg(long, conflicts_with = "json")]
        rst: bool,
        /// One JSON array, an object per option.
        #[arg(long)]
        json: bool,
    },
    /// Allocate one bucket on each of N distinct devices (blocks like any request).
    Alloc {
        /// The volume's uuid.
        volume: String,
        /// btree or user.
        #[arg(long, default_value = "user")]
        kind: String,
        /// Distinct devices [default: data_replicas or metadata_replicas, rebuilt when
        /// the option changes].
        #[arg(long)]
        replicas: Option<u32>,
        /// normal, btree or reclaim [default: the kind's].
        #[arg(long)]
        watermark: Option<String>,
        /// Seconds before alloc_wait_policy applies [default: alloc_deadline].
        #[arg(long)]
        deadline: Option<u32>,
    },
    /// Free buckets given as dev:bucket (they become need_discard).
    Free {
        /// The volume's uuid.
        volume: String,
        /// dev:bucket words, as alloc prints them.
        #[arg(required = true)]
        buckets: Vec<String>,
    },
    /// The volume's counts through /dev/bkalloc.
    Status {
        /// One JSON object.
        #[arg(long)]
        json: bool,
        /// The volume's uuid.
        volume: String,
    },
    /// Insert a key or a range of keys, each durable before the next.
    ///
    /// KEY gets VALUE_HEX, or its scenario value; --from A --count N [--step S] inserts
    /// A, A+S, ... with their scenario values. Prints `inserted N keys (journal seq
    /// X..=Y)`; on an error names the key that failed and how many went in before it.
    Insert {
        /// The volume's uuid.
        volume: String,
        #[command(flatten)]
        keys: bkalloc::ctl::KeyArgs,
        /// The value: 64 hex digits, byte 0 first [default: the scenario value of KEY].
        #[arg(value_parser = bkalloc::ctl::parse_value_hex, conflicts_with = "from")]
        value_hex: Option<bkcore::format::Value>,
        /// Crash tests: write `bkack begin insert KEY` before each insert and `bkack
        /// insert KEY` once it is durable, one per 512-byte sector of DEVICE from SECTOR
        /// on, with O_DIRECT.
        #[arg(long, value_name = "DEVICE:SECTOR")]
        ack: Option<String>,
    },
    /// Look up a key or a range of keys, or verify them against their scenario values.
    ///
    /// Prints `KEY VALUEHEX` or `KEY not found` per key (exit 1 if one is not found).
    /// With --verify, checks that every key holds its scenario value instead and prints
    /// `checked N keys: F found, M missing, W wrong` (F counts wrong keys too), naming
    /// the first offending keys on stderr; exit 1 unless all are found and right.
    Get {
        /// The volume's uuid.
        volume: String,
        #[command(flatten)]
        keys: bkalloc::ctl::KeyArgs,
        /// Check each key's value against the scenario value; print counts.
        #[arg(long)]
        verify: bool,
    },
    /// Write a checkpoint: prints `flushed: checkpoint generation G, journal_seq J`.
    Flush {
        /// The volume's uuid.
        volume: String,
    },
    /// Hostile input: random writes to every writable sysfs file of the volume and random
    /// ioctls; each must fail and change nothing unless it is valid.
    ///
    /// Deterministic from --seed. Prints `fuzz: UNEXPECTED: ...` for each case that did
    /// not behave, `fuzz: efault alloc: user A->B, need_discard C->D` for the alloc whose
    /// result could not be written back, and last `fuzz: N cases (S sysfs writes, I
    /// ioctls), U unexpected`; exit 1 if U is not 0. Run as root on an idle volume whose
    /// replay is done; it leaves discard, replay_discard_priority and the replica options
    /// alone and restores the other options at the end.
    Fuzz(cmd::fuzz::FuzzArgs),
    /// Corrupted images: save a volume's metadata and btree nodes, then write them back with
    /// one deterministic mutation each time (bit flips, torn writes, crafted values with
    /// valid checksums, another volume's member).
    ///
    /// `mutate save SNAPSHOT DEV...` copies them; `mutate apply SNAPSHOT --seed S --index I
    /// [--other DEV] DEV...` restores the snapshot, applies mutation I of seed S and prints
    /// `mutation I: member N <structure> <where>: <what>; family F; expect: E` (E is refuse
    /// or either); `--restore-only` just restores.
    Mutate(cmd::mutate::MutateArgs),
    /// Crash images: read a write log of QEMU's blklogwrites driver (dm-log-writes format)
    /// and rebuild member devices as they could be after a crash at a chosen point.
    ///
    /// `crash info LOG` counts the entries; `crash points LOG [--subsets K] [--seed S]
    /// [--max-points N]` prints `PREFIX ACKS_UPTO DISCARD [E1,E2,...]` per crash point;
    /// `crash apply LOG --to B [--from A] [--only E,...] [--discard zero|keep] [--tear-last
    /// SECTORS] --slice OFFSET:SIZE:TARGET...` writes entries onto the targets; `crash acks
    /// LOG --slice OFFSET:SIZE --to B` prints the `bkack ` sectors logged before B.
    Crash(cmd::crash::CrashArgs),
    /// Measure (for `make bench`): `bench inserts UUID --writers N --count C` times
    /// concurrent durable inserts; `bench write-flush DEVICE --count C` the device's own
    /// 4 KiB write + flush loop. Prints one JSON line: ops, secs, per_s, latency
    /// percentiles and CDF.
    Bench(cmd::bench::BenchArgs),
    /// Write the state a TOML scenario file describes (see samples/).
    Scenario {
        /// The scenario file.
        file: PathBuf,
        /// One device per [[device]] of the file, in order.
        #[arg(required = true)]
        devices: Vec<PathBuf>,
        /// Write over a device that holds a file system, a partition table or a volume.
        #[arg(long)]
        force: bool,
    },
    /// The tool's ioctl ABI version and the module's, with the ioctls it serves.
    Version {
        /// Ask as a caller of this ABI version (a module refuses one it does not know).
        #[arg(long, default_value_t = bkcore::ctl_abi::ABI_VERSION)]
        abi: u32,
    },
    /// Print a volume's changes as they happen: a line per change of `replay`, `state`,
    /// `waiters` (how many wait) or `alloc_stuck` (its first line), woken by the module.
    /// With --uevents, its uevents instead, from the kernel's netlink socket as udev sees
    /// them: the action, then the BKALLOC_ variables (`change BKALLOC_EVENT=stuck
    /// BKALLOC_WAITER=1`); without a uuid, every volume's, each line led by its uuid.
    ///
    /// Exit status 1 when --timeout passed before --count lines.
    Events {
        /// The volume's uuid (optional with --uevents).
        volume: Option<String>,
        /// Listen for the volume's uevents (stuck, unstuck, deadline, degraded, read_only,
        /// replay_done, replay_failed, discard_error, replicated; add and remove), which
        /// may come before it is registered.
        #[arg(long)]
        uevents: bool,
        /// Stop after this many lines [default: go on until interrupted].
        #[arg(long)]
        count: Option<u64>,
        /// Give up after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// List the registered volumes: uuid, state, replay, waiters, members.
    List {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Register the volume on DEVICES (every member); prints its uuid once it is up.
    Register {
        /// The member devices.
        #[arg(required = true)]
        devices: Vec<PathBuf>,
        /// Options for this registration: opt=val[,opt=val...].
        #[arg(long, short = 'o')]
        options: Option<String>,
    },
    /// Unregister volume UUID: a checkpoint, then its devices are released.
    Unregister {
        /// The volume's uuid.
        volume: String,
    },
    /// Change a runtime option of volume UUID: checked, written to every superblock,
    /// blocked requests rebuilt.
    SetOption {
        /// The volume's uuid.
        volume: String,
        /// The option (bkalloc options lists them).
        name: String,
        /// Its new value.
        value: String,
    },
    /// Buckets per state on each member, waiters and discards of volume UUID.
    Usage {
        /// The volume's uuid.
        volume: String,
        /// One JSON object per look.
        #[arg(long)]
        json: bool,
        /// Look again every SECS seconds (a live view).
        #[arg(long, value_name = "SECS")]
        watch: Option<u64>,
        /// With --watch, stop after COUNT looks (0: until interrupted).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
    /// Print the completion script of SHELL, generated from these command definitions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (bkalloc.1, bkalloc-COMMAND.1), generated from these command
    /// definitions, into DIR.
    Man {
        /// Where the pages go (created if needed).
        dir: PathBuf,
    },
}

/// fsck(8)'s exit status: file system errors left uncorrected.
const FSCK_ERRORS_LEFT: u8 = 4;
/// fsck(8)'s exit status: operational error.
const FSCK_OPERATIONAL: u8 = 8;
/// fsck(8)'s exit status: usage or syntax error.
const FSCK_USAGE: u8 = 16;

fn main() -> ExitCode {
    // SAFETY: called first, before any other thread exists; restoring the default
    // disposition installs no handler. Rust starts with SIGPIPE ignored, so a write to a
    // closed pipe (`bkalloc show DEV | head`) would make println! panic; with the default
    // the tool dies quietly of SIGPIPE like other Unix tools.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // fsck's usage errors exit as fsck(8)'s do; --help and --version with 0.
            let fsck = std::env::args().nth(1).as_deref() == Some("fsck");
            return match e.exit_code() {
                0 => ExitCode::SUCCESS,
                _ if fsck => ExitCode::from(FSCK_USAGE),
                c => ExitCode::from(c as u8),
            };
        }
    };
    let res = match cli.cmd {
        Command::Format(args) => cmd::format::run(&args).map(|()| true),
        Command::Show { json, devices } => cmd::show::run(&devices, json),
        Command::Fsck { json, devices } => {
            return match cmd::fsck::run(&devices, json) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(FSCK_ERRORS_LEFT),
                Err(e) => {
                    eprintln!("bkalloc: {e}");
                    ExitCode::from(FSCK_OPERATIONAL)
                }
            };
        }
        Command::Alloc {
            volume,
            kind,
            replicas,
            watermark,
            deadline,
        } => bkalloc::ctl::alloc(&volume, &kind, replicas, watermark.as_deref(), deadline)
            .map(|()| true),
        Command::Free { volume, buckets } => bkalloc::ctl::free(&volume, &buckets).map(|()| true),
        Command::Status { volume, json } => bkalloc::ctl::status(&volume, json).map(|()| true),
        Command::Insert {
            volume,
            keys,
            value_hex,
            ack,
        } => ack
            .as_deref()
            .map(bkalloc::ctl::Acks::open)
            .transpose()
            .and_then(|acks| bkalloc::ctl::insert(&volume, &keys, value_hex, acks))
            .map(|()| true),
        Command::Get {
            volume,
            keys,
            verify,
        } => bkalloc::ctl::get(&volume, &keys, verify),
        Command::Flush { volume } => bkalloc::ctl::flush(&volume).map(|()| true),
        Command::Options { rst, json } => {
            print!(
                "{}",
                if rst {
                    cmd::options::rst()
                } else if json {
                    cmd::options::json()
                } else {
                    cmd::options::text()
                }
            );
            Ok(true)
        }
        Command::Fuzz(args) => cmd::fuzz::run(&args),
        Command::Mutate(args) => cmd::mutate::run(&args).map(|()| true),
        Command::Crash(args) => cmd::crash::run(&args).map(|()| true),
        Command::Bench(args) => cmd::bench::run(&args).map(|()| true),
        Command::Scenario {
            file,
            devices,
            force,
        } => cmd::scenario::run(&file, &devices, force).map(|()| true),
        Command::Version { abi } => bkalloc::ctl::version(abi).map(|()| true),
        Command::Events {
            volume,
            uevents,
            count,
            timeout,
        } => {
            let timeout = timeout.map(std::time::Duration::from_secs);
            match (volume, uevents) {
                (volume, true) => cmd::uevent::run(volume.as_deref(), count, timeout),
                (Some(volume), false) => cmd::events::run(&volume, count, timeout),
                (None, false) => Err("events: which volume? (a uuid, or --uevents)".into()),
            }
        }
        Command::List { json } => cmd::admin::list(json).map(|()| true),
        Command::Register { devices, options } => {
            cmd::admin::register(&devices, options.as_deref()).map(|()| true)
        }
        Command::Unregister { volume } => cmd::admin::unregister(&volume).map(|()| true),
        Command::SetOption {
            volume,
            name,
            value,
        } => cmd::admin::set_option(&volume, &name, &value).map(|()| true),
        Command::Usage {
            volume,
            json,
            watch,
            count,
        } => cmd::admin::usage(&volume, json, watch, count).map(|()| true),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "bkalloc",
                &mut std::io::stdout(),
            );
            Ok(true)
        }
        Command::Man { dir } => std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
            .map(|()| true)
            .map_err(|e| format!("{}: {e}", dir.display())),
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
