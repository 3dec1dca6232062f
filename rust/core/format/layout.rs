// SPDX-License-Identifier: GPL-2.0

//! Where each region of a member device lives, computed the same way by the kernel and the
//! tool from the superblock's geometry fields.

use super::codec::Fields;
use super::error::{ErrorKind, FormatError};
use super::superblock::off;
use super::{
    alloc_table::STATES_PER_BLOCK, btree_node, BLOCK_SIZE, MAX_BUCKET_COUNT, MAX_BUCKET_SIZE,
    MAX_JOURNAL_BLOCKS, MAX_NODE_SIZE, MIN_BUCKET_SIZE, MIN_JOURNAL_BLOCKS, MIN_NODE_ENTRIES,
};

const BLOCK: u64 = BLOCK_SIZE as u64;

/// Copies of the superblock, in blocks 0 and 1: one survives a torn write of the other.
pub const SB_COPIES: usize = 2;
/// Byte offset of the first checkpoint slot (the second follows it).
pub const CHECKPOINT_OFFSET: u64 = 2 * BLOCK;
/// Byte offset of the alloc table's copy 0 (copy 1 follows it).
pub const ALLOC_OFFSET: u64 = 4 * BLOCK;

/// The regions of one member device. Every offset is a multiple of [`BLOCK_SIZE`].
///
/// Build it with [`Layout::new`] (or [`super::Superblock::layout`]), which validates; the
/// accessors saturate rather than panic on a hand-made inconsistent value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes per bucket.
    pub bucket_size: u32,
    /// Buckets on the device, including the `sb` ones.
    pub bucket_count: u64,
    /// Entries per btree node, at most.
    pub node_max_entries: u32,
    /// Bytes of a btree node on disk (read and written whole; ≤ bucket size).
    pub node_size: u32,
    /// Blocks of one copy of the alloc table.
    pub alloc_blocks: u32,
    /// Byte offset of the journal.
    pub journal_offset: u64,
    /// Blocks of the journal (the same on every member: it is mirrored).
    pub journal_blocks: u32,
    /// The first `sb_buckets` buckets hold the regions above and are state `sb`.
    pub sb_buckets: u32,
}

/// The largest legal `node_max_entries` for a bucket size: the entries that fit in
/// `min(bucket_size, MAX_NODE_SIZE)`. Also the default cap.
pub const fn max_node_entries(bucket_size: u32) -> u32 {
    let room = if bucket_size as usize > MAX_NODE_SIZE {
        MAX_NODE_SIZE
    } else {
        bucket_size as usize
    };
    (room.saturating_sub(btree_node::NODE_HEADER_SIZE) / btree_node::INTERIOR_ENTRY_SIZE) as u32
}

/// Default journal size for a device of `bucket_count` buckets: about 1/128 of the
/// smallest member, between 64 blocks (256 KiB) and 2048 blocks (8 MiB).
pub fn default_journal_blocks(bucket_size: u32, bucket_count: u64) -> u32 {
    let blocks = (u64::from(bucket_size) / BLOCK).saturating_mul(bucket_count) / 128;
    blocks.clamp(64, 2048) as u32
}

/// Bytes a node with room for `entries` entries occupies, rounded up to whole blocks.
pub const fn node_size(entries: u32) -> u64 {
    let bytes = btree_node::NODE_HEADER_SIZE as u64
        + entries as u64 * btree_node::INTERIOR_ENTRY_SIZE as u64;
    bytes.div_ceil(BLOCK) * BLOCK
}

