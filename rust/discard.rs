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
//! filesystem); during a replay with `replay_discard_priority=0` it does
//! nothing. It sleeps until kicked (options changed, buckets freed, a
//! request parked) or a second passes, and stops when the volume is torn
//! down.

use crate::allocator;
use crate::bkcore::{discard_order, placement::dev_bit, stuck::WakeReason};
use crate::glue::{kthread, wake::Wake};
use crate::volume::Volume;
use kernel::{
    new_mutex,
    prelude::*,
    sync::Arc,
    sync::Mutex,
    time::{Instant, Monotonic},
};

/// How the discard thread is woken.
#[pin_data]
pub(crate) struct Discarder {
    #[pin]
    kick: Mutex<Kick>,
}

struct Kick {
    kicked: bool,
    wake: Arc<Wake>,
}

impl Discarder {
    /// A discarder with no pending kick.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let wake = Wake::new()?;
        Arc::pin_init(
            pin_init!(Self {
                kick <- new_mutex!(Kick { kicked: false, wake }),
            }),
            GFP_KERNEL,
        )
    }

    /// Makes the thread look for work now.
    pub(crate) fn kick(&self) {
        let mut k = self.kick.lock();
        k.kicked = true;
        k.wake.wake();
    }

    /// Sleeps until kicked or `ms` passed (a kick before the sleep counts).
    fn idle(&self, ms: u32) -> Result {
        let wake = Wake::new()?;
        {
            let mut k = self.kick.lock();
            k.wake = wake.clone();
            if core::mem::take(&mut k.kicked) {
                return Ok(());
            }
        }
        wake.sleep(Some(ms));
        Ok(())
    }
}

/// The thread's body.
pub(crate) struct DiscardThread {
    volume: Arc<Volume>,
}

impl DiscardThread {
    /// The body for `volume`'s discard thread.
    pub(crate) fn new(volume: Arc<Volume>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self { volume }, GFP_KERNEL)?)
    }
}

impl kthread::KthreadBody for DiscardThread {
    fn run(&self) {
        while !kthread::should_stop() {
            match self.volume.discard_batch() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => pr_err!(
                    "volume {}: discard failed (error {})\n",
                    self.volume.name(),
                    e.to_errno()
                ),
            }
            if self.volume.discarder().idle(1000).is_err() {
                break;
            }
        }
    }
}

impl Volume {
    /// Turns one batch of need_discard buckets free; `Ok(false)` when there
    /// was nothing to do.
    ///
    /// The buckets are discarded first; with `discard=0`, or on a device
    /// that cannot discard, they are released without one. A failed discard
    /// leaves them need_discard, and the device is left alone for a pause
    /// that doubles per failure in a row.
    pub(crate) fn discard_batch(&self) -> Result<bool> {
        let (pick, dev, bucket_size, buckets, issue) = {
            let mut inner = self.lock_inner();
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
            let (waiting, watermark) = inner.alloc.waiting();
            let Some(pick) = discard_order::pick(&devs, waiting, watermark, priority) else {
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
                m.dev.clone(),
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
        let mut inner = self.lock_inner();
        let name = self.name();
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
                if discard_order::log_failure(m.discard_failures) {
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
                .alloc
                .note_discard(pick.dev, runs, buckets.len() as u64, pick.starved);
        } else {
            inner.alloc.note_release(buckets.len() as u64);
        }
        if pick.starved {
            pr_info!(
                "volume {}: {} {} buckets ({} discards) on starved dev{}\n",
                self.name(),
                if runs > 0 { "discarded" } else { "released" },
                buckets.len(),
                runs,
                pick.dev
            );
        }
        allocator::grant_pass(&mut inner, dev_bit(pick.dev), WakeReason::Discard);
        Ok(true)
    }
}
