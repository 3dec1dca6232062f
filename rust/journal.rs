// SPDX-License-Identifier: GPL-2.0

//! The journal: a ring of blocks mirrored on every member (the format is in
//! `core/format/mod.rs`). An append writes one entry at the same block of
//! every member and flushes each before it returns, so an acknowledged
//! record survives a crash. Entries are never written out of order, so the
//! valid entries in the ring always have consecutive sequence numbers.
//!
//! What is journaled: key inserts, and the bucket state changes users make
//! through `/dev/bkalloc` (alloc, free). Btree bucket changes are not: which
//! buckets are btree is derived from the tree at register. Nor is a
//! finished discard: losing it costs a repeated discard, never data.
//!
//! A checkpoint covers every entry up to its `journal_seq`; those blocks
//! can then be overwritten ([`Journal::trim`]). An append that finds no
//! room returns `Ok(None)`: the caller checkpoints and tries again.

use crate::bkcore::{
    format::{
        decode_entry,
        journal::{entry_len, MAX_ENTRY_SIZE},
        EntryWriter, ErrorKind, FormatError, Record, BLOCK_SIZE,
    },
    replay_window::replay_window,
    uuid::{Hyphenated, Uuid},
};
use crate::fmt::Core;
use crate::glue::bdev::BlockDevice;
use crate::glue::trace;
use crate::member::{Disk, Member};
use kernel::{alloc::KVVec, prelude::*, sync::Arc};

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
    dev: Arc<BlockDevice>,
    offset: u64,
}

