// SPDX-License-Identifier: GPL-2.0

//! `bkalloc mutate`: corrupted images for the kernel's register path, many per boot.
//!
//! `save` copies every block of a volume that matters to a snapshot file: per member its
//! metadata (superblock copies, checkpoint slots, both alloc table copies, the journal: bytes
//! `0..metadata_end`) and every replica of every btree node reachable from the newest
//! checkpoint. `apply` writes the snapshot back (the pristine image), then mutation
//! `--index` of `--seed`, and prints one line:
//!
//! `mutation I: member N <structure> <where>: <what>; family F; expect: E`
//!
//! Families, cycled by the index (each 16 indexes hold 4 bit flips, 3 truncations,
//! 8 crafted values and 1 foreign member, so every block of 1000 holds every family many
//! times, and every crafted case comes up within `2 * CRAFTS.len()` indexes, 370; where
//! the volume has nothing for a case, the next case is used):
//! - `bitflip`: 1..=8 bits flipped in one byte range of one structure instance (a
//!   superblock copy, a checkpoint slot, a block of the current alloc table copy, a journal
//!   entry, a btree node replica), or of every copy of it (both superblock copies, every
//!   member's newest checkpoint, every mirror of the entry, every replica of the node);
//! - `truncate`: the tail of such an instance zeroed from a random offset (a torn write);
//! - `crafted`: one field set to a hostile value, the checksum recomputed over the range its
//!   decoder checks, so that the value itself is what is judged (`CRAFTS` lists them);
//! - `foreign`: member N's superblocks (or its whole metadata region) replaced by those of
//!   another volume (`--other`), or crafted to name another volume when there is none.
//!
//! A crafted edit goes to every copy of the structure (both superblock copies, every
//! member's newest checkpoint, every mirror of a journal entry, every replica of a node)
//! unless its description says "copy N", "one mirror" or "one replica".
//!
//! `expect: refuse` means that no reading of the image is both faithful and consistent (the
//! only copy of something register needs is unreadable or contradicts the rest);
//! `expect: either` means that a redundant copy or a repair exists, so coming up consistent
//! is fine too. Where things are is decided from the snapshot, never from the (mutated)
//! devices, and nothing here panics on any snapshot.
//!
//! Devices are read and written with O_DIRECT and 4 KiB-aligned buffers (the kernel module
//! reads with bios, past the page cache), falling back to buffered I/O only where the file
//! system refuses O_DIRECT (image files on tmpfs); after writing, each device is fsync'ed
//! and its page cache dropped.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use bkcore::buckets::BucketState;
use bkcore::crc32c::crc32c;
use bkcore::format::superblock::{off as so, pick_copy};
use bkcore::format::{
    alloc_table::{self, off as ao, ALLOC_HEADER_SIZE, STATES_PER_BLOCK},
    btree_node::{self, off as no, NODE_HEADER_SIZE, PTR_SIZE},
    checkpoint::off as co,
    decode_entry, decode_node,
    journal::{self, off as jo, ENTRY_HEADER_SIZE, RECORD_SIZE},
    max_node_entries, newest_checkpoint, BtreePtr, Checkpoint, ErrorKind, FormatError, Layout,
    Record, Superblock, BLOCK_SIZE, MAX_COUNTER, MAX_LEVEL, MAX_MEMBERS, MAX_REPLICAS,
};
use bkcore::options::{OptId, NR_OPTS};
use bkcore::uuid::{Hyphenated, Uuid, NIL};

use super::fuzz::Rng;
use crate::dev::{Aligned, Device};

const BLOCK: u64 = BLOCK_SIZE as u64;
/// `_IO(0x12, 97)`: drop a block device's page cache.
const BLKFLSBUF: u32 = 0x1261;
/// Most nodes walked (a bound on any snapshot, not a format limit).
const MAX_NODES: usize = 1 << 20;

/// `bkalloc mutate` and its subcommands.
#[derive(Debug, clap::Args)]
pub struct MutateArgs {
    /// What to do.
    #[command(subcommand)]
    pub cmd: MutateCmd,
}

/// The subcommands of `bkalloc mutate`.
#[derive(Debug, clap::Subcommand)]
pub enum MutateCmd {
    /// Copy every metadata block and btree node replica of a volume to SNAPSHOT.
    ///
    /// Reads with O_DIRECT, so it sees what a registered volume wrote: run it with the
    /// volume idle and the copy is what a crash at that moment would leave.
    Save {
        /// The snapshot file to write.
        snapshot: PathBuf,
        /// Every member device of the volume.
        #[arg(required = true)]
        devices: Vec<PathBuf>,
    },
    /// Write SNAPSHOT back to the devices, then mutation --index of --seed; print one line.
    Apply(ApplyArgs),
}

/// `bkalloc mutate apply`.
#[derive(Clone, Debug, clap::Args)]
pub struct ApplyArgs {
    /// The snapshot `save` wrote.
    pub snapshot: PathBuf,
    /// Seed of the mutations; the same seed and index make the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Which mutation of the seed's sequence.
    #[arg(long, required_unless_present = "restore_only")]
    pub index: Option<u64>,
    /// A device or image holding another volume, for the foreign-member family.
    #[arg(long)]
    pub other: Option<PathBuf>,
    /// Only write the snapshot back (the pristine image).
    #[arg(long, conflicts_with = "index")]
    pub restore_only: bool,
    /// The member devices, in the order given to `save`.
    #[arg(required = true)]
    pub devices: Vec<PathBuf>,
}

/// Runs `bkalloc mutate`: prints its one line.
pub fn run(a: &MutateArgs) -> crate::Result<()> {
    let line = match &a.cmd {
        MutateCmd::Save { snapshot, devices } => save(snapshot, devices)?,
        MutateCmd::Apply(args) => apply(args)?,
    };
    println!("{line}");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Devices: O_DIRECT reads and writes.

/// A device or image opened for direct I/O.
struct Disk {
    dev: Device,
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> String {
    format!("{}: {what}: {e}", path.display())
}

impl Disk {
    fn open(path: &Path, write: bool) -> crate::Result<Disk> {
        let open = |flags: i32| {
            OpenOptions::new()
                .read(true)
                .write(write)
                .custom_flags(flags)
                .open(path)
        };
        let file = match open(libc::O_DIRECT) {
            Ok(f) => f,
            // tmpfs refuses O_DIRECT; an image file there is its own page cache.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                open(0).map_err(|e| io_err(path, "cannot open", e))?
            }
            Err(e) => return Err(io_err(path, "cannot open", e)),
        };
        Device::from_file(path, file).map(|dev| Disk { dev })
    }

    fn read(&self, off: u64, len: usize) -> crate::Result<Vec<u8>> {
        if !off.is_multiple_of(BLOCK) || !len.is_multiple_of(BLOCK_SIZE) {
            return Err(format!(
                "{}: unaligned read of {len} bytes at {off}",
                self.dev.path.display()
            ));
        }
        let mut a = Aligned::new(len);
        self.dev
            .file()
            .read_exact_at(a.bytes_mut(), off)
            .map_err(|e| io_err(&self.dev.path, &format!("read of {len} bytes at {off}"), e))?;
        Ok(a.bytes().to_vec())
    }

    fn write(&self, off: u64, data: &[u8]) -> crate::Result<()> {
        if !off.is_multiple_of(BLOCK) || !data.len().is_multiple_of(BLOCK_SIZE) {
            return Err(format!(
                "{}: unaligned write of {} bytes at {off}",
                self.dev.path.display(),
                data.len()
            ));
        }
        let mut a = Aligned::new(data.len());
        a.bytes_mut().copy_from_slice(data);
        self.dev
            .file()
            .write_all_at(a.bytes(), off)
            .map_err(|e| io_err(&self.dev.path, &format!("write at {off}"), e))
    }

    /// Makes the writes durable and drops cached pages, so that the next reader of the
    /// device (the kernel's bios, or a buffered reader) sees them.
    fn sync(&self) -> crate::Result<()> {
        self.dev
            .file()
            .sync_all()
            .map_err(|e| io_err(&self.dev.path, "fsync", e))?;
        let fd = self.dev.file().as_raw_fd();
        // SAFETY: plain syscalls on an open descriptor; neither touches our memory. Their
        // failure (e.g. BLKFLSBUF without CAP_SYS_ADMIN) only leaves clean pages cached.
        unsafe {
            if self.dev.is_block {
                libc::ioctl(fd, BLKFLSBUF as libc::c_ulong, 0);
            }
            libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
        }
        Ok(())
    }
}

fn open_all(paths: &[PathBuf], write: bool) -> crate::Result<Vec<Disk>> {
    for (i, p) in paths.iter().enumerate() {
        if paths.get(..i).unwrap_or(&[]).contains(p) {
            return Err(format!("{}: given twice", p.display()));
        }
    }
    paths.iter().map(|p| Disk::open(p, write)).collect()
}

// ---------------------------------------------------------------------------------------
// The snapshot file.

const SNAP_MAGIC: [u8; 8] = *b"BKMUTSN1";
const SNAP_VERSION: u32 = 1;
const SNAP_END: u32 = u32::MAX;

/// One saved range: device (position in the device list), byte offset, bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapRecord {
    /// Position of the device in the list given to `save` (and `apply`).
    pub dev: usize,
    /// Byte offset on the device (4 KiB-aligned).
    pub off: u64,
    /// The bytes (whole 4 KiB blocks).
    pub data: Vec<u8>,
}

/// A saved image: every range `apply` restores.
///
/// File format: magic `BKMUTSN1`, u32 version 1, u32 device count, a u64 size per
/// device, then records (u32 device, u32 0, u64 offset, u64 length, the bytes), then an
/// end record (u32 0xffffffff, u32 0, u64 crc32c of every byte before it, u64 0). All
/// little-endian; anything after the end record is ignored.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Device sizes at save time.
    pub sizes: Vec<u64>,
    /// The ranges.
    pub records: Vec<SnapRecord>,
    /// (device, block offset) -> (record, offset within it), for every saved block.
    index: HashMap<(usize, u64), (usize, usize)>,
}

impl Snapshot {
    fn new(sizes: Vec<u64>) -> Snapshot {
        Snapshot {
            sizes,
            ..Snapshot::default()
        }
    }

    /// Adds a range; blocks already saved keep their first copy.
    fn push(&mut self, dev: usize, off: u64, data: Vec<u8>) {
        let r = self.records.len();
        for (i, _) in data.chunks(BLOCK_SIZE).enumerate() {
            let at = off.saturating_add(i as u64 * BLOCK);
            self.index.entry((dev, at)).or_insert((r, i * BLOCK_SIZE));
        }
        self.records.push(SnapRecord { dev, off, data });
    }

    /// Whether it holds `dev`'s block at `off`.
    fn has_block(&self, dev: usize, off: u64) -> bool {
        self.index.contains_key(&(dev, off))
    }

    /// `len` bytes (whole blocks) at `off` of device `dev`, if every block was saved.
    pub fn read(&self, dev: usize, off: u64, len: usize) -> Option<Vec<u8>> {
        if !self.covers(dev, off, len) {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        for i in 0..len / BLOCK_SIZE {
            let at = off.checked_add(i as u64 * BLOCK)?;
            let (r, o) = *self.index.get(&(dev, at))?;
            out.extend_from_slice(self.records.get(r)?.data.get(o..o + BLOCK_SIZE)?);
        }
        Some(out)
    }

    /// Whether every block of `len` bytes at `off` is saved (so `apply` restores it).
    pub fn covers(&self, dev: usize, off: u64, len: usize) -> bool {
        off.is_multiple_of(BLOCK)
            && len.is_multiple_of(BLOCK_SIZE)
            && (0..len / BLOCK_SIZE).all(|i| {
                off.checked_add(i as u64 * BLOCK)
                    .is_some_and(|at| self.has_block(dev, at))
            })
    }

    /// Saved bytes.
    pub fn bytes(&self) -> u64 {
        self.records.iter().map(|r| r.data.len() as u64).sum()
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes() as usize + 64 + 24 * self.records.len());
        out.extend_from_slice(&SNAP_MAGIC);
        out.extend_from_slice(&SNAP_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.sizes.len() as u32).to_le_bytes());
        for s in &self.sizes {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for r in &self.records {
            out.extend_from_slice(&(r.dev as u32).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&r.off.to_le_bytes());
            out.extend_from_slice(&(r.data.len() as u64).to_le_bytes());
            out.extend_from_slice(&r.data);
        }
        let crc = crc32c(&out);
        out.extend_from_slice(&SNAP_END.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&u64::from(crc).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out
    }

    /// Parses a snapshot file's bytes.
    pub fn decode(buf: &[u8]) -> crate::Result<Snapshot> {
        let mut cur = Cursor { buf, at: 0 };
        if cur.take(8)? != SNAP_MAGIC {
            return Err("not a bkalloc mutate snapshot (bad magic)".into());
        }
        let version = cur.u32()?;
        if version != SNAP_VERSION {
            return Err(format!(
                "snapshot version {version}, expected {SNAP_VERSION}"
            ));
        }
        let ndev = cur.u32()? as usize;
        if ndev == 0 || ndev > MAX_MEMBERS {
            return Err(format!("snapshot of {ndev} devices"));
        }
        let mut sizes = Vec::with_capacity(ndev);
        for _ in 0..ndev {
            sizes.push(cur.u64()?);
        }
        let mut snap = Snapshot::new(sizes);
        loop {
            let start = cur.at;
            let dev = cur.u32()?;
            cur.u32()?;
            let off = cur.u64()?;
            let len = cur.u64()?;
            if dev == SNAP_END {
                let crc = crc32c(buf.get(..start).unwrap_or(&[]));
                if off != u64::from(crc) {
                    return Err(format!(
                        "snapshot checksum mismatch (stored {off:#x}, computed {crc:#x})"
                    ));
                }
                return Ok(snap);
            }
            let dev = dev as usize;
            let len = usize::try_from(len).map_err(|_| "snapshot record too long")?;
            if dev >= ndev || !off.is_multiple_of(BLOCK) || !len.is_multiple_of(BLOCK_SIZE) {
                return Err(format!(
                    "bad snapshot record at byte {start}: device {dev}, {len} bytes at {off}"
                ));
            }
            let data = cur.take(len)?.to_vec();
            snap.push(dev, off, data);
        }
    }
}

/// Reads a snapshot file front to back.
struct Cursor<'b> {
    buf: &'b [u8],
    at: usize,
}