impl Layout {
    /// Computes and validates the layout. Errors name the superblock field at fault.
    pub fn new(
        bucket_size: u32,
        bucket_count: u64,
        journal_blocks: u32,
        node_max_entries: u32,
    ) -> Result<Layout, FormatError> {
        let f = Fields::new(&[], "superblock");
        let bs = u64::from(bucket_size);
        if !bucket_size.is_power_of_two() {
            return Err(f.err(
                "bucket_size",
                off::BUCKET_SIZE,
                ErrorKind::NotPowerOfTwo(bs),
            ));
        }
        f.range(
            "bucket_size",
            off::BUCKET_SIZE,
            bs,
            u64::from(MIN_BUCKET_SIZE),
            u64::from(MAX_BUCKET_SIZE),
        )?;
        f.range(
            "journal_blocks",
            off::JOURNAL_BLOCKS,
            u64::from(journal_blocks),
            u64::from(MIN_JOURNAL_BLOCKS),
            u64::from(MAX_JOURNAL_BLOCKS),
        )?;
        f.range(
            "node_max_entries",
            off::NODE_MAX_ENTRIES,
            u64::from(node_max_entries),
            u64::from(MIN_NODE_ENTRIES),
            u64::from(max_node_entries(bucket_size)),
        )?;
        // Bounded first, so the arithmetic below cannot overflow.
        let max_count = MAX_BUCKET_COUNT.min(u64::MAX / bs);
        f.range(
            "bucket_count",
            off::BUCKET_COUNT,
            bucket_count,
            1,
            max_count,
        )?;
        let alloc_blocks = bucket_count.div_ceil(STATES_PER_BLOCK as u64);
        let journal_offset = ALLOC_OFFSET + 2 * alloc_blocks * BLOCK;
        let sb_end = journal_offset + u64::from(journal_blocks) * BLOCK;
        let sb_buckets = sb_end.div_ceil(bs);
        // At least one bucket beyond the metadata region, for the first btree node.
        f.range(
            "bucket_count",
            off::BUCKET_COUNT,
            bucket_count,
            sb_buckets + 1,
            max_count,
        )?;
        Ok(Layout {
            bucket_size,
            bucket_count,
            node_max_entries,
            node_size: node_size(node_max_entries) as u32,
            alloc_blocks: alloc_blocks as u32,
            journal_offset,
            journal_blocks,
            sb_buckets: sb_buckets as u32,
        })
    }

    /// Blocks per bucket.
    pub const fn blocks_per_bucket(&self) -> u64 {
        self.bucket_size as u64 / BLOCK
    }

    /// Bytes the device must have: every bucket.
    pub const fn device_bytes(&self) -> u64 {
        self.bucket_count.saturating_mul(self.bucket_size as u64)
    }

    /// Byte offset of bucket `b`, `None` past the end.
    pub const fn bucket_offset(&self, b: u64) -> Option<u64> {
        if b < self.bucket_count {
            b.checked_mul(self.bucket_size as u64)
        } else {
            None
        }
    }

    /// Whether bucket `b` is in the metadata region (state `sb`).
    pub const fn is_sb_bucket(&self, b: u64) -> bool {
        b < self.sb_buckets as u64
    }

    /// Buckets outside the metadata region.
    pub const fn data_buckets(&self) -> u64 {
        self.bucket_count.saturating_sub(self.sb_buckets as u64)
    }

    /// Byte offset of superblock copy 0 or 1.
    pub const fn sb_offset(copy: usize) -> u64 {
        (copy as u64 & 1) * BLOCK
    }

    /// Byte offset of checkpoint slot 0 or 1.
    pub const fn checkpoint_offset(&self, slot: usize) -> u64 {
        CHECKPOINT_OFFSET + (slot as u64 & 1) * BLOCK
    }

    /// Byte offset of block `i` of alloc table copy 0 or 1. The checkpoint of generation
    /// `g` goes with copy `g % 2` (its slot): a checkpoint rewrites only the copy the
    /// previous one does not use, so a torn table write leaves the previous pair intact.
    pub const fn alloc_block_offset(&self, copy: usize, i: u32) -> u64 {
        ALLOC_OFFSET + ((copy as u64 & 1) * self.alloc_blocks as u64 + i as u64) * BLOCK
    }

