// SPDX-License-Identifier: GPL-2.0

//! Checkpoints (flush): the btree, the alloc tables and the checkpoint
//! block written so the journal can be trimmed. On unregister, on the
//! flush ioctl, when the journal is full, and after replay.
//!
//! Order, each step flushed before the next:
//! 1. dirty nodes, children first, each to its replicas: a node that was
//!    on disk goes to new buckets (copy-on-write) and its old buckets are
//!    *retiring*; a node a split created goes to the buckets it got then;
//! 2. every member's alloc table copy of the new generation (the one the
//!    previous checkpoint does not use), retiring buckets as need_discard;
//! 3. every member's checkpoint: new generation, root, journal_seq, counts.
//!
//! Steps 2 and 3 are encoded under the pool's lock (the tables and
//! journal_seq agree there) and written, every block at once, without it:
//! allocations and frees do not wait for a checkpoint's I/O.
//!
//! Only then do retiring buckets become need_discard in memory, where the
//! discard thread can see them: a crash before step 3 leaves the previous
//! checkpoint's tree intact, and register gives any bucket it references
//! back its btree state.
//!
//! Buckets for step 1 come at watermark reclaim and without waiting: a
//! checkpoint is what frees space, and it runs with the btree locked. If
//! there is no room it fails with ENOSPC and changes nothing on disk the
//! journal does not still cover.

use crate::allocator::Grant;
use crate::bkcore::{
    format::{BtreePtr, Checkpoint, Replica, MAX_REPLICAS},
    placement::Kind,
    request::Overrides,
    watermark::Watermark,
};
use crate::btree::Tree;
use crate::glue::bdev::{self, BlockDevice, WritePart};
use crate::glue::trace;
use crate::member::TableCopy;
use crate::volume::Volume;
use kernel::{prelude::*, sync::Arc};

/// The btree pointer for the buckets of one grant.
pub(crate) fn ptr_of(grant: &Grant) -> Result<BtreePtr> {
    let mut p = BtreePtr::default();
    for &(dev, bucket) in grant.iter() {
        let dev = u8::try_from(dev).map_err(|_| EINVAL)?;
        if !p.push(Replica { dev, bucket }) {
            return Err(EINVAL);
        }
    }
    Ok(p)
}

/// One present member's part of a checkpoint, encoded under the pool's
/// lock and written without it.
struct Staged {
    /// The member's index.
    index: usize,
    /// Its device.
    dev: Arc<BlockDevice>,
    /// Its alloc table, copied.
    table: TableCopy,
    /// Its checkpoint record, where it goes, and its block.
    record: Checkpoint,
    record_at: u64,
    record_buf: KVec<u8>,
}

impl Volume {
    /// Flushes every member's write cache.
    fn flush_all(devs: &[Arc<BlockDevice>]) -> Result {
        let mut all = KVec::with_capacity(devs.len(), GFP_KERNEL)?;
        for dev in devs {
            all.push(&**dev, GFP_KERNEL)?;
        }
        bdev::flush_all(&all)
    }

    /// Gives back node buckets that were allocated but will not be used:
    /// they hold nothing, and become need_discard like any freed bucket.
    pub(crate) fn drop_node_buckets(&self, locs: &[BtreePtr]) {
        let mut inner = self.lock_pool();
        for r in locs.iter().flat_map(|p| p.replicas().iter()) {
            if let Some(m) = inner.members.get_mut(r.dev as usize) {
                let _ = m.free_bucket(r.bucket);
            }
        }
        drop(inner);
        self.discarder().kick();
    }

    /// Writes a checkpoint; returns its generation and journal_seq. The
    /// caller holds the btree writer lock.
    ///
    /// Once anything was written, a failure makes the volume read-only
    /// (see [`crate::health`]): some member may hold the new checkpoint,
    /// so its nodes must never be rewritten in place, and the buckets
    /// taken for nodes that were not written are given back.
    pub(crate) fn checkpoint_locked(&self) -> Result<(u64, u64)> {
        let r = self.checkpoint_steps();
        let (generation, journal_seq, err) = match r {
            Ok((g, j)) => (g, j, 0),
            Err(e) => (0, 0, e.to_errno()),
        };
        trace::checkpoint(self.uuid(), generation, journal_seq, err);
        r
    }

