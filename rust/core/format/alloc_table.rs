// SPDX-License-Identifier: GPL-2.0

//! The alloc table: one state byte per bucket, in 4 KiB blocks that each carry their own
//! header and crc32c, so a bad block is pinpointed. Two copies: the checkpoint of
//! generation `g` goes with copy `g % 2`, and each block names that generation.

use super::super::buckets::{BucketCounts, BucketState};
use super::super::uuid::Uuid;
use super::codec::{need_mut, put, put_u32, put_u64, seal, zero, Fields};
use super::error::{ErrorKind, FormatError};
use super::layout::Layout;
use super::BLOCK_SIZE;

/// "BKAT".
pub const ALLOC_MAGIC: [u8; 4] = *b"BKAT";
/// Bytes before the states in each block.
pub const ALLOC_HEADER_SIZE: usize = 40;
/// Bucket states per block.
pub const STATES_PER_BLOCK: usize = BLOCK_SIZE - ALLOC_HEADER_SIZE;

const S: &str = "alloc_table";

/// Field offsets within an alloc table block.
pub mod off {
    /// `magic`, 4 bytes.
    pub const MAGIC: usize = 0;
    /// `crc32c` of bytes 8..4096.
    pub const CRC: usize = 4;
    /// `volume_uuid`, 16 bytes.
    pub const VOLUME_UUID: usize = 8;
    /// `member_index`, u32.
    pub const MEMBER_INDEX: usize = 24;
    /// `block_index`, u32 (position in the table: catches misdirected writes).
    pub const BLOCK_INDEX: usize = 28;
    /// `generation`, u64: the checkpoint this copy was written for.
    pub const GENERATION: usize = 32;
    /// `states`, one byte per bucket.
    pub const STATES: usize = 40;
}

/// Checks where a block belongs: `block < layout.alloc_blocks`.
fn check_index(f: &Fields<'_>, layout: &Layout, block: u32) -> Result<usize, FormatError> {
    if block >= layout.alloc_blocks {
        return Err(f.err(
            "block_index",
            off::BLOCK_INDEX,
            ErrorKind::OutOfRange {
                value: u64::from(block),
                min: 0,
                max: u64::from(layout.alloc_blocks).saturating_sub(1),
            },
        ));
    }
    Ok(layout.alloc_block_states(block))
}

/// Where an alloc table block belongs: its volume, member, block index and the checkpoint
/// generation whose copy it is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockId<'a> {
    /// The volume.
    pub volume: &'a Uuid,
    /// The member the table describes.
    pub member: u32,
    /// The block's index in its copy.
    pub block: u32,
    /// The checkpoint generation (the copy is `generation % 2`).
    pub generation: u64,
}

/// Encodes alloc table block `id` into `buf[..4096]`, taking exactly
/// [`Layout::alloc_block_states`] states from `states` (fails if it yields fewer).
pub fn encode_block<I>(
    buf: &mut [u8],
    layout: &Layout,
    id: BlockId<'_>,
    states: I,
) -> Result<(), FormatError>
where
    I: IntoIterator<Item = BucketState>,
{
    need_mut(buf, S, BLOCK_SIZE)?;
    let n = check_index(&Fields::new(&[], S), layout, id.block)?;
    zero(buf, 0, BLOCK_SIZE);
    let mut it = states.into_iter();
    for i in 0..n {
        let Some(s) = it.next() else {
            return Err(FormatError::new(
                S,
                "states",
                off::STATES + i,
                ErrorKind::Mismatch {
                    expected: n as u64,
                    found: i as u64,
                },
            ));
        };
        put(buf, off::STATES + i, &[s.to_u8()]);
    }
    put(buf, off::MAGIC, &ALLOC_MAGIC);
    put(buf, off::VOLUME_UUID, id.volume);
    put_u32(buf, off::MEMBER_INDEX, id.member);
    put_u32(buf, off::BLOCK_INDEX, id.block);
    put_u64(buf, off::GENERATION, id.generation);
    seal(buf, off::CRC, off::VOLUME_UUID, BLOCK_SIZE);
    Ok(())
}

