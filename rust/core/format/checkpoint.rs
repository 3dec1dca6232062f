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
    /// Reserved to the end of the block.
    pub const RESERVED1: usize = 128;
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
}

impl Checkpoint {
    /// The slot (0 or 1) this generation is written to.
    pub const fn slot(&self) -> usize {
        (self.generation & 1) as usize
    }

    /// Encodes into `buf[..4096]`.
    pub fn encode(&self, buf: &mut [u8], volume: &Uuid) -> Result<(), FormatError> {
        need_mut(buf, S, CHECKPOINT_SIZE)?;
        self.check(&Fields::new(&[], S))?;
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
        f.zero("reserved", off::RESERVED1, CHECKPOINT_SIZE - off::RESERVED1)?;
        let mut counts = [0u64; NR_STATES];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = f.u64("counts", off::COUNTS + 8 * i)?;
        }
        let cp = Checkpoint {
            generation: f.counter("generation", off::GENERATION)?,
            journal_seq: f.counter("journal_seq", off::JOURNAL_SEQ)?,
            member_index: f.u32("member_index", off::MEMBER_INDEX)?,
            root_level: f.u8("root_level", off::ROOT_LEVEL)?,
            root: BtreePtr::decode(&f, off::ROOT)?,
            counts: BucketCounts(counts),
        };
        cp.check(&f)?;
        Ok(cp)
    }
}

/// The newer of two checkpoints (by generation; either may be missing).
pub fn newest(a: Option<Checkpoint>, b: Option<Checkpoint>) -> Option<Checkpoint> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.generation > x.generation { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}
