// SPDX-License-Identifier: GPL-2.0

//! `bkalloc crash`: device images at chosen crash points, rebuilt from a write log.
//!
//! **The log.** QEMU's `blklogwrites` block driver records every write, discard and flush
//! that completes on one block node, in the on-disk format of the kernel's dm-log-writes
//! (all fields little-endian). Sector 0 holds the super: `u64 magic` ([`MAGIC`]),
//! `u64 version` (1), `u64 nr_entries`, `u32 sectorsize` (a power of two from 512 to
//! 8 MiB; every other "sector" below is one of these). The entries follow from sector 1
//! on, one after the other: a header sector (`u64 sector, u64 nr_sectors, u64 flags,
//! u64 data_len`), then, unless the entry is a discard, `nr_sectors` sectors of data (none
//! for a flush or a mark). `data_len` is ignored, as dm-log-writes' own replay tool does:
//! the kernel puts a mark's text into the header sector itself.
//!
//! QEMU writes `nr_entries` to the super only now and then, so the super may count fewer
//! entries than the log holds: [`Log::open`] scans on until the end of the file, a header
//! that is all zero (the log file is fresh per boot), a header with unknown flag bits, or
//! one whose data would run past the end of the file (a log cut short by a crash). Only
//! headers are read while scanning.
//!
//! **Slices.** The log covers one block node; the guest's disks are byte ranges of it
//! (`OFFSET:SIZE`). A write to the node lands at `byte - OFFSET` of every slice it
//! overlaps; bytes outside every slice are ignored.
//!
//! **Crash points.** Entries are in completion order. A flush (or a FUA write, which counts
//! as a write followed by a flush) makes everything logged before it durable, so the
//! device after a crash holds a prefix of the log up to the last flush, plus any subset of
//! the writes and discards logged between that flush and the next one (they may reach the
//! medium in any order). [`points`] lists the prefixes right after every flush and at the
//! end of the log, and optionally random proper subsets of each window between two
//! flushes. Each point carries `ACKS_UPTO`, the index of the next flush: an acknowledgement
//! the workload logged before it (see [`acks`]) was written after its change's flushes had
//! completed, so the change must be present in the point's image.

use std::collections::HashSet;
use std::fmt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::dev::Device;
use crate::size::parse_size;

/// The super's magic number ("rhswfsj" in the kernel's ASCII).
pub const MAGIC: u64 = 0x006a_7366_7773_6872;
/// The only log version there is.
pub const VERSION: u64 = 1;
/// Entry flag: a flush (no data of its own).
pub const FLAG_FLUSH: u64 = 1;
/// Entry flag: a FUA write (durable when it completes).
pub const FLAG_FUA: u64 = 2;
/// Entry flag: a discard (no data in the log).
pub const FLAG_DISCARD: u64 = 4;
/// Entry flag: a mark (a label in the log; no device data).
pub const FLAG_MARK: u64 = 8;
/// Entry flag: a metadata write (a hint; the write is applied like any other).
pub const FLAG_METADATA: u64 = 16;
const KNOWN_FLAGS: u64 = FLAG_FLUSH | FLAG_FUA | FLAG_DISCARD | FLAG_MARK | FLAG_METADATA;
/// Smallest and largest sector size accepted (both powers of two).
const MIN_SECTORSIZE: u64 = 512;
const MAX_SECTORSIZE: u64 = 1 << 23;
/// Bytes of the super and of an entry header that carry fields.
const SUPER_LEN: usize = 28;
const HEADER_LEN: usize = 32;
/// Bytes copied per read and write (bounds memory for huge writes and discards).
const CHUNK: u64 = 1 << 20;
/// What an acknowledgement sector starts with.
const ACK_PREFIX: &[u8] = b"bkack ";

/// `bkalloc crash` and its subcommands.
#[derive(Debug, clap::Args)]
pub struct CrashArgs {
    /// What to do.
    #[command(subcommand)]
    pub cmd: CrashCmd,
}

/// The subcommands of `bkalloc crash`.
#[derive(Debug, clap::Subcommand)]
pub enum CrashCmd {
    /// Scan the log; print `log: sectorsize S, super says N entries, scanned M entries: W
    /// writes (B bytes), D discards, F flushes`.
    Info {
        /// The write log (a file or a block device; only read).
        log: PathBuf,
    },
    /// Print the crash points, `PREFIX ACKS_UPTO DISCARD [E1,E2,...]` per line.
    ///
    /// One point after every flush and one at the end of the log; with --subsets K, up to
    /// K more per window between two flushes holding at least 2 writes or discards: a
    /// random non-empty proper subset of them applied on top of the prefix, DISCARD zero
    /// or keep at random. Last, on stderr: `crash points: P prefix points, R reordered
    /// points`.
    Points(PointsArgs),
    /// Apply entries of the log to the targets of their slices; fsync them; print `applied
    /// W writes (X bytes), D discards to N targets`.
    Apply(ApplyArgs),
    /// Print the `bkack ` sectors written into a slice by entries before --to, in log order,
    /// each up to its first newline or NUL.
    Acks(AcksArgs),
}

/// `bkalloc crash points`.
#[derive(Debug, clap::Args)]
pub struct PointsArgs {
    /// The write log.
    pub log: PathBuf,
    /// Reordered points per window between two flushes (every non-empty proper subset,
    /// in random order, when there are no more than this).
    #[arg(long, default_value_t = 0)]
    pub subsets: usize,
    /// Seed of the subsets and DISCARD choices; the same log and seed give the same points.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep at most this many points, spread evenly over the list (the first and the last
    /// always kept; 1 keeps the last).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_points: Option<u64>,
}