    /// [`Volume::checkpoint_locked`]'s work.
    fn checkpoint_steps(&self) -> Result<(u64, u64)> {
        if self.lock_pool().read_only.is_some() {
            return Err(EROFS);
        }
        let mut tree = self.tree.lock();
        let order = tree.dirty_postorder()?;
        let cow = order.iter().filter(|&&i| !tree.nodes[i].fresh).count();
        let mut locs = KVec::with_capacity(cow, GFP_KERNEL)?;
        let reclaim = Overrides {
            watermark: Some(Watermark::Reclaim),
            ..Overrides::NONE
        };
        for _ in 0..cow {
            match self.allocator().allocate_now(Kind::Btree, reclaim) {
                Ok(Some(g)) => locs.push(ptr_of(&g)?, GFP_KERNEL)?,
                other => {
                    self.drop_node_buckets(&locs);
                    pr_err!(
                        "volume {}: checkpoint: no room for {} btree nodes; the journal keeps every change\n",
                        self.name(),
                        cow
                    );
                    return Err(other.err().unwrap_or(ENOSPC));
                }
            }
        }
        let cp = match self.write_checkpoint(&mut tree, &order, &mut locs) {
            Ok(cp) => cp,
            Err(e) => {
                // The buckets still in `locs` went to no node.
                self.drop_node_buckets(&locs);
                drop(tree);
                self.go_read_only("checkpoint", e);
                return Err(e);
            }
        };
        tree.retiring.clear();
        for &i in order.iter() {
            tree.nodes[i].fresh = false;
            tree.nodes[i].dirty = false;
        }
        tree.checkpoint = Some(cp);
        // Written leaves may be evicted now.
        tree.checkpointed();
        drop(tree);
        self.journal.lock().trim(cp.journal_seq);
        self.discarder().kick();
        Ok((cp.generation, cp.journal_seq))
    }