    /// Number of bucket states in alloc table block `i` (all but the last block are full).
    pub const fn alloc_block_states(&self, i: u32) -> usize {
        let first = i as u64 * STATES_PER_BLOCK as u64;
        if first >= self.bucket_count {
            return 0;
        }
        let left = self.bucket_count - first;
        if left > STATES_PER_BLOCK as u64 {
            STATES_PER_BLOCK
        } else {
            left as usize
        }
    }

    /// Alloc table block and index within it of bucket `b`.
    pub const fn alloc_position(&self, b: u64) -> Option<(u32, usize)> {
        if b >= self.bucket_count {
            return None;
        }
        let per = STATES_PER_BLOCK as u64;
        Some(((b / per) as u32, (b % per) as usize))
    }

    /// Byte offset of journal block `i` (`i < journal_blocks`).
    pub const fn journal_block_offset(&self, i: u32) -> u64 {
        self.journal_offset.saturating_add(i as u64 * BLOCK)
    }

    /// End of the metadata proper (the `sb` buckets may extend past it).
    pub const fn metadata_end(&self) -> u64 {
        self.journal_offset
            .saturating_add(self.journal_blocks as u64 * BLOCK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_1108_sized_device() {
        let l = Layout::new(64 << 10, 46_800, 256, max_node_entries(64 << 10)).unwrap();
        assert_eq!(l.alloc_blocks, 12); // ceil(46800 / 4056)
        assert_eq!(l.journal_offset, 4 * 4096 + 2 * 12 * 4096);
        assert_eq!(l.sb_buckets, 18); // ceil((4 + 24 + 256) / 16)
        assert_eq!(l.node_max_entries, 1364);
        assert_eq!(l.node_size, 64 << 10);
        assert_eq!(l.alloc_block_states(11), 46_800 - 11 * 4056);
        assert_eq!(l.alloc_block_states(12), 0);
        assert_eq!(l.alloc_position(4056), Some((1, 0)));
        assert_eq!(l.alloc_position(46_800), None);
        assert_eq!(Layout::sb_offset(1), 4096);
        assert_eq!(l.checkpoint_offset(1), 12288);
        assert_eq!(l.alloc_block_offset(0, 0), 16384);
        assert_eq!(l.alloc_block_offset(1, 0), 16384 + 12 * 4096);
        assert_eq!(l.alloc_block_offset(1, 11) + 4096, l.journal_offset);
        assert_eq!(l.device_bytes(), 46_800 * 65_536);
    }

    #[test]
    fn small_node_cap_gives_small_nodes() {
        let l = Layout::new(64 << 10, 100, 16, 8).unwrap();
        assert_eq!(l.node_size, 4096);
        assert_eq!(max_node_entries(1 << 30), ((256 << 10) - 64) / 48);
    }

    #[test]
    fn bad_geometry() {
        let e = |bs, bc, jb, ne| Layout::new(bs, bc, jb, ne).unwrap_err().field;
        assert_eq!(e(3 << 16, 100, 16, 8), "bucket_size");
        assert_eq!(e(32 << 10, 100, 16, 8), "bucket_size");
        assert_eq!(e(64 << 10, 100, 8, 8), "journal_blocks");
        assert_eq!(e(64 << 10, 100, 16, 3), "node_max_entries");
        assert_eq!(e(64 << 10, 100, 16, 2000), "node_max_entries");
        assert_eq!(e(64 << 10, 2, 16, 8), "bucket_count"); // no room past the metadata
        assert_eq!(e(1 << 30, u64::MAX, 16, 8), "bucket_count");
        assert!(Layout::new(64 << 10, 3, 16, 8).is_ok());
    }

    #[test]
    fn default_journal() {
        assert_eq!(default_journal_blocks(64 << 10, 64), 64);
        assert_eq!(default_journal_blocks(64 << 10, 1 << 20), 2048);
    }
}
