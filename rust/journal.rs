// SPDX-License-Identifier: GPL-2.0

//! The journal: a ring of blocks mirrored on every member (the format is in
//! `core/format/mod.rs`). An entry is written at the same block of every
//! member and flushed on each, so an acknowledged record survives a crash.
//! Entries are never written out of order, so the valid entries in the ring
//! always have consecutive sequence numbers.
//!
//! Group commit: callers add their records to the open entry
//! ([`Journal::add`]) and then wait for it to be durable
//! ([`Journal::commit`]). One of them writes it, with no lock held; those
//! who arrive meanwhile fill the next entry, which one of them writes when
//! the first is done. So concurrent callers share entries and flushes, and
//! a lone caller writes its entry at once: it pays no extra wait.
//!
//! What is journaled: key inserts, and the bucket state changes users make
//! through `/dev/bkalloc` (alloc, free). Btree bucket changes are not: which
//! buckets are btree is derived from the tree at register. Nor is a
//! finished discard: losing it costs a repeated discard, never data.
//!
//! A checkpoint covers every durable entry up to its `journal_seq`; those
//! blocks can then be overwritten ([`Ring::trim`]). When the open entry
//! cannot grow and the ring has no room for a new one, [`Journal::add`]
//! returns `Ok(None)`: the caller checkpoints and tries again.

use crate::bkcore::{
    format::{
        decode_entry,
        journal::{entry_len, MAX_ENTRY_SIZE, MAX_RECORDS},
        EntryWriter, ErrorKind, FormatError, Record, BLOCK_SIZE,
    },
    journal_ring,
    replay_window::replay_window,
    uuid::{Hyphenated, Uuid},
};
use crate::fmt::Core;
use crate::glue::bdev::{flush_all, write_all, BlockDevice, WritePart};
use crate::glue::trace;
use crate::member::{Disk, Member};
use kernel::{
    alloc::KVVec,
    new_condvar, new_mutex,
    prelude::*,
    sync::{lock::mutex::MutexBackend, lock::Guard, Arc, CondVar, Mutex},
};

/// Blocks read at a time while scanning: the largest entry.
const SCAN_BLOCKS: u32 = (MAX_ENTRY_SIZE / BLOCK_SIZE) as u32;

/// An entry not yet covered by a checkpoint.
#[derive(Clone, Copy)]
struct Live {
    seq: u64,
    block: u32,
}

/// One member's copy of the journal region.
struct Mirror {
    /// The member's index.
    member: usize,
    dev: Arc<BlockDevice>,
    offset: u64,
}

/// A volume's journal: the ring and the wait for its entries.
#[pin_data]
pub(crate) struct Journal {
    #[pin]
    ring: Mutex<Ring>,
    /// Signalled when an entry's write ends (durable or failed).
    #[pin]
    written: CondVar,
}

/// The journal's state.
pub(crate) struct Ring {
    uuid: Uuid,
    /// Taken by the writer of an entry for its I/O, then put back.
    mirrors: KVec<Mirror>,
    /// Blocks in the ring.
    blocks: u32,
    /// Where the next entry goes.
    head: u32,
    /// Sequence number of the open entry (the next to be written).
    next_seq: u64,
    /// The newest entry durable on every member (0 if none).
    durable: u64,
    /// Records of the open entry, not yet written.
    open: KVec<Record>,
    /// An entry is being written: the open one waits for it.
    writing: bool,
    /// Entries newer than the last checkpoint, oldest first (the one being
    /// written included).
    live: KVec<Live>,
    /// A write or flush failed (this error): members may disagree about the
    /// newest entry, so nothing more is appended (the volume goes
    /// read-only).
    io_failed: Option<Error>,
    /// Entries holding records of user allocs and frees not yet applied in
    /// memory, once per record, from the moment they join the open entry
    /// until the caller's state change: a checkpoint must not cover them,
    /// or its alloc table would miss their change.
    unapplied: KVec<u64>,
    /// The entry's buffer and zeros for a skipped tail, kept so writing an
    /// entry allocates nothing.
    entry_buf: KVec<u8>,
    zeros: KVec<u8>,
    /// Entries written since register.
    entries_written: u64,
}

/// What [`Ring::join`] did.
enum Join {
    /// The records are in the open entry, which will have this number.
    Joined(u64),
    /// This entry (the open one, or the one being written) must be
    /// durable before they can fit.
    After(u64),
    /// The ring has no room even for them alone, and no entry is being
    /// written: checkpoint first.
    NoRoom,
}