/// `bkalloc crash apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The write log.
    pub log: PathBuf,
    /// First entry to apply.
    #[arg(long, default_value_t = 0)]
    pub from: usize,
    /// Apply the entries before this one (a PREFIX of `points`).
    #[arg(long, required_unless_present = "only")]
    pub to: Option<usize>,
    /// Apply exactly these entries, in log order (--from and --to are then ignored).
    #[arg(long, value_name = "E1,E2,...", value_delimiter = ',')]
    pub only: Option<Vec<usize>>,
    /// What a discard does to the target: write zeros, or leave the old data.
    #[arg(long, value_enum, default_value_t = DiscardMode::Zero)]
    pub discard: DiscardMode,
    /// Of the last write applied, apply only its first SECTORS sectors (a torn write).
    #[arg(long, value_name = "SECTORS")]
    pub tear_last: Option<u64>,
    /// OFFSET:SIZE:TARGET: bytes OFFSET..OFFSET+SIZE of the logged node go to TARGET, a
    /// block device or an image file (created or grown to SIZE if needed).
    #[arg(
        long = "slice",
        required = true,
        value_name = "OFFSET:SIZE:TARGET",
        value_parser = parse_slice
    )]
    pub slices: Vec<Slice>,
}

/// `bkalloc crash acks`.
#[derive(Debug, clap::Args)]
pub struct AcksArgs {
    /// The write log.
    pub log: PathBuf,
    /// OFFSET:SIZE: the bytes of the logged node to look in.
    #[arg(long, value_name = "OFFSET:SIZE", value_parser = parse_range)]
    pub slice: (u64, u64),
    /// Look at the entries before this one (an ACKS_UPTO of `points`).
    #[arg(long)]
    pub to: usize,
}

/// Runs `bkalloc crash`.
pub fn run(a: &CrashArgs) -> crate::Result<()> {
    match &a.cmd {
        CrashCmd::Info { log } => {
            let log = Log::open(log)?;
            let s = log.summary();
            println!(
                "log: sectorsize {}, super says {} entries, scanned {} entries: {} writes \
                 ({} bytes), {} discards, {} flushes",
                log.sectorsize,
                log.super_entries,
                log.entries.len(),
                s.writes,
                s.write_bytes,
                s.discards,
                s.flushes
            );
        }
        CrashCmd::Points(p) => {
            let log = Log::open(&p.log)?;
            let max = p
                .max_points
                .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
            let pts = thin(points(&log.entries, p.subsets, p.seed), max);
            for pt in &pts {
                println!("{pt}");
            }
            let plain = pts.iter().filter(|p| p.only.is_none()).count();
            eprintln!(
                "crash points: {plain} prefix points, {} reordered points",
                pts.len() - plain
            );
        }
        CrashCmd::Apply(a) => {
            let log = Log::open(&a.log)?;
            let sel = select(log.entries.len(), a.from, a.to, a.only.as_deref())?;
            let targets = a
                .slices
                .iter()
                .map(Target::open)
                .collect::<crate::Result<Vec<_>>>()?;
            let r = apply(&log, &sel, a.discard, a.tear_last, &targets)?;
            println!(
                "applied {} writes ({} bytes), {} discards to {} targets",
                r.writes,
                r.bytes,
                r.discards,
                targets.len()
            );
        }
        CrashCmd::Acks(a) => {
            let log = Log::open(&a.log)?;
            for line in acks(&log, a.slice.0, a.slice.1, a.to)? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The log.

/// What an entry does to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Data written at `sector` (possibly with FUA or a preceding flush).
    Write,
    /// A discarded range; no data in the log.
    Discard,
    /// A flush without data.
    Flush,
    /// A label in the log; nothing for the device.
    Mark,
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, from 0.
    pub index: usize,
    /// First sector written, in `sectorsize` units of the logged node.
    pub sector: u64,
    /// Sectors written or discarded.
    pub nr_sectors: u64,
    /// `FLAG_*` bits.
    pub flags: u64,
    /// Byte offset in the log of the data after the header.
    pub data_offset: u64,
}

impl Entry {
    /// What the entry does.
    pub fn kind(&self) -> Kind {
        if self.flags & FLAG_MARK != 0 {
            Kind::Mark
        } else if self.flags & FLAG_DISCARD != 0 {
            Kind::Discard
        } else if self.flags & FLAG_FLUSH != 0 && self.nr_sectors == 0 {
            Kind::Flush
        } else {
            Kind::Write
        }
    }

    /// Whether everything logged up to and including this entry is durable once it is
    /// (a flush, or a FUA write taken as a write followed by a flush).
    pub fn is_barrier(&self) -> bool {
        self.flags & (FLAG_FLUSH | FLAG_FUA) != 0
    }
}

/// Why scanning stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The end of the file (or less than a header sector left).
    Eof,
    /// A header that is all zero: nothing was logged there.
    ZeroHeader,
    /// A header with unknown flag bits or impossible numbers: a torn log.
    BadHeader,
    /// A header whose data runs past the end of the file: a torn log.
    DataPastEof,
}

/// An opened and scanned write log.
pub struct Log {
    dev: Device,
    /// Bytes per sector.
    pub sectorsize: u64,
    /// `nr_entries` of the super (may be short of the truth, see the module doc).
    pub super_entries: u64,
    /// Every entry found by scanning.
    pub entries: Vec<Entry>,
    /// Why scanning stopped.
    pub end: End,
}

/// Counts of a log's entries by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Write entries.
    pub writes: u64,
    /// Bytes of data they write.
    pub write_bytes: u64,
    /// Discard entries.
    pub discards: u64,
    /// Flush entries (without data).
    pub flushes: u64,
}

