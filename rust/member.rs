// SPDX-License-Identifier: GPL-2.0

//! A member device of a volume: opened, its superblock validated, its alloc
//! table loaded into memory (one byte per bucket). A member missing from a
//! degraded register has no device and no table; what the present members
//! keep for it until it returns is [`Absent`] (`bkcore::degraded`).

use crate::bkcore::{
    buckets::{BucketCounts, BucketState},
    format::{
        self, alloc_table, checkpoint,
        checkpoint::MAX_PENDING,
        layout::{Layout, SB_COPIES},
        superblock::{self, Superblock},
        Checkpoint, FormatError, Pending, BLOCK_SIZE, MAX_MEMBERS,
    },
    member_state::MemberState,
    options::Options,
    placement::DevSnapshot,
    uuid::Uuid,
};
use crate::fmt::Core;
use crate::glue::bdev::BlockDevice;
use kernel::{
    alloc::KVVec,
    prelude::*,
    str::CString,
    sync::Arc,
    time::{Instant, Monotonic},
};

/// What reading a member's metadata needs: the device, its regions and
/// its path for messages. Register reads the tree and the journal through
/// these, without the volume lock, so `replay` and the other files answer
/// while it reads.
pub(crate) struct Disk {
    /// The path the member was registered by.
    pub(crate) path: CString,
    /// The device (the member keeps holding it); `None` if missing.
    pub(crate) dev: Option<Arc<BlockDevice>>,
    /// Its regions.
    pub(crate) layout: Layout,
}

/// The [`Disk`] of each member, in member order.
pub(crate) fn disks(members: &[Member]) -> Result<KVec<Disk>> {
    let mut out = KVec::with_capacity(members.len(), GFP_KERNEL)?;
    for m in members {
        out.push(
            Disk {
                path: CString::try_from(&*m.path)?,
                dev: m.dev.clone(),
                layout: m.layout,
            },
            GFP_KERNEL,
        )?;
    }
    Ok(out)
}

/// One member device of a volume.
pub(crate) struct Member {
    /// The path it was registered by ("missing" if it was not).
    pub(crate) path: CString,
    /// The device, held exclusively (shared with the discard thread while
    /// it discards); `None` for a member missing from a degraded register.
    pub(crate) dev: Option<Arc<BlockDevice>>,
    /// Its superblock as last read or written.
    pub(crate) sb: Superblock,
    /// Its state, from the volume's newest superblock (every member's
    /// superblock lists every member's state).
    pub(crate) state: MemberState,
    /// Its regions, from the superblock.
    pub(crate) layout: Layout,
    /// Persistent state of each bucket (`BucketState::to_u8`), plus the
    /// in-memory [`OPEN`] pin on free buckets handed out but not committed.
    pub(crate) states: KVVec<u8>,
    /// Buckets per persistent state (open buckets count as free).
    pub(crate) counts: BucketCounts,
    /// Open buckets.
    pub(crate) open: u64,
    /// Need_discard buckets whose discard is in flight.
    pub(crate) discarding: u64,
    /// Where the next search for a free bucket starts.
    cursor: usize,
    /// Where the next search for need_discard buckets starts.
    discard_cursor: usize,
    /// Failed discard batches in a row, and when the last one failed.
    pub(crate) discard_failures: u32,
    pub(crate) discard_failed_at: Option<Instant<Monotonic>>,
    /// The device said it cannot discard: buckets are released without.
    pub(crate) no_discard: bool,
    /// The newest valid checkpoint (read at register, written at flush).
    checkpoint: Option<Checkpoint>,
    /// The pending records of the checkpoint read at register.
    checkpoint_pending: KVec<Pending>,
}

/// What the present members keep for missing ones, written with every
/// checkpoint (see `bkcore::degraded`).
pub(crate) struct Absent {
    /// Per member index: 0, or the generation of the alloc table copy the
    /// missing member holds.
    pub(crate) missing: [u64; MAX_MEMBERS],
    /// Bucket state changes of missing members, sorted, one per bucket.
    pub(crate) changes: KVec<Pending>,
}