/// One entry taken out of the ring to be written with no lock held.
struct Write {
    seq: u64,
    /// Its first block, and its length in bytes.
    at: u32,
    len: usize,
    records: u32,
    /// Blocks from the head to the end of the ring, zeroed first when the
    /// entry wraps to block 0.
    zero: Option<(u32, u32)>,
    mirrors: KVec<Mirror>,
    entry_buf: KVec<u8>,
    zeros: KVec<u8>,
}

/// What a register-time scan found.
pub(crate) struct Scan {
    /// Records of the entries after the checkpoint, in order.
    pub(crate) records: KVVec<Record>,
    /// Entries those records came from.
    pub(crate) entries: u64,
}

/// A zeroed buffer of `blocks` blocks.
fn blocks_buf(blocks: u32) -> Result<KVec<u8>> {
    let len = blocks as usize * BLOCK_SIZE;
    let mut buf = KVec::with_capacity(len, GFP_KERNEL)?;
    buf.resize(len, 0, GFP_KERNEL)?;
    Ok(buf)
}

/// An entry found while scanning one member.
struct Found {
    seq: u64,
    block: u32,
    blocks: u32,
    /// Its stored checksum: mirrors of one entry have the same.
    crc: u32,
    /// The member it was first found on.
    member: usize,
}

impl Journal {
    /// The journal of `ring`.
    pub(crate) fn new(ring: Ring) -> impl PinInit<Self> {
        pin_init!(Self {
            ring <- new_mutex!(ring),
            written <- new_condvar!(),
        })
    }

    /// The ring, locked (briefly: no I/O is done under this lock but the
    /// scan at register, when nothing else runs).
    pub(crate) fn lock(&self) -> Guard<'_, Ring, MutexBackend> {
        self.ring.lock()
    }

    /// Adds `records` to the open entry and returns its sequence number:
    /// they are durable once [`Journal::commit`] of it returns. With
    /// `unapplied`, the caller applies them in memory after the commit and
    /// then calls [`Ring::applied`] once per record; until then no
    /// checkpoint covers them. `Ok(None)`: the ring is full, checkpoint and
    /// try again.
    pub(crate) fn add(&self, records: &[Record], unapplied: bool) -> Result<Option<u64>> {
        loop {
            let open = match self.ring.lock().join(records, unapplied)? {
                Join::Joined(seq) => return Ok(Some(seq)),
                Join::NoRoom => return Ok(None),
                Join::After(seq) => seq,
            };
            self.commit(open)?;
        }
    }

    /// Returns once entry `seq` is durable on every member, writing it if
    /// nobody else is. Fails with the write's error if it (or an entry
    /// before it) failed, and with ENODEV after [`Journal::close`].
    ///
    /// The wait has no way out: it is for a write in flight, which ends
    /// when the block layer completes or times out its requests.
    pub(crate) fn commit(&self, seq: u64) -> Result {
        let mut ring = self.ring.lock();
        loop {
            if ring.durable >= seq {
                return Ok(());
            }
            if let Some(e) = ring.io_failed {
                return Err(e);
            }
            if !ring.writing {
                // Not durable, nothing in flight: `seq` is the open entry.
                let write = ring.take()?;
                drop(ring);
                let res = write.write();
                ring = self.ring.lock();
                ring.put_back(write, res);
                self.written.notify_all();
                continue;
            }
            self.written.wait(&mut ring);
        }
    }

    /// Writes the open entry, then lets go of the member devices
    /// (teardown) once no entry is in flight: later adds and commits fail
    /// with ENODEV.
    pub(crate) fn close(&self) {
        let open = {
            let ring = self.ring.lock();
            (!ring.open.is_empty()).then_some(ring.next_seq)
        };
        if let Some(seq) = open {
            // Its callers are told how it went; a failure was reported.
            let _ = self.commit(seq);
        }
        let mut ring = self.ring.lock();
        while ring.writing {
            self.written.wait(&mut ring);
        }
        ring.mirrors.clear();
    }
}