/// The super's fields: `(nr_entries, sectorsize)`, or why it is not a log.
pub fn parse_super(b: &[u8]) -> Result<(u64, u64), String> {
    let magic = le64(b, 0);
    if magic != MAGIC {
        return Err(format!("not a write log (magic {magic:#x})"));
    }
    let version = le64(b, 8);
    if version != VERSION {
        return Err(format!("log version {version} (only {VERSION} is known)"));
    }
    let ss = u64::from(le32(b, 24));
    if !ss.is_power_of_two() || !(MIN_SECTORSIZE..=MAX_SECTORSIZE).contains(&ss) {
        return Err(format!("bad sectorsize {ss}"));
    }
    Ok((le64(b, 16), ss))
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

impl Log {
    /// Opens a log (read-only) and scans its entries.
    pub fn open(path: &Path) -> crate::Result<Log> {
        let dev = Device::open(path, false)?;
        let mut sup = [0u8; SUPER_LEN];
        if dev.size < SUPER_LEN as u64 {
            return Err(format!("{}: too short for a write log", path.display()));
        }
        read_at(&dev, 0, &mut sup)?;
        let (super_entries, sectorsize) =
            parse_super(&sup).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut log = Log {
            dev,
            sectorsize,
            super_entries,
            entries: Vec::new(),
            end: End::Eof,
        };
        log.end = log.scan()?;
        Ok(log)
    }

    /// Reads the headers from sector 1 on, seeking past the data.
    fn scan(&mut self) -> crate::Result<End> {
        let ss = self.sectorsize;
        let size = self.dev.size;
        let mut pos = ss;
        let mut h = [0u8; HEADER_LEN];
        loop {
            if pos.checked_add(ss).is_none_or(|e| e > size) {
                return Ok(End::Eof);
            }
            read_at(&self.dev, pos, &mut h)?;
            if h.iter().all(|&b| b == 0) {
                return Ok(End::ZeroHeader);
            }
            let (sector, nr_sectors, flags) = (le64(&h, 0), le64(&h, 8), le64(&h, 16));
            if flags & !KNOWN_FLAGS != 0 {
                return Ok(End::BadHeader);
            }
            // Byte ranges in the node must be computable; garbage would overflow.
            let Some(len) = nr_sectors.checked_mul(ss) else {
                return Ok(End::BadHeader);
            };
            if sector
                .checked_mul(ss)
                .and_then(|s| s.checked_add(len))
                .is_none()
            {
                return Ok(End::BadHeader);
            }
            let data_offset = pos + ss;
            let payload = if flags & FLAG_DISCARD != 0 { 0 } else { len };
            let Some(next) = data_offset.checked_add(payload).filter(|&n| n <= size) else {
                return Ok(End::DataPastEof);
            };
            self.entries.push(Entry {
                index: self.entries.len(),
                sector,
                nr_sectors,
                flags,
                data_offset,
            });
            pos = next;
        }
    }

    /// Counts the entries by kind.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for e in &self.entries {
            match e.kind() {
                Kind::Write => {
                    s.writes += 1;
                    s.write_bytes += e.nr_sectors * self.sectorsize;
                }
                Kind::Discard => s.discards += 1,
                Kind::Flush => s.flushes += 1,
                Kind::Mark => {}
            }
        }
        s
    }

    /// Reads `buf.len()` bytes of the log at `off`.
    fn read(&self, off: u64, buf: &mut [u8]) -> crate::Result<()> {
        read_at(&self.dev, off, buf)
    }
}

fn read_at(dev: &Device, off: u64, buf: &mut [u8]) -> crate::Result<()> {
    dev.file().read_exact_at(buf, off).map_err(|e| {
        format!(
            "{}: read of {} bytes at {off}: {e}",
            dev.path.display(),
            buf.len()
        )
    })
}

// ---------------------------------------------------------------------------------------
// Crash points.

/// What `apply` does with discards at a crash point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiscardMode {
    /// Write zeros over the discarded range.
    Zero,
    /// Leave the old data (a device may ignore a discard).
    Keep,
}

impl DiscardMode {
    /// The word used on the command line and in `points`' output.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscardMode::Zero => "zero",
            DiscardMode::Keep => "keep",
        }
    }
}

/// One crash point: entries `0..prefix` applied, then `only` (if any).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// Entries applied from the start of the log.
    pub prefix: usize,
    /// The index of the next flush at or after `prefix` (or the entry count): the
    /// acknowledgements logged before it must hold in the image.
    pub acks_upto: usize,
    /// How discards are applied.
    pub discard: DiscardMode,
    /// Writes and discards of the window after `prefix` applied too, sorted (a reordered
    /// point); `None` for a plain prefix.
    pub only: Option<Vec<usize>>,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.prefix,
            self.acks_upto,
            self.discard.as_str()
        )?;
        if let Some(only) = &self.only {
            let list: Vec<String> = only.iter().map(usize::to_string).collect();
            write!(f, " {}", list.join(","))?;
        }
        Ok(())
    }
}