impl Absent {
    /// Keeps `state` as `bucket`'s of missing `member` (the newest wins);
    /// `ENOSPC` once a checkpoint could not hold another.
    pub(crate) fn note(&mut self, member: u32, bucket: u64, state: BucketState) -> Result {
        let p = Pending {
            member,
            bucket,
            state,
        };
        match self
            .changes
            .binary_search_by_key(&(member, bucket), |c| (c.member, c.bucket))
        {
            Ok(i) => self.changes[i] = p,
            Err(_) if self.changes.len() >= MAX_PENDING => return Err(ENOSPC),
            Err(i) => {
                self.changes.reserve(1, GFP_KERNEL)?;
                self.changes
                    .insert_within_capacity(i, p)
                    .map_err(|_| ENOMEM)?;
            }
        }
        Ok(())
    }

    /// Whether member `i` is missing.
    pub(crate) fn is_missing(&self, i: usize) -> bool {
        self.missing.get(i).is_some_and(|&g| g != 0)
    }
}

/// In-memory pin on a free bucket: handed out, not yet committed. Never on
/// disk (persistent states are 1..=5).
const OPEN: u8 = 0x80;

/// In-memory mark on a need_discard bucket whose discard is in flight.
const DISCARDING: u8 = 0x40;

/// A member's alloc table copied for a checkpoint
/// ([`Member::copy_alloc_table`]).
pub(crate) struct TableCopy {
    volume: Uuid,
    member: u32,
    layout: Layout,
    generation: u64,
    /// The bucket states, with their in-memory flags.
    states: KVec<u8>,
    /// Btree buckets written as need_discard (sorted).
    pub(crate) retired: KVec<u64>,
}

impl TableCopy {
    /// The table encoded: one buffer per block, and the byte offset of the
    /// first (the copy's blocks follow it).
    pub(crate) fn encode(&self) -> Result<(u64, KVec<KVec<u8>>)> {
        let per = alloc_table::STATES_PER_BLOCK;
        let mut blocks = KVec::with_capacity(self.layout.alloc_blocks as usize, GFP_KERNEL)?;
        for block in 0..self.layout.alloc_blocks {
            let mut buf = block_buf()?;
            let first = block as usize * per;
            let last = self.states.len().min(first + per);
            let states = self.states.get(first..last).ok_or(EINVAL)?;
            let id = alloc_table::BlockId {
                volume: &self.volume,
                member: self.member,
                block,
                generation: self.generation,
            };
            alloc_table::encode_block(
                &mut buf,
                &self.layout,
                id,
                states.iter().enumerate().map(|(i, &s)| {
                    if self.retired.binary_search(&((first + i) as u64)).is_ok() {
                        return BucketState::NeedDiscard;
                    }
                    BucketState::from_u8(s & !(OPEN | DISCARDING)).unwrap_or(BucketState::Free)
                }),
            )
            .map_err(|e| {
                pr_err!(
                    "member {}: encoding alloc table block {}: {}\n",
                    self.member,
                    block,
                    Core(e)
                );
                EINVAL
            })?;
            blocks.push(buf, GFP_KERNEL)?;
        }
        let copy = (self.generation % 2) as usize;
        Ok((self.layout.alloc_block_offset(copy, 0), blocks))
    }
}

/// A zeroed 4 KiB block buffer.
fn block_buf() -> Result<KVec<u8>> {
    let mut buf = KVec::with_capacity(BLOCK_SIZE, GFP_KERNEL)?;
    buf.resize(BLOCK_SIZE, 0, GFP_KERNEL)?;
    Ok(buf)
}

/// Reads both superblock copies of `dev` and picks the valid (newest) one.
/// Not inlined: the copies it decodes stay out of the caller's frame.
#[inline(never)]
fn read_superblock(path: &CStr, dev: &BlockDevice) -> Result<Superblock> {
    let mut buf = block_buf()?;
    let mut read = |copy: usize| -> Result<core::result::Result<Superblock, FormatError>> {
        dev.read(Layout::sb_offset(copy), &mut buf)
            .inspect_err(|e| {
                pr_err!(
                    "{}: reading superblock copy {} failed (error {})\n",
                    path,
                    copy,
                    e.to_errno()
                );
            })?;
        let res = Superblock::decode(&buf);
        if let Err(e) = &res {
            // Torn or never written: the other copy serves, and the next
            // superblock write rewrites both.
            pr_warn!("{}: superblock copy {}: {}\n", path, copy, Core(e));
        }
        Ok(res)
    };
    let c0 = read(0)?;
    let c1 = read(1)?;
    superblock::pick_copy(c0, c1).map_err(|e| {
        pr_err!("{}: not a valid bkalloc member: {}\n", path, Core(e));
        EINVAL
    })
}