impl<'b> Cursor<'b> {
    fn take(&mut self, n: usize) -> crate::Result<&'b [u8]> {
        let s = self
            .at
            .checked_add(n)
            .and_then(|end| self.buf.get(self.at..end))
            .ok_or_else(|| format!("snapshot truncated at byte {}", self.at))?;
        self.at += n;
        Ok(s)
    }

    fn u32(&mut self) -> crate::Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or([0; 4]),
        ))
    }

    fn u64(&mut self) -> crate::Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or([0; 8]),
        ))
    }
}

// ---------------------------------------------------------------------------------------
// What the volume looks like: decoded from the devices (save) or the snapshot (apply).

/// One member, by position in the device list.
#[derive(Clone, Debug)]
struct Mem {
    pos: usize,
    sb: Superblock,
    layout: Layout,
    /// Newest valid checkpoint of each slot.
    cps: [Option<Checkpoint>; 2],
    /// The states of the alloc table copy the volume's checkpoint uses (raw bytes).
    states: Vec<u8>,
    /// Valid entries of its journal copy, in ring order.
    journal: Vec<JEntry>,
}

impl Mem {
    fn index(&self) -> u32 {
        self.sb.member_index
    }

    /// The slot holding this member's newest valid checkpoint.
    fn newest_slot(&self) -> Option<usize> {
        match self.cps {
            [Some(a), Some(b)] => Some(usize::from(b.generation > a.generation)),
            [Some(_), None] => Some(0),
            [None, Some(_)] => Some(1),
            [None, None] => None,
        }
    }

    /// Buckets of the current alloc table copy in `state`, outside the metadata region.
    fn buckets_in(&self, state: BucketState) -> Vec<u64> {
        self.states
            .iter()
            .enumerate()
            .filter(|(b, s)| **s == state.to_u8() && !self.layout.is_sb_bucket(*b as u64))
            .map(|(b, _)| b as u64)
            .collect()
    }
}

/// A valid journal entry found on a member.
#[derive(Clone, Debug)]
struct JEntry {
    block: u32,
    seq: u64,
    len: usize,
    blocks: usize,
    records: Vec<Record>,
}

/// A btree node reachable from the volume's checkpoint.
#[derive(Clone, Debug)]
struct TNode {
    ptr: BtreePtr,
    level: u8,
    min: u64,
    max: u64,
    len: usize,
    keys: Vec<u64>,
    children: Vec<BtreePtr>,
    is_root: bool,
}

/// What the snapshot says about the volume, enough to aim every mutation.
#[derive(Clone, Debug, Default)]
struct Model {
    /// By position in the device list; `None` where no superblock copy decodes.
    mems: Vec<Option<Mem>>,
    /// Member index -> position.
    by_index: Vec<Option<usize>>,
    member_count: u32,
    volume: Uuid,
    /// The newest valid checkpoint over every member.
    cp: Option<Checkpoint>,
    nodes: Vec<TNode>,
    node_size: usize,
    node_max: u32,
}

type ReadFn<'r> = &'r dyn Fn(usize, u64, usize) -> Option<Vec<u8>>;

fn too_short() -> FormatError {
    FormatError::new(
        "superblock",
        "length",
        0,
        ErrorKind::TooShort {
            need: BLOCK_SIZE,
            have: 0,
        },
    )
}

impl Model {
    /// The volume on devices of `sizes` bytes (by position), read through `read`.
    fn build(sizes: &[u64], read: ReadFn<'_>) -> Model {
        let mut mems: Vec<Option<Mem>> = sizes
            .iter()
            .enumerate()
            .map(|(pos, size)| load_member(pos, *size, read))
            .collect();
        let (volume, member_count) = mems
            .iter()
            .flatten()
            .next()
            .map_or((NIL, 0), |m| (m.sb.volume_uuid, m.sb.member_count));
        let mut by_index = vec![None; member_count as usize];
        for m in mems.iter().flatten() {
            if let Some(slot) = by_index.get_mut(m.index() as usize) {
                if slot.is_none() {
                    *slot = Some(m.pos);
                }
            }
        }
        for m in mems.iter_mut().flatten() {
            m.cps = [0, 1].map(|s| {
                read(m.pos, m.layout.checkpoint_offset(s), BLOCK_SIZE)
                    .and_then(|b| Checkpoint::decode(&b, &m.sb.volume_uuid).ok())
            });
        }
        let cp = mems
            .iter()
            .flatten()
            .filter_map(|m| newest_checkpoint(m.cps[0], m.cps[1]))
            .max_by_key(|c| c.generation);
        for m in mems.iter_mut().flatten() {
            let copy = cp.map_or(0, |c| c.slot());
            m.states = load_states(m, copy, read);
            m.journal = load_journal(m, read);
        }
        let (node_size, node_max) = mems.iter().flatten().next().map_or((BLOCK_SIZE, 4), |m| {
            (m.layout.node_size as usize, m.layout.node_max_entries)
        });
        let mut model = Model {
            mems,
            by_index,
            member_count,
            volume,
            cp,
            nodes: Vec::new(),
            node_size,
            node_max,
        };
        model.walk(read);
        model
    }

    fn mem_of(&self, index: u8) -> Option<&Mem> {
        let pos = self.by_index.get(usize::from(index)).copied().flatten()?;
        self.mems.get(pos)?.as_ref()
    }

    /// Where replica `r` lives: device position and byte offset of its bucket.
    fn locate(&self, dev: u8, bucket: u64) -> Option<(usize, u64)> {
        let m = self.mem_of(dev)?;
        if m.layout.is_sb_bucket(bucket) {
            return None;
        }
        Some((m.pos, m.layout.bucket_offset(bucket)?))
    }

    /// Reads every node reachable from the checkpoint, as the kernel's register does: the
    /// first replica that decodes and matches what its parent says.
    fn walk(&mut self, read: ReadFn<'_>) {
        let Some(cp) = self.cp else {
            return;
        };
        let mut seen = HashSet::new();
        let mut stack = vec![(cp.root, cp.root_level, 0u64, u64::MAX, true)];
        while let Some((ptr, level, min, max, is_root)) = stack.pop() {
            if self.nodes.len() >= MAX_NODES {
                break;
            }
            if !ptr
                .replicas()
                .iter()
                .all(|r| seen.insert((r.dev, r.bucket)))
            {
                continue;
            }
            let mut found = None;
            for r in ptr.replicas() {
                let Some((pos, off)) = self.locate(r.dev, r.bucket) else {
                    continue;
                };
                let Some(buf) = read(pos, off, self.node_size) else {
                    continue;
                };
                let Ok(n) = decode_node(&buf, &self.volume, self.node_max) else {
                    continue;
                };
                let h = n.header();
                if (h.level, h.min_key, h.max_key) != (level, min, max) {
                    continue;
                }
                let mut kids = Vec::new();
                for (i, (_, child)) in n.children().enumerate() {
                    if let (Some((cmin, cmax)), Some(l)) = (n.child_range(i), level.checked_sub(1))
                    {
                        kids.push((child, l, cmin, cmax));
                    }
                }
                found = Some((
                    TNode {
                        ptr,
                        level,
                        min,
                        max,
                        len: n.encoded_len(),
                        keys: (0..n.len()).filter_map(|i| n.key(i)).collect(),
                        children: kids.iter().map(|k| k.0).collect(),
                        is_root,
                    },
                    kids,
                ));
                break;
            }
            if let Some((node, kids)) = found {
                self.nodes.push(node);
                for (p, l, a, b) in kids {
                    stack.push((p, l, a, b, false));
                }
            }
        }
    }

    /// The newest journal sequence number on any member.
    fn last_seq(&self) -> u64 {
        self.mems
            .iter()
            .flatten()
            .flat_map(|m| m.journal.iter().map(|e| e.seq))
            .max()
            .unwrap_or(0)
    }

    fn journal_seq(&self) -> u64 {
        self.cp.map_or(0, |c| c.journal_seq)
    }

    /// Whether entry `seq` is replayed (after the checkpoint).
    fn pending(&self, seq: u64) -> bool {
        seq > self.journal_seq()
    }
}

/// A member whose superblock decodes and whose buckets fit on its device (as register
/// requires; it also bounds everything sized by `bucket_count` here).
fn load_member(pos: usize, size: u64, read: ReadFn<'_>) -> Option<Mem> {
    let copy = |c: usize| {
        read(pos, Layout::sb_offset(c), BLOCK_SIZE)
            .map_or(Err(too_short()), |b| Superblock::decode(&b))
    };
    let sb = pick_copy(copy(0), copy(1)).ok()?;
    let layout = sb.layout().ok()?;
    if sb.bucket_count.saturating_mul(u64::from(sb.bucket_size)) > size {
        return None;
    }
    Some(Mem {
        pos,
        sb,
        layout,
        cps: [None, None],
        states: Vec::new(),
        journal: Vec::new(),
    })
}

fn load_states(m: &Mem, copy: usize, read: ReadFn<'_>) -> Vec<u8> {
    let l = &m.layout;
    let mut states = Vec::new();
    for b in 0..l.alloc_blocks {
        let n = l.alloc_block_states(b);
        match read(m.pos, l.alloc_block_offset(copy, b), BLOCK_SIZE) {
            Some(blk) => states.extend_from_slice(
                blk.get(ALLOC_HEADER_SIZE..ALLOC_HEADER_SIZE + n)
                    .unwrap_or(&[]),
            ),
            None => states.extend(std::iter::repeat_n(0u8, n)),
        }
    }
    states
}

/// Journal blocks read at once when scanning (at least the longest entry).
const SCAN_BLOCKS: usize = 256;

/// The valid entries of a member's journal copy, scanned as the kernel does, a window of
/// blocks at a time.
fn load_journal(m: &Mem, read: ReadFn<'_>) -> Vec<JEntry> {
    let l = &m.layout;
    let total = l.journal_blocks as usize;
    let longest = journal::MAX_ENTRY_SIZE / BLOCK_SIZE;
    let mut out = Vec::new();
    let (mut start, mut win) = (0usize, Vec::new());
    let mut b = 0usize;
    while b < total {
        // The window must hold the longest entry that can start at b.
        if b < start || b + longest.min(total - b) > start + win.len() / BLOCK_SIZE {
            let n = SCAN_BLOCKS.max(longest).min(total - b);
            let Some(w) = read(m.pos, l.journal_block_offset(b as u32), n * BLOCK_SIZE) else {
                return out;
            };
            (start, win) = (b, w);
        }
        let at = win.get((b - start) * BLOCK_SIZE..).unwrap_or(&[]);
        let Ok(len) = journal::entry_len(at) else {
            b += 1;
            continue;
        };
        let blocks = len / BLOCK_SIZE;
        if b + blocks > total {
            b += 1;
            continue;
        }
        match decode_entry(at, &m.sb.volume_uuid) {
            Ok(e) => {
                out.push(JEntry {
                    block: b as u32,
                    seq: e.seq(),
                    len: e.encoded_len(),
                    blocks: e.blocks(),
                    records: e.records().collect(),
                });
                b += e.blocks().max(1);
            }
            Err(_) => b += 1,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// save

/// `bkalloc mutate save`: returns its summary line.
pub fn save(snapshot: &Path, devices: &[PathBuf]) -> crate::Result<String> {
    let disks = open_all(devices, false)?;
    let read = |pos: usize, off: u64, len: usize| disks.get(pos)?.read(off, len).ok();
    let sizes: Vec<u64> = disks.iter().map(|d| d.dev.size).collect();
    let model = Model::build(&sizes, &read);
    for (pos, m) in model.mems.iter().enumerate() {
        if m.is_none() {
            let p = devices
                .get(pos)
                .map_or("?".into(), |p| p.display().to_string());
            return Err(format!("{p}: no valid superblock: cannot save"));
        }
    }
    for (i, p) in model.by_index.iter().enumerate() {
        if p.is_none() {
            return Err(format!(
                "member {i} of the volume not given: save needs them all"
            ));
        }
    }
    let Some(cp) = model.cp else {
        return Err("no valid checkpoint on any member: nothing to walk".into());
    };
    let mut snap = Snapshot::new(disks.iter().map(|d| d.dev.size).collect());
    let mut meta = 0u64;
    for m in model.mems.iter().flatten() {
        let end = m.layout.metadata_end();
        let d = disks.get(m.pos).ok_or("no such device")?;
        // In pieces of at most 4 MiB: one read buffer, not the whole journal twice.
        let mut off = 0u64;
        while off < end {
            let n = (end - off).min(4 << 20) as usize;
            snap.push(m.pos, off, d.read(off, n)?);
            off += n as u64;
        }
        meta = meta.max(end);
    }
    let mut replicas = 0usize;
    for n in &model.nodes {
        for r in n.ptr.replicas() {
            let Some((pos, off)) = model.locate(r.dev, r.bucket) else {
                continue;
            };
            if snap.covers(pos, off, model.node_size) {
                continue;
            }
            let d = disks.get(pos).ok_or("no such device")?;
            snap.push(pos, off, d.read(off, model.node_size)?);
            replicas += 1;
        }
    }
    let mut f = File::create(snapshot).map_err(|e| io_err(snapshot, "cannot create", e))?;
    f.write_all(&snap.encode())
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(snapshot, "write", e))?;
    let entries: HashSet<u64> = model
        .mems
        .iter()
        .flatten()
        .flat_map(|m| m.journal.iter().map(|e| e.seq))
        .collect();
    let pending = entries.iter().filter(|s| model.pending(**s)).count();
    Ok(format!(
        "saved {} bytes of {} device(s) to {}: metadata (up to {meta} bytes per member), {} btree nodes in {replicas} replicas, {} journal entries ({pending} after checkpoint generation {}, journal_seq {})",
        snap.bytes(),
        disks.len(),
        snapshot.display(),
        model.nodes.len(),
        entries.len(),
        cp.generation,
        cp.journal_seq
    ))
}

// ---------------------------------------------------------------------------------------
// apply

/// `bkalloc mutate apply`: restores the snapshot, applies the mutation, returns its line.
pub fn apply(a: &ApplyArgs) -> crate::Result<String> {
    let mut raw = Vec::new();
    File::open(&a.snapshot)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|e| io_err(&a.snapshot, "cannot read", e))?;
    let snap = Snapshot::decode(&raw).map_err(|e| format!("{}: {e}", a.snapshot.display()))?;
    if a.devices.len() != snap.sizes.len() {
        return Err(format!(
            "the snapshot holds {} device(s), {} given",
            snap.sizes.len(),
            a.devices.len()
        ));
    }
    let disks = open_all(&a.devices, true)?;
    for r in &snap.records {
        let d = disks.get(r.dev).ok_or("no such device")?;
        let end = r.off.saturating_add(r.data.len() as u64);
        if end > d.dev.size {
            return Err(format!(
                "{}: {} bytes, the snapshot has data up to {end}",
                d.dev.path.display(),
                d.dev.size
            ));
        }
    }
    // The pristine image first, whatever the last mutation did.
    for r in &snap.records {
        disks
            .get(r.dev)
            .ok_or("no such device")?
            .write(r.off, &r.data)?;
    }
    let line = match a.index {
        Some(index) if !a.restore_only => {
            let read = |p: usize, o: u64, l: usize| snap.read(p, o, l);
            let model = Model::build(&snap.sizes, &read);
            let m = plan(&snap, &model, a.seed, index, a.other.as_deref())?;
            for p in &m.patches {
                if !snap.covers(p.dev, p.off, p.bytes.len()) {
                    return Err(format!(
                        "mutation {index}: would write {} bytes at {} of device {} outside the snapshot",
                        p.bytes.len(),
                        p.off,
                        p.dev
                    ));
                }
            }
            for p in &m.patches {
                disks
                    .get(p.dev)
                    .ok_or("no such device")?
                    .write(p.off, &p.bytes)?;
            }
            m.line(index)
        }
        _ => format!(
            "restored {} bytes in {} ranges on {} device(s) (pristine)",
            snap.bytes(),
            snap.records.len(),
            disks.len()
        ),
    };
    for d in &disks {
        d.sync()?;
    }
    Ok(line)
}

// ---------------------------------------------------------------------------------------
// Mutations.

/// The kind of damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Bits flipped in one structure (or every copy of it).
    Bitflip,
    /// A structure's tail zeroed.
    Truncate,
    /// One field set to a hostile value, checksum valid.
    Crafted,
    /// Another volume's superblock on a member.
    Foreign,
}

