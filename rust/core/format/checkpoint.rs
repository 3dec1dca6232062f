// SPDX-License-Identifier: GPL-2.0

//! The checkpoint: the btree root and the journal sequence the on-disk state covers.
//!
//! Each member has two slots; generation `g` goes to slot `g % 2`, so a torn write leaves
//! the previous generation intact in the other slot. Readers take the newest valid one
//! ([`newest`]) over both slots of every member. The btree root, generation and journal
//! sequence are the same on every member; `counts` are the member's own alloc table's.

use super::super::buckets::{BucketCounts, BucketState, NR_STATES};
use super::super::uuid::Uuid;
use super::btree_node::BtreePtr;
use super::codec::{need_mut, put, put_u32, put_u64, put_u8, seal, zero, Fields};
use super::error::{ErrorKind, FormatError};
use super::{BLOCK_SIZE, MAX_LEVEL, MAX_MEMBERS};

/// "BKCP".
pub const CHECKPOINT_MAGIC: [u8; 4] = *b"BKCP";
/// A checkpoint is one block.
pub const CHECKPOINT_SIZE: usize = BLOCK_SIZE;

const S: &str = "checkpoint";

/// Field offsets within a checkpoint block.
pub mod off {
    /// `magic`, 4 bytes.
    pub const MAGIC: usize = 0;
    /// `crc32c` of bytes 8..4096.
    pub const CRC: usize = 4;
    /// `volume_uuid`, 16 bytes.
    pub const VOLUME_UUID: usize = 8;
    /// `generation`, u64 (≥ 1).
    pub const GENERATION: usize = 24;
    /// `journal_seq`, u64: every journal entry with `seq <= journal_seq` is reflected.
    pub const JOURNAL_SEQ: usize = 32;
    /// `member_index`, u32: the member this copy is on.
    pub const MEMBER_INDEX: usize = 40;
    /// `root_level`, u8.
    pub const ROOT_LEVEL: usize = 44;
    /// Reserved, 3 bytes.
    pub const RESERVED0: usize = 45;
    /// `root`, a btree pointer (40 bytes).
    pub const ROOT: usize = 48;
    /// `counts`, 5 × u64: this member's buckets per state, in state code order.
    pub const COUNTS: usize = 88;
    /// `missing`, [`super::MAX_MEMBERS`] × u64: per member index, 0 if the member was present when
    /// this checkpoint was written, else the generation whose alloc table copy it holds.
    pub const MISSING: usize = 128;
    /// `nr_pending`, u32: pending records that follow.
    pub const NR_PENDING: usize = 384;
    /// Reserved, 4 bytes.
    pub const RESERVED1: usize = 388;
    /// `pending`, `nr_pending` × 16 bytes: bucket state changes of missing members.
    pub const PENDING: usize = 392;
    /// Pending record: `bucket`, u64.
    pub const P_BUCKET: usize = 0;
    /// Pending record: `member`, u32.
    pub const P_MEMBER: usize = 8;
    /// Pending record: `state`, u8.
    pub const P_STATE: usize = 12;
    /// Pending record: reserved, 3 bytes.
    pub const P_RESERVED: usize = 13;
}

/// Bytes of one pending record.
pub const PENDING_SIZE: usize = 16;
/// Most pending records one checkpoint holds: the bucket state changes journaled for
/// members that are missing, kept until they return.
pub const MAX_PENDING: usize = (CHECKPOINT_SIZE - off::PENDING) / PENDING_SIZE;

/// A bucket state change of a missing member, kept by the present members' checkpoints
/// (the journal that recorded it is trimmed) until the member returns. Records are sorted
/// by member, then bucket, one per bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pending {
    /// Member index.
    pub member: u32,
    /// The bucket.
    pub bucket: u64,
    /// Its state (absolute, as in a journal record).
    pub state: BucketState,
}

/// A decoded checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Monotonic; the newest valid checkpoint wins.
    pub generation: u64,
    /// Journal entries up to this sequence number are reflected in the btree and the alloc
    /// tables; replay starts after it.
    pub journal_seq: u64,
    /// Member index of the device holding this copy.
    pub member_index: u32,
    /// Level of the root node (0 = the root is a leaf).
    pub root_level: u8,
    /// Where the root node lives.
    pub root: BtreePtr,
    /// This member's buckets per state when the checkpoint was written (must match its
    /// alloc table).
    pub counts: BucketCounts,
    /// Per member index: 0 if present, else the generation of the alloc table copy the
    /// member holds (the newest checkpoint written while it was there). Always below
    /// `generation`, and 0 at `member_index`.
    pub missing: [u64; MAX_MEMBERS],
}