/// A decoded alloc table block: its states, all valid.
#[derive(Clone, Copy, Debug)]
pub struct AllocBlock<'a> {
    first_bucket: u64,
    states: &'a [u8],
}

/// Decodes and validates alloc table block `id`: header, crc, a valid state byte for each
/// bucket, `sb` exactly in the metadata region, and zero past the last one. A block of another generation (the other copy, or
/// this copy before the checkpoint that rewrote it) is refused with a `generation`
/// mismatch.
pub fn decode_block<'a>(
    buf: &'a [u8],
    layout: &Layout,
    id: BlockId<'_>,
) -> Result<AllocBlock<'a>, FormatError> {
    let BlockId {
        volume,
        member,
        block,
        generation,
    } = id;
    let f = Fields::new(buf, S);
    f.need(BLOCK_SIZE)?;
    f.magic(&ALLOC_MAGIC)?;
    f.crc(off::CRC, off::VOLUME_UUID, BLOCK_SIZE)?;
    if &f.bytes::<16>("volume_uuid", off::VOLUME_UUID)? != volume {
        return Err(f.err("volume_uuid", off::VOLUME_UUID, ErrorKind::WrongVolume));
    }
    let m = f.u32("member_index", off::MEMBER_INDEX)?;
    f.expect(
        "member_index",
        off::MEMBER_INDEX,
        u64::from(m),
        u64::from(member),
    )?;
    let b = f.u32("block_index", off::BLOCK_INDEX)?;
    f.expect(
        "block_index",
        off::BLOCK_INDEX,
        u64::from(b),
        u64::from(block),
    )?;
    let g = f.u64("generation", off::GENERATION)?;
    f.expect("generation", off::GENERATION, g, generation)?;
    let n = check_index(&f, layout, block)?;
    let end = off::STATES + n;
    let states = buf.get(off::STATES..end).unwrap_or(&[]);
    if let Some(i) = states
        .iter()
        .position(|&s| BucketState::from_u8(s).is_none())
    {
        let bad = states.get(i).copied().unwrap_or(0);
        return Err(f.err("states", off::STATES + i, ErrorKind::BadState(bad)));
    }
    f.zero("states", end, BLOCK_SIZE - end)?;
    let first_bucket = u64::from(block) * STATES_PER_BLOCK as u64;
    // `sb` marks exactly the metadata region: a region bucket marked free
    // would be handed out over the superblock.
    let sb = BucketState::Sb.to_u8();
    if let Some(i) = states
        .iter()
        .enumerate()
        .position(|(i, &s)| layout.is_sb_bucket(first_bucket + i as u64) != (s == sb))
    {
        let bucket = first_bucket + i as u64;
        let inside = layout.is_sb_bucket(bucket);
        return Err(f.err(
            "states",
            off::STATES + i,
            ErrorKind::SbRegion { bucket, inside },
        ));
    }
    Ok(AllocBlock {
        first_bucket,
        states,
    })
}

impl<'a> AllocBlock<'a> {
    /// The bucket number of the first state.
    pub const fn first_bucket(&self) -> u64 {
        self.first_bucket
    }

    /// Number of states (buckets) in this block.
    pub const fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether the block holds no bucket (never, for a decoded block).
    pub const fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// State `i` of this block (bucket `first_bucket() + i`).
    pub fn get(&self, i: usize) -> Option<BucketState> {
        self.states.get(i).copied().and_then(BucketState::from_u8)
    }

    /// The states in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = BucketState> + 'a {
        self.states.iter().filter_map(|&s| BucketState::from_u8(s))
    }

    /// Per-state counts of this block.
    pub fn counts(&self) -> BucketCounts {
        let mut c = BucketCounts::new();
        self.iter().for_each(|s| c.add(s));
        c
    }
}