impl Family {
    /// The name printed in the mutation line.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Bitflip => "bitflip",
            Family::Truncate => "truncate",
            Family::Crafted => "crafted",
            Family::Foreign => "foreign",
        }
    }
}

/// What a correct register does with the mutated image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// It must refuse: no faithful reading is consistent.
    Refuse,
    /// Refusing and coming up consistent are both right (a copy or a repair exists).
    Either,
}

impl Expect {
    const fn name(self) -> &'static str {
        match self {
            Expect::Refuse => "refuse",
            Expect::Either => "either",
        }
    }
}

/// Bytes to write over the restored image (whole blocks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// Device position.
    pub dev: usize,
    /// Byte offset.
    pub off: u64,
    /// The new bytes.
    pub bytes: Vec<u8>,
}

/// One planned mutation.
#[derive(Clone, Debug)]
pub struct Mutation {
    /// Its family.
    pub family: Family,
    /// The crafted case (of [`crafted_cases`]) that produced it.
    pub case: Option<usize>,
    /// "member N", "members 0,1", ...
    pub member: String,
    /// Structure, where, what.
    pub what: String,
    /// The expected outcome.
    pub expect: Expect,
    /// What to write.
    pub patches: Vec<Patch>,
}

impl Mutation {
    /// The line `apply` prints.
    pub fn line(&self, index: u64) -> String {
        let family = match self.case {
            Some(c) => format!("{} (case {c} of {})", self.family.name(), CRAFTS.len()),
            None => self.family.name().to_string(),
        };
        format!(
            "mutation {index}: {} {}; family {family}; expect: {}",
            self.member,
            self.what,
            self.expect.name()
        )
    }
}

/// Families in the order the index cycles through them.
const CYCLE: [Family; 16] = {
    use Family::*;
    [
        Bitflip, Crafted, Truncate, Crafted, Bitflip, Crafted, Truncate, Crafted, Bitflip, Crafted,
        Truncate, Crafted, Bitflip, Crafted, Foreign, Crafted,
    ]
};

/// The family of `index` and how many of that family came before it.
fn schedule(index: u64) -> (Family, u64) {
    let n = CYCLE.len() as u64;
    let pos = (index % n) as usize;
    let fam = CYCLE.get(pos).copied().unwrap_or(Family::Bitflip);
    let per = CYCLE.iter().filter(|f| **f == fam).count() as u64;
    let before = CYCLE
        .get(..pos)
        .unwrap_or(&[])
        .iter()
        .filter(|f| **f == fam)
        .count() as u64;
    (fam, index / n * per + before)
}

/// The family mutation `index` belongs to.
pub fn family_of(index: u64) -> Family {
    schedule(index).0
}

/// How many crafted cases there are (the `case C of N` of a crafted mutation's line).
pub fn crafted_cases() -> usize {
    CRAFTS.len()
}

/// Random choices of mutation `index` of `seed`.
fn rng_for(seed: u64, index: u64) -> Rng {
    let a = Rng::new(seed).next_u64();
    let b = Rng::new(index ^ 0x6d75_7461_7465_0000).next_u64();
    Rng::new(a ^ b.rotate_left(17))
}

/// Where in its family's rotation `seed` starts.
fn rotation(seed: u64) -> u64 {
    Rng::new(seed ^ 0x726f_7461_7465_2121).next_u64() % 1_000_003
}

fn pick<'b, T>(rng: &mut Rng, v: &'b [T]) -> Option<&'b T> {
    if v.is_empty() {
        return None;
    }
    v.get(rng.below(v.len() as u64) as usize)
}

struct Ctx<'a> {
    snap: &'a Snapshot,
    m: &'a Model,
    rng: Rng,
    other: Option<&'a Path>,
}

impl<'a> Ctx<'a> {
    fn bytes(&self, dev: usize, off: u64, len: usize) -> Option<Vec<u8>> {
        self.snap.read(dev, off, len)
    }

    fn mems(&self) -> Vec<&'a Mem> {
        let m: &'a Model = self.m;
        m.mems.iter().flatten().collect()
    }

    fn pick_mem(&mut self) -> Option<&'a Mem> {
        let all = self.mems();
        pick(&mut self.rng, &all).copied()
    }

    fn coin(&mut self, n: u64) -> bool {
        self.rng.below(n) == 0
    }
}

/// Plans mutation `index` of `seed` on the volume the snapshot holds.
fn plan(
    snap: &Snapshot,
    m: &Model,
    seed: u64,
    index: u64,
    other: Option<&Path>,
) -> crate::Result<Mutation> {
    let (family, slot) = schedule(index);
    let rot = rotation(seed);
    let mut c = Ctx {
        snap,
        m,
        rng: rng_for(seed, index),
        other,
    };
    let planned = match family {
        Family::Bitflip => damage(&mut c, slot + rot, false),
        Family::Truncate => damage(&mut c, slot + rot, true),
        Family::Crafted => craft(&mut c, slot + rot),
        Family::Foreign => foreign(&mut c, (slot + rot) % 4)?,
    };
    // Whatever the snapshot lacks, a superblock copy is always there to damage.
    planned
        .or_else(|| damage(&mut c, 0, false))
        .ok_or_else(|| "the snapshot holds no member with a valid superblock".into())
}

// ------------------------------ bit flips and truncation --------------------------------

/// One copy of a structure: where, how many bytes to write, how many are meaningful
/// (checked by its decoder).
#[derive(Clone, Copy, Debug)]
struct Inst {
    dev: usize,
    off: u64,
    len: usize,
    meaningful: usize,
}

/// Which structure kind `kind % 5` is, as damaged by bit flips and truncation.
const KINDS: usize = 5;

/// Bit flips (`truncate` false) or a torn tail in structure kind `kind % 5`, trying the
/// other kinds when the snapshot has none of it.
fn damage(c: &mut Ctx<'_>, kind: u64, truncate: bool) -> Option<Mutation> {
    let all = c.coin(3);
    (0..KINDS as u64).find_map(|k| {
        let kind = ((kind + k) % KINDS as u64) as usize;
        let (member, structure, insts, expect) = instances(c, kind, all)?;
        damage_insts(c, member, structure, &insts, expect, truncate)
    })
}

type Instances = (String, String, Vec<Inst>, Expect);

/// The instances of structure kind `kind`: one, or (`all`) every copy of it.
fn instances(c: &mut Ctx<'_>, kind: usize, all: bool) -> Option<Instances> {
    let m = c.m;
    match kind {
        0 => {
            let mem = c.pick_mem()?;
            let copies: Vec<usize> = if all {
                vec![0, 1]
            } else {
                vec![c.rng.below(2) as usize]
            };
            let insts = copies
                .iter()
                .map(|&k| Inst {
                    dev: mem.pos,
                    off: Layout::sb_offset(k),
                    len: BLOCK_SIZE,
                    meaningful: BLOCK_SIZE,
                })
                .collect();
            let expect = if all { Expect::Refuse } else { Expect::Either };
            Some((
                format!("member {}", mem.index()),
                format!("superblock {}", copies_desc(&copies)),
                insts,
                expect,
            ))
        }
        1 => {
            let mems: Vec<&Mem> = if all { c.mems() } else { vec![c.pick_mem()?] };
            let mut insts = Vec::new();
            let mut slots = Vec::new();
            for mem in &mems {
                let Some(slot) = mem.newest_slot() else {
                    continue;
                };
                slots.push(slot);
                insts.push(Inst {
                    dev: mem.pos,
                    off: mem.layout.checkpoint_offset(slot),
                    len: BLOCK_SIZE,
                    meaningful: BLOCK_SIZE,
                });
            }
            let g = m.cp.map_or(0, |c| c.generation);
            Some((
                members_desc(&mems),
                format!("checkpoint {} (newest, generation {g})", slots_desc(&slots)),
                insts,
                Expect::Either,
            ))
        }
        2 => {
            let mem = c.pick_mem()?;
            let copy = m.cp.map_or(0, |c| c.slot());
            let block = c.rng.below(u64::from(mem.layout.alloc_blocks)) as u32;
            let inst = Inst {
                dev: mem.pos,
                off: mem.layout.alloc_block_offset(copy, block),
                len: BLOCK_SIZE,
                meaningful: ALLOC_HEADER_SIZE + mem.layout.alloc_block_states(block),
            };
            Some((
                format!("member {}", mem.index()),
                format!("alloc table copy {copy} (current) block {block}"),
                vec![inst],
                Expect::Refuse,
            ))
        }
        3 => {
            let pending_first = c.coin(2);
            let (e, hs) = pick_entry(c, pending_first)?;
            let hs: Vec<&Mem> = if all {
                hs
            } else {
                vec![*pick(&mut c.rng, &hs)?]
            };
            let insts = hs
                .iter()
                .map(|mem| Inst {
                    dev: mem.pos,
                    off: mem.layout.journal_block_offset(e.block),
                    len: e.blocks * BLOCK_SIZE,
                    meaningful: e.len,
                })
                .collect();
            let expect = if all || mirrors_of(c, e) < 2 {
                je_skip(e, m)
            } else {
                Expect::Either
            };
            Some((
                members_desc(&hs),
                format!("journal {}", entry_desc(e, m)),
                insts,
                expect,
            ))
        }
        _ => {
            let node = pick(&mut c.rng, &m.nodes)?.clone();
            let reps: Vec<_> = node.ptr.replicas().to_vec();
            let chosen = if all {
                reps.clone()
            } else {
                vec![*pick(&mut c.rng, &reps)?]
            };
            let insts: Vec<Inst> = chosen
                .iter()
                .filter_map(|r| m.locate(r.dev, r.bucket))
                .map(|(dev, off)| Inst {
                    dev,
                    off,
                    len: m.node_size,
                    meaningful: node.len,
                })
                .collect();
            let expect = if all || reps.len() < 2 {
                Expect::Refuse
            } else {
                Expect::Either
            };
            let devs: Vec<String> = chosen.iter().map(|r| r.dev.to_string()).collect();
            let member = if devs.len() == 1 {
                format!("member {}", devs.join(","))
            } else {
                format!("members {}", devs.join(","))
            };
            let which = if all { "every replica" } else { "one replica" };
            Some((
                member,
                format!("btree {} ({which})", node_desc(&node)),
                insts,
                expect,
            ))
        }
    }
}

fn damage_insts(
    c: &mut Ctx<'_>,
    member: String,
    structure: String,
    insts: &[Inst],
    expect: Expect,
    truncate: bool,
) -> Option<Mutation> {
    let first = insts.first()?;
    let orig = c.bytes(first.dev, first.off, first.len)?;
    let mlen = first.meaningful.min(first.len).max(1);
    let (what, edit): (String, ByteEdit) = if truncate {
        // From a random offset up to the last non-zero meaningful byte, so bytes change.
        let last_nz = orig.get(..mlen)?.iter().rposition(|&b| b != 0)?;
        let mut at = c.rng.below(last_nz as u64 + 1) as usize;
        if c.coin(2) {
            at -= at % 512; // torn at a sector boundary
        }
        let end = first.len;
        (
            format!("zeroed from byte {at} to {end} (a torn write)"),
            Box::new(move |b: &mut [u8]| {
                if let Some(s) = b.get_mut(at..) {
                    s.fill(0);
                }
            }),
        )
    } else {
        let start = c.rng.below(mlen as u64) as usize;
        let span = 1 + c.rng.below((mlen - start).min(64) as u64) as usize;
        let want = (1 + c.rng.below(8) as usize).min(span * 8);
        let mut bits: Vec<usize> = Vec::new();
        while bits.len() < want {
            let b = start * 8 + c.rng.below(span as u64 * 8) as usize;
            if !bits.contains(&b) {
                bits.push(b);
            }
        }
        bits.sort_unstable();
        let list: Vec<String> = bits
            .iter()
            .map(|b| format!("{}.{}", b / 8, b % 8))
            .collect();
        (
            format!(
                "{} bit(s) flipped in bytes {start}..{} (byte.bit {})",
                bits.len(),
                start + span,
                list.join(" ")
            ),
            Box::new(move |b: &mut [u8]| {
                for &bit in &bits {
                    if let Some(x) = b.get_mut(bit / 8) {
                        *x ^= 1 << (bit % 8);
                    }
                }
            }),
        )
    };
    let mut patches = Vec::new();
    for i in insts {
        let Some(mut b) = c.bytes(i.dev, i.off, i.len) else {
            continue;
        };
        let before = b.clone();
        edit(&mut b);
        if b != before {
            patches.push(Patch {
                dev: i.dev,
                off: i.off,
                bytes: b,
            });
        }
    }
    if patches.is_empty() {
        return None;
    }
    Some(Mutation {
        family: if truncate {
            Family::Truncate
        } else {
            Family::Bitflip
        },
        case: None,
        member,
        what: format!("{structure}: {what}"),
        expect,
        patches,
    })
}

// ------------------------------------ foreign ------------------------------------------