    /// The writing part of [`Volume::checkpoint_locked`]: the nodes in
    /// `order` (copy-on-write ones to the buckets in `locs`, taken from its
    /// end), the alloc tables and the checkpoints, each step flushed.
    fn write_checkpoint(
        &self,
        tree: &mut Tree,
        order: &[usize],
        locs: &mut KVec<BtreePtr>,
    ) -> Result<Checkpoint> {
        // Each member's device by index (none if missing), the present
        // ones' devices, the bucket and node sizes.
        let (by_index, devs, bucket_size, node_size) = {
            let inner = self.lock_pool();
            let mut by_index = KVec::with_capacity(inner.members.len(), GFP_KERNEL)?;
            let mut devs = KVec::with_capacity(inner.members.len(), GFP_KERNEL)?;
            for m in inner.members.iter() {
                by_index.push(m.dev.clone(), GFP_KERNEL)?;
                if let Some(d) = &m.dev {
                    devs.push(d.clone(), GFP_KERNEL)?;
                }
            }
            let m0 = inner.members.first().ok_or(ENODEV)?;
            (
                by_index,
                devs,
                u64::from(m0.sb.bucket_size),
                m0.layout.node_size,
            )
        };
        let seq = self.journal.lock().last_seq();
        let mut buf = KVec::new();
        buf.resize(node_size as usize, 0, GFP_KERNEL)?;
        tree.retiring
            .reserve(order.len() * MAX_REPLICAS, GFP_KERNEL)?;
        for &i in order.iter() {
            if !tree.nodes[i].fresh {
                let new = locs.pop().ok_or(EINVAL)?;
                let old = core::mem::replace(&mut tree.nodes[i].loc, new);
                for r in old.replicas() {
                    tree.retiring.push(*r, GFP_KERNEL)?;
                }
                // Its new buckets hold nothing the disk refers to yet.
                tree.nodes[i].fresh = true;
            }
            tree.encode(i, seq, self.uuid(), &mut buf)?;
            // Every replica at once.
            let mut parts = KVec::with_capacity(MAX_REPLICAS, GFP_KERNEL)?;
            for r in tree.nodes[i].loc.replicas() {
                // New buckets are only ever on present members.
                let dev = by_index
                    .get(r.dev as usize)
                    .and_then(|d| d.as_ref())
                    .ok_or(EINVAL)?;
                parts.push(
                    WritePart {
                        dev,
                        offset: r.bucket * bucket_size,
                        buf: &buf,
                        len: buf.len(),
                    },
                    GFP_KERNEL,
                )?;
            }
            bdev::write_all(&parts)?;
        }
        Self::flush_all(&devs)?;

        let root = &tree.nodes[tree.root];
        let prev = tree.checkpoint.ok_or(EINVAL)?;
        let mut cp = Checkpoint {
            generation: prev.generation + 1,
            journal_seq: 0,
            member_index: 0,
            root_level: root.level(),
            root: root.loc,
            counts: prev.counts,
            missing: [0; crate::bkcore::format::MAX_MEMBERS],
        };
        // Under the volume lock, the alloc tables and the journal position
        // agree: every state change up to journal_seq is in the tables, and
        // later ones are in later entries. So the tables are copied (a byte
        // per bucket) and the checkpoint records encoded under it, and the
        // tables encoded and everything written without it: allocations and
        // frees go on meanwhile (into later entries), and nothing else
        // writes these blocks (checkpoints are one at a time, under the
        // tree's lock).
        let staged = {
            let mut inner = self.lock_pool();
            let pool = &mut *inner;
            cp.journal_seq = self.journal.lock().checkpoint_seq();
            // Missing members: their tables are not written (nobody can),
            // and their retiring buckets stay btree until they return, when
            // register reconciles their tables with the tree.
            cp.missing = pool.absent.missing;
            let mut staged = KVec::with_capacity(pool.members.len(), GFP_KERNEL)?;
            for (d, m) in pool.members.iter().enumerate() {
                if m.is_missing() {
                    continue;
                }
                let retired = retiring_on(&tree.retiring, d)?;
                let (counts, table) = m.copy_alloc_table(retired, cp.generation)?;
                cp.counts = counts;
                let (record, record_at, record_buf) =
                    m.encode_checkpoint(cp, &pool.absent.changes)?;
                staged.push(
                    Staged {
                        index: d,
                        dev: m.dev()?.clone(),
                        table,
                        record,
                        record_at,
                        record_buf,
                    },
                    GFP_KERNEL,
                )?;
            }
            staged
        };
        // The tables, all blocks at once, then the records: each durable
        // before the next step.
        let mut tables = KVec::with_capacity(staged.len(), GFP_KERNEL)?;
        for s in staged.iter() {
            tables.push(s.table.encode()?, GFP_KERNEL)?;
        }
        let mut parts = KVec::new();
        for (s, (table_at, blocks)) in staged.iter().zip(tables.iter()) {
            let mut at = *table_at;
            for buf in blocks.iter() {
                parts.push(
                    WritePart {
                        dev: &s.dev,
                        offset: at,
                        buf,
                        len: buf.len(),
                    },
                    GFP_KERNEL,
                )?;
                at += buf.len() as u64;
            }
        }
        bdev::write_all(&parts)?;
        Self::flush_all(&devs)?;
        parts.clear();
        for s in staged.iter() {
            parts.push(
                WritePart {
                    dev: &s.dev,
                    offset: s.record_at,
                    buf: &s.record_buf,
                    len: s.record_buf.len(),
                },
                GFP_KERNEL,
            )?;
        }
        bdev::write_all(&parts)?;
        Self::flush_all(&devs)?;
        drop(parts);
        // Durable: the old nodes are unreferenced now.
        let mut inner = self.lock_pool();
        for s in staged.iter() {
            // Teardown takes the members only after the writer, which the
            // caller holds: they are all still here.
            let m = inner.members.get_mut(s.index).ok_or(ENODEV)?;
            m.set_checkpoint(s.record);
            m.retire(&s.table.retired)?;
        }
        Ok(cp)
    }

    /// Whether a checkpoint now would find buckets for every node it moves
    /// (at watermark reclaim, without waiting) with no discard first.
    pub(crate) fn checkpoint_has_room(&self) -> Result<bool> {
        let cow = {
            let tree = self.tree.lock();
            let order = tree.dirty_postorder()?;
            order.iter().filter(|&&i| !tree.nodes[i].fresh).count()
        };
        if cow == 0 {
            return Ok(true);
        }
        let each = Overrides {
            watermark: Some(Watermark::Reclaim),
            per_dev: Some(u32::try_from(cow).map_err(|_| EINVAL)?),
            ..Overrides::NONE
        };
        self.allocator().could_serve_now(Kind::Btree, each)
    }

    /// The flush ioctl: a checkpoint now.
    pub(crate) fn flush(&self) -> Result<(u64, u64)> {
        self.check_writable()?;
        let _w = self.writer.enter()?;
        self.check_writable()?;
        self.checkpoint_locked()
    }
}

/// The retiring buckets on member `dev`, sorted (the table write looks
/// each bucket up).
fn retiring_on(retiring: &[Replica], dev: usize) -> Result<KVec<u64>> {
    let mut out = KVec::new();
    for r in retiring.iter().filter(|r| r.dev as usize == dev) {
        out.push(r.bucket, GFP_KERNEL)?;
    }
    out.sort_unstable();
    Ok(out)
}
