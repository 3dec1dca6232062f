// SPDX-License-Identifier: GPL-2.0

//! Recovery at register, after the members validate and the volume's
//! sysfs directory exists, before the volume is up:
//!
//! 1. load the btree from the newest checkpoint of any member;
//! 2. scan the journal; apply its bucket state records (absolute states);
//! 3. reconcile: a bucket the tree references is btree (a crash inside a
//!    checkpoint may have written it as need_discard), a btree bucket it
//!    does not reference becomes need_discard (a split or a checkpoint
//!    that never landed);
//! 4. with `replay_discard_priority=1`, start the discard thread now;
//! 5. re-insert every journaled key, in order, through the insert path:
//!    a split allocates and may block there, like any request, with the
//!    same ways out (options change, discards, abort, deadline);
//! 6. checkpoint, so the journal is trimmed.
//!
//! Until step 6 nothing is written: if replay fails, the register write
//! returns the error, the devices are released, and the next register
//! replays from the same point.

use crate::bkcore::{
    buckets::BucketState,
    format::{checkpoint::MAX_PENDING, Record},
    uuid::Hyphenated,
};
use crate::fmt::Core;
use crate::glue::trace;
use crate::health::{Changed, Event, Phase};
use crate::member;
use crate::volume::Volume;
use kernel::{prelude::*, sync::Arc};

impl Volume {
    /// Recovers the volume (see the module documentation).
    // Not inlined into register, whose frame would grow by its own.
    #[inline(never)]
    pub(crate) fn recover(self: &Arc<Self>) -> Result {
        let res = self.recover_steps();
        let mut inner = self.lock_pool();
        match &res {
            Ok(()) => {
                inner.replay.finish(Phase::Done, 0);
                // Bulk discards may run now.
                self.discarder().kick();
            }
            Err(e) => inner.replay.finish(Phase::Failed, e.to_errno()),
        }
        inner.changed(Changed::Replay);
        trace::replay(
            self.uuid(),
            inner.replay.replayed,
            inner.replay.total,
            inner.replay.phase as u32,
        );
        let (replayed, total, ms) = (
            inner.replay.replayed,
            inner.replay.total,
            inner.replay.elapsed_ms(),
        );
        drop(inner);
        self.allocator().tell(match &res {
            Ok(()) => Event::ReplayDone,
            Err(e) => Event::ReplayFailed {
                errno: e.to_errno(),
            },
        });
        match &res {
            Ok(()) if total > 0 => pr_info!(
                "volume {}: replayed {} keys in {} ms\n",
                self.name(),
                replayed,
                ms
            ),
            Ok(()) => {}
            Err(e) => pr_err!(
                "volume {}: replay failed after {} of {} keys (error {}); nothing was written, the next register replays again\n",
                self.name(),
                replayed,
                total,
                e.to_errno()
            ),
        }
        res
    }