/// A uuid no formatted volume has (the crafted "other volume").
const OTHER_UUID: Uuid = [
    0x0b, 0xad, 0xc0, 0xde, 0x5a, 0x5a, 0x4e, 0x77, 0x8f, 0x0e, 0x1c, 0x2d, 0x3e, 0x4f, 0x50, 0x61,
];

fn foreign(c: &mut Ctx<'_>, variant: u64) -> crate::Result<Option<Mutation>> {
    let Some(mem) = c.pick_mem() else {
        return Ok(None);
    };
    let member = format!("member {}", mem.index());
    let Some(other) = c.other else {
        return Ok(foreign_crafted(c, mem, variant));
    };
    let d = Disk::open(other, false)?;
    let sbs = d.read(0, 2 * BLOCK_SIZE)?;
    let name = other.display();
    let (what, patches) = match variant {
        0..=2 => {
            let copies: &[usize] = match variant {
                0 => &[0, 1],
                1 => &[0],
                _ => &[1],
            };
            let patches = copies
                .iter()
                .filter_map(|&k| {
                    let off = Layout::sb_offset(k);
                    Some(Patch {
                        dev: mem.pos,
                        off,
                        bytes: sbs.get(off as usize..off as usize + BLOCK_SIZE)?.to_vec(),
                    })
                })
                .collect();
            (
                format!(
                    "superblock {}: replaced by {name}'s (another volume)",
                    copies_desc(copies)
                ),
                patches,
            )
        }
        _ => {
            let sb = |k: usize| {
                sbs.get(k * BLOCK_SIZE..(k + 1) * BLOCK_SIZE)
                    .map_or(Err(too_short()), Superblock::decode)
            };
            let end = pick_copy(sb(0), sb(1))
                .ok()
                .and_then(|s| s.layout().ok())
                .map_or(2 * BLOCK, |l| l.metadata_end())
                .min(mem.layout.metadata_end())
                .min(d.dev.size - d.dev.size % BLOCK);
            let bytes = d.read(0, end as usize)?;
            (
                format!("metadata bytes 0..{end}: replaced by {name}'s (another volume's superblocks, checkpoints, alloc tables, journal)"),
                vec![Patch {
                    dev: mem.pos,
                    off: 0,
                    bytes,
                }],
            )
        }
    };
    Ok(Some(Mutation {
        family: Family::Foreign,
        case: None,
        member,
        what,
        expect: Expect::Refuse,
        patches,
    }))
}

/// Without `--other`: member N's superblock names another volume (checksums valid).
fn foreign_crafted(c: &mut Ctx<'_>, mem: &Mem, variant: u64) -> Option<Mutation> {
    let copies: &[usize] = match variant {
        1 => &[0],
        2 => &[1],
        _ => &[0, 1],
    };
    let whole = variant >= 3;
    let mut patches = Vec::new();
    for &k in copies {
        let off = Layout::sb_offset(k);
        let mut b = c.bytes(mem.pos, off, BLOCK_SIZE)?;
        put(&mut b, so::VOLUME_UUID, &OTHER_UUID);
        if whole {
            // A whole other membership: fresh member uuids, this one listed.
            let count = get_le(&b, so::MEMBER_COUNT, 4) as usize;
            for i in 0..count.min(MAX_MEMBERS) {
                let mut u = OTHER_UUID;
                u[15] = u[15].wrapping_add(1 + i as u8);
                put(&mut b, so::MEMBERS + 16 * i, &u);
                if i == mem.index() as usize {
                    put(&mut b, so::MEMBER_UUID, &u);
                }
            }
        }
        reseal_sb(&mut b);
        patches.push(Patch {
            dev: mem.pos,
            off,
            bytes: b,
        });
    }
    Some(Mutation {
        family: Family::Foreign,
        case: None,
        member: format!("member {}", mem.index()),
        what: format!(
            "superblock {} field volume_uuid{}: {} (crc-valid: another volume)",
            copies_desc(copies),
            if whole { " and members" } else { "" },
            Hyphenated(&OTHER_UUID)
        ),
        expect: Expect::Refuse,
        patches,
    })
}

// ------------------------------------- crafted ------------------------------------------

type Craft = fn(&mut Ctx<'_>) -> Option<Mutation>;

/// Crafted case `slot % CRAFTS.len()`, or the next one that applies to this volume.
fn craft(c: &mut Ctx<'_>, slot: u64) -> Option<Mutation> {
    let n = CRAFTS.len();
    (0..n).find_map(|k| {
        let case = ((slot + k as u64) % n as u64) as usize;
        let f = CRAFTS.get(case)?;
        let mut m = f(c)?;
        m.family = Family::Crafted;
        m.case = Some(case);
        Some(m)
    })
}

// Little-endian field access that never panics (out of range: ignored / 0).

fn get_le(b: &[u8], off: usize, width: usize) -> u64 {
    let mut v = [0u8; 8];
    if let (Some(s), Some(d)) = (b.get(off..off + width), v.get_mut(..width)) {
        d.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

fn set_le(b: &mut [u8], off: usize, width: usize, v: u64) {
    if let (Some(d), Some(s)) = (b.get_mut(off..off + width), v.to_le_bytes().get(..width)) {
        d.copy_from_slice(s);
    }
}

fn put(b: &mut [u8], off: usize, data: &[u8]) {
    if let Some(d) = b.get_mut(off..off + data.len()) {
        d.copy_from_slice(data);
    }
}

/// Stores at `at` the crc32c of `b[from..to]` (clamped).
fn seal(b: &mut [u8], at: usize, from: usize, to: usize) {
    let to = to.min(b.len());
    let c = b.get(from..to).map_or(0, crc32c);
    set_le(b, at, 4, u64::from(c));
}

fn reseal_sb(b: &mut [u8]) {
    seal(b, so::CRC, so::VERSION, BLOCK_SIZE);
}

fn reseal_cp(b: &mut [u8]) {
    seal(b, co::CRC, co::VOLUME_UUID, BLOCK_SIZE);
}

fn reseal_alloc(b: &mut [u8]) {
    seal(b, ao::CRC, ao::VOLUME_UUID, BLOCK_SIZE);
}

fn reseal_entry(b: &mut [u8]) {
    let len = get_le(b, jo::LEN, 4) as usize;
    seal(b, jo::CRC, jo::VOLUME_UUID, len.max(jo::VOLUME_UUID));
}

fn reseal_node(b: &mut [u8]) {
    let len = get_le(b, no::LEN, 4) as usize;
    seal(b, no::CRC, no::VOLUME_UUID, len.max(no::VOLUME_UUID));
}

/// A number, with the name of a notable value.
fn num(v: u64) -> String {
    if v == u64::MAX {
        "u64::MAX".into()
    } else if v == MAX_COUNTER {
        format!("{v} (MAX_COUNTER)")
    } else if v == MAX_COUNTER - 1 {
        format!("{v} (MAX_COUNTER-1)")
    } else if v == MAX_COUNTER + 1 {
        format!("{v} (MAX_COUNTER+1)")
    } else if v == u64::from(u32::MAX) {
        format!("{v} (u32::MAX)")
    } else if v >= 1 << 20 && v.is_power_of_two() {
        format!("{v} (2^{})", v.trailing_zeros())
    } else if v > 1 << 20 && (v - 1).is_power_of_two() {
        format!("{v} (2^{}+1)", (v - 1).trailing_zeros())
    } else {
        v.to_string()
    }
}

fn copies_desc(copies: &[usize]) -> String {
    let list: Vec<String> = copies.iter().map(usize::to_string).collect();
    if copies.len() == 1 {
        format!("copy {}", list.join(","))
    } else {
        format!("copies {}", list.join(","))
    }
}

fn slots_desc(slots: &[usize]) -> String {
    match slots {
        [first, rest @ ..] if rest.iter().all(|s| s == first) => format!("slot {first}"),
        _ => {
            let list: Vec<String> = slots.iter().map(usize::to_string).collect();
            format!("slots {}", list.join(","))
        }
    }
}

fn members_desc(mems: &[&Mem]) -> String {
    let list: Vec<String> = mems.iter().map(|m| m.index().to_string()).collect();
    if mems.len() == 1 {
        format!("member {}", list.join(","))
    } else {
        format!("members {}", list.join(","))
    }
}

fn entry_desc(e: &JEntry, m: &Model) -> String {
    let state = if m.pending(e.seq) {
        if e.seq == m.last_seq() {
            "pending, the newest"
        } else {
            "pending"
        }
    } else {
        "covered by the checkpoint"
    };
    format!(
        "entry seq {} (block {}, {} record(s), {state})",
        e.seq,
        e.block,
        e.records.len()
    )
}

fn node_desc(n: &TNode) -> String {
    let at: Vec<String> = n
        .ptr
        .replicas()
        .iter()
        .map(|r| format!("{}:{}", r.dev, r.bucket))
        .collect();
    format!(
        "{} level {} [{}..={}] at {}",
        if n.is_root { "root node" } else { "node" },
        n.level,
        n.min,
        num(n.max),
        at.join(",")
    )
}

/// Writes a btree pointer at `o`: `nr`, then the replicas (devs, buckets), zeros elsewhere.
fn put_ptr(b: &mut [u8], o: usize, nr: u8, reps: &[(u8, u64)]) {
    if let Some(s) = b.get_mut(o..o + PTR_SIZE) {
        s.fill(0);
    }
    set_le(b, o, 1, u64::from(nr));
    for (i, (dev, bucket)) in reps.iter().take(MAX_REPLICAS).enumerate() {
        set_le(b, o + 1 + i, 1, u64::from(*dev));
        set_le(b, o + 8 + 8 * i, 8, *bucket);
    }
}

fn reps_of(p: &BtreePtr) -> Vec<(u8, u64)> {
    p.replicas().iter().map(|r| (r.dev, r.bucket)).collect()
}

/// A field edit: changes `b` and says what it did, or `None` if it does not apply.
type Edit<'e, X> = &'e dyn Fn(&mut [u8], &X) -> Option<String>;

/// A numeric field's new value from its old one, or `None` if the case does not apply.
type Val<'v, X> = &'v dyn Fn(u64, &X) -> Option<u64>;

/// A new btree pointer: `nr` and the (device, bucket) replicas to write.
type NewPtr = Option<(u8, Vec<(u8, u64)>)>;

/// Changes a structure's bytes in place.
type ByteEdit = Box<dyn Fn(&mut [u8])>;

/// The numeric form of an edit: `field` (`width` bytes at `off`) from `old` to `val(old)`.
fn set_field<X>(b: &mut [u8], x: &X, off: usize, width: usize, val: Val<'_, X>) -> Option<String> {
    let old = get_le(b, off, width);
    let new = val(old, x)?;
    if new == old {
        return None;
    }
    set_le(b, off, width, new);
    Some(format!("{} -> {}", num(old), num(new)))
}

/// Applies `edit` to each instance (reading its pristine bytes), reseals with `reseal`.
fn edit_all<X>(
    c: &Ctx<'_>,
    insts: &[(Inst, X)],
    edit: Edit<'_, X>,
    reseal: fn(&mut [u8]),
) -> Option<(String, Vec<Patch>)> {
    let mut what = None;
    let mut patches = Vec::new();
    for (i, x) in insts {
        let Some(mut b) = c.bytes(i.dev, i.off, i.len) else {
            continue;
        };
        let before = b.clone();
        let Some(w) = edit(&mut b, x) else {
            continue;
        };
        b.resize(i.len, 0);
        reseal(&mut b);
        what.get_or_insert(w);
        if b != before {
            patches.push(Patch {
                dev: i.dev,
                off: i.off,
                bytes: b,
            });
        }
    }
    if patches.is_empty() {
        return None;
    }
    Some((what?, patches))
}

fn crafted(member: String, what: String, expect: Expect, patches: Vec<Patch>) -> Mutation {
    Mutation {
        family: Family::Crafted,
        case: None,
        member,
        what,
        expect,
        patches,
    }
}

// Superblock.

/// Which superblock copies a crafted edit goes to.
#[derive(Clone, Copy)]
enum Copies {
    Both,
    One,
    Only(usize),
}

fn sb_edit(
    c: &mut Ctx<'_>,
    copies: Copies,
    field: &str,
    expect: Expect,
    edit: Edit<'_, Mem>,
) -> Option<Mutation> {
    let mem = c.pick_mem()?;
    let list = match copies {
        Copies::Both => vec![0, 1],
        Copies::One => vec![c.rng.below(2) as usize],
        Copies::Only(k) => vec![k],
    };
    let insts: Vec<(Inst, Mem)> = list
        .iter()
        .map(|&k| {
            (
                Inst {
                    dev: mem.pos,
                    off: Layout::sb_offset(k),
                    len: BLOCK_SIZE,
                    meaningful: BLOCK_SIZE,
                },
                mem.clone(),
            )
        })
        .collect();
    let (what, patches) = edit_all(c, &insts, edit, reseal_sb)?;
    Some(crafted(
        format!("member {}", mem.index()),
        format!(
            "superblock {} field {field}: {what} (crc-valid)",
            copies_desc(&list)
        ),
        expect,
        patches,
    ))
}

fn sb_set(
    c: &mut Ctx<'_>,
    copies: Copies,
    field: &str,
    off: usize,
    width: usize,
    expect: Expect,
    val: Val<'_, Mem>,
) -> Option<Mutation> {
    sb_edit(c, copies, field, expect, &|b, m| {
        set_field(b, m, off, width, val)
    })
}

/// Sets option `id`'s slot to `v` and marks it set.
fn sb_opt(c: &mut Ctx<'_>, id: OptId, v: &dyn Fn(&Mem) -> Option<u32>) -> Option<Mutation> {
    let name = id.desc().name;
    sb_edit(
        c,
        Copies::Both,
        &format!("opts[{name}]"),
        Expect::Refuse,
        &|b, m| {
            let o = so::OPTS + 4 * id.index();
            let old = get_le(b, o, 4);
            let new = u64::from(v(m)?);
            let set = get_le(b, so::OPTS_SET, 4) | 1 << id.index();
            set_le(b, so::OPTS_SET, 4, set);
            set_le(b, o, 4, new);
            Some(format!("{} -> {} (set)", num(old), num(new)))
        },
    )
}

/// Claims another member's index (and uuid): two devices for one index.
fn sb_claim_other(c: &mut Ctx<'_>, copies: Copies) -> Option<Mutation> {
    if c.m.member_count < 2 {
        return None;
    }
    sb_edit(c, copies, "member_index", Expect::Refuse, &|b, m| {
        let other = c_other(m);
        let uuid = *m.sb.members.get(other as usize)?;
        set_le(b, so::MEMBER_INDEX, 4, u64::from(other));
        put(b, so::MEMBER_UUID, &uuid);
        Some(format!(
            "{} -> {other} with member_uuid of member {other}",
            m.index()
        ))
    })
}

fn c_other(m: &Mem) -> u32 {
    if m.sb.member_count > 1 {
        (m.index() + 1) % m.sb.member_count
    } else {
        m.index()
    }
}

// Checkpoint.

/// Which checkpoints a crafted edit goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CpScope {
    /// The newest slot of every member.
    All,
    /// The newest slot of one member.
    One,
    /// The older slot of every member.
    Older,
}

fn cp_edit(
    c: &mut Ctx<'_>,
    scope: CpScope,
    field: &str,
    expect: Expect,
    edit: Edit<'_, (Checkpoint, Mem)>,
) -> Option<Mutation> {
    let mems = match scope {
        CpScope::One => vec![c.pick_mem()?],
        _ => c.mems(),
    };
    let mut insts = Vec::new();
    let mut slots = Vec::new();
    for mem in &mems {
        let Some(newest) = mem.newest_slot() else {
            continue;
        };
        let slot = if scope == CpScope::Older {
            1 - newest
        } else {
            newest
        };
        let Some(cp) = mem.cps.get(slot).copied().flatten() else {
            continue;
        };
        slots.push(slot);
        insts.push((
            Inst {
                dev: mem.pos,
                off: mem.layout.checkpoint_offset(slot),
                len: BLOCK_SIZE,
                meaningful: BLOCK_SIZE,
            },
            (cp, (*mem).clone()),
        ));
    }
    let (what, patches) = edit_all(c, &insts, edit, reseal_cp)?;
    let which = if scope == CpScope::Older {
        "older"
    } else {
        "newest"
    };
    Some(crafted(
        members_desc(&mems),
        format!(
            "checkpoint {} ({which}) field {field}: {what} (crc-valid)",
            slots_desc(&slots)
        ),
        expect,
        patches,
    ))
}

fn cp_set(
    c: &mut Ctx<'_>,
    scope: CpScope,
    field: &str,
    off: usize,
    width: usize,
    expect: Expect,
    val: Val<'_, (Checkpoint, Mem)>,
) -> Option<Mutation> {
    cp_edit(c, scope, field, expect, &|b, x| {
        set_field(b, x, off, width, val)
    })
}

/// Rewrites the root pointer of every member's newest checkpoint to what `f` makes of it.
fn cp_root(
    c: &mut Ctx<'_>,
    what: &str,
    expect: Expect,
    f: &dyn Fn(&BtreePtr, &Model) -> NewPtr,
) -> Option<Mutation> {
    let cp = c.m.cp?;
    let (nr, reps) = f(&cp.root, c.m)?;
    let what = what.to_string();
    cp_edit(c, CpScope::All, "root", expect, &|b, _| {
        put_ptr(b, co::ROOT, nr, &reps);
        let list: Vec<String> = reps.iter().map(|(d, k)| format!("{d}:{k}")).collect();
        Some(format!("{what} (nr {nr}, {})", list.join(",")))
    })
}

/// The replicas of `p` with each bucket replaced by `f(member, bucket)`.
fn map_buckets(p: &BtreePtr, m: &Model, f: &dyn Fn(&Mem, u64) -> Option<u64>) -> NewPtr {
    let mut reps = Vec::new();
    for r in p.replicas() {
        let mem = m.mem_of(r.dev)?;
        reps.push((r.dev, f(mem, r.bucket)?));
    }
    Some((p.len() as u8, reps))
}

// Alloc table.

/// Which bucket a crafted state edit changes.
#[derive(Clone, Copy)]
enum Pick {
    /// Any bucket past the metadata region.
    Data,
    /// Bucket 0 (metadata).
    Sb,
    /// A free bucket.
    Free,
    /// A replica of a live node.
    Btree,
    /// A user bucket.
    User,
}

/// A member and bucket of kind `pick`.
fn pick_bucket<'a>(c: &mut Ctx<'a>, pick_: Pick) -> Option<(&'a Mem, u64)> {
    let m: &'a Model = c.m;
    match pick_ {
        Pick::Btree => {
            let node = pick(&mut c.rng, &m.nodes)?;
            let r = *pick(&mut c.rng, node.ptr.replicas())?;
            Some((m.mem_of(r.dev)?, r.bucket))
        }
        _ => {
            let mem = c.pick_mem()?;
            let list: Vec<u64> = match pick_ {
                Pick::Data => {
                    let first = u64::from(mem.layout.sb_buckets);
                    let n = mem.layout.bucket_count.saturating_sub(first);
                    if n == 0 {
                        return None;
                    }
                    vec![first + c.rng.below(n)]
                }
                Pick::Sb => vec![0],
                Pick::Free => mem.buckets_in(BucketState::Free),
                _ => mem.buckets_in(BucketState::User),
            };
            Some((mem, *pick(&mut c.rng, &list)?))
        }
    }
}

fn alloc_state(c: &mut Ctx<'_>, which: Pick, state: u8, expect: Expect) -> Option<Mutation> {
    let cp = c.m.cp?;
    let (mem, bucket) = pick_bucket(c, which)?;
    let (block, i) = mem.layout.alloc_position(bucket)?;
    let copy = cp.slot();
    let inst = Inst {
        dev: mem.pos,
        off: mem.layout.alloc_block_offset(copy, block),
        len: BLOCK_SIZE,
        meaningful: BLOCK_SIZE,
    };
    let name = |s: u64| {
        u8::try_from(s)
            .ok()
            .and_then(BucketState::from_u8)
            .map_or(format!("{s} (not a state)"), |st| {
                format!("{s} ({})", st.name())
            })
    };
    let (what, patches) = edit_all(
        c,
        &[(inst, ())],
        &|b, _| {
            let o = alloc_table::off::STATES + i;
            let old = get_le(b, o, 1);
            if old == u64::from(state) {
                return None;
            }
            set_le(b, o, 1, u64::from(state));
            Some(format!("{} -> {}", name(old), name(u64::from(state))))
        },
        reseal_alloc,
    )?;
    Some(crafted(
        format!("member {}", mem.index()),
        format!(
            "alloc table copy {copy} (current) block {block} state of bucket {bucket}: {what} (crc-valid)"
        ),
        expect,
        patches,
    ))
}

/// An edit of a random block of one member's alloc table (the current copy, or the other).
fn alloc_edit(
    c: &mut Ctx<'_>,
    current: bool,
    field: &str,
    expect: Expect,
    edit: Edit<'_, (Mem, u32)>,
) -> Option<Mutation> {
    let cp = c.m.cp?;
    let mem = c.pick_mem()?;
    let block = c.rng.below(u64::from(mem.layout.alloc_blocks)) as u32;
    let copy = if current { cp.slot() } else { 1 - cp.slot() };
    let inst = Inst {
        dev: mem.pos,
        off: mem.layout.alloc_block_offset(copy, block),
        len: BLOCK_SIZE,
        meaningful: BLOCK_SIZE,
    };
    let (what, patches) = edit_all(c, &[(inst, (mem.clone(), block))], edit, reseal_alloc)?;
    let which = if current { "current" } else { "not in use" };
    Some(crafted(
        format!("member {}", mem.index()),
        format!(
            "alloc table copy {copy} ({which}) block {block} field {field}: {what} (crc-valid)"
        ),
        expect,
        patches,
    ))
}

fn alloc_set(
    c: &mut Ctx<'_>,
    field: &str,
    off: usize,
    width: usize,
    expect: Expect,
    val: Val<'_, (Mem, u32)>,
) -> Option<Mutation> {
    alloc_edit(c, true, field, expect, &|b, x| {
        set_field(b, x, off, width, val)
    })
}

// Journal.

/// How an edit of an entry is judged.
type JRule = fn(&JEntry, &Model) -> Expect;

fn je_refuse(_: &JEntry, _: &Model) -> Expect {
    Expect::Refuse
}

fn je_either(_: &JEntry, _: &Model) -> Expect {
    Expect::Either
}

/// The entry no longer decodes anywhere: a hole if it was replayed and a newer one is there
/// (acknowledged entries lost); the newest one is indistinguishable from a torn last write.
fn je_skip(e: &JEntry, m: &Model) -> Expect {
    if m.pending(e.seq) && e.seq < m.last_seq() {
        Expect::Refuse
    } else {
        Expect::Either
    }
}

/// The entry decodes but cannot be applied: refused if it is replayed.
fn je_apply(e: &JEntry, m: &Model) -> Expect {
    if m.pending(e.seq) {
        Expect::Refuse
    } else {
        Expect::Either
    }
}

/// Its seq becomes its predecessor's: two entries with one seq, or a hole.
fn je_dup_prev(e: &JEntry, m: &Model) -> Expect {
    if m.pending(e.seq.saturating_sub(1)) {
        Expect::Refuse
    } else {
        je_skip(e, m)
    }
}

/// Members whose journal holds `e` (same seq, same block).
fn holders<'a>(c: &Ctx<'a>, e: &JEntry) -> Vec<&'a Mem> {
    c.mems()
        .into_iter()
        .filter(|m| {
            m.journal
                .iter()
                .any(|x| x.seq == e.seq && x.block == e.block)
        })
        .collect()
}

