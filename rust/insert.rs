// SPDX-License-Identifier: GPL-2.0

//! The write paths users reach through `/dev/bkalloc`: key inserts and
//! lookups, and bucket allocs and frees made durable through the journal.
//!
//! An insert, under the btree writer lock: buckets for the nodes a split
//! will need (through the allocator, where it can block), then its record
//! in the open journal entry, then the tree in memory; after the lock, the
//! wait for the entry to be durable (group commit, see `journal.rs`). A
//! failed or aborted allocation leaves nothing behind, not even a journal
//! record. Replay takes the same path without the journal steps.

use crate::allocator::Grant;
use crate::bkcore::{
    buckets::BucketState,
    format::{BtreePtr, Record, Value},
    placement::Kind,
    request::Overrides,
};
use crate::checkpoint::ptr_of;
use crate::volume::Volume;
use kernel::prelude::*;

impl Volume {
    /// Inserts (or overwrites) `key`; returns the journal sequence number
    /// that made it durable.
    ///
    /// The writer is held while the tree changes in memory and the record
    /// joins the open journal entry, not while the entry is written: the
    /// inserts that come meanwhile share its successor and its flushes. A
    /// lookup may see the key before it is durable, as a read sees a page
    /// before it is written back; and if the entry's write fails (the
    /// volume goes read-only) the key stays readable until unregister,
    /// while what the next register finds is what reached the disk.
    pub(crate) fn insert(&self, key: u64, value: Value) -> Result<u64> {
        // Checked before the writer lock too: during replay, EAGAIN at once.
        self.check_writable()?;
        let seq = {
            let _w = self.writer.enter()?;
            self.check_writable()?;
            self.insert_locked(key, value, true)?
        };
        self.commit(seq)?;
        Ok(seq)
    }

    /// Inserts with the writer lock held; `journal` is false during replay
    /// (the key is in the journal already). Returns the sequence number of
    /// the journal entry the record joined, durable once
    /// [`Volume::commit`] of it returns (0 without journal).
    pub(crate) fn insert_locked(&self, key: u64, value: Value, journal: bool) -> Result<u64> {
        let need = self.tree.lock().nodes_needed(key).inspect_err(|e| {
            if *e == ENOSPC {
                pr_warn!(
                    "volume {}: key {} refused: the btree is at the deepest level its format encodes\n",
                    self.name(),
                    key
                );
            }
        })?;
        let mut locs: KVec<BtreePtr> = KVec::with_capacity(need, GFP_KERNEL)?;
        for _ in 0..need {
            // The split's request: metadata_replicas distinct devices at
            // watermark btree, rebuilt if the options change while it waits.
            let grant = self.allocator().allocate(Kind::Btree, Overrides::NONE);
            match grant.and_then(|g| ptr_of(&g)) {
                Ok(p) => locs.push(p, GFP_KERNEL)?,
                Err(e) => {
                    self.drop_node_buckets(&locs);
                    return Err(e);
                }
            }
        }
        // What the tree change needs is allocated before the record joins
        // an entry: once journaled, the change must not fail.
        let prepared = match self.tree.lock().prepare_insert(key, &locs) {
            Ok(p) => p,
            Err(e) => {
                self.tree.lock().unpin();
                self.drop_node_buckets(&locs);
                return Err(e);
            }
        };
        let seq = if journal {
            match self.add_locked(&[Record::Insert { key, value }]) {
                Ok(seq) => seq,
                Err(e) => {
                    self.tree.lock().unpin();
                    self.drop_node_buckets(&locs);
                    return Err(e);
                }
            }
        } else {
            0
        };
        let writeback = {
            let mut tree = self.tree.lock();
            tree.apply_insert(key, value, prepared)?;
            tree.wants_writeback()
        };
        // Dirty leaves alone fill the node cache: write them so it can
        // evict (not during replay, whose keys are not all back yet). The
        // insert is done whatever happens here: a failure only leaves the
        // cache past its bound until a checkpoint succeeds.
        if writeback && journal {
            if let Err(e) = self.checkpoint_locked() {
                self.tree.lock().writeback_failed();
                pr_warn!(
                    "volume {}: checkpoint for the btree cache failed (error {}); dirty leaves stay in memory past btree_cache_size until one succeeds\n",
                    self.name(),
                    e.to_errno()
                );
            }
        }
        Ok(seq)
    }

    /// Adds `records` to the open journal entry (see [`Journal::add`] for
    /// `unapplied`); while the journal is full, makes room with
    /// `checkpoint` and tries again. Returns the entry's sequence number.
    ///
    /// [`Journal::add`]: crate::journal::Journal::add
    fn add_or(
        &self,
        records: &[Record],
        unapplied: bool,
        checkpoint: impl Fn() -> Result<(u64, u64)>,
    ) -> Result<u64> {
        loop {
            match self.journal.add(records, unapplied) {
                Ok(Some(seq)) => return Ok(seq),
                Ok(None) => {
                    checkpoint()?;
                }
                Err(e) => return Err(self.journal_failed(e)),
            }
        }
    }