/// A volume's journal.
pub(crate) struct Journal {
    uuid: Uuid,
    mirrors: KVec<Mirror>,
    /// Blocks in the ring.
    blocks: u32,
    /// Where the next entry goes.
    head: u32,
    /// Sequence number of the next entry.
    next_seq: u64,
    /// Entries newer than the last checkpoint, oldest first.
    live: KVec<Live>,
    /// A write or flush failed: members may disagree about the newest
    /// entry, so nothing more is appended (the volume goes read-only).
    io_failed: bool,
    /// Entries whose records are durable but not yet applied in memory
    /// (a free between its append and its state change): a checkpoint
    /// must not cover them, or its alloc table would miss their change.
    unapplied: KVec<u64>,
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
    /// The journal of `members` (validated to agree on `journal_blocks`),
    /// empty until [`Journal::scan`].
    pub(crate) fn new(uuid: Uuid, members: &[Member]) -> Result<Self> {
        let mut mirrors = KVec::with_capacity(members.len(), GFP_KERNEL)?;
        for m in members {
            mirrors.push(
                Mirror {
                    dev: m.dev.clone(),
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
            live: KVec::new(),
            unapplied: KVec::new(),
            io_failed: false,
        })
    }

    /// Sequence number of the newest entry (0 if none was ever written).
    pub(crate) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The newest entry a checkpoint taken now may cover: the newest one,
    /// or the one before the oldest whose records are not applied yet.
    pub(crate) fn checkpoint_seq(&self) -> u64 {
        let before = self.unapplied.iter().min().map_or(u64::MAX, |s| s - 1);
        self.last_seq().min(before)
    }

    /// Whether a write or flush of an entry failed (see [`Journal::append`]).
    pub(crate) fn io_failed(&self) -> bool {
        self.io_failed
    }

    /// Marks entry `seq` as applied in memory (see [`Journal::append`]).
    pub(crate) fn applied(&mut self, seq: u64) {
        self.unapplied.retain(|s| *s != seq);
    }

    /// Entries not yet covered by a checkpoint.
    pub(crate) fn pending(&self) -> usize {
        self.live.len()
    }

    /// Reads every member's copy and returns the records to replay: those
    /// of the consecutive entries after `checkpoint_seq`. Sets where the
    /// next entry goes. A block that does not decode is skipped (never
    /// written, torn, or from an earlier volume).
    pub(crate) fn scan(&mut self, checkpoint_seq: u64, disks: &[Disk]) -> Result<Scan> {
        let mut found: KVec<Found> = KVec::new();
        let mut records: KVVec<(u64, usize, Record)> = KVVec::new();
        for (i, m) in self.mirrors.iter().enumerate() {
            let path = disks.get(i).map_or(c"?", |d| &*d.path);
            self.scan_one((i, m), path, checkpoint_seq, &mut found, &mut records)?;
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
        if blocks > self.blocks {
            return None;
        }
        let h = self.head;
        let start = if h + blocks > self.blocks { 0 } else { h };
        let Some(oldest) = self.live.first() else {
            return Some(start);
        };
        let tail = oldest.block;
        if tail < h {
            // Live entries fill [tail, h): free are [h, end) and [0, tail).
            if start == h || blocks <= tail {
                return Some(start);
            }
            None
        } else if start == h && h + blocks <= tail {
            // Live entries fill [tail, end) and [0, h): free is [h, tail).
            Some(start)
        } else {
            None
        }
    }

    /// Appends one entry holding `records`, durably on every member.
    /// Returns its sequence number, or `None` if the ring is full. With
    /// `unapplied`, the caller applies the records in memory afterwards and
    /// then calls [`Journal::applied`]; until then no checkpoint covers it.
    pub(crate) fn append(&mut self, records: &[Record], unapplied: bool) -> Result<Option<u64>> {
        if self.mirrors.is_empty() {
            return Err(ENODEV);
        }
        if self.io_failed {
            return Err(EROFS);
        }
        let mut buf = blocks_buf(SCAN_BLOCKS)?;
        let mut w = EntryWriter::new(&mut buf).map_err(|_| EINVAL)?;
        for r in records {
            w.push(r).map_err(|_| E2BIG)?;
        }
        let seq = self.next_seq;
        let len = w.finish(&self.uuid, seq).map_err(|_| EINVAL)?;
        let blocks = (len / BLOCK_SIZE) as u32;
        let Some(at) = self.room(blocks) else {
            return Ok(None);
        };
        buf.truncate(len);
        // Room for the bookkeeping first: once the entry is durable, this
        // must not fail.
        self.live.reserve(1, GFP_KERNEL)?;
        self.unapplied.reserve(1, GFP_KERNEL)?;
        let zero = if at < self.head {
            Some(blocks_buf(self.blocks - self.head)?)
        } else {
            None
        };
        if let Err(e) = self.write_entry(at, &buf, zero.as_ref()) {
            self.io_failed = true;
            return Err(e);
        }
        if unapplied {
            self.unapplied.push(seq, GFP_KERNEL)?;
        }
        self.live.push(Live { seq, block: at }, GFP_KERNEL)?;
        self.next_seq += 1;
        let end = at + blocks;
        self.head = if end >= self.blocks { 0 } else { end };
        trace::journal_append(&self.uuid, seq, records.len() as u32, blocks);
        Ok(Some(seq))
    }

    /// Writes an entry at block `at` of every member, each flushed; first,
    /// when wrapping, `zero` over the skipped tail, durably, so no stale
    /// entry there outlives the ones about to be overwritten.
    fn write_entry(&self, at: u32, buf: &KVec<u8>, zero: Option<&KVec<u8>>) -> Result {
        if let Some(zero) = zero {
            for m in self.mirrors.iter() {
                m.dev
                    .write(m.offset + u64::from(self.head) * BLOCK_SIZE as u64, zero)?;
            }
            for m in self.mirrors.iter() {
                m.dev.flush()?;
            }
        }
        for m in self.mirrors.iter() {
            m.dev
                .write(m.offset + u64::from(at) * BLOCK_SIZE as u64, buf)?;
        }
        for m in self.mirrors.iter() {
            m.dev.flush()?;
        }
        Ok(())
    }

    /// Lets go of the member devices (teardown): later appends fail.
    pub(crate) fn close(&mut self) {
        self.mirrors.clear();
    }

    /// Forgets the entries a checkpoint at `seq` covers: their blocks may
    /// be overwritten.
    pub(crate) fn trim(&mut self, seq: u64) {
        self.live.retain(|l| l.seq > seq);
    }
}