fn mirrors_of(c: &Ctx<'_>, e: &JEntry) -> usize {
    holders(c, e).len()
}

/// An entry (a replayed one, usually, if `pending_first`) and the members holding it.
fn pick_entry<'a>(c: &mut Ctx<'a>, pending_first: bool) -> Option<(&'a JEntry, Vec<&'a Mem>)> {
    let m: &'a Model = c.m;
    let mut all: Vec<&'a JEntry> = Vec::new();
    for mem in m.mems.iter().flatten() {
        for e in &mem.journal {
            if !all.iter().any(|x| x.seq == e.seq && x.block == e.block) {
                all.push(e);
            }
        }
    }
    let pending: Vec<&'a JEntry> = all.iter().copied().filter(|e| m.pending(e.seq)).collect();
    let list = if pending_first && !pending.is_empty() {
        pending
    } else {
        all
    };
    let e = *pick(&mut c.rng, &list)?;
    Some((e, holders(c, e)))
}

fn je_edit(
    c: &mut Ctx<'_>,
    every_mirror: bool,
    field: &str,
    rule: JRule,
    edit: Edit<'_, JEntry>,
) -> Option<Mutation> {
    let pending_first = !c.coin(4);
    let (e, all) = pick_entry(c, pending_first)?;
    let mirrors = all.len();
    let hs = if every_mirror {
        all
    } else {
        vec![*pick(&mut c.rng, &all)?]
    };
    let insts: Vec<(Inst, JEntry)> = hs
        .iter()
        .map(|mem| {
            (
                Inst {
                    dev: mem.pos,
                    off: mem.layout.journal_block_offset(e.block),
                    len: e.blocks * BLOCK_SIZE,
                    meaningful: e.len,
                },
                e.clone(),
            )
        })
        .collect();
    let (what, patches) = edit_all(c, &insts, edit, reseal_entry)?;
    let expect = if every_mirror || mirrors < 2 {
        rule(e, c.m)
    } else {
        Expect::Either
    };
    Some(crafted(
        members_desc(&hs),
        format!(
            "journal {}{} field {field}: {what} (crc-valid)",
            entry_desc(e, c.m),
            if every_mirror {
                " on every mirror"
            } else {
                " on one mirror"
            }
        ),
        expect,
        patches,
    ))
}

fn je_set(
    c: &mut Ctx<'_>,
    field: &str,
    off: usize,
    width: usize,
    rule: JRule,
    val: Val<'_, JEntry>,
) -> Option<Mutation> {
    je_edit(c, true, field, rule, &|b, e| {
        set_field(b, e, off, width, val)
    })
}

/// Rewrites record `i % nr` of the entry with `f`.
fn je_record(
    c: &mut Ctx<'_>,
    field: &str,
    rule: JRule,
    f: &dyn Fn(&mut [u8]) -> Option<String>,
) -> Option<Mutation> {
    let i = c.rng.next_u64();
    je_edit(c, true, field, rule, &|b, e| {
        let n = e.records.len() as u64;
        if n == 0 {
            return None;
        }
        let r = (i % n) as usize;
        let o = jo::RECORDS + r * RECORD_SIZE;
        let rec = b.get_mut(o..o + RECORD_SIZE)?;
        Some(format!("record {r}: {}", f(rec)?))
    })
}

/// Record `i` becomes a bucket state record.
fn bs_record(rec: &mut [u8], member: u32, bucket: u64, state: u8) -> Option<String> {
    let old = rec.to_vec();
    rec.fill(0);
    set_le(rec, jo::REC_TYPE, 1, 2);
    set_le(rec, jo::BS_BUCKET, 8, bucket);
    set_le(rec, jo::BS_MEMBER, 4, u64::from(member));
    set_le(rec, jo::BS_STATE, 1, u64::from(state));
    if rec == old.as_slice() {
        return None;
    }
    let st = BucketState::from_u8(state).map_or("not a state", |s| s.name());
    Some(format!(
        "bucket state: member {} bucket {} state {state} ({st})",
        num(u64::from(member)),
        num(bucket)
    ))
}

/// A bucket state record for the bucket `which` picks (member and bucket overridable).
fn je_bs(
    c: &mut Ctx<'_>,
    which: Pick,
    member: Option<u32>,
    bucket: Option<u64>,
    state: u8,
    rule: JRule,
) -> Option<Mutation> {
    let (mem, b) = pick_bucket(c, which)?;
    // What the bucket is in the checkpoint's table, when it is that bucket.
    let now = match (member, bucket) {
        (None, None) => mem
            .states
            .get(b as usize)
            .and_then(|s| BucketState::from_u8(*s))
            .map_or(String::new(), |s| format!(" (it is {} now)", s.name())),
        _ => String::new(),
    };
    let member = member.unwrap_or(mem.index());
    let bucket = bucket.unwrap_or(b);
    je_record(c, "record", rule, &|rec| {
        bs_record(rec, member, bucket, state).map(|w| format!("{w}{now}"))
    })
}

fn je_insert(c: &mut Ctx<'_>, key: u64, fill: u8) -> Option<Mutation> {
    je_record(c, "record", je_either, &|rec| {
        rec.fill(0);
        set_le(rec, jo::REC_TYPE, 1, 1);
        set_le(rec, jo::INS_KEY, 8, key);
        if let Some(v) = rec.get_mut(jo::INS_VALUE..) {
            v.fill(fill);
        }
        Some(format!("insert key {} value {fill:#04x}..", num(key)))
    })
}