/// The crash points of a log, by increasing prefix (a plain point before the reordered
/// points of the same prefix): one after every flush and one at the end, and with
/// `subsets` > 0, up to `subsets` reordered points per window of at least 2 writes or
/// discards between two flushes (the first window starts at prefix 0). Deterministic from
/// `seed`; each window draws from its own stream, so one window's points do not depend on
/// the others.
pub fn points(entries: &[Entry], subsets: usize, seed: u64) -> Vec<Point> {
    let n = entries.len();
    let barriers: Vec<usize> = entries
        .iter()
        .filter(|e| e.is_barrier())
        .map(|e| e.index)
        .collect();
    let next_barrier = |p: usize| {
        barriers
            .get(barriers.partition_point(|&b| b < p))
            .copied()
            .unwrap_or(n)
    };
    let mut prefixes: Vec<usize> = std::iter::once(0)
        .chain(barriers.iter().map(|&b| b + 1))
        .chain(std::iter::once(n))
        .collect();
    prefixes.dedup(); // sorted already: barriers are increasing and below n
    let mut out = Vec::new();
    for p in prefixes {
        let acks_upto = next_barrier(p);
        let after_barrier = p > 0 && entries.get(p - 1).is_some_and(Entry::is_barrier);
        if after_barrier || p == n {
            out.push(Point {
                prefix: p,
                acks_upto,
                discard: DiscardMode::Zero,
                only: None,
            });
        }
        if subsets == 0 || !(p == 0 || after_barrier) {
            continue;
        }
        let cands: Vec<usize> = entries
            .get(p..acks_upto)
            .unwrap_or(&[])
            .iter()
            .filter(|e| matches!(e.kind(), Kind::Write | Kind::Discard))
            .map(|e| e.index)
            .collect();
        if cands.len() < 2 {
            continue;
        }
        let mut rng = SplitMix::new(seed ^ (p as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        for only in pick_subsets(&cands, subsets, &mut rng) {
            let discard = if rng.below(2) == 0 {
                DiscardMode::Zero
            } else {
                DiscardMode::Keep
            };
            out.push(Point {
                prefix: p,
                acks_upto,
                discard,
                only: Some(only),
            });
        }
    }
    out
}

/// Up to `k` distinct non-empty proper subsets of `cands` (at least 2 long), each sorted.
fn pick_subsets(cands: &[usize], k: usize, rng: &mut SplitMix) -> Vec<Vec<usize>> {
    let m = cands.len();
    let subset = |mask: u64| -> Vec<usize> {
        cands
            .iter()
            .enumerate()
            .filter(|&(b, _)| (mask >> b) & 1 == 1)
            .map(|(_, &e)| e)
            .collect()
    };
    // Few subsets: list them all and draw without replacement, which also settles
    // "distinct" when k is close to (or above) how many there are.
    if m < 20 {
        let total = (1u64 << m) - 2;
        if total <= (k as u64).saturating_mul(4) {
            let mut masks: Vec<u64> = (1..=total).collect();
            shuffle(&mut masks, rng);
            masks.truncate(k);
            return masks.into_iter().map(subset).collect();
        }
    }
    // Many: a uniform size, then a uniform subset of that size, so that "all but one" and
    // "just one" come up as often as the half-and-half mixes; repeats are drawn again.
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut order: Vec<usize> = (0..m).collect();
    let mut tries = k.saturating_mul(64).saturating_add(64);
    while out.len() < k && tries > 0 {
        tries -= 1;
        let size = 1 + rng.index(m - 1);
        for i in 0..size {
            let j = i + rng.index(m - i);
            order.swap(i, j);
        }
        let mut pick: Vec<usize> = order
            .get(..size)
            .unwrap_or(&[])
            .iter()
            .filter_map(|&i| cands.get(i).copied())
            .collect();
        pick.sort_unstable();
        if seen.insert(pick.clone()) {
            out.push(pick);
        }
    }
    out
}

fn shuffle<T>(v: &mut [T], rng: &mut SplitMix) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.index(i + 1));
    }
}

/// Keeps at most `max` points spread evenly over `pts`, the first and the last among them
/// (`max` 1 keeps the last).
pub fn thin(pts: Vec<Point>, max: Option<usize>) -> Vec<Point> {
    let len = pts.len();
    let Some(max) = max.filter(|&m| m < len) else {
        return pts;
    };
    if max <= 1 {
        return pts.into_iter().skip(len - 1).take(max).collect();
    }
    // i * (len-1) / (max-1) grows by at least 1 per step, as len > max.
    let keep: HashSet<usize> = (0..max).map(|i| i * (len - 1) / (max - 1)).collect();
    pts.into_iter()
        .enumerate()
        .filter(|(i, _)| keep.contains(i))
        .map(|(_, p)| p)
        .collect()
}

/// splitmix64: small, deterministic, good enough to pick subsets.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0); the modulo bias does not matter here.
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------
// Applying entries.

/// `OFFSET:SIZE:TARGET` of `apply --slice`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    /// First byte of the slice in the logged node.
    pub offset: u64,
    /// Bytes in the slice.
    pub size: u64,
    /// Where the slice's bytes go.
    pub target: PathBuf,
}

/// Parses `OFFSET:SIZE:TARGET` (sizes as in `format`: `1048576`, `1M`, ...).
pub fn parse_slice(s: &str) -> Result<Slice, String> {
    let mut it = s.splitn(3, ':');
    let (Some(off), Some(size), Some(target)) = (it.next(), it.next(), it.next()) else {
        return Err(format!("bad slice '{s}' (want OFFSET:SIZE:TARGET)"));
    };
    if target.is_empty() {
        return Err(format!("bad slice '{s}': no target"));
    }
    let (offset, size) = parse_range(&format!("{off}:{size}"))?;
    Ok(Slice {
        offset,
        size,
        target: PathBuf::from(target),
    })
}

/// Parses `OFFSET:SIZE`: a non-empty byte range of the logged node.
pub fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let Some((off, size)) = s.split_once(':') else {
        return Err(format!("bad range '{s}' (want OFFSET:SIZE)"));
    };
    let (off, size) = (parse_size(off)?, parse_size(size)?);
    if size == 0 || off.checked_add(size).is_none() {
        return Err(format!("bad range '{s}': empty or past 2^64"));
    }
    Ok((off, size))
}

/// A slice's target, open for writing.
pub struct Target {
    /// First byte of the slice in the logged node.
    pub offset: u64,
    /// Bytes in the slice.
    pub size: u64,
    dev: Device,
}

impl Target {
    /// Opens the slice's target read-write without truncating it; an image file is
    /// created or grown (sparsely) to the slice's size, a block device must be that large.
    pub fn open(s: &Slice) -> crate::Result<Target> {
        Ok(Target {
            offset: s.offset,
            size: s.size,
            dev: Device::open_sized(&s.target, s.size)?,
        })
    }

    /// The bytes of `start..end` of the node that fall into this slice.
    fn overlap(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let lo = start.max(self.offset);
        let hi = end.min(self.offset + self.size);
        (lo < hi).then_some((lo, hi))
    }