impl Checkpoint {
    /// The slot (0 or 1) this generation is written to.
    pub const fn slot(&self) -> usize {
        (self.generation & 1) as usize
    }

    /// Whether some member is missing.
    pub fn degraded(&self) -> bool {
        self.missing.iter().any(|&g| g != 0)
    }

    /// Encodes into `buf[..4096]`, with no pending records.
    pub fn encode(&self, buf: &mut [u8], volume: &Uuid) -> Result<(), FormatError> {
        self.encode_with(buf, volume, &[])
    }

    /// Encodes into `buf[..4096]` with `pending` (sorted by member, then bucket, each of a
    /// missing member, at most [`MAX_PENDING`]).
    pub fn encode_with(
        &self,
        buf: &mut [u8],
        volume: &Uuid,
        pending: &[Pending],
    ) -> Result<(), FormatError> {
        need_mut(buf, S, CHECKPOINT_SIZE)?;
        let f = Fields::new(&[], S);
        self.check(&f)?;
        if pending.len() > MAX_PENDING {
            return Err(f.err("nr_pending", off::NR_PENDING, ErrorKind::Full));
        }
        for (i, p) in pending.iter().enumerate() {
            let prev = i.checked_sub(1).and_then(|j| pending.get(j));
            self.check_pending(&f, off::PENDING + i * PENDING_SIZE, p, prev)?;
        }
        zero(buf, 0, CHECKPOINT_SIZE);
        put(buf, off::MAGIC, &CHECKPOINT_MAGIC);
        put(buf, off::VOLUME_UUID, volume);
        put_u64(buf, off::GENERATION, self.generation);
        put_u64(buf, off::JOURNAL_SEQ, self.journal_seq);
        put_u32(buf, off::MEMBER_INDEX, self.member_index);
        put_u8(buf, off::ROOT_LEVEL, self.root_level);
        self.root.encode(buf, off::ROOT);
        for s in BucketState::ALL {
            put_u64(buf, off::COUNTS + 8 * s.index(), self.counts.get(s));
        }
        for (i, &g) in self.missing.iter().enumerate() {
            put_u64(buf, off::MISSING + 8 * i, g);
        }
        put_u32(buf, off::NR_PENDING, pending.len() as u32);
        for (i, p) in pending.iter().enumerate() {
            let o = off::PENDING + i * PENDING_SIZE;
            put_u64(buf, o + off::P_BUCKET, p.bucket);
            put_u32(buf, o + off::P_MEMBER, p.member);
            put_u8(buf, o + off::P_STATE, p.state.to_u8());
        }
        seal(buf, off::CRC, off::VOLUME_UUID, CHECKPOINT_SIZE);
        Ok(())
    }

    fn check(&self, f: &Fields<'_>) -> Result<(), FormatError> {
        if self.generation == 0 {
            return Err(f.err("generation", off::GENERATION, ErrorKind::Zero));
        }
        f.range(
            "member_index",
            off::MEMBER_INDEX,
            u64::from(self.member_index),
            0,
            MAX_MEMBERS as u64 - 1,
        )?;
        f.range(
            "root_level",
            off::ROOT_LEVEL,
            u64::from(self.root_level),
            0,
            u64::from(MAX_LEVEL),
        )?;
        if self.root.is_empty() {
            return Err(f.err("ptr.nr", off::ROOT, ErrorKind::Zero));
        }
        for (i, &g) in self.missing.iter().enumerate() {
            let o = off::MISSING + 8 * i;
            if i == self.member_index as usize && g != 0 {
                // The member holding this copy was there to write it.
                return Err(f.err(
                    "missing",
                    o,
                    ErrorKind::Mismatch {
                        expected: 0,
                        found: g,
                    },
                ));
            }
            f.range("missing", o, g, 0, self.generation - 1)?;
        }
        Ok(())
    }