    /// Adds with the writer lock held.
    fn add_locked(&self, records: &[Record]) -> Result<u64> {
        self.add_or(records, false, || self.checkpoint_locked())
    }

    /// Adds without the writer lock (taken if a checkpoint is needed).
    fn add(&self, records: &[Record], unapplied: bool) -> Result<u64> {
        self.add_or(records, unapplied, || {
            let _w = self.writer.enter()?;
            self.checkpoint_locked()
        })
    }

    /// Waits until journal entry `seq` is durable, writing it if no other
    /// caller is (see [`Journal::commit`]).
    ///
    /// [`Journal::commit`]: crate::journal::Journal::commit
    pub(crate) fn commit(&self, seq: u64) -> Result {
        self.journal.commit(seq).map_err(|e| self.journal_failed(e))
    }

    /// `e` from the journal; a failed entry write makes the volume
    /// read-only, named by that write's error (not EROFS, which later
    /// callers see).
    fn journal_failed(&self, e: Error) -> Error {
        let failed = self.journal.lock().io_error();
        if let Some(write_error) = failed {
            self.go_read_only("journal write", write_error);
        }
        e
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: u64) -> Result<Option<Value>> {
        self.check_up()?;
        self.tree.lock().get(key)
    }

    /// Journals the new state of every bucket of `grant` (`unapplied`: the
    /// caller changes the states in memory after, then marks it applied).
    fn journal_states(
        &self,
        grant: &[(u32, u64)],
        state: BucketState,
        unapplied: bool,
    ) -> Result<u64> {
        let mut records = KVec::with_capacity(grant.len(), GFP_KERNEL)?;
        for &(member, bucket) in grant {
            records.push(
                Record::BucketState {
                    member,
                    bucket,
                    state,
                },
                GFP_KERNEL,
            )?;
        }
        let seq = self.add(&records, unapplied)?;
        if let Err(e) = self.commit(seq) {
            // Never written (the journal failed or closed): nothing of it
            // will be applied.
            if unapplied {
                self.applied(seq, grant.len());
            }
            return Err(e);
        }
        Ok(seq)
    }

    /// An allocation for a user of `/dev/bkalloc`: durable when it returns.
    /// The buckets are the user's, whatever the kind: a btree-kind request
    /// only asks what a btree node would (see [`Overrides::for_user`]), so
    /// replay, which takes back tree buckets no node uses, leaves them be.
    ///
    /// The grant stays open (free on disk) until its journal record is
    /// durable, and the record stays outside every checkpoint until the
    /// buckets are user in memory: a checkpoint in between writes them free
    /// and replay applies the record. Had they been user first, a journal
    /// write that failed after such a checkpoint would leave them user on
    /// disk with no owner.
    pub(crate) fn alloc_for_user(&self, kind: Kind, overrides: Overrides) -> Result<Grant> {
        self.check_writable()?;
        let overrides = Overrides {
            for_user: true,
            ..overrides
        };
        let grant = self.allocator().allocate(kind, overrides)?;
        let seq = match self.journal_states(&grant, BucketState::User, true) {
            Ok(seq) => seq,
            Err(e) => {
                // Not durable, not the caller's: the buckets go back.
                self.allocator().release_grant(&grant);
                return Err(e);
            }
        };
        let res = self.allocator().commit_grant(&grant, BucketState::User);
        self.applied(seq, grant.len());
        res.map(|()| grant)
    }

    /// A free for a user of `/dev/bkalloc`: durable when it returns. Only
    /// user buckets can be freed this way (never a tree node's, nor one that
    /// is free already). The record goes to the journal before the buckets
    /// become need_discard in memory, so the discard thread only ever sees
    /// a durable free; until they are, no checkpoint covers the record (its
    /// alloc table would still say user, and replay would skip the free).
    pub(crate) fn free_for_user(&self, buckets: &[(u32, u64)]) -> Result {
        self.check_writable()?;
        {
            let inner = self.lock_pool();
            for &(dev, b) in buckets {
                let m = inner.members.get(dev as usize).ok_or(EINVAL)?;
                if m.is_missing() {
                    // Its table is not here to say what the bucket is.
                    pr_err!(
                        "volume {}: free of bucket {} on member {}: the member is missing; free it once it is back\n",
                        self.name(),
                        b,
                        dev
                    );
                    return Err(ENXIO);
                }
                if !m.state(b).is_some_and(BucketState::freeable_by_user) {
                    return Err(EINVAL);
                }
            }
        }
        let seq = self.journal_states(buckets, BucketState::NeedDiscard, true)?;
        let res = self.allocator().free_buckets(buckets);
        self.applied(seq, buckets.len());
        res
    }

    /// `records` records of entry `seq` are applied in memory.
    fn applied(&self, seq: u64, records: usize) {
        let mut journal = self.journal.lock();
        for _ in 0..records {
            journal.applied(seq);
        }
    }
}