    fn write(&self, node_off: u64, buf: &[u8]) -> crate::Result<()> {
        let off = node_off - self.offset;
        self.dev.file().write_all_at(buf, off).map_err(|e| {
            format!(
                "{}: write of {} bytes at {off}: {e}",
                self.dev.path.display(),
                buf.len()
            )
        })
    }
}

/// The entries `apply` works on, in log order: `only` if given (each below `n`), else
/// `from..to` (within `0..=n`).
pub fn select(
    n: usize,
    from: usize,
    to: Option<usize>,
    only: Option<&[usize]>,
) -> crate::Result<Vec<usize>> {
    if let Some(only) = only {
        if let Some(bad) = only.iter().find(|&&i| i >= n) {
            return Err(format!("--only {bad}: the log has {n} entries"));
        }
        let mut v = only.to_vec();
        v.sort_unstable();
        v.dedup();
        return Ok(v);
    }
    let to = to.ok_or("--to or --only is needed")?;
    if to > n {
        return Err(format!("--to {to}: the log has {n} entries"));
    }
    if from > to {
        return Err(format!("--from {from} is past --to {to}"));
    }
    Ok((from..to).collect())
}

/// What `apply` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Write entries applied (whether or not they touched a slice).
    pub writes: u64,
    /// Bytes written into the targets by them.
    pub bytes: u64,
    /// Discard entries applied as zeros (none with `keep`).
    pub discards: u64,
}

/// Applies the entries `sel` (indices into `log.entries`, in log order) to the targets,
/// then fsyncs every target. With `tear_last`, only that many sectors of the last write
/// in `sel` are applied.
pub fn apply(
    log: &Log,
    sel: &[usize],
    discard: DiscardMode,
    tear_last: Option<u64>,
    targets: &[Target],
) -> crate::Result<Applied> {
    let ss = log.sectorsize;
    let last_write = sel
        .iter()
        .rev()
        .copied()
        .find(|&i| log.entries.get(i).is_some_and(|e| e.kind() == Kind::Write));
    let mut buf = vec![0u8; CHUNK as usize];
    let mut zeros = vec![0u8; CHUNK as usize];
    let mut r = Applied::default();
    for &i in sel {
        let e = log
            .entries
            .get(i)
            .ok_or_else(|| format!("entry {i}: the log has {} entries", log.entries.len()))?;
        let mut sectors = e.nr_sectors;
        if Some(i) == last_write {
            sectors = tear_last.map_or(sectors, |t| t.min(sectors));
        }
        // Scanning checked that these do not overflow.
        let start = e.sector * ss;
        let end = start + sectors * ss;
        match e.kind() {
            Kind::Write => {
                r.writes += 1;
                for t in targets {
                    let Some((lo, hi)) = t.overlap(start, end) else {
                        continue;
                    };
                    write_range(t, lo, hi, &mut buf, |pos, b| {
                        log.read(e.data_offset + (pos - start), b)
                    })?;
                    r.bytes += hi - lo;
                }
            }
            Kind::Discard if discard == DiscardMode::Zero => {
                r.discards += 1;
                for t in targets {
                    let Some((lo, hi)) = t.overlap(start, end) else {
                        continue;
                    };
                    write_range(t, lo, hi, &mut zeros, |_, _| Ok(()))?;
                }
            }
            Kind::Discard | Kind::Flush | Kind::Mark => {}
        }
    }
    for t in targets {
        t.dev
            .file()
            .sync_all()
            .map_err(|e| format!("{}: fsync: {e}", t.dev.path.display()))?;
    }
    Ok(r)
}

/// Writes bytes `lo..hi` of the logged node into `t`, a `CHUNK` at a time, each chunk
/// filled in `buf` by `fill(pos, chunk)` first.
fn write_range(
    t: &Target,
    lo: u64,
    hi: u64,
    buf: &mut [u8],
    mut fill: impl FnMut(u64, &mut [u8]) -> crate::Result<()>,
) -> crate::Result<()> {
    let mut pos = lo;
    while pos < hi {
        let len = (hi - pos).min(buf.len() as u64) as usize;
        let b = buf.get_mut(..len).unwrap_or_default();
        fill(pos, b)?;
        t.write(pos, b)?;
        pos += len as u64;
    }
    Ok(())
}

