// SPDX-License-Identifier: GPL-2.0

//! Re-replication: btree nodes with fewer readable replicas (on `rw` or
//! `ro` members) than the volume's `metadata_replicas` are rewritten to
//! more devices when space allows. After bcachefs #1108's recovery (the
//! option lowered so a wedged replay proceeds, or a waiter degraded at its
//! deadline) nodes have one copy; writing `metadata_replicas=2` back brings
//! the second with no other action.
//!
//! The discard thread's second job, after its discards, once replay is
//! done. In this copy-on-write tree a rewrite is a mark and a checkpoint:
//! [`Tree::mark_rewrite`] dirties a batch of short nodes and their paths,
//! and the checkpoint moves them to buckets allocated with the current
//! `metadata_replicas` and retires the old ones, as for any insert. It
//! never takes what foreground work needs: a batch (16, halved until it
//! fits) goes only if its buckets fit at watermark normal, the reserves
//! staying for inserts and checkpoints; nothing runs while a request
//! waits; and the btree writer is only taken when free, so no insert ever
//! waits behind it or it behind one. `rereplicate` in sysfs shows the
//! progress, and the `replicated` uevent says when the last short node is
//! rewritten.
//!
//! [`Tree::mark_rewrite`]: crate::btree::Tree::mark_rewrite

use crate::bkcore::{
    placement::{dev_bit, Kind},
    request::Overrides,
    watermark::Watermark,
};
use crate::health::{Changed, Event, RereplicateState};
use crate::volume::Volume;
use kernel::prelude::*;

/// Most short nodes marked for one checkpoint.
const BATCH: usize = 16;

impl Volume {
    /// One re-replication pass; whether it rewrote nodes and more are
    /// short (the thread then comes back at once). Errors are logged: the
    /// next wake tries again.
    pub(crate) fn rereplicate(&self) -> bool {
        self.rereplicate_pass().unwrap_or_else(|e| {
            pr_warn!(
                "volume {}: re-replication failed (error {}); tried again later\n",
                self.name(),
                e.to_errno()
            );
            false
        })
    }

    /// [`Volume::rereplicate`]'s work.
    fn rereplicate_pass(&self) -> Result<bool> {
        let (want, readable, opts_gen, clean_at) = {
            let inner = self.lock_pool();
            // Never during replay, nor while anything waits for buckets.
            if !inner.up()
                || inner.closing
                || inner.members.is_empty()
                || inner.read_only.is_some()
                || inner.requests.waiters.len() != 0
            {
                return Ok(false);
            }
            let mut readable = 0;
            for (d, m) in inner.members.iter().enumerate() {
                if m.state.readable() && !m.is_missing() {
                    readable |= dev_bit(u32::try_from(d).map_err(|_| EINVAL)?);
                }
            }
            (
                inner.options.metadata_replicas(),
                readable,
                inner.opts_gen,
                inner.rereplicate.clean_at,
            )
        };
        // Neither the options (member states included) nor the tree on
        // disk changed since a scan found every node replicated.
        let generation = self.tree.lock().checkpoint.map_or(0, |c| c.generation);
        if clean_at == Some((opts_gen, generation)) {
            return Ok(false);
        }
        let Some(_w) = self.writer.try_enter() else {
            // An insert or a checkpoint writes: the next wake tries again.
            return Ok(false);
        };
        let mut tree = self.tree.lock();
        let (_, total) = tree.under_replicated(want, readable);
        if total == 0 {
            let clean = (opts_gen, tree.checkpoint.map_or(0, |c| c.generation));
            drop(tree);
            self.rereplicate_status(0, 0, Some(clean));
            return Ok(false);
        }
        let mut batch = BATCH;
        while batch > 0 {
            let cost = tree.rewrite_cost(batch, want, readable)?;
            let normal = Overrides {
                watermark: Some(Watermark::Normal),
                per_dev: Some(u32::try_from(cost.max(1)).map_err(|_| EINVAL)?),
                ..Overrides::NONE
            };
            // The tree before the pool, which this takes.
            if self.allocator().could_serve_now(Kind::Btree, normal)? {
                // Marks none when every short node moves anyway: the
                // checkpoint alone rewrites them.
                tree.mark_rewrite(batch, want, readable)?;
                break;
            }
            batch /= 2;
        }
        drop(tree);
        if batch == 0 {
            // No room at watermark normal: again when space is freed.
            self.rereplicate_status(total, 0, None);
            return Ok(false);
        }
        self.rereplicate_status(total, 0, None);
        self.checkpoint_locked()?;
        let (left, gen) = {
            let tree = self.tree.lock();
            let gen = tree.checkpoint.map_or(0, |c| c.generation);
            (tree.under_replicated(want, readable).1, gen)
        };
        let clean = (left == 0).then_some((opts_gen, gen));
        self.rereplicate_status(left, total.saturating_sub(left), clean);
        Ok(left > 0 && left < total)
    }

    /// Records a scan's result in `rereplicate`, wakes its pollers, and
    /// tells of a volume fully replicated again. `clean` is where nothing
    /// is short.
    fn rereplicate_status(&self, pending: u64, rewritten: u64, clean: Option<(u64, u64)>) {
        let (was, now, done) = {
            let mut inner = self.lock_pool();
            let r = &mut inner.rereplicate;
            let was = r.state;
            r.clean_at = clean;
            let changed = r.update(pending, rewritten);
            let (now, done) = (r.state, r.done);
            if changed {
                inner.changed(Changed::Rereplicate);
            }
            (was, now, done)
        };
        if was != RereplicateState::Running && now == RereplicateState::Running {
            pr_info!(
                "volume {}: re-replication: {} btree nodes have fewer replicas than metadata_replicas\n",
                self.name(),
                pending
            );
        }
        if was == RereplicateState::Running && now == RereplicateState::Done {
            pr_info!(
                "volume {}: re-replication done: every btree node is fully replicated again ({} rewritten)\n",
                self.name(),
                done
            );
            // With no lock held: the uevent may sleep.
            self.allocator().tell(Event::Replicated);
        }
    }
}