    fn recover_steps(self: &Arc<Self>) -> Result {
        // Steps 1 and 2 read without `inner`, which every sysfs file
        // takes: `cat replay` answers `pending` while they read.
        let (cp, disks, cache) = {
            let inner = self.lock_pool();
            let cp = inner
                .members
                .iter()
                .filter_map(|m| m.checkpoint())
                .max_by_key(|c| c.generation)
                .ok_or(EINVAL)?;
            let cache = inner.options.btree_cache_bytes();
            (cp, member::disks(&inner.members)?, cache)
        };
        // 1. The btree of the newest checkpoint.
        self.tree.lock().load(cp, *self.uuid(), &disks, cache)?;
        // 2. The journal.
        let scan = self.journal.lock().scan(cp.journal_seq, &disks)?;
        // The tree reads evicted leaves from them.
        self.tree.lock().attach(disks);
        // A write of btree_cache_size since the value load used wins.
        let cache = self.lock_pool().options.btree_cache_bytes();
        self.tree.lock().set_limit(cache);
        let mut keys = 0u64;
        {
            let mut inner = self.lock_pool();
            if inner.closing || inner.members.is_empty() {
                // Unregistered while it read.
                return Err(ENODEV);
            }
            for r in scan.records.iter() {
                match *r {
                    Record::Insert { .. } => keys += 1,
                    Record::BucketState {
                        member,
                        bucket,
                        state,
                    } if inner.absent.is_missing(member as usize) => {
                        // Kept for it by every checkpoint until it returns.
                        if inner.absent.note(member, bucket, state).is_err() {
                            pr_err!(
                                "volume {}: member {} is missing with more than {} bucket state changes its alloc table lacks, more than a checkpoint keeps; register it too\n",
                                self.name(),
                                member,
                                MAX_PENDING
                            );
                            return Err(ENOSPC);
                        }
                    }
                    Record::BucketState {
                        member,
                        bucket,
                        state,
                    } => {
                        let m = inner.members.get_mut(member as usize);
                        if m.and_then(|m| m.force_state(bucket, state).ok()).is_none() {
                            pr_err!(
                                "volume {}: journal: bucket state record for member {} bucket {} ({}) does not apply\n",
                                self.name(),
                                member,
                                bucket,
                                state.name()
                            );
                            return Err(EINVAL);
                        }
                    }
                }
            }
            inner.replay.total = keys;
        }
        // 3. Reconcile.
        let fixed = self.reconcile()?;
        // 4. Discards first, if asked.
        if self.lock_pool().options.replay_discard_priority() {
            self.start_discard()?;
        }
        // 5. Re-insert, in order.
        {
            let mut inner = self.lock_pool();
            inner.replay.begin();
            inner.changed(Changed::Replay);
        }
        if keys > 0 {
            pr_info!(
                "volume {}: replaying {} keys from {} journal entries after checkpoint {} (journal_seq {})\n",
                self.name(),
                keys,
                scan.entries,
                cp.generation,
                cp.journal_seq
            );
        }
        {
            let _w = self.writer.enter_always();
            for r in scan.records.iter() {
                if let Record::Insert { key, value } = *r {
                    self.insert_locked(key, value, false)?;
                    let mut inner = self.lock_pool();
                    inner.replay.replayed += 1;
                    let (done, total) = (inner.replay.replayed, inner.replay.total);
                    drop(inner);
                    trace::replay(self.uuid(), done, total, Phase::Running as u32);
                }
            }
            // Bulk discards wait for the volume to be up, unless the
            // checkpoint below, which takes its buckets without waiting
            // (`bkcore::discard_order`), needs their room.
            if !self.checkpoint_has_room()? {
                self.lock_pool().replay.keys_done();
                self.discarder().kick();
            }
            // 6. Make it durable; without room, the journal still has it.
            let repaired = self.tree.lock().repaired;
            if repaired > 0 {
                pr_warn!(
                    "volume {}: {} btree nodes had a bad replica; the checkpoint after replay rewrites them\n",
                    self.name(),
                    repaired
                );
            }
            // A member gone missing or back (the last checkpoint says
            // otherwise): on disk before anything else changes, so a later
            // register can tell which history is whose.
            let on_disk = self.tree.lock().checkpoint.map(|c| c.missing);
            if on_disk != Some(self.lock_pool().absent.missing) {
                self.checkpoint_locked().inspect_err(|e| {
                    pr_err!(
                        "volume {}: the checkpoint recording missing or returning members failed (error {}); register refused\n",
                        self.name(),
                        e.to_errno()
                    );
                })?;
            } else if keys > 0 || fixed > 0 || scan.entries > 0 || repaired > 0 {
                if let Err(e) = self.checkpoint_locked() {
                    pr_warn!(
                        "volume {}: checkpoint after replay failed (error {}); the journal keeps the replayed entries\n",
                        self.name(),
                        e.to_errno()
                    );
                }
            }
        }
        self.start_discard()?;
        if self.lock_pool().closing {
            // Unregistered meanwhile: the volume never came up.
            return Err(ENODEV);
        }
        Ok(())
    }

    /// Makes bucket states agree with the tree; returns how many changed.
    fn reconcile(&self) -> Result<u64> {
        let tree = self.tree.lock();
        let mut inner = self.lock_pool();
        let n = inner.members.len();
        let mut used: KVec<KVec<u64>> = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            used.push(KVec::new(), GFP_KERNEL)?;
        }
        for r in tree.replicas() {
            used.get_mut(r.dev as usize)
                .ok_or(EINVAL)?
                .push(r.bucket, GFP_KERNEL)?;
        }
        let mut fixed = 0u64;
        for (d, m) in inner.members.iter_mut().enumerate() {
            let mine = &mut used[d];
            mine.sort_unstable();
            if let Some(w) = mine.windows(2).find(|w| w[0] == w[1]) {
                pr_err!(
                    "{}: bucket {} is referenced by two btree nodes\n",
                    &*m.path,
                    w[0]
                );
                return Err(EINVAL);
            }
            if m.is_missing() {
                // No table to reconcile: it is, when the member is back.
                continue;
            }
            for &b in mine.iter() {
                match m.state(b) {
                    Some(BucketState::Btree) => {}
                    Some(BucketState::Free | BucketState::NeedDiscard) => {
                        m.force_state(b, BucketState::Btree)?;
                        fixed += 1;
                    }
                    s => {
                        pr_err!(
                            "{}: bucket {} is referenced by the btree but is {}\n",
                            &*m.path,
                            b,
                            s.map_or("out of range", |s| s.name())
                        );
                        return Err(EINVAL);
                    }
                }
            }
            let mut leaked = 0u64;
            for b in m.buckets_in(BucketState::Btree)?.iter() {
                if mine.binary_search(b).is_err() {
                    m.force_state(*b, BucketState::NeedDiscard)?;
                    leaked += 1;
                }
            }
            if leaked > 0 {
                pr_info!(
                    "{}: {} btree buckets no node uses (a split or checkpoint that never landed) are need_discard now\n",
                    &*m.path,
                    leaked
                );
            }
            fixed += leaked;
        }
        if fixed > 0 {
            pr_info!(
                "volume {}: reconciled {} bucket states with the btree\n",
                Core(Hyphenated(self.uuid())),
                fixed
            );
        }
        Ok(fixed)
    }
}