impl Ring {
    /// The journal of `members` (validated to agree on `journal_blocks`),
    /// empty until [`Ring::scan`]; mirrored on those present.
    pub(crate) fn new(uuid: Uuid, members: &[Member]) -> Result<Self> {
        let mut mirrors = KVec::with_capacity(members.len(), GFP_KERNEL)?;
        for (member, m) in members.iter().enumerate() {
            let Some(dev) = &m.dev else { continue };
            mirrors.push(
                Mirror {
                    member,
                    dev: dev.clone(),
                    offset: m.layout.journal_offset,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Self {
            uuid,
            mirrors,
            blocks: members.first().map_or(0, |m| m.layout.journal_blocks),
            head: 0,
            next_seq: 1,
            durable: 0,
            open: KVec::with_capacity(MAX_RECORDS, GFP_KERNEL)?,
            writing: false,
            live: KVec::new(),
            unapplied: KVec::new(),
            io_failed: None,
            entry_buf: blocks_buf(SCAN_BLOCKS)?,
            zeros: blocks_buf(SCAN_BLOCKS)?,
            entries_written: 0,
        })
    }

    /// Sequence number of the newest durable entry (0 if none was ever
    /// written).
    pub(crate) fn last_seq(&self) -> u64 {
        self.durable
    }

    /// The newest entry a checkpoint taken now may cover: the newest
    /// durable one, or the one before the oldest whose records are not
    /// applied yet. (The tree it writes may hold keys of later entries,
    /// not durable yet: if such an entry reaches the disk, replay inserts
    /// its keys again; if not, the checkpoint keeps keys whose insert was
    /// never acknowledged, as a crash may keep any write in flight.)
    pub(crate) fn checkpoint_seq(&self) -> u64 {
        let before = self.unapplied.iter().min().map_or(u64::MAX, |s| s - 1);
        self.last_seq().min(before)
    }

    /// The error of the entry write or flush that failed, if one did (see
    /// [`Journal::commit`]).
    pub(crate) fn io_error(&self) -> Option<Error> {
        self.io_failed
    }

    /// Marks one record of entry `seq` as applied in memory (see
    /// [`Journal::add`]).
    pub(crate) fn applied(&mut self, seq: u64) {
        if let Some(i) = self.unapplied.iter().position(|s| *s == seq) {
            let _ = self.unapplied.remove(i);
        }
    }

    /// Entries not yet covered by a checkpoint (the one being written
    /// included).
    pub(crate) fn pending(&self) -> usize {
        self.live.len()
    }

    /// Entries written since register.
    pub(crate) fn entries_written(&self) -> u64 {
        self.entries_written
    }

    /// Reads every member's copy and returns the records to replay: those
    /// of the consecutive entries after `checkpoint_seq`. Sets where the
    /// next entry goes. A block that does not decode is skipped (never
    /// written, torn, or from an earlier volume).
    pub(crate) fn scan(&mut self, checkpoint_seq: u64, disks: &[Disk]) -> Result<Scan> {
        let mut found: KVec<Found> = KVec::new();
        let mut records: KVVec<(u64, usize, Record)> = KVVec::new();
        for m in self.mirrors.iter() {
            let path = disks.get(m.member).map_or(c"?", |d| &*d.path);
            self.scan_one(
                (m.member, m),
                path,
                checkpoint_seq,
                &mut found,
                &mut records,
            )?;
            // Sorted, so the next member looks its entries up in log time.
            found.sort_unstable_by_key(|f| f.seq);
        }
        // Records keep their order within an entry (the index breaks ties).
        records.sort_unstable_by_key(|r| (r.0, r.1));

        // The newest entry sets where appends continue, whatever replays.
        if let Some(newest) = found.last() {
            self.next_seq = newest.seq + 1;
            let end = newest.block + newest.blocks;
            self.head = if end >= self.blocks { 0 } else { end };
        }
        self.next_seq = self.next_seq.max(checkpoint_seq + 1);
        self.durable = self.next_seq - 1;

        // The entries after the checkpoint, with no hole (see
        // `bkcore::replay_window`): an entry after a missing one means
        // acknowledged entries were lost, which is never silent.
        let window =
            replay_window(found.iter().map(|f| f.seq), checkpoint_seq).map_err(|lost| {
                pr_err!(
                    "volume {}: {}; register refused (bkalloc fsck shows the journal)\n",
                    Core(Hyphenated(&self.uuid)),
                    Core(lost)
                );
                EINVAL
            })?;
        self.live.clear();
        for f in found.iter().filter(|f| window.contains(f.seq)) {
            self.live.push(
                Live {
                    seq: f.seq,
                    block: f.block,
                },
                GFP_KERNEL,
            )?;
        }
        let mut out = KVVec::with_capacity(records.len(), GFP_KERNEL)?;
        for &(seq, _, rec) in records.iter() {
            if window.contains(seq) {
                out.push(rec, GFP_KERNEL)?;
            }
        }
        Ok(Scan {
            records: out,
            entries: window.len(),
        })
    }

    /// Reads `SCAN_BLOCKS` blocks (fewer at the end) from block `b` of
    /// `m`'s copy into `window`; returns how many.
    fn read_window(&self, m: &Mirror, path: &CStr, b: u32, window: &mut KVec<u8>) -> Result<u32> {
        let n = SCAN_BLOCKS.min(self.blocks - b);
        window.resize(n as usize * BLOCK_SIZE, 0, GFP_KERNEL)?;
        m.dev
            .read(m.offset + u64::from(b) * BLOCK_SIZE as u64, window)
            .inspect_err(|e| {
                pr_err!(
                    "{}: reading journal block {} failed (error {})\n",
                    path,
                    b,
                    e.to_errno()
                );
            })?;
        Ok(n)
    }

    /// Scans one member's copy; pushes the entries it holds and, for those
    /// newer than the checkpoint and not already seen on another member,
    /// their records. `found` comes sorted by seq.
    fn scan_one(
        &self,
        (member, m): (usize, &Mirror),
        path: &CStr,
        checkpoint_seq: u64,
        found: &mut KVec<Found>,
        records: &mut KVVec<(u64, usize, Record)>,
    ) -> Result {
        let mut window = KVec::with_capacity(SCAN_BLOCKS as usize * BLOCK_SIZE, GFP_KERNEL)?;
        let seen = found.len();
        let (mut start, mut have) = (0u32, 0u32);
        let mut b = 0u32;
        while b < self.blocks {
            if b < start || b >= start + have {
                have = self.read_window(m, path, b, &mut window)?;
                start = b;
            }
            let at = (b - start) as usize * BLOCK_SIZE;
            let Ok(len) = entry_len(&window[at..]) else {
                b += 1;
                continue;
            };
            let blocks = (len / BLOCK_SIZE) as u32;
            if b + blocks > self.blocks {
                b += 1;
                continue;
            }
            if b + blocks > start + have {
                // Runs past the window: read again from its first block
                // (an entry is at most a window long).
                have = self.read_window(m, path, b, &mut window)?;
                start = b;
                continue;
            }
            match decode_entry(&window[at..at + len], &self.uuid) {
                Ok(e) => {
                    let seq = e.seq();
                    let crc = u32::from_le_bytes([
                        window[at + 4],
                        window[at + 5],
                        window[at + 6],
                        window[at + 7],
                    ]);
                    let twin = found.get(..seen).and_then(|s| {
                        s.binary_search_by_key(&seq, |f| f.seq)
                            .ok()
                            .and_then(|i| s.get(i))
                    });
                    if let Some(twin) = twin.filter(|t| t.crc != crc && seq > checkpoint_seq) {
                        // Both valid, not the same: which was acknowledged
                        // cannot be told, so nothing is replayed. (Entries
                        // the checkpoint covers play no part.)
                        pr_err!(
                            "volume {}: journal entry {} differs between member {} and member {} ({}), both valid; register refused (bkalloc fsck shows the journal)\n",
                            Core(Hyphenated(&self.uuid)),
                            seq,
                            twin.member,
                            member,
                            path
                        );
                        return Err(EINVAL);
                    }
                    if twin.is_none() {
                        if seq > checkpoint_seq {
                            for r in e.records() {
                                records.push((seq, records.len(), r), GFP_KERNEL)?;
                            }
                        }
                        found.push(
                            Found {
                                seq,
                                block: b,
                                blocks,
                                crc,
                                member,
                            },
                            GFP_KERNEL,
                        )?;
                    }
                    b += blocks;
                }
                Err(FormatError {
                    kind: ErrorKind::WrongVolume,
                    ..
                }) => b += 1,
                Err(e) => {
                    pr_warn!("{}: journal block {}: skipped: {}\n", path, b, Core(e));
                    b += 1;
                }
            }
        }
        Ok(())
    }

    /// Where an entry of `blocks` blocks can go, if the ring has room.
    fn room(&self, blocks: u32) -> Option<u32> {
        journal_ring::place(
            self.blocks,
            self.head,
            self.live.first().map(|l| l.block),
            blocks,
        )
    }

    /// Adds `records` to the open entry if it can grow by them and the
    /// ring has room for it then.
    fn join(&mut self, records: &[Record], unapplied: bool) -> Result<Join> {
        if self.io_failed.is_some() {
            return Err(EROFS);
        }
        if self.mirrors.is_empty() && !self.writing {
            return Err(ENODEV);
        }
        match journal_ring::join(self.open.len(), records.len(), self.writing, |b| {
            self.room(b).is_some()
        }) {
            journal_ring::Join::Joined => {}
            journal_ring::Join::AfterOpen => return Ok(Join::After(self.next_seq)),
            journal_ring::Join::AfterWriting => return Ok(Join::After(self.next_seq - 1)),
            journal_ring::Join::NoRoom => return Ok(Join::NoRoom),
            journal_ring::Join::TooMany => return Err(E2BIG),
        }
        // Room for the bookkeeping first: once the entry is durable, it
        // must not fail (the entry in flight and this one).
        self.live.reserve(2, GFP_KERNEL)?;
        if unapplied {
            self.unapplied.reserve(records.len(), GFP_KERNEL)?;
        }
        for r in records {
            self.open.push(*r, GFP_KERNEL)?;
            if unapplied {
                self.unapplied.push(self.next_seq, GFP_KERNEL)?;
            }
        }
        Ok(Join::Joined(self.next_seq))
    }

    /// Takes the open entry to be written: encodes it, places it and moves
    /// the head past it. Nothing is in flight.
    fn take(&mut self) -> Result<Write> {
        if self.mirrors.is_empty() {
            return Err(ENODEV);
        }
        let seq = self.next_seq;
        let mut w = EntryWriter::new(&mut self.entry_buf).map_err(|_| EINVAL)?;
        for r in self.open.iter() {
            w.push(r).map_err(|_| E2BIG)?;
        }
        let len = w.finish(&self.uuid, seq).map_err(|_| EINVAL)?;
        let blocks = (len / BLOCK_SIZE) as u32;
        // `join` checked the room for this size; only checkpoints, which
        // free blocks, ran since.
        let at = self.room(blocks).ok_or(EINVAL)?;
        let zero = (at < self.head).then(|| (self.head, self.blocks - self.head));
        // Reserved by `join`.
        self.live.push(Live { seq, block: at }, GFP_KERNEL)?;
        let records = self.open.len() as u32;
        self.open.clear();
        self.next_seq += 1;
        let end = at + blocks;
        self.head = if end >= self.blocks { 0 } else { end };
        self.writing = true;
        Ok(Write {
            seq,
            at,
            len,
            records,
            zero,
            mirrors: core::mem::take(&mut self.mirrors),
            entry_buf: core::mem::take(&mut self.entry_buf),
            zeros: core::mem::take(&mut self.zeros),
        })
    }

    /// Ends the write [`Ring::take`] began: its entry is durable, or
    /// nothing more is written.
    fn put_back(&mut self, w: Write, res: Result) {
        self.writing = false;
        self.mirrors = w.mirrors;
        self.entry_buf = w.entry_buf;
        self.zeros = w.zeros;
        match res {
            Ok(()) => {
                self.durable = w.seq;
                self.entries_written += 1;
                trace::journal_append(&self.uuid, w.seq, w.records, (w.len / BLOCK_SIZE) as u32);
            }
            Err(e) => self.io_failed = Some(e),
        }
    }

    /// Forgets the entries a checkpoint at `seq` covers: their blocks may
    /// be overwritten.
    pub(crate) fn trim(&mut self, seq: u64) {
        self.live.retain(|l| l.seq > seq);
    }
}

impl Write {
    /// Writes the entry at its block of every member, each flushed; first,
    /// when wrapping, zeros over the skipped tail, durably, so no stale
    /// entry there outlives the ones about to be overwritten. The members
    /// are written at once, then flushed at once.
    fn write(&self) -> Result {
        let bytes = |b: u32| u64::from(b) * BLOCK_SIZE as u64;
        let mut devs = KVec::with_capacity(self.mirrors.len(), GFP_KERNEL)?;
        let mut parts = KVec::with_capacity(self.mirrors.len(), GFP_KERNEL)?;
        for m in self.mirrors.iter() {
            devs.push(&*m.dev, GFP_KERNEL)?;
        }
        if let Some((from, n)) = self.zero {
            for m in self.mirrors.iter() {
                parts.push(
                    WritePart {
                        dev: &m.dev,
                        offset: m.offset + bytes(from),
                        buf: &self.zeros,
                        len: bytes(n) as usize,
                    },
                    GFP_KERNEL,
                )?;
            }
            write_all(&parts)?;
            flush_all(&devs)?;
            parts.clear();
        }
        for m in self.mirrors.iter() {
            parts.push(
                WritePart {
                    dev: &m.dev,
                    offset: m.offset + bytes(self.at),
                    buf: &self.entry_buf,
                    len: self.len,
                },
                GFP_KERNEL,
            )?;
        }
        write_all(&parts)?;
        flush_all(&devs)
    }
}
