// SPDX-License-Identifier: GPL-2.0

//! A member device of a volume: opened, its superblock validated, its alloc
//! table loaded into memory (one byte per bucket).

use crate::bkcore::{
    buckets::{BucketCounts, BucketState},
    format::{self, layout::Layout, superblock::Superblock, BLOCK_SIZE},
    options::Options,
};
use crate::fmt::Core;
use crate::glue::bdev::BlockDevice;
use kernel::{alloc::KVVec, prelude::*, str::CString};

/// One member device of a volume.
pub(crate) struct Member {
    /// The path it was registered by.
    pub(crate) path: CString,
    /// The device, held exclusively.
    pub(crate) dev: BlockDevice,
    /// Its superblock as last read or written.
    pub(crate) sb: Superblock,
    /// Its regions, from the superblock.
    pub(crate) layout: Layout,
    /// Persistent state of each bucket (`BucketState::to_u8`).
    pub(crate) states: KVVec<u8>,
    /// Buckets per state.
    pub(crate) counts: BucketCounts,
}

/// A zeroed 4 KiB block buffer.
fn block_buf() -> Result<KVec<u8>> {
    let mut buf = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
    buf.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
    Ok(buf)
}

impl Member {
    /// Reads and validates the superblock of an opened device. Errors are
    /// logged naming the device and the field.
    pub(crate) fn open(path: CString, dev: BlockDevice) -> Result<Self> {
        let lbs = dev.logical_block_size();
        if lbs as usize > BLOCK_SIZE {
            pr_err!(
                "{}: logical block size {} is above {}\n",
                &*path,
                lbs,
                BLOCK_SIZE
            );
            return Err(EINVAL);
        }
        if (dev.size() as usize) < BLOCK_SIZE {
            pr_err!(
                "{}: too small ({} bytes) to hold a superblock\n",
                &*path,
                dev.size()
            );
            return Err(EINVAL);
        }
        let mut buf = block_buf()?;
        dev.read(0, &mut buf).inspect_err(|e| {
            pr_err!(
                "{}: reading the superblock failed (error {})\n",
                &*path,
                e.to_errno()
            );
        })?;
        let sb = Superblock::decode(&buf).map_err(|e| {
            pr_err!("{}: not a valid bkalloc member: {}\n", &*path, Core(e));
            EINVAL
        })?;
        let layout = sb.validate().map_err(|e| {
            pr_err!("{}: {}\n", &*path, Core(e));
            EINVAL
        })?;
        let needed = sb.bucket_count.saturating_mul(u64::from(sb.bucket_size));
        if dev.size() < needed {
            pr_err!(
                "{}: too small: superblock field bucket_count needs {} bytes, device has {}\n",
                &*path,
                needed,
                dev.size()
            );
            return Err(EINVAL);
        }
        Ok(Self {
            path,
            dev,
            sb,
            layout,
            states: KVVec::new(),
            counts: BucketCounts::new(),
        })
    }

    /// Loads the alloc table: every block validated, one state per bucket.
    pub(crate) fn load_alloc_table(&mut self) -> Result {
        let nbuckets = usize::try_from(self.sb.bucket_count).map_err(|_| EINVAL)?;
        let mut states = KVVec::with_capacity(nbuckets, GFP_KERNEL)?;
        let mut counts = BucketCounts::new();
        let mut buf = block_buf()?;
        for block in 0..self.layout.alloc_blocks {
            let offset = format::layout::ALLOC_OFFSET + u64::from(block) * BLOCK_SIZE as u64;
            self.dev.read(offset, &mut buf).inspect_err(|e| {
                pr_err!(
                    "{}: reading alloc table block {} failed (error {})\n",
                    &*self.path,
                    block,
                    e.to_errno()
                );
            })?;
            let decoded = format::decode_alloc_block(
                &buf,
                &self.layout,
                &self.sb.volume_uuid,
                self.sb.member_index,
                block,
            )
            .map_err(|e| {
                pr_err!(
                    "{}: alloc table block {}: {}\n",
                    &*self.path,
                    block,
                    Core(e)
                );
                EINVAL
            })?;
            for state in decoded.iter() {
                states.push(state.to_u8(), GFP_KERNEL)?;
                counts.add(state);
            }
        }
        if states.len() != nbuckets {
            pr_err!(
                "{}: alloc table holds {} buckets, superblock field bucket_count says {}\n",
                &*self.path,
                states.len(),
                nbuckets
            );
            return Err(EINVAL);
        }
        self.states = states;
        self.counts = counts;
        Ok(())
    }

    /// Buckets in `state`.
    pub(crate) fn count(&self, state: BucketState) -> u64 {
        self.counts.get(state)
    }

    /// Writes this member's superblock with `options` and sequence `seq`,
    /// then flushes, so the change is durable when this returns.
    pub(crate) fn write_superblock(&mut self, options: Options, seq: u64) -> Result {
        let mut sb = self.sb;
        sb.options = options;
        sb.seq = seq;
        let mut buf = block_buf()?;
        sb.encode(&mut buf).map_err(|e| {
            pr_err!(
                "{}: encoding the superblock failed: {}\n",
                &*self.path,
                Core(e)
            );
            EINVAL
        })?;
        self.dev.write(0, &buf)?;
        self.dev.flush()?;
        self.sb = sb;
        Ok(())
    }
}