/// A new entry (seq last + 1, `nr` inserts) at journal block `block` of every member.
/// Only its first block is written: an entry longer than that at the ring's last block
/// runs past the end, which a reader must skip, not follow.
fn je_new_at(c: &mut Ctx<'_>, at_end: bool, nr: usize) -> Option<Mutation> {
    let m = c.m;
    let last = m.last_seq();
    let seq = last.max(m.journal_seq()) + 1;
    let len = ENTRY_HEADER_SIZE + nr * RECORD_SIZE;
    let mut e = vec![0u8; len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE];
    put(&mut e, jo::MAGIC, &journal::JOURNAL_MAGIC);
    put(&mut e, jo::VOLUME_UUID, &m.volume);
    set_le(&mut e, jo::SEQ, 8, seq);
    set_le(&mut e, jo::LEN, 4, len as u64);
    set_le(&mut e, jo::NR_RECORDS, 4, nr as u64);
    for i in 0..nr {
        let o = jo::RECORDS + i * RECORD_SIZE;
        set_le(&mut e, o + jo::REC_TYPE, 1, 1);
        set_le(&mut e, o + jo::INS_KEY, 8, u64::MAX - i as u64);
        if let Some(v) = e.get_mut(o + jo::INS_VALUE..o + RECORD_SIZE) {
            v.fill(0xa5);
        }
    }
    reseal_entry(&mut e);
    let first = e.get(..BLOCK_SIZE)?.to_vec();
    let mems = c.mems();
    let block_of = |mem: &Mem| {
        if at_end {
            mem.layout.journal_blocks.saturating_sub(1)
        } else {
            0
        }
    };
    let block = block_of(mems.first()?);
    let mut patches = Vec::new();
    for mem in &mems {
        let block = block_of(mem);
        patches.push(Patch {
            dev: mem.pos,
            off: mem.layout.journal_block_offset(block),
            bytes: first.clone(),
        });
    }
    if patches.is_empty() {
        return None;
    }
    let place = if at_end {
        "the ring's last block"
    } else {
        "the ring's first block (wrapped)"
    };
    let blocks = e.len() / BLOCK_SIZE;
    // What it overwrites: a replayed entry there is lost. The new entry, if it is read
    // (it fits in the ring), comes after it, so that is a hole; if it is not read, only
    // the newest entry may go missing unnoticed (a torn last write).
    let fits = !at_end || blocks == 1;
    let lost = mems.iter().flat_map(|mem| mem.journal.iter()).any(|x| {
        let hit = x.block <= block && block < x.block + x.blocks as u32;
        hit && m.pending(x.seq) && (fits || x.seq < m.last_seq())
    });
    let expect = if lost { Expect::Refuse } else { Expect::Either };
    Some(crafted(
        members_desc(&mems),
        format!(
            "journal new entry at {place} (block {block}): seq {seq}, {nr} insert(s), {len} bytes = {blocks} block(s){} (crc-valid)",
            if blocks > 1 { ", running past the end of the ring" } else { "" }
        ),
        expect,
        patches,
    ))
}

// Btree nodes.

#[derive(Clone, Copy, PartialEq, Eq)]
enum NPick {
    Any,
    Interior,
    Leaf,
    /// A node that is not the root.
    Inner,
}

fn pick_node(c: &mut Ctx<'_>, which: NPick) -> Option<TNode> {
    let m: &Model = c.m;
    let list: Vec<&TNode> = m
        .nodes
        .iter()
        .filter(|n| match which {
            NPick::Any => true,
            NPick::Interior => n.level > 0,
            NPick::Leaf => n.level == 0,
            NPick::Inner => !n.is_root,
        })
        .collect();
    pick(&mut c.rng, &list).map(|n| (*n).clone())
}

fn node_edit_on(
    c: &mut Ctx<'_>,
    node: &TNode,
    every_replica: bool,
    field: &str,
    expect: Expect,
    edit: Edit<'_, TNode>,
) -> Option<Mutation> {
    let m = c.m;
    let reps = node.ptr.replicas().to_vec();
    let chosen = if every_replica {
        reps.clone()
    } else {
        vec![*pick(&mut c.rng, &reps)?]
    };
    let insts: Vec<(Inst, TNode)> = chosen
        .iter()
        .filter_map(|r| m.locate(r.dev, r.bucket))
        .map(|(dev, off)| {
            (
                Inst {
                    dev,
                    off,
                    len: m.node_size,
                    meaningful: node.len,
                },
                node.clone(),
            )
        })
        .collect();
    let (what, patches) = edit_all(c, &insts, edit, reseal_node)?;
    let expect = if every_replica || reps.len() < 2 {
        expect
    } else {
        Expect::Either
    };
    let devs: Vec<String> = chosen.iter().map(|r| r.dev.to_string()).collect();
    let member = if devs.len() == 1 {
        format!("member {}", devs.join(","))
    } else {
        format!("members {}", devs.join(","))
    };
    Some(crafted(
        member,
        format!(
            "btree {} ({}) field {field}: {what} (crc-valid)",
            node_desc(node),
            if every_replica {
                "every replica"
            } else {
                "one replica"
            }
        ),
        expect,
        patches,
    ))
}

fn node_edit(
    c: &mut Ctx<'_>,
    which: NPick,
    every_replica: bool,
    field: &str,
    expect: Expect,
    edit: Edit<'_, TNode>,
) -> Option<Mutation> {
    let node = pick_node(c, which)?;
    node_edit_on(c, &node, every_replica, field, expect, edit)
}

fn node_set(
    c: &mut Ctx<'_>,
    which: NPick,
    field: &str,
    off: usize,
    width: usize,
    expect: Expect,
    val: Val<'_, TNode>,
) -> Option<Mutation> {
    node_edit(c, which, true, field, expect, &|b, n| {
        set_field(b, n, off, width, val)
    })
}

fn entry_size(level: u8) -> usize {
    if level == 0 {
        btree_node::LEAF_ENTRY_SIZE
    } else {
        btree_node::INTERIOR_ENTRY_SIZE
    }
}

fn key_off(level: u8, i: usize) -> usize {
    NODE_HEADER_SIZE + i * entry_size(level)
}

/// Sets nr_entries to `nr(old)` with `len` to match (the count itself is what is judged).
fn node_nr(
    c: &mut Ctx<'_>,
    which: NPick,
    expect: Expect,
    nr: &dyn Fn(u64, &TNode, u32) -> Option<u64>,
) -> Option<Mutation> {
    let max = c.m.node_max;
    node_edit(c, which, true, "nr_entries", expect, &|b, n| {
        let old = get_le(b, no::NR_ENTRIES, 4);
        let new = nr(old, n, max)?;
        if new == old {
            return None;
        }
        set_le(b, no::NR_ENTRIES, 4, new);
        let len = (NODE_HEADER_SIZE as u64)
            .saturating_add(new.saturating_mul(entry_size(n.level) as u64))
            .min(u64::from(u32::MAX));
        set_le(b, no::LEN, 4, len);
        Some(format!("{} -> {} (len {len})", num(old), num(new)))
    })
}

/// Rewrites the pointer of child `i % nr` of an interior node with `f(child, node, model)`.
fn node_child(
    c: &mut Ctx<'_>,
    what: &str,
    expect: Expect,
    f: &dyn Fn(usize, &TNode, &Model) -> NewPtr,
) -> Option<Mutation> {
    let node = pick_node(c, NPick::Interior)?;
    let i = c.rng.below(node.children.len() as u64) as usize;
    let (nr, reps) = f(i, &node, c.m)?;
    let what = what.to_string();
    node_edit_on(c, &node, true, "child pointer", expect, &|b, n| {
        let o = key_off(n.level, i) + 8;
        put_ptr(b, o, nr, &reps);
        let list: Vec<String> = reps.iter().map(|(d, k)| format!("{d}:{k}")).collect();
        Some(format!("child {i}: {what} (nr {nr}, {})", list.join(",")))
    })
}

/// Child `i`'s pointer with each replica's bucket replaced.
fn child_buckets(i: usize, n: &TNode, m: &Model, f: &dyn Fn(&Mem, u64) -> Option<u64>) -> NewPtr {
    map_buckets(n.children.get(i)?, m, f)
}

fn first_of(v: Vec<u64>) -> Option<u64> {
    v.first().copied()
}

const R: Expect = Expect::Refuse;
const E: Expect = Expect::Either;