impl Member {
    /// Reads and validates the superblock of an opened device. Errors are
    /// logged naming the device and the field.
    #[inline(never)]
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
        if dev.size() < (SB_COPIES * BLOCK_SIZE) as u64 {
            pr_err!(
                "{}: too small ({} bytes) to hold a superblock\n",
                &*path,
                dev.size()
            );
            return Err(EINVAL);
        }
        let sb = read_superblock(&path, &dev)?;
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
        // Until register reads the volume's newest superblock.
        let state = sb.member_states[sb.member_index as usize % sb.member_states.len()];
        let dev = Arc::new(dev, GFP_KERNEL)?;
        Ok(Self::new(path, Some(dev), sb, layout, state))
    }

    /// Stands for member `index`, missing from a degraded register, in
    /// `state`: no device, no buckets; `like` (a present member) gives the
    /// volume-wide fields.
    pub(crate) fn missing(index: u32, like: &Member, state: MemberState) -> Result<Self> {
        let mut sb = like.sb;
        sb.member_index = index;
        sb.bucket_count = 0;
        let path = CString::try_from(c"missing")?;
        Ok(Self::new(path, None, sb, like.layout, state))
    }

    /// A member with no table loaded yet.
    fn new(
        path: CString,
        dev: Option<Arc<BlockDevice>>,
        sb: Superblock,
        layout: Layout,
        state: MemberState,
    ) -> Self {
        Self {
            path,
            dev,
            state,
            sb,
            layout,
            states: KVVec::new(),
            counts: BucketCounts::new(),
            open: 0,
            discarding: 0,
            cursor: 0,
            discard_cursor: 0,
            discard_failures: 0,
            discard_failed_at: None,
            no_discard: false,
            checkpoint: None,
            checkpoint_pending: KVec::new(),
        }
    }

    /// Whether the member was missing at register.
    pub(crate) fn is_missing(&self) -> bool {
        self.dev.is_none()
    }

    /// The device; `ENXIO` for a missing member.
    pub(crate) fn dev(&self) -> Result<&Arc<BlockDevice>> {
        self.dev.as_ref().ok_or(ENXIO)
    }

    /// Loads the alloc table copy that goes with the volume's checkpoint of
    /// `generation`: every block validated, one state per bucket.
    pub(crate) fn load_alloc_table(&mut self, generation: u64) -> Result {
        let copy = (generation % 2) as usize;
        let nbuckets = usize::try_from(self.sb.bucket_count).map_err(|_| EINVAL)?;
        let mut states = KVVec::with_capacity(nbuckets, GFP_KERNEL)?;
        let mut counts = BucketCounts::new();
        let mut buf = block_buf()?;
        for block in 0..self.layout.alloc_blocks {
            let offset = self.layout.alloc_block_offset(copy, block);
            self.dev()?.read(offset, &mut buf).inspect_err(|e| {
                pr_err!(
                    "{}: reading alloc table copy {} block {} failed (error {})\n",
                    &*self.path,
                    copy,
                    block,
                    e.to_errno()
                );
            })?;
            let decoded =
                format::decode_alloc_block(&buf, &self.layout, self.alloc_id(block, generation))
                    .map_err(|e| {
                        pr_err!(
                            "{}: alloc table copy {} block {}: {}\n",
                            &*self.path,
                            copy,
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

    /// Reads both checkpoint slots and keeps the newest valid one, with
    /// its pending records.
    pub(crate) fn load_checkpoint(&mut self) -> Result {
        let mut found = [None, None];
        let mut pending = [KVec::new(), KVec::new()];
        let mut buf = block_buf()?;
        for (slot, (cp, p)) in found.iter_mut().zip(pending.iter_mut()).enumerate() {
            self.dev()?
                .read(self.layout.checkpoint_offset(slot), &mut buf)?;
            *cp = Checkpoint::decode(&buf, &self.sb.volume_uuid).ok();
            if cp.is_some() {
                for r in checkpoint::pending(&buf) {
                    p.push(r, GFP_KERNEL)?;
                }
            }
        }
        let [a, b] = found;
        let Some(cp) = format::newest_checkpoint(a, b) else {
            pr_err!("{}: no valid checkpoint in either slot\n", &*self.path);
            return Err(EINVAL);
        };
        let [pa, pb] = pending;
        self.checkpoint_pending = if Some(cp) == a { pa } else { pb };
        if cp.member_index != self.sb.member_index {
            pr_err!(
                "{}: checkpoint field member_index is {}, superblock says {}\n",
                &*self.path,
                cp.member_index,
                self.sb.member_index
            );
            return Err(EINVAL);
        }
        self.checkpoint = Some(cp);
        Ok(())
    }

    /// The newest valid checkpoint of this member, read at register.
    pub(crate) fn checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint
    }

    /// The pending records of [`Member::checkpoint`], taken (register
    /// keeps those of the volume's newest checkpoint).
    pub(crate) fn take_checkpoint_pending(&mut self) -> KVec<Pending> {
        core::mem::take(&mut self.checkpoint_pending)
    }

    /// `cp` (with this member's index) and `pending`, encoded for the
    /// slot its generation names: the record, where it goes and the block.
    /// The caller writes it, flushes, then [`Member::set_checkpoint`].
    pub(crate) fn encode_checkpoint(
        &self,
        mut cp: Checkpoint,
        pending: &[Pending],
    ) -> Result<(Checkpoint, u64, KVec<u8>)> {
        cp.member_index = self.sb.member_index;
        let mut buf = block_buf()?;
        cp.encode_with(&mut buf, &self.sb.volume_uuid, pending)
            .map_err(|e| {
                pr_err!(
                    "{}: encoding the checkpoint failed: {}\n",
                    &*self.path,
                    Core(e)
                );
                EINVAL
            })?;
        Ok((cp, self.layout.checkpoint_offset(cp.slot()), buf))
    }

    /// Records `cp` as this member's newest checkpoint, once it is durable.
    pub(crate) fn set_checkpoint(&mut self, cp: Checkpoint) {
        self.checkpoint = Some(cp);
    }

    /// Zeroes this member's copy of the journal and flushes: a member back
    /// from missing holds entries older than the others' (or one they never
    /// got, never acknowledged), which must never be read again.
    pub(crate) fn clear_journal(&self) -> Result {
        const CHUNK: u32 = 16;
        let dev = self.dev()?;
        let mut zeros = KVec::new();
        zeros.resize(CHUNK as usize * BLOCK_SIZE, 0, GFP_KERNEL)?;
        let mut b = 0u32;
        while b < self.layout.journal_blocks {
            let n = CHUNK.min(self.layout.journal_blocks - b) as usize;
            let off = self.layout.journal_offset + u64::from(b) * BLOCK_SIZE as u64;
            // The last chunk may be shorter.
            zeros.truncate(n * BLOCK_SIZE);
            dev.write(off, &zeros).inspect_err(|e| {
                pr_err!(
                    "{}: clearing its stale journal copy failed (error {})\n",
                    &*self.path,
                    e.to_errno()
                );
            })?;
            b += CHUNK;
        }
        dev.flush()
    }

    /// Buckets in `state`.
    pub(crate) fn count(&self, state: BucketState) -> u64 {
        self.counts.get(state)
    }

    /// What placement needs to know about this member.
    pub(crate) fn snapshot(&self) -> DevSnapshot {
        DevSnapshot {
            index: self.sb.member_index,
            nbuckets: self.sb.bucket_count,
            free: self.count(BucketState::Free),
            open: self.open,
            need_discard: self.count(BucketState::NeedDiscard),
            btree_reserve: self.sb.btree_reserve,
            online: !self.is_missing(),
            state: self.state,
        }
    }

    /// Pins a free bucket for an allocation; `None` if there is none.
    pub(crate) fn open_bucket(&mut self) -> Option<u64> {
        let free = BucketState::Free.to_u8();
        // From the cursor to the end, then from the start to the cursor.
        let from = self.cursor.min(self.states.len());
        let (head, tail) = self.states.split_at(from);
        let i = match tail.iter().position(|&s| s == free) {
            Some(k) => from + k,
            None => head.iter().position(|&s| s == free)?,
        };
        self.states[i] = free | OPEN;
        self.open += 1;
        self.cursor = i + 1;
        Some(i as u64)
    }

    /// Unpins an open bucket that will not be used; it stays free.
    pub(crate) fn release_open(&mut self, bucket: u64) {
        if let Some(s) = self.states.get_mut(bucket as usize) {
            if *s & OPEN != 0 {
                *s &= !OPEN;
                self.open -= 1;
            }
        }
    }

    /// Commits an open bucket to `to` (btree or user), in memory.
    pub(crate) fn commit_open(&mut self, bucket: u64, to: BucketState) -> Result {
        let free = BucketState::Free.to_u8();
        if self.states.get(bucket as usize) != Some(&(free | OPEN)) {
            return Err(EINVAL);
        }
        self.release_open(bucket);
        self.set_state(bucket, BucketState::Free, to)
    }

    /// Frees a btree or user bucket: it becomes need_discard (never free
    /// directly), in memory.
    pub(crate) fn free_bucket(&mut self, bucket: u64) -> Result {
        let from = self
            .states
            .get(bucket as usize)
            .and_then(|&s| BucketState::from_u8(s))
            .ok_or(EINVAL)?;
        if !from.can_become(BucketState::NeedDiscard) {
            return Err(EINVAL);
        }
        self.set_state(bucket, from, BucketState::NeedDiscard)
    }

    /// Marks up to `max` need_discard buckets as being discarded and
    /// returns them in ascending order. The search goes on where the last
    /// one stopped (wrapping once), so a batch costs what it takes, not a
    /// scan from bucket 0.
    pub(crate) fn take_need_discard(&mut self, max: u64) -> Result<KVec<u64>> {
        let nd = BucketState::NeedDiscard.to_u8();
        let mut out = KVec::new();
        let n = self.states.len();
        let from = if self.discard_cursor < n {
            self.discard_cursor
        } else {
            0
        };
        let mut i = from;
        for _ in 0..n {
            if out.len() as u64 >= max {
                break;
            }
            if i == n {
                // Wrapped: keep the batch ascending (one run per discard).
                if !out.is_empty() {
                    break;
                }
                i = 0;
            }
            if self.states[i] == nd {
                out.push(i as u64, GFP_KERNEL)?;
                self.states[i] = nd | DISCARDING;
                self.discarding += 1;
            }
            i += 1;
        }
        self.discard_cursor = i;
        Ok(out)
    }

    /// Ends discards: on success the buckets become free (in memory: the
    /// next checkpoint writes it; a crash before costs a repeated discard,
    /// never data), on failure they stay need_discard.
    pub(crate) fn end_discard(&mut self, buckets: &[u64], discarded: bool) -> Result {
        for &b in buckets {
            if let Some(s) = self.states.get_mut(b as usize) {
                if *s & DISCARDING != 0 {
                    *s &= !DISCARDING;
                    self.discarding -= 1;
                }
            }
        }
        if !discarded {
            return Ok(());
        }
        self.set_states(buckets, BucketState::NeedDiscard, BucketState::Free)
    }

    /// The one path of bucket state changes: memory and counts. They
    /// become durable through the journal (the caller appends a record) or
    /// the next checkpoint, which writes the whole alloc table.
    fn set_states(&mut self, buckets: &[u64], from: BucketState, to: BucketState) -> Result {
        if !from.can_become(to) {
            return Err(EINVAL);
        }
        for &b in buckets {
            if self.states.get(b as usize) != Some(&from.to_u8()) {
                return Err(EINVAL);
            }
        }
        for &b in buckets {
            self.states[b as usize] = to.to_u8();
            self.counts.transfer(from, to);
        }
        Ok(())
    }

    /// Sets `bucket` to `to` whatever its state (journal replay, where
    /// states are absolute, and the register-time reconcile). The metadata
    /// region never changes state.
    pub(crate) fn force_state(&mut self, bucket: u64, to: BucketState) -> Result {
        if self.layout.is_sb_bucket(bucket) || to == BucketState::Sb {
            return Err(EINVAL);
        }
        let s = self.states.get_mut(bucket as usize).ok_or(EINVAL)?;
        let from = BucketState::from_u8(*s & !(OPEN | DISCARDING)).ok_or(EINVAL)?;
        if *s & (OPEN | DISCARDING) != 0 {
            return Err(EBUSY);
        }
        if from != to {
            *s = to.to_u8();
            self.counts.transfer(from, to);
        }
        Ok(())
    }

    /// The persistent state of `bucket` (in-memory pins masked).
    pub(crate) fn state(&self, bucket: u64) -> Option<BucketState> {
        let s = *self.states.get(bucket as usize)?;
        BucketState::from_u8(s & !(OPEN | DISCARDING))
    }

    /// Buckets whose persistent state is `state`, in ascending order.
    pub(crate) fn buckets_in(&self, state: BucketState) -> Result<KVec<u64>> {
        let mut out = KVec::new();
        for (i, &s) in self.states.iter().enumerate() {
            if s == state.to_u8() {
                out.push(i as u64, GFP_KERNEL)?;
            }
        }
        Ok(out)
    }

    /// Where alloc table block `block` of this member's copy for checkpoint
    /// `generation` belongs.
    fn alloc_id(&self, block: u32, generation: u64) -> alloc_table::BlockId<'_> {
        alloc_table::BlockId {
            volume: &self.sb.volume_uuid,
            member: self.sb.member_index,
            block,
            generation,
        }
    }

    /// This member's alloc table for checkpoint `generation` as it will be
    /// once `retired` (btree buckets of replaced nodes, sorted) are
    /// need_discard, and the counts it records: a copy of the bucket
    /// states (a byte per bucket), taken under the pool's lock so the table
    /// agrees with the journal position taken there, and encoded and
    /// written without it ([`TableCopy::encode`]).
    pub(crate) fn copy_alloc_table(
        &self,
        retired: KVec<u64>,
        generation: u64,
    ) -> Result<(BucketCounts, TableCopy)> {
        let mut counts = self.counts;
        for _ in retired.iter() {
            counts.transfer(BucketState::Btree, BucketState::NeedDiscard);
        }
        let mut states = KVec::with_capacity(self.states.len(), GFP_KERNEL)?;
        states.extend_from_slice(&self.states, GFP_KERNEL)?;
        Ok((
            counts,
            TableCopy {
                volume: self.sb.volume_uuid,
                member: self.sb.member_index,
                layout: self.layout,
                generation,
                states,
                retired,
            },
        ))
    }

    /// Moves retired btree buckets to need_discard once the checkpoint
    /// that no longer references them is durable.
    pub(crate) fn retire(&mut self, retired: &[u64]) -> Result {
        self.set_states(retired, BucketState::Btree, BucketState::NeedDiscard)
    }

    /// One bucket through the persistent path (see [`Member::set_states`]).
    fn set_state(&mut self, bucket: u64, from: BucketState, to: BucketState) -> Result {
        self.set_states(&[bucket], from, to)
    }

    /// Writes this member's superblock with `options`, every member's
    /// `states` and sequence `seq`: copy 0, flush, copy 1, flush, so a torn
    /// write leaves one copy whole and the change is durable when this
    /// returns.
    pub(crate) fn write_superblock(
        &mut self,
        options: Options,
        states: [MemberState; MAX_MEMBERS],
        seq: u64,
    ) -> Result {
        let mut sb = self.sb;
        sb.options = options;
        sb.member_states = states;
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
        let dev = self.dev()?;
        for copy in 0..SB_COPIES {
            dev.write(Layout::sb_offset(copy), &buf)?;
            dev.flush()?;
        }
        self.sb = sb;
        Ok(())
    }
}

/// Every member's state by index, for a superblock (`rw` past the last).
pub(crate) fn member_states(members: &[Member]) -> [MemberState; MAX_MEMBERS] {
    let mut states = [MemberState::Rw; MAX_MEMBERS];
    for (s, m) in states.iter_mut().zip(members) {
        *s = m.state;
    }
    states
}
