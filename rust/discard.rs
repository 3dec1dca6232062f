// SPDX-License-Identifier: GPL-2.0

//! The discard thread: turns need_discard buckets into free ones with real
//! discards to the devices, and wakes the waiters of that device.
//!
//! One kthread per volume. Each batch takes need_discard buckets of the
//! device `bkcore::discard_order` picks (the most starved one first while
//! `replay_discard_priority` is on and requests are blocked), merges
//! contiguous buckets into one discard each, issues them one at a time,
//! then marks the buckets free through the persistent path and runs a grant
//! pass for that device. With `discard=0`, and on a device that cannot
//! discard, buckets are released without one (what nodiscard means to every
//! filesystem); during a replay it serves only devices whose waiters
//! starve (`bkcore::discard_order`), and nothing at all with
//! `replay_discard_priority=0`. When no discard is left to do it runs its
//! owner's second job ([`Discards::after_discards`]: the volume's
//! re-replication). It sleeps until kicked (options changed, buckets freed, a
//! request parked) or a second passes, and stops when the volume is torn
//! down.

use crate::allocator::{self, Allocator};
use crate::bkcore::{discard_order, placement::dev_bit, stuck::WakeReason};
use crate::glue::kthread;
use crate::glue::trace;
use crate::health::Event;
use kernel::{
    prelude::*,
    sync::Arc,
    time::{Instant, Monotonic},
};

/// What owns an allocator the discard thread works for (the volume).
pub(crate) trait Discards: Send + Sync + 'static {
    /// The allocator whose need_discard buckets the thread frees.
    fn allocator(&self) -> &Allocator;

    /// The thread's second job, run when a batch found no discard to do:
    /// whether it did work and has more (the thread comes back at once
    /// instead of sleeping).
    fn after_discards(&self) -> bool {
        false
    }
}

/// The thread's body.
pub(crate) struct DiscardThread<T: Discards> {
    owner: Arc<T>,
}

impl<T: Discards> DiscardThread<T> {
    /// The body of `owner`'s discard thread.
    pub(crate) fn new(owner: Arc<T>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self { owner }, GFP_KERNEL)?)
    }
}

impl<T: Discards> kthread::KthreadBody for DiscardThread<T> {
    fn run(&self, ctx: &kthread::KthreadCtx) {
        let alloc = self.owner.allocator();
        while !ctx.should_stop() {
            match discard_batch(alloc) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => pr_err!(
                    "volume {}: discard failed (error {})\n",
                    alloc.name(),
                    e.to_errno()
                ),
            }
            // Discards first: what they free is what the second job needs.
            if self.owner.after_discards() {
                continue;
            }
            alloc.discard_kick().idle(1000);
        }
    }
}

/// Turns one batch of need_discard buckets free; `Ok(false)` when there
/// was nothing to do.
///
/// The buckets are discarded first; with `discard=0`, or on a device
/// that cannot discard, they are released without one. A failed discard
/// leaves them need_discard, and the device is left alone for a pause
/// that doubles per failure in a row.
fn discard_batch(alloc: &Allocator) -> Result<bool> {
    let (pick, dev, bucket_size, buckets, issue) = {
        let mut inner = alloc.lock();
        let priority = inner.options.replay_discard_priority();
        let discard = inner.options.discard();
        if inner.members.is_empty() || (!inner.up() && !priority) {
            return Ok(false);
        }
        let mut devs = allocator::snapshots(&inner.members)?;
        for (d, m) in devs.iter_mut().zip(inner.members.iter()) {
            // A release does not touch the device: no backoff for it.
            let pause = discard_order::backoff_ms(m.discard_failures);
            if discard
                && m.discard_failed_at
                    .is_some_and(|t| (t.elapsed().as_millis().max(0) as u64) < pause)
            {
                d.need_discard = 0;
            }
        }
        let (waiting, watermark) = inner.requests.waiting();
        let Some(pick) = discard_order::pick(
            &devs,
            waiting,
            watermark,
            priority,
            inner.replay.reinserting(),
        ) else {
            return Ok(false);
        };
        let m = inner.members.get_mut(pick.dev as usize).ok_or(EINVAL)?;
        let buckets = m.take_need_discard(pick.max_buckets)?;
        if buckets.is_empty() {
            // The counts promised some; nothing to do until they change.
            return Ok(false);
        }
        let issue = discard && !m.no_discard;
        (
            pick,
            m.dev()?.clone(),
            u64::from(m.sb.bucket_size),
            buckets,
            issue,
        )
    };
    // Contiguous buckets make one discard; one discard in flight.
    let mut runs = 0u64;
    let mut res = Ok(());
    let mut i = 0;
    while issue && i < buckets.len() && res.is_ok() {
        let mut j = i + 1;
        while j < buckets.len() && buckets[j] == buckets[j - 1] + 1 {
            j += 1;
        }
        res = dev.discard(buckets[i] * bucket_size, (j - i) as u64 * bucket_size);
        runs += 1;
        i = j;
    }
    if issue {
        let err = res.as_ref().err().map_or(0, |e| e.to_errno());
        trace::discard(
            alloc.uuid(),
            pick.dev,
            buckets[0],
            buckets.len() as u64,
            err,
        );
    }
    let mut inner = alloc.lock();
    let name = alloc.name();
    let m = inner.members.get_mut(pick.dev as usize).ok_or(ENODEV)?;
    match res {
        Err(e) if e == EOPNOTSUPP => {
            pr_warn!(
                "volume {}: dev{} ({}) cannot discard: freed buckets are released without a discard\n",
                name,
                pick.dev,
                &*m.path
            );
            m.no_discard = true;
            runs = 0;
        }
        Err(e) => {
            m.end_discard(&buckets, false)?;
            m.discard_failures = m.discard_failures.saturating_add(1);
            let pause = discard_order::backoff_ms(m.discard_failures);
            m.discard_failed_at = Some(Instant::<Monotonic>::now());
            let tell = discard_order::log_failure(m.discard_failures);
            if tell {
                pr_warn!(
                    "volume {}: dev{} ({}): discard failed (error {}, {} in a row); its {} need_discard buckets wait, next try in {} ms\n",
                    name,
                    pick.dev,
                    &*m.path,
                    e.to_errno(),
                    m.discard_failures,
                    m.count(crate::bkcore::buckets::BucketState::NeedDiscard),
                    pause
                );
            }
            drop(inner);
            if tell {
                // As rate-limited as the log line.
                alloc.tell(Event::DiscardError {
                    dev: pick.dev,
                    errno: e.to_errno(),
                });
            }
            return Ok(true);
        }
        Ok(()) => {
            if m.discard_failures > 0 && issue {
                pr_info!(
                    "volume {}: dev{}: discards work again after {} failures\n",
                    name,
                    pick.dev,
                    m.discard_failures
                );
            }
            if issue {
                m.discard_failures = 0;
                m.discard_failed_at = None;
            }
        }
    }
    m.end_discard(&buckets, true)?;
    if runs > 0 {
        inner
            .requests
            .note_discard(pick.dev, runs, buckets.len() as u64, pick.starved);
    } else {
        inner.requests.note_release(buckets.len() as u64);
    }
    if pick.starved {
        pr_info!(
            "volume {}: {} {} buckets ({} discards) on starved dev{}\n",
            alloc.name(),
            if runs > 0 { "discarded" } else { "released" },
            buckets.len(),
            runs,
            pick.dev
        );
    }
    allocator::grant_pass(&mut inner, dev_bit(pick.dev), WakeReason::Discard);
    Ok(true)
}