/// The acknowledgements in slice `offset..offset+size` written by the entries before `to`,
/// in log order: every sector of a write's data that lies wholly inside the slice and
/// starts with `bkack `, up to its first newline or NUL (lossy UTF-8).
pub fn acks(log: &Log, offset: u64, size: u64, to: usize) -> crate::Result<Vec<String>> {
    let n = log.entries.len();
    if to > n {
        return Err(format!("--to {to}: the log has {n} entries"));
    }
    let ss = log.sectorsize;
    let (s_lo, s_hi) = (offset, offset.saturating_add(size));
    // Whole sectors per read: at least one, about a CHUNK.
    let piece = CHUNK.max(ss) / ss * ss;
    let mut buf = vec![0u8; piece as usize];
    let mut out = Vec::new();
    for e in log.entries.get(..to).unwrap_or(&[]) {
        if e.kind() != Kind::Write {
            continue;
        }
        let start = e.sector * ss;
        let end = start + e.nr_sectors * ss;
        // The sectors of the write that lie wholly inside the slice.
        let lo = start.max(s_lo.div_ceil(ss).saturating_mul(ss));
        let hi = end.min(s_hi / ss * ss);
        let mut pos = lo;
        while pos < hi {
            let len = (hi - pos).min(piece) as usize;
            let b = buf.get_mut(..len).unwrap_or_default();
            log.read(e.data_offset + (pos - start), b)?;
            for sector in b.chunks(ss as usize) {
                if sector.starts_with(ACK_PREFIX) {
                    let cut = sector
                        .iter()
                        .position(|&c| c == b'\n' || c == 0)
                        .unwrap_or(sector.len());
                    out.push(String::from_utf8_lossy(sector.get(..cut).unwrap_or(sector)).into());
                }
            }
            pos += len as u64;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const SS: u64 = 512;

    /// One entry of a synthetic log: header fields and the data that follows it.
    struct E {
        sector: u64,
        nr: u64,
        flags: u64,
        data: Vec<u8>,
    }

    fn write(sector: u64, fill: &[u8]) -> E {
        let nr = (fill.len() as u64).div_ceil(SS);
        let mut data = fill.to_vec();
        data.resize((nr * SS) as usize, 0);
        E {
            sector,
            nr,
            flags: 0,
            data,
        }
    }

    /// `nr` sectors of `byte`.
    fn wfill(sector: u64, nr: u64, byte: u8) -> E {
        write(sector, &vec![byte; (nr * SS) as usize])
    }

    fn flush() -> E {
        E {
            sector: 0,
            nr: 0,
            flags: FLAG_FLUSH,
            data: vec![],
        }
    }

    fn discard(sector: u64, nr: u64) -> E {
        E {
            sector,
            nr,
            flags: FLAG_DISCARD,
            data: vec![],
        }
    }

    fn header(sector: u64, nr: u64, flags: u64) -> Vec<u8> {
        let mut h = vec![0u8; SS as usize];
        h[0..8].copy_from_slice(&sector.to_le_bytes());
        h[8..16].copy_from_slice(&nr.to_le_bytes());
        h[16..24].copy_from_slice(&flags.to_le_bytes());
        h
    }

    /// The bytes of a log whose super claims `claimed` entries.
    fn log_bytes(claimed: u64, entries: &[E]) -> Vec<u8> {
        let mut v = vec![0u8; SS as usize];
        v[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        v[8..16].copy_from_slice(&VERSION.to_le_bytes());
        v[16..24].copy_from_slice(&claimed.to_le_bytes());
        v[24..28].copy_from_slice(&(SS as u32).to_le_bytes());
        for e in entries {
            v.extend(header(e.sector, e.nr, e.flags));
            v.extend(&e.data);
        }
        v
    }

    fn file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    fn open(bytes: &[u8]) -> (tempfile::NamedTempFile, Log) {
        let f = file_with(bytes);
        let log = Log::open(f.path()).unwrap();
        (f, log)
    }

    fn plain(prefix: usize, acks_upto: usize) -> Point {
        Point {
            prefix,
            acks_upto,
            discard: DiscardMode::Zero,
            only: None,
        }
    }

    /// A temp dir with one image file per slice.
    fn targets(dir: &tempfile::TempDir, slices: &[(u64, u64)]) -> Vec<Target> {
        slices
            .iter()
            .enumerate()
            .map(|(i, &(offset, size))| {
                Target::open(&Slice {
                    offset,
                    size,
                    target: dir.path().join(format!("t{i}")),
                })
                .unwrap()
            })
            .collect()
    }

    fn image(dir: &tempfile::TempDir, i: usize) -> Vec<u8> {
        std::fs::read(dir.path().join(format!("t{i}"))).unwrap()
    }

    #[test]
    fn super_undercounts_and_info_counts() {
        let es = [
            wfill(0, 2, 1),
            flush(),
            discard(4, 2),
            wfill(8, 1, 2),
            flush(),
        ];
        // QEMU updated the super after the first flush only.
        let (_f, log) = open(&log_bytes(2, &es));
        assert_eq!(log.super_entries, 2);
        assert_eq!(log.entries.len(), 5);
        assert_eq!(log.end, End::Eof);
        assert_eq!(log.sectorsize, SS);
        assert_eq!(
            log.summary(),
            Summary {
                writes: 2,
                write_bytes: 3 * SS,
                discards: 1,
                flushes: 2
            }
        );
        // Data offsets skip the data of writes only.
        let offs: Vec<u64> = log.entries.iter().map(|e| e.data_offset).collect();
        assert_eq!(offs, [2 * SS, 5 * SS, 6 * SS, 7 * SS, 9 * SS]);
    }

    #[test]
    fn bad_super_is_an_error() {
        let mut b = log_bytes(0, &[]);
        b[0] ^= 1;
        let f = file_with(&b);
        assert!(Log::open(f.path()).is_err());
        let mut b = log_bytes(0, &[]);
        b[24..28].copy_from_slice(&1000u32.to_le_bytes());
        let f = file_with(&b);
        assert!(Log::open(f.path()).is_err());
        // Large power-of-two sector sizes are fine (an empty log here).
        let mut b = log_bytes(0, &[]);
        b[24..28].copy_from_slice(&(1u32 << 23).to_le_bytes());
        let f = file_with(&b);
        assert_eq!(Log::open(f.path()).unwrap().sectorsize, 1 << 23);
    }

    #[test]
    fn torn_tails_end_the_scan() {
        let es = [wfill(0, 1, 1), flush()];
        // A zero header after the last entry (preallocated log).
        let mut b = log_bytes(0, &es);
        b.extend(vec![0u8; 4 * SS as usize]);
        let (_f, log) = open(&b);
        assert_eq!((log.entries.len(), log.end), (2, End::ZeroHeader));
        // A header whose data runs past the end of the file.
        let mut b = log_bytes(0, &es);
        b.extend(header(3, 4, 0));
        b.extend(vec![7u8; 3 * SS as usize]);
        let (_f, log) = open(&b);
        assert_eq!((log.entries.len(), log.end), (2, End::DataPastEof));
        // A header with unknown flags, then a valid-looking entry that must not count.
        let mut b = log_bytes(0, &es);
        b.extend(header(3, 0, 1 << 7));
        b.extend(header(0, 0, FLAG_FLUSH));
        let (_f, log) = open(&b);
        assert_eq!((log.entries.len(), log.end), (2, End::BadHeader));
        // Half a header sector at the end.
        let mut b = log_bytes(0, &es);
        b.extend(vec![1u8; 100]);
        let (_f, log) = open(&b);
        assert_eq!((log.entries.len(), log.end), (2, End::Eof));
    }

    #[test]
    fn mark_and_fua() {
        let mut mark = header(0, 0, FLAG_MARK);
        mark[24..32].copy_from_slice(&4u64.to_le_bytes());
        mark[32..36].copy_from_slice(b"done");
        let mut b = log_bytes(0, &[wfill(0, 1, 1)]);
        b.extend(mark);
        let fua = E {
            flags: FLAG_FUA,
            ..wfill(1, 1, 2)
        };
        b.extend(header(fua.sector, fua.nr, fua.flags));
        b.extend(&fua.data);
        b.extend(header(2, 1, 0));
        b.extend(vec![3u8; SS as usize]);
        let (_f, log) = open(&b);
        let kinds: Vec<Kind> = log.entries.iter().map(Entry::kind).collect();
        assert_eq!(kinds, [Kind::Write, Kind::Mark, Kind::Write, Kind::Write]);
        // The FUA write counts as a write followed by a flush.
        assert_eq!(points(&log.entries, 0, 1), [plain(3, 4), plain(4, 4)]);
    }

    #[test]
    fn plain_points() {
        // 0 w, 1 flush, 2 w, 3 d, 4 flush, 5 flush, 6 w
        let es = [
            wfill(0, 1, 1),
            flush(),
            wfill(1, 1, 2),
            discard(0, 1),
            flush(),
            flush(),
            wfill(2, 1, 3),
        ];
        let (_f, log) = open(&log_bytes(0, &es));
        let pts = points(&log.entries, 0, 1);
        assert_eq!(pts, [plain(2, 4), plain(5, 5), plain(6, 7), plain(7, 7)]);
        assert_eq!(pts[0].to_string(), "2 4 zero");
        // A log ending in a flush has no separate end point.
        let (_f, log) = open(&log_bytes(0, &es[..6]));
        assert_eq!(
            points(&log.entries, 0, 1),
            [plain(2, 4), plain(5, 5), plain(6, 6)]
        );
        // An empty log has the one (empty) point.
        let (_f, log) = open(&log_bytes(0, &[]));
        assert_eq!(points(&log.entries, 0, 1), [plain(0, 0)]);
    }

    #[test]
    fn reordered_points() {
        // Window before the first flush: 0,1,2; flush 3; window 4 (one write only:
        // none); flush 5; window 6,7,8,9 up to the end.
        let es = [
            wfill(0, 1, 1),
            wfill(1, 1, 2),
            discard(2, 1),
            flush(),
            wfill(3, 1, 3),
            flush(),
            wfill(4, 1, 4),
            wfill(5, 1, 5),
            discard(4, 1),
            wfill(6, 1, 6),
        ];
        let (_f, log) = open(&log_bytes(0, &es));
        let pts = points(&log.entries, 3, 42);
        assert_eq!(pts, points(&log.entries, 3, 42), "deterministic");
        let seeds_differ = (1..20).any(|s| points(&log.entries, 3, s) != pts);
        assert!(seeds_differ);
        let plains: Vec<&Point> = pts.iter().filter(|p| p.only.is_none()).collect();
        assert_eq!(plains, [&plain(4, 5), &plain(6, 10), &plain(10, 10)]);
        let mut by_window: Vec<(usize, usize, Vec<Vec<usize>>)> = Vec::new();
        for p in &pts {
            let Some(only) = &p.only else { continue };
            match by_window.last_mut() {
                Some(w) if w.0 == p.prefix => w.2.push(only.clone()),
                _ => by_window.push((p.prefix, p.acks_upto, vec![only.clone()])),
            }
        }
        let windows: Vec<(usize, usize, usize)> = by_window
            .iter()
            .map(|(p, a, v)| (*p, *a, v.len()))
            .collect();
        assert_eq!(windows, [(0, 3, 3), (6, 10, 3)]);
        for (p, a, subsets) in &by_window {
            let cands: Vec<usize> = (*p..*a)
                .filter(|&i| es[i].flags & FLAG_FLUSH == 0)
                .collect();
            let distinct: HashSet<&Vec<usize>> = subsets.iter().collect();
            assert_eq!(distinct.len(), subsets.len());
            for s in subsets {
                assert!(!s.is_empty() && s.len() < cands.len(), "{s:?}");
                assert!(s.windows(2).all(|w| w[0] < w[1]));
                assert!(s.iter().all(|i| cands.contains(i)));
            }
        }
        // Sorted by prefix, the plain point first.
        assert!(pts.windows(2).all(|w| w[0].prefix <= w[1].prefix));
        let first = pts.iter().position(|p| p.prefix == 6).unwrap();
        assert!(pts[first].only.is_none());
        assert!(pts[0].to_string().starts_with("0 3 "));
        // Asking for more than there are gives each of the 6 subsets of 3 once.
        let all = points(&log.entries, 100, 7);
        assert_eq!(all.iter().filter(|p| p.prefix == 0).count(), 6);
    }

    #[test]
    fn many_subsets_are_distinct() {
        let cands: Vec<usize> = (10..40).collect();
        let mut rng = SplitMix::new(5);
        let picks = pick_subsets(&cands, 500, &mut rng);
        assert_eq!(picks.len(), 500);
        let distinct: HashSet<&Vec<usize>> = picks.iter().collect();
        assert_eq!(distinct.len(), 500);
        assert!(picks.iter().all(|s| !s.is_empty() && s.len() < 30));
        let mut rng = SplitMix::new(5);
        let mut two = pick_subsets(&[3, 4], 5, &mut rng);
        two.sort();
        assert_eq!(two, [vec![3], vec![4]]);
    }

    #[test]
    fn max_points() {
        let pts: Vec<Point> = (0..10).map(|i| plain(i, i)).collect();
        let prefixes = |v: Vec<Point>| v.iter().map(|p| p.prefix).collect::<Vec<_>>();
        assert_eq!(prefixes(thin(pts.clone(), Some(4))), [0, 3, 6, 9]);
        assert_eq!(prefixes(thin(pts.clone(), Some(2))), [0, 9]);
        assert_eq!(prefixes(thin(pts.clone(), Some(1))), [9]);
        assert_eq!(prefixes(thin(pts.clone(), Some(9))).len(), 9);
        assert_eq!(thin(pts.clone(), Some(10)), pts);
        assert_eq!(thin(pts.clone(), None), pts);
    }

    /// Two slices of 4 sectors: node sectors 2..6 and 8..12.
    fn two_slices(dir: &tempfile::TempDir) -> Vec<Target> {
        targets(dir, &[(2 * SS, 4 * SS), (8 * SS, 4 * SS)])
    }

    fn sectors(img: &[u8]) -> Vec<u8> {
        img.chunks(SS as usize).map(|s| s[0]).collect()
    }

    #[test]
    fn apply_across_slices_and_discards() {
        let es = [
            wfill(0, 12, 9), // everything, both slices
            flush(),
            wfill(4, 6, 5),   // 4..10: the end of slice 0, the start of slice 1
            discard(3, 6),    // 3..9
            wfill(100, 2, 1), // outside every slice
        ];
        let (_f, log) = open(&log_bytes(0, &es));
        let dir = tempfile::tempdir().unwrap();
        let t = two_slices(&dir);
        let r = apply(
            &log,
            &select(5, 0, Some(5), None).unwrap(),
            DiscardMode::Zero,
            None,
            &t,
        )
        .unwrap();
        assert_eq!(
            r,
            Applied {
                writes: 3,
                bytes: (8 + 4) * SS,
                discards: 1
            }
        );
        assert_eq!(sectors(&image(&dir, 0)), [9, 0, 0, 0]);
        assert_eq!(sectors(&image(&dir, 1)), [0, 5, 9, 9]);

        let dir = tempfile::tempdir().unwrap();
        let t = two_slices(&dir);
        let r = apply(
            &log,
            &select(5, 0, Some(5), None).unwrap(),
            DiscardMode::Keep,
            None,
            &t,
        )
        .unwrap();
        assert_eq!(r.discards, 0);
        assert_eq!(sectors(&image(&dir, 0)), [9, 9, 5, 5]);
        assert_eq!(sectors(&image(&dir, 1)), [5, 5, 9, 9]);
    }

    #[test]
    fn apply_only_and_tear_last() {
        let es = [
            wfill(2, 4, 1),
            flush(),
            wfill(2, 1, 2),
            wfill(3, 1, 3),
            wfill(4, 2, 4),
        ];
        let (_f, log) = open(&log_bytes(0, &es));
        let dir = tempfile::tempdir().unwrap();
        let t = targets(&dir, &[(2 * SS, 4 * SS)]);
        apply(
            &log,
            &select(5, 0, Some(2), None).unwrap(),
            DiscardMode::Zero,
            None,
            &t,
        )
        .unwrap();
        assert_eq!(sectors(&image(&dir, 0)), [1, 1, 1, 1]);
        // The reordered point "2 5 zero 4,2": entries 2 and 4, torn after one sector.
        let sel = select(5, 0, None, Some(&[4, 2])).unwrap();
        assert_eq!(sel, [2, 4]);
        let r = apply(&log, &sel, DiscardMode::Zero, Some(1), &t).unwrap();
        assert_eq!((r.writes, r.bytes), (2, 2 * SS));
        assert_eq!(sectors(&image(&dir, 0)), [2, 1, 4, 1]);
        assert!(select(5, 0, None, Some(&[5])).is_err());
        assert!(select(5, 0, Some(6), None).is_err());
        assert!(select(5, 3, Some(2), None).is_err());
        assert_eq!(select(5, 3, Some(5), None).unwrap(), [3, 4]);
    }

    #[test]
    fn acks_in_the_slice() {
        let mut two = b"bkack 1 first\nrest".to_vec();
        two.resize(SS as usize, 0);
        two.extend(b"bkack 2 second\0junk");
        let es = [
            write(8, &two),                   // node sectors 8, 9
            write(0, b"bkack 0 outside\n"),   // outside the slice
            wfill(10, 1, 0),                  // no ack
            write(11, b"bkack 3 last"),       // sector 11: the slice's last
            write(9, b"bkack 4 after flush"), // past --to
        ];
        let mut es = Vec::from(es);
        es.insert(4, flush());
        let (_f, log) = open(&log_bytes(0, &es));
        let got = acks(&log, 8 * SS, 4 * SS, 5).unwrap();
        assert_eq!(got, ["bkack 1 first", "bkack 2 second", "bkack 3 last"]);
        // A slice that cuts sector 8 in half sees only sector 9 of the first write.
        let got = acks(&log, 8 * SS + 1, 3 * SS, 5).unwrap();
        assert_eq!(got, ["bkack 2 second"]);
        assert_eq!(acks(&log, 8 * SS, 4 * SS, 6).unwrap().len(), 4);
        assert!(acks(&log, 8 * SS, 4 * SS, 7).is_err());
    }

    #[test]
    fn slice_arguments() {
        assert_eq!(
            parse_slice("1M:64k:/dev/nvme0n1").unwrap(),
            Slice {
                offset: 1 << 20,
                size: 64 << 10,
                target: PathBuf::from("/dev/nvme0n1")
            }
        );
        assert_eq!(
            parse_slice("0:512:a:b").unwrap().target,
            PathBuf::from("a:b")
        );
        assert!(parse_slice("0:512").is_err());
        assert!(parse_slice("0:0:x").is_err());
        assert!(parse_slice("0:512:").is_err());
        assert_eq!(parse_range("4096:8k"), Ok((4096, 8192)));
        assert!(parse_range("4096").is_err());
    }
}