    /// A pending record at `o`: of a missing member, not of the metadata region's state,
    /// after `prev`.
    fn check_pending(
        &self,
        f: &Fields<'_>,
        o: usize,
        p: &Pending,
        prev: Option<&Pending>,
    ) -> Result<(), FormatError> {
        let m = p.member as usize;
        f.range(
            "pending.member",
            o + off::P_MEMBER,
            u64::from(p.member),
            0,
            MAX_MEMBERS as u64 - 1,
        )?;
        if self.missing.get(m).copied().unwrap_or(0) == 0 {
            return Err(f.err(
                "pending.member",
                o + off::P_MEMBER,
                ErrorKind::NotMissing(p.member),
            ));
        }
        if p.state == BucketState::Sb {
            return Err(f.err(
                "pending.state",
                o + off::P_STATE,
                ErrorKind::BadState(p.state.to_u8()),
            ));
        }
        if let Some(prev) = prev {
            if (prev.member, prev.bucket) >= (p.member, p.bucket) {
                return Err(f.err(
                    "pending.bucket",
                    o + off::P_BUCKET,
                    ErrorKind::Unordered {
                        prev: prev.bucket,
                        key: p.bucket,
                    },
                ));
            }
        }
        Ok(())
    }

    /// Decodes and validates `buf[..4096]`.
    pub fn decode(buf: &[u8], volume: &Uuid) -> Result<Checkpoint, FormatError> {
        let f = Fields::new(buf, S);
        f.need(CHECKPOINT_SIZE)?;
        f.magic(&CHECKPOINT_MAGIC)?;
        f.crc(off::CRC, off::VOLUME_UUID, CHECKPOINT_SIZE)?;
        if &f.bytes::<16>("volume_uuid", off::VOLUME_UUID)? != volume {
            return Err(f.err("volume_uuid", off::VOLUME_UUID, ErrorKind::WrongVolume));
        }
        f.zero("reserved", off::RESERVED0, 3)?;
        f.zero("reserved", off::RESERVED1, 4)?;
        let mut counts = [0u64; NR_STATES];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = f.u64("counts", off::COUNTS + 8 * i)?;
        }
        let mut missing = [0u64; MAX_MEMBERS];
        for (i, g) in missing.iter_mut().enumerate() {
            *g = f.u64("missing", off::MISSING + 8 * i)?;
        }
        let cp = Checkpoint {
            generation: f.counter("generation", off::GENERATION)?,
            journal_seq: f.counter("journal_seq", off::JOURNAL_SEQ)?,
            member_index: f.u32("member_index", off::MEMBER_INDEX)?,
            root_level: f.u8("root_level", off::ROOT_LEVEL)?,
            root: BtreePtr::decode(&f, off::ROOT)?,
            counts: BucketCounts(counts),
            missing,
        };
        cp.check(&f)?;
        let n = f.u32("nr_pending", off::NR_PENDING)? as usize;
        f.range(
            "nr_pending",
            off::NR_PENDING,
            n as u64,
            0,
            MAX_PENDING as u64,
        )?;
        let mut prev = None;
        for i in 0..n {
            let o = off::PENDING + i * PENDING_SIZE;
            let p = pending_at(&f, o)?;
            cp.check_pending(&f, o, &p, prev.as_ref())?;
            prev = Some(p);
        }
        let end = off::PENDING + n * PENDING_SIZE;
        f.zero("reserved", end, CHECKPOINT_SIZE - end)?;
        Ok(cp)
    }
}

/// The pending record at `o`.
fn pending_at(f: &Fields<'_>, o: usize) -> Result<Pending, FormatError> {
    let s = f.u8("pending.state", o + off::P_STATE)?;
    let state = BucketState::from_u8(s).ok_or(f.err(
        "pending.state",
        o + off::P_STATE,
        ErrorKind::BadState(s),
    ))?;
    f.zero(
        "pending.reserved",
        o + off::P_RESERVED,
        PENDING_SIZE - off::P_RESERVED,
    )?;
    Ok(Pending {
        member: f.u32("pending.member", o + off::P_MEMBER)?,
        bucket: f.u64("pending.bucket", o + off::P_BUCKET)?,
        state,
    })
}

/// The pending records of a checkpoint block that [`Checkpoint::decode`] accepted, in
/// order.
pub fn pending(buf: &[u8]) -> impl Iterator<Item = Pending> + '_ {
    let f = Fields::new(buf, S);
    let n = f
        .u32("nr_pending", off::NR_PENDING)
        .map_or(0, |n| n as usize)
        .min(MAX_PENDING);
    (0..n)
        .map_while(move |i| pending_at(&Fields::new(buf, S), off::PENDING + i * PENDING_SIZE).ok())
}

/// The newer of two checkpoints (by generation; either may be missing).
pub fn newest(a: Option<Checkpoint>, b: Option<Checkpoint>) -> Option<Checkpoint> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.generation > x.generation { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}