/// The crafted cases. Each sets one field (or a few that only make sense together) to a
/// hostile value and recomputes the checksum; `None` where the volume has nothing for it
/// (the next case is used then).
const CRAFTS: &[Craft] = &[
    // ---- superblock: both copies, so that no good copy is left (refuse), unless noted.
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_count",
            so::BUCKET_COUNT,
            8,
            R,
            &|_, _| Some(0),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_count",
            so::BUCKET_COUNT,
            8,
            R,
            &|_, _| Some(1 << 40),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_count",
            so::BUCKET_COUNT,
            8,
            R,
            &|_, _| Some((1 << 40) + 1),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_count",
            so::BUCKET_COUNT,
            8,
            R,
            &|_, _| Some(u64::MAX),
        )
    },
    // One more bucket than the device holds.
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_count",
            so::BUCKET_COUNT,
            8,
            R,
            &|v, _| v.checked_add(1),
        )
    },
    // One fewer: the alloc table has a state past the end.
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_count",
            so::BUCKET_COUNT,
            8,
            R,
            &|v, _| v.checked_sub(1),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "member_count",
            so::MEMBER_COUNT,
            4,
            R,
            &|_, _| Some(0),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "member_count",
            so::MEMBER_COUNT,
            4,
            R,
            &|_, _| Some(33),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "member_count",
            so::MEMBER_COUNT,
            4,
            R,
            &|v, _| v.checked_add(1),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "member_count",
            so::MEMBER_COUNT,
            4,
            R,
            &|v, _| v.checked_sub(1).filter(|n| *n >= 1),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "member_index",
            so::MEMBER_INDEX,
            4,
            R,
            &|_, m| Some(u64::from(m.sb.member_count)),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "member_index",
            so::MEMBER_INDEX,
            4,
            R,
            &|_, _| Some(u64::from(u32::MAX)),
        )
    },
    // Two devices claim one index.
    |c| sb_claim_other(c, Copies::Both),
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_size",
            so::BUCKET_SIZE,
            4,
            R,
            &|_, _| Some(3 << 16),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_size",
            so::BUCKET_SIZE,
            4,
            R,
            &|_, _| Some(32 << 10),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "bucket_size",
            so::BUCKET_SIZE,
            4,
            R,
            &|v, _| v.checked_mul(2).filter(|x| *x <= u64::from(u32::MAX)),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "journal_blocks",
            so::JOURNAL_BLOCKS,
            4,
            R,
            &|_, _| Some((1 << 20) + 1),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "journal_blocks",
            so::JOURNAL_BLOCKS,
            4,
            R,
            &|_, _| Some(u64::from(u32::MAX)),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "journal_blocks",
            so::JOURNAL_BLOCKS,
            4,
            R,
            &|_, _| Some(15),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "node_max_entries",
            so::NODE_MAX_ENTRIES,
            4,
            R,
            &|_, _| Some(0),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "node_max_entries",
            so::NODE_MAX_ENTRIES,
            4,
            R,
            &|_, _| Some(u64::from(u32::MAX)),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "node_max_entries",
            so::NODE_MAX_ENTRIES,
            4,
            R,
            &|_, _| Some(3),
        )
    },
    // Legal, but not what the other members say (refused then; alone, nodes still fit).
    |c| {
        let expect = if c.m.member_count > 1 { R } else { E };
        sb_set(
            c,
            Copies::Both,
            "node_max_entries",
            so::NODE_MAX_ENTRIES,
            4,
            expect,
            &|_, m| Some(u64::from(max_node_entries(m.sb.bucket_size))),
        )
    },
    // seq near the maximum: the largest legal value, then past it.
    |c| {
        sb_set(c, Copies::Both, "seq", so::SEQ, 8, E, &|_, _| {
            Some(MAX_COUNTER)
        })
    },
    |c| {
        sb_set(c, Copies::Both, "seq", so::SEQ, 8, R, &|_, _| {
            Some(MAX_COUNTER + 1)
        })
    },
    |c| {
        sb_set(c, Copies::Both, "seq", so::SEQ, 8, R, &|_, _| {
            Some(u64::MAX)
        })
    },
    |c| sb_set(c, Copies::Both, "seq", so::SEQ, 8, R, &|_, _| Some(0)),
    // Option slots out of range.
    |c| {
        sb_set(c, Copies::Both, "opts_set", so::OPTS_SET, 4, R, &|v, _| {
            Some(v | 1 << 31)
        })
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "opts[31]",
            so::OPTS + 4 * 31,
            4,
            R,
            &|_, _| Some(1),
        )
    },
    |c| {
        sb_edit(
            c,
            Copies::Both,
            "opts_set and opts (the first unknown option id)",
            R,
            &|b, _| {
                let set = get_le(b, so::OPTS_SET, 4) | 1 << NR_OPTS;
                set_le(b, so::OPTS_SET, 4, set);
                set_le(b, so::OPTS + 4 * NR_OPTS, 4, 5);
                Some(format!("slot {NR_OPTS} set to 5"))
            },
        )
    },
    |c| sb_opt(c, OptId::MetadataReplicas, &|_| Some(0)),
    |c| sb_opt(c, OptId::MetadataReplicas, &|_| Some(5)),
    |c| {
        sb_opt(c, OptId::MetadataReplicas, &|m| {
            Some(m.sb.member_count + 1).filter(|n| *n <= 4)
        })
    },
    |c| sb_opt(c, OptId::DataReplicas, &|_| Some(0)),
    |c| sb_opt(c, OptId::AllocWaitPolicy, &|_| Some(3)),
    |c| sb_opt(c, OptId::AllocDeadline, &|_| Some(u32::MAX)),
    |c| sb_opt(c, OptId::Discard, &|_| Some(2)),
    // member_states: a byte that is no state, a state past member_count.
    |c| {
        sb_set(
            c,
            Copies::Both,
            "member_states[0]",
            so::MEMBER_STATES,
            1,
            R,
            &|_, _| Some(4),
        )
    },
    |c| {
        let past = c.m.member_count as usize;
        if past >= MAX_MEMBERS {
            return None;
        }
        sb_set(
            c,
            Copies::Both,
            "member_states[member_count]",
            so::MEMBER_STATES + past,
            1,
            R,
            &|_, _| Some(1),
        )
    },
    // members: a duplicate, one past member_count, this member's zeroed.
    |c| {
        if c.m.member_count < 2 {
            return None;
        }
        sb_edit(c, Copies::Both, "members", R, &|b, m| {
            let other = c_other(m) as usize;
            let u = *m.sb.members.get(m.index() as usize)?;
            put(b, so::MEMBERS + 16 * other, &u);
            Some(format!(
                "members[{other}] = members[{}] (duplicate)",
                m.index()
            ))
        })
    },
    |c| {
        sb_edit(c, Copies::Both, "members", R, &|b, m| {
            let n = m.sb.member_count as usize;
            if n >= MAX_MEMBERS {
                return None;
            }
            put(b, so::MEMBERS + 16 * n, &OTHER_UUID);
            Some(format!(
                "members[{n}] (past member_count) = {}",
                Hyphenated(&OTHER_UUID)
            ))
        })
    },
    |c| {
        sb_edit(c, Copies::Both, "members", R, &|b, m| {
            put(b, so::MEMBERS + 16 * m.index() as usize, &NIL);
            Some(format!("members[{}] zeroed", m.index()))
        })
    },
    |c| {
        sb_set(c, Copies::Both, "version", so::VERSION, 4, R, &|_, _| {
            Some(1)
        })
    },
    |c| {
        sb_set(c, Copies::Both, "version", so::VERSION, 4, R, &|_, _| {
            Some(3)
        })
    },
    |c| {
        sb_edit(c, Copies::Both, "volume_uuid", R, &|b, _| {
            put(b, so::VOLUME_UUID, &NIL);
            Some("zeroed".into())
        })
    },
    |c| {
        sb_edit(c, Copies::Both, "magic", R, &|b, _| {
            put(b, so::MAGIC, b"bkalloc1");
            Some("\"bkalloc1\"".into())
        })
    },
    |c| {
        sb_set(c, Copies::Both, "reserved", so::RESERVED0, 4, R, &|_, _| {
            Some(1)
        })
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "reserved (byte 2000)",
            2000,
            1,
            R,
            &|_, _| Some(0xff),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "sb_buckets",
            so::SB_BUCKETS,
            4,
            R,
            &|v, _| v.checked_add(1),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "alloc_blocks",
            so::ALLOC_BLOCKS,
            4,
            R,
            &|v, _| v.checked_add(1),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "journal_offset",
            so::JOURNAL_OFFSET,
            8,
            R,
            &|v, _| v.checked_add(BLOCK),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "checkpoint_offset",
            so::CHECKPOINT_OFFSET,
            8,
            R,
            &|_, _| Some(0),
        )
    },
    |c| {
        sb_set(
            c,
            Copies::Both,
            "btree_reserve",
            so::BTREE_RESERVE,
            4,
            R,
            &|_, _| Some(u64::from(u32::MAX)),
        )
    },
    // One copy, same seq, another (legal) btree_reserve: the copies disagree.
    |c| {
        sb_set(
            c,
            Copies::Only(1),
            "btree_reserve",
            so::BTREE_RESERVE,
            4,
            R,
            &|v, _| Some(if v > 0 { v - 1 } else { v + 1 }),
        )
    },
    // One copy newer (seq + 1) with another option value: a rewrite cut short after it.
    |c| {
        sb_edit(
            c,
            Copies::One,
            "seq and opts[alloc_deadline]",
            E,
            &|b, _| {
                let seq = get_le(b, so::SEQ, 8).checked_add(1)?;
                set_le(b, so::SEQ, 8, seq);
                let id = OptId::AllocDeadline;
                let set = get_le(b, so::OPTS_SET, 4) | 1 << id.index();
                set_le(b, so::OPTS_SET, 4, set);
                set_le(b, so::OPTS + 4 * id.index(), 4, 7);
                Some(format!("seq {seq}, alloc_deadline 7"))
            },
        )
    },
    // One copy claims another index: both valid, different devices.
    |c| sb_claim_other(c, Copies::Only(0)),
    // One copy invalid, or valid with a huge seq: the other copy or the newer one serves.
    |c| {
        sb_set(
            c,
            Copies::One,
            "bucket_count",
            so::BUCKET_COUNT,
            8,
            E,
            &|_, _| Some(u64::MAX),
        )
    },
    |c| {
        sb_set(c, Copies::One, "seq", so::SEQ, 8, E, &|_, _| {
            Some(MAX_COUNTER + 1)
        })
    },
    |c| {
        sb_set(c, Copies::One, "seq", so::SEQ, 8, E, &|_, _| {
            Some(MAX_COUNTER)
        })
    },
    // ---- checkpoint: the newest slot of every member unless noted.
    // Generation near the maximum, slot kept: the alloc tables name another generation.
    |c| {
        cp_set(
            c,
            CpScope::All,
            "generation",
            co::GENERATION,
            8,
            R,
            &|v, _| Some(MAX_COUNTER - MAX_COUNTER % 2 - v % 2),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "generation",
            co::GENERATION,
            8,
            E,
            &|_, _| Some(MAX_COUNTER + 1),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "generation",
            co::GENERATION,
            8,
            E,
            &|_, _| Some(u64::MAX),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "generation",
            co::GENERATION,
            8,
            E,
            &|_, _| Some(0),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "generation",
            co::GENERATION,
            8,
            R,
            &|v, _| v.checked_add(2),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::One,
            "generation",
            co::GENERATION,
            8,
            R,
            &|v, _| v.checked_add(2),
        )
    },
    // The older slot jumps ahead of the newest (its alloc table copy is older).
    |c| {
        let g = c.m.cp?.generation;
        cp_set(
            c,
            CpScope::Older,
            "generation",
            co::GENERATION,
            8,
            R,
            &|_, _| g.checked_add(1),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "journal_seq",
            co::JOURNAL_SEQ,
            8,
            E,
            &|_, _| Some(MAX_COUNTER),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "journal_seq",
            co::JOURNAL_SEQ,
            8,
            E,
            &|_, _| Some(MAX_COUNTER + 1),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "journal_seq",
            co::JOURNAL_SEQ,
            8,
            E,
            &|_, _| Some(u64::MAX),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "journal_seq",
            co::JOURNAL_SEQ,
            8,
            E,
            &|_, _| Some(0),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "journal_seq",
            co::JOURNAL_SEQ,
            8,
            E,
            &|v, _| v.checked_sub(1),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::One,
            "member_index",
            co::MEMBER_INDEX,
            4,
            R,
            &|v, x| {
                let o = u64::from(c_other(&x.1));
                Some(if o == v { v + 1 } else { o })
            },
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "root_level",
            co::ROOT_LEVEL,
            1,
            R,
            &|v, _| (v != 15).then_some(15),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "root_level",
            co::ROOT_LEVEL,
            1,
            E,
            &|_, _| Some(16),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "root_level",
            co::ROOT_LEVEL,
            1,
            E,
            &|_, _| Some(255),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "root_level",
            co::ROOT_LEVEL,
            1,
            R,
            &|v, _| (v < u64::from(MAX_LEVEL)).then_some(v + 1),
        )
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "root_level",
            co::ROOT_LEVEL,
            1,
            R,
            &|v, _| v.checked_sub(1),
        )
    },
    |c| cp_set(c, CpScope::All, "root.nr", co::ROOT, 1, E, &|_, _| Some(0)),
    |c| cp_set(c, CpScope::All, "root.nr", co::ROOT, 1, E, &|_, _| Some(5)),
    |c| {
        cp_root(c, "replicas duplicated", E, &|p, _| {
            let r = *p.replicas().first()?;
            let reps = vec![(r.dev, r.bucket); p.len().clamp(2, MAX_REPLICAS)];
            Some((reps.len() as u8, reps))
        })
    },
    |c| {
        cp_root(c, "every replica on member member_count", R, &|p, m| {
            let d = u8::try_from(m.member_count).ok()?;
            Some((
                p.len() as u8,
                p.replicas().iter().map(|r| (d, r.bucket)).collect(),
            ))
        })
    },
    |c| {
        cp_root(c, "every replica on member 31", R, &|p, _| {
            Some((
                p.len() as u8,
                p.replicas().iter().map(|r| (31, r.bucket)).collect(),
            ))
        })
    },
    |c| {
        let expect = if c.m.cp?.root.len() > 1 { E } else { R };
        cp_root(c, "replica 0 on member member_count", expect, &|p, m| {
            let mut reps = reps_of(p);
            reps.first_mut()?.0 = u8::try_from(m.member_count).ok()?;
            Some((p.len() as u8, reps))
        })
    },
    |c| {
        cp_root(c, "buckets past the end", R, &|p, m| {
            map_buckets(p, m, &|mem, _| Some(mem.layout.bucket_count))
        })
    },
    |c| {
        cp_root(c, "buckets u64::MAX", R, &|p, m| {
            map_buckets(p, m, &|_, _| Some(u64::MAX))
        })
    },
    |c| {
        cp_root(c, "buckets 0 (the superblocks)", R, &|p, m| {
            map_buckets(p, m, &|_, _| Some(0))
        })
    },
    |c| {
        cp_root(
            c,
            "buckets in the metadata region (its last bucket)",
            R,
            &|p, m| {
                map_buckets(p, m, &|mem, _| {
                    Some(u64::from(mem.layout.sb_buckets).saturating_sub(1))
                })
            },
        )
    },
    |c| {
        cp_root(c, "user buckets", R, &|p, m| {
            map_buckets(p, m, &|mem, _| first_of(mem.buckets_in(BucketState::User)))
        })
    },
    |c| {
        cp_root(c, "free buckets", E, &|p, m| {
            map_buckets(p, m, &|mem, _| first_of(mem.buckets_in(BucketState::Free)))
        })
    },
    |c| {
        cp_root(c, "the root's first child", R, &|_, m| {
            let root = m.nodes.iter().find(|n| n.is_root)?;
            let p = root.children.first()?;
            Some((p.len() as u8, reps_of(p)))
        })
    },
    |c| {
        cp_set(
            c,
            CpScope::All,
            "counts[free]",
            co::COUNTS,
            8,
            E,
            &|_, _| Some(u64::MAX),
        )
    },
    |c| {
        cp_edit(c, CpScope::All, "counts", E, &|b, _| {
            b.get_mut(co::COUNTS..co::COUNTS + 40)?.fill(0);
            Some("all zero".into())
        })
    },
    |c| {
        cp_set(c, CpScope::All, "reserved", co::RESERVED0, 1, E, &|_, _| {
            Some(1)
        })
    },
    |c| {
        cp_edit(c, CpScope::All, "volume_uuid", E, &|b, _| {
            put(b, co::VOLUME_UUID, &OTHER_UUID);
            Some("another volume's".into())
        })
    },
    |c| {
        cp_edit(c, CpScope::All, "magic", E, &|b, _| {
            put(b, co::MAGIC, b"BKCQ");
            Some("\"BKCQ\"".into())
        })
    },
    // ---- alloc table: the copy the volume's checkpoint uses (there is no other).
    |c| alloc_state(c, Pick::Data, 0, R),
    |c| alloc_state(c, Pick::Data, 6, R),
    |c| alloc_state(c, Pick::Data, 255, R),
    // The metadata region is fixed at format.
    |c| alloc_state(c, Pick::Sb, BucketState::Free.to_u8(), R),
    |c| alloc_state(c, Pick::Free, BucketState::Sb.to_u8(), R),
    // A live node's bucket: free or need_discard can be repaired from the tree; user not.
    |c| alloc_state(c, Pick::Btree, BucketState::Free.to_u8(), E),
    |c| alloc_state(c, Pick::Btree, BucketState::NeedDiscard.to_u8(), E),
    |c| alloc_state(c, Pick::Btree, BucketState::User.to_u8(), R),
    |c| alloc_state(c, Pick::User, BucketState::Free.to_u8(), E),
    |c| alloc_state(c, Pick::Free, BucketState::Btree.to_u8(), E),
    |c| {
        alloc_set(c, "generation", ao::GENERATION, 8, R, &|v, _| {
            v.checked_add(1)
        })
    },
    |c| {
        alloc_set(c, "generation", ao::GENERATION, 8, R, &|v, _| {
            v.checked_sub(1)
        })
    },
    |c| {
        alloc_set(c, "block_index", ao::BLOCK_INDEX, 4, R, &|v, _| {
            v.checked_add(1)
        })
    },
    |c| {
        alloc_set(c, "member_index", ao::MEMBER_INDEX, 4, R, &|v, x| {
            let o = u64::from(c_other(&x.0));
            Some(if o == v { v + 1 } else { o })
        })
    },
    |c| {
        alloc_edit(c, true, "volume_uuid", R, &|b, _| {
            put(b, ao::VOLUME_UUID, &OTHER_UUID);
            Some("another volume's".into())
        })
    },
    |c| {
        alloc_edit(c, true, "states (past the last bucket)", R, &|b,
                                                                  (
            mem,
            block,
        )| {
            let n = mem.layout.alloc_block_states(*block);
            if n >= STATES_PER_BLOCK {
                return None;
            }
            set_le(b, ALLOC_HEADER_SIZE + n, 1, 1);
            Some(format!("state {} (past bucket_count) = 1", n))
        })
    },
    |c| {
        alloc_edit(c, true, "magic", R, &|b, _| {
            put(b, ao::MAGIC, b"BKAU");
            Some("\"BKAU\"".into())
        })
    },
    // The copy not in use: whatever it holds, nothing reads it.
    |c| {
        alloc_edit(c, false, "generation", E, &|b, _| {
            let g = get_le(b, ao::GENERATION, 8);
            set_le(b, ao::GENERATION, 8, MAX_COUNTER);
            Some(format!("{} -> {}", num(g), num(MAX_COUNTER)))
        })
    },
    // ---- journal: every mirror of an entry (a replayed one, usually).
    |c| je_set(c, "seq", jo::SEQ, 8, je_refuse, &|_, _| Some(MAX_COUNTER)),
    |c| je_set(c, "seq", jo::SEQ, 8, je_skip, &|_, _| Some(MAX_COUNTER + 1)),
    |c| je_set(c, "seq", jo::SEQ, 8, je_skip, &|_, _| Some(u64::MAX)),
    |c| je_set(c, "seq", jo::SEQ, 8, je_skip, &|_, _| Some(0)),
    |c| {
        je_set(c, "seq", jo::SEQ, 8, je_dup_prev, &|v, _| {
            v.checked_sub(1).filter(|s| *s > 0)
        })
    },
    |c| {
        let next = c.m.last_seq() + 1;
        je_set(c, "seq", jo::SEQ, 8, je_apply, &|_, _| Some(next))
    },
    |c| {
        je_set(c, "nr_records", jo::NR_RECORDS, 4, je_skip, &|_, _| {
            Some(u64::from(u32::MAX))
        })
    },
    |c| {
        je_set(c, "nr_records", jo::NR_RECORDS, 4, je_skip, &|v, _| {
            v.checked_add(1)
        })
    },
    |c| {
        je_edit(c, true, "len", je_skip, &|b, e| {
            let len = e.len as u64;
            let new = if e.len + RECORD_SIZE <= b.len() {
                len + RECORD_SIZE as u64
            } else {
                len - RECORD_SIZE as u64
            };
            set_le(b, jo::LEN, 4, new);
            Some(format!(
                "{len} -> {new} (nr_records {} unchanged)",
                e.records.len()
            ))
        })
    },
    |c| je_set(c, "len", jo::LEN, 4, je_skip, &|_, _| Some(0)),
    |c| {
        je_set(c, "len", jo::LEN, 4, je_skip, &|_, _| {
            Some(journal::MAX_ENTRY_SIZE as u64 + 1)
        })
    },
    |c| {
        je_record(c, "record.type", je_skip, &|rec| {
            set_le(rec, jo::REC_TYPE, 1, 7);
            Some("type 7 (unknown)".into())
        })
    },
    |c| {
        je_record(c, "record.type", je_skip, &|rec| {
            set_le(rec, jo::REC_TYPE, 1, 0);
            Some("type 0".into())
        })
    },
    |c| {
        je_record(c, "record.reserved", je_skip, &|rec| {
            set_le(rec, jo::REC_RESERVED + 2, 1, 1);
            Some("reserved byte 3 = 1".into())
        })
    },
    |c| je_set(c, "reserved", jo::RESERVED, 1, je_skip, &|_, _| Some(1)),
    |c| {
        je_edit(c, true, "volume_uuid", je_skip, &|b, _| {
            put(b, jo::VOLUME_UUID, &OTHER_UUID);
            Some("another volume's".into())
        })
    },
    |c| {
        je_edit(c, true, "magic", je_skip, &|b, _| {
            put(b, jo::MAGIC, b"BKJF");
            Some("\"BKJF\"".into())
        })
    },
    // Bucket state records the volume cannot apply.
    |c| {
        let n = c.m.member_count;
        je_bs(
            c,
            Pick::Free,
            Some(n),
            None,
            BucketState::Free.to_u8(),
            je_apply,
        )
    },
    |c| {
        je_bs(
            c,
            Pick::Free,
            Some(u32::MAX),
            None,
            BucketState::Free.to_u8(),
            je_apply,
        )
    },
    |c| {
        let (mem, _) = pick_bucket(c, Pick::Free)?;
        let (idx, count) = (mem.index(), mem.layout.bucket_count);
        je_record(c, "record", je_apply, &|rec| {
            bs_record(rec, idx, count, BucketState::Free.to_u8())
        })
    },
    |c| {
        je_bs(
            c,
            Pick::Free,
            None,
            Some(u64::MAX),
            BucketState::Free.to_u8(),
            je_apply,
        )
    },
    |c| je_bs(c, Pick::Free, None, None, BucketState::Sb.to_u8(), je_apply),
    |c| je_bs(c, Pick::Sb, None, None, BucketState::Free.to_u8(), je_apply),
    |c| je_bs(c, Pick::Free, None, None, 0, je_skip),
    |c| je_bs(c, Pick::Free, None, None, 6, je_skip),
    |c| {
        je_bs(
            c,
            Pick::Btree,
            None,
            None,
            BucketState::User.to_u8(),
            je_apply,
        )
    },
    |c| {
        je_bs(
            c,
            Pick::Btree,
            None,
            None,
            BucketState::Free.to_u8(),
            je_either,
        )
    },
    |c| {
        je_bs(
            c,
            Pick::User,
            None,
            None,
            BucketState::Free.to_u8(),
            je_either,
        )
    },
    |c| je_insert(c, u64::MAX, 0xff),
    |c| je_insert(c, 0, 0x00),
    // The mirrors disagree (both valid).
    |c| {
        je_edit(c, false, "record.key", je_either, &|b, e| {
            let i = e
                .records
                .iter()
                .position(|r| matches!(r, Record::Insert { .. }))?;
            let o = jo::RECORDS + i * RECORD_SIZE + jo::INS_KEY;
            let k = get_le(b, o, 8);
            set_le(b, o, 8, k ^ 1);
            Some(format!("record {i} key {k} -> {}", k ^ 1))
        })
    },
    // The entry after the newest, where the ring wraps.
    |c| je_new_at(c, true, 3),
    |c| je_new_at(c, true, 90),
    |c| je_new_at(c, false, 3),
    // ---- btree nodes: every replica unless noted.
    |c| node_nr(c, NPick::Any, R, &|_, _, max| Some(u64::from(max) + 1)),
    |c| node_nr(c, NPick::Any, R, &|_, _, _| Some(u64::from(u32::MAX))),
    |c| node_nr(c, NPick::Interior, R, &|_, _, _| Some(0)),
    |c| node_nr(c, NPick::Leaf, E, &|_, _, _| Some(0)),
    |c| node_nr(c, NPick::Leaf, E, &|v, _, _| v.checked_sub(1)),
    |c| {
        node_nr(c, NPick::Interior, R, &|v, _, _| {
            v.checked_sub(1).filter(|n| *n >= 1)
        })
    },
    |c| node_set(c, NPick::Any, "level", no::LEVEL, 1, R, &|v, _| Some(v + 1)),
    |c| {
        node_set(c, NPick::Any, "level", no::LEVEL, 1, R, &|_, _| {
            Some(u64::from(MAX_LEVEL) + 1)
        })
    },
    |c| node_set(c, NPick::Any, "level", no::LEVEL, 1, R, &|_, _| Some(255)),
    |c| {
        node_edit(c, NPick::Any, true, "key", R, &|b, n| {
            if n.keys.len() < 2 {
                return None;
            }
            let (a, z) = (key_off(n.level, 0), key_off(n.level, 1));
            let (ka, kz) = (get_le(b, a, 8), get_le(b, z, 8));
            set_le(b, a, 8, kz);
            set_le(b, z, 8, ka);
            Some(format!("keys 0 and 1 swapped ({ka}, {kz})"))
        })
    },
    |c| {
        node_edit(c, NPick::Any, true, "key", R, &|b, n| {
            if n.keys.len() < 2 {
                return None;
            }
            let k = get_le(b, key_off(n.level, 0), 8);
            set_le(b, key_off(n.level, 1), 8, k);
            Some(format!("key 1 = key 0 = {k} (duplicate)"))
        })
    },
    |c| {
        node_edit(c, NPick::Any, true, "key", R, &|b, n| {
            let last = n.keys.len().checked_sub(1)?;
            if n.max < u64::MAX {
                set_le(b, key_off(n.level, last), 8, n.max + 1);
                Some(format!("key {last} = max_key + 1 = {}", n.max + 1))
            } else if n.min > 0 {
                set_le(b, key_off(n.level, 0), 8, n.min - 1);
                Some(format!("key 0 = min_key - 1 = {}", n.min - 1))
            } else {
                let k = *n.keys.last()?;
                let new_max = k.checked_sub(1)?;
                set_le(b, no::MAX_KEY, 8, new_max);
                Some(format!(
                    "max_key {} -> {new_max}: key {last} ({k}) outside",
                    n.max
                ))
            }
        })
    },
    |c| {
        node_edit(c, NPick::Any, true, "min_key/max_key", R, &|b, n| {
            if n.max < u64::MAX {
                set_le(b, no::MIN_KEY, 8, n.max + 1);
                Some(format!("min_key {} -> {} > max_key", n.min, n.max + 1))
            } else if n.min > 0 {
                set_le(b, no::MAX_KEY, 8, n.min - 1);
                Some(format!("max_key {} -> {} < min_key", n.max, n.min - 1))
            } else {
                set_le(b, no::MIN_KEY, 8, 1);
                set_le(b, no::MAX_KEY, 8, 0);
                Some("min_key 1, max_key 0".into())
            }
        })
    },
    |c| {
        node_set(c, NPick::Inner, "min_key", no::MIN_KEY, 8, R, &|v, _| {
            v.checked_add(1)
        })
    },
    |c| {
        node_set(c, NPick::Any, "max_key", no::MAX_KEY, 8, R, &|v, _| {
            v.checked_sub(1)
        })
    },
    |c| {
        node_set(c, NPick::Any, "seq", no::SEQ, 8, R, &|_, _| {
            Some(MAX_COUNTER + 1)
        })
    },
    |c| node_set(c, NPick::Any, "seq", no::SEQ, 8, R, &|_, _| Some(u64::MAX)),
    |c| {
        node_set(c, NPick::Any, "seq", no::SEQ, 8, E, &|_, _| {
            Some(MAX_COUNTER)
        })
    },
    |c| {
        node_set(c, NPick::Any, "len", no::LEN, 4, R, &|v, _| {
            v.checked_add(1)
        })
    },
    |c| {
        node_set(c, NPick::Any, "reserved", no::RESERVED, 1, R, &|_, _| {
            Some(1)
        })
    },
    |c| {
        node_edit(c, NPick::Any, true, "volume_uuid", R, &|b, _| {
            put(b, no::VOLUME_UUID, &OTHER_UUID);
            Some("another volume's".into())
        })
    },
    |c| {
        node_edit(c, NPick::Any, true, "magic", R, &|b, _| {
            put(b, no::MAGIC, b"BKBO");
            Some("\"BKBO\"".into())
        })
    },
    // Interior nodes' child pointers.
    |c| {
        node_child(c, "another child's pointer (duplicate)", R, &|i, n, _| {
            if n.children.len() < 2 {
                return None;
            }
            let j = if i == 0 { 1 } else { i - 1 };
            let p = n.children.get(j)?;
            Some((p.len() as u8, reps_of(p)))
        })
    },
    |c| {
        node_child(c, "buckets past the end", R, &|i, n, m| {
            child_buckets(i, n, m, &|mem, _| Some(mem.layout.bucket_count))
        })
    },
    |c| {
        node_child(c, "every replica on member member_count", R, &|i, n, m| {
            let p = n.children.get(i)?;
            let d = u8::try_from(m.member_count).ok()?;
            Some((
                p.len() as u8,
                p.replicas().iter().map(|r| (d, r.bucket)).collect(),
            ))
        })
    },
    |c| {
        let expect = if c
            .m
            .nodes
            .iter()
            .any(|n| n.level > 0 && n.children.iter().all(|p| p.len() > 1))
        {
            E
        } else {
            R
        };
        node_child(c, "replica 0 on member member_count", expect, &|i, n, m| {
            let p = n.children.get(i)?;
            let mut reps = reps_of(p);
            reps.first_mut()?.0 = u8::try_from(m.member_count).ok()?;
            Some((p.len() as u8, reps))
        })
    },
    |c| {
        node_child(c, "buckets in the metadata region", R, &|i, n, m| {
            child_buckets(i, n, m, &|mem, _| {
                Some(u64::from(mem.layout.sb_buckets).saturating_sub(1).min(1))
            })
        })
    },
    |c| {
        node_child(c, "the node itself", R, &|_, n, _| {
            Some((n.ptr.len() as u8, reps_of(&n.ptr)))
        })
    },
    |c| {
        node_child(c, "user buckets", R, &|i, n, m| {
            child_buckets(i, n, m, &|mem, _| {
                first_of(mem.buckets_in(BucketState::User))
            })
        })
    },
    |c| {
        node_child(c, "free buckets", E, &|i, n, m| {
            child_buckets(i, n, m, &|mem, _| {
                first_of(mem.buckets_in(BucketState::Free))
            })
        })
    },
    |c| {
        node_child(c, "nr 0", R, &|i, n, _| {
            Some((0, reps_of(n.children.get(i)?)))
        })
    },
    |c| {
        node_child(c, "nr 5", R, &|i, n, _| {
            Some((5, reps_of(n.children.get(i)?)))
        })
    },
    |c| {
        node_child(c, "replicas duplicated", E, &|i, n, _| {
            let r = *n.children.get(i)?.replicas().first()?;
            let reps = vec![(r.dev, r.bucket); n.children.get(i)?.len().clamp(2, MAX_REPLICAS)];
            Some((reps.len() as u8, reps))
        })
    },
    |c| {
        node_edit(
            c,
            NPick::Interior,
            true,
            "child pointer reserved",
            R,
            &|b, n| {
                let o = key_off(n.level, 0) + 8 + 5;
                set_le(b, o, 1, 1);
                Some("child 0 pointer reserved byte = 1".into())
            },
        )
    },
    |c| {
        node_edit(c, NPick::Interior, true, "key", R, &|b, n| {
            let next = n.keys.get(1).copied().unwrap_or(n.max);
            let k = n
                .min
                .checked_add(1)
                .filter(|k| *k < next || (n.keys.len() == 1 && *k <= n.max))?;
            set_le(b, key_off(n.level, 0), 8, k);
            Some(format!("key 0 {} -> {k} (not the node's min_key)", n.min))
        })
    },
    // Leaf contents: valid either way, nothing can tell.
    |c| {
        node_edit(c, NPick::Leaf, true, "value", E, &|b, n| {
            if n.keys.is_empty() {
                return None;
            }
            let o = key_off(0, 0) + 8;
            let v = get_le(b, o, 1);
            set_le(b, o, 1, v ^ 0xff);
            Some(format!("entry 0 value byte 0 {v} -> {}", v ^ 0xff))
        })
    },
    |c| {
        node_edit(c, NPick::Leaf, true, "key", E, &|b, n| {
            let last = n.keys.len().checked_sub(1)?;
            let k = *n.keys.last()?;
            let new = k.checked_add(1).filter(|x| *x <= n.max)?;
            set_le(b, key_off(0, last), 8, new);
            Some(format!("key {last} {k} -> {new}"))
        })
    },
    // One replica only: the other serves.
    |c| {
        node_edit(c, NPick::Any, false, "level", E, &|b, n| {
            set_le(b, no::LEVEL, 1, u64::from(n.level) + 1);
            Some(format!("{} -> {}", n.level, n.level + 1))
        })
    },
    |c| {
        node_edit(c, NPick::Any, false, "nr_entries", E, &|b, _| {
            let old = get_le(b, no::NR_ENTRIES, 4);
            set_le(b, no::NR_ENTRIES, 4, u64::from(u32::MAX));
            Some(format!("{} -> {}", num(old), num(u64::from(u32::MAX))))
        })
    },
];
