// SPDX-License-Identifier: GPL-2.0

//! Closure-style wait lists, the one place of bkalloc's wait/wake protocol.
//!
//! A [`WaitList`] lives inside the state it waits on and is only touched
//! under that state's lock `L` (the allocator's mutex).
//!
//! 1. **Check, then park, under `L`.** A requester tries to get what it
//!    needs; if it cannot, it [`park`](WaitList::park)s before dropping `L`:
//!    its waiter is appended with a FIFO ticket, the mask of devices it could
//!    use, and its task. It sleeps with [`Sleep::sleep`], which sets its task
//!    state before dropping `L` and sleeps while the waiter is still parked.
//!    A waker changes the waiter's state under `L` and wakes its task, so a
//!    wake between dropping `L` and sleeping is not lost, and a park
//!    allocates nothing but its place in the list.
//! 2. **Grants are FIFO.** When buckets become available on some devices,
//!    the waker calls [`grant`](WaitList::grant) under `L`: it offers the
//!    resources to parked waiters in ticket order, and a waiter is skipped
//!    while an earlier waiter that is still waiting wants one of its devices.
//!    A later waiter never overtakes an earlier one on a shared device, and
//!    a newcomer parks first and is granted through the same pass, so it
//!    cannot barge in either. A device wake only considers waiters whose
//!    mask has that device; the others are not woken at all.
//! 3. **Wake all.** [`wake_all`](WaitList::wake_all) (options changed,
//!    unregister) and [`wake_one`](WaitList::wake_one) (abort of one id)
//!    mark waiters woken with a reason and wake them. They keep their place
//!    in the queue: each one takes `L`, looks at the reason (and, for
//!    options, rebuilds its request), and either leaves or
//!    [`repark`](WaitList::repark)s in the same position.
//! 4. **Leaving.** A waiter that times out, is killed, aborted, or granted
//!    takes `L` and [`remove`](WaitList::remove)s itself; that wakes nobody.
//!    Because it may have blocked later waiters, the caller then runs a
//!    grant pass.
//!
//! Sleeps are killable and bounded by the caller's timeout; see
//! [`Sleep::sleep`]. A background thread (the discard thread) waits on a
//! [`Kick`] instead: rung by whoever makes work for it.

use crate::bkcore::stuck::WakeReason;
use crate::glue::wake::{Sleep, Slept};
use kernel::{current, new_mutex, prelude::*, sync::aref::ARef, sync::Mutex, task::Task};

/// Where a waiter stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitState {
    /// Waiting for a grant.
    Parked,
    /// Woken for this reason; has not looked yet.
    Woken(WakeReason),
    /// Its request was granted; it has not collected the grant yet.
    Granted,
}

/// One blocked request.
pub(crate) struct Waiter<T> {
    /// Unique id (FIFO ticket), for `waiters` and `abort_waiting`.
    pub(crate) id: u64,
    /// Devices the request could use (bit per member index).
    pub(crate) mask: u64,
    /// The caller's request.
    pub(crate) data: T,
    /// Where it stands.
    pub(crate) state: WaitState,
    /// Times woken (grants and wakes).
    pub(crate) woken: u32,
    /// Why it was last woken.
    pub(crate) last_wake: WakeReason,
    /// The task that sleeps on it.
    task: ARef<Task>,
}

impl<T> Waiter<T> {
    /// Wakes to `Woken(reason)` or `Granted`; an unseen abort stays (see
    /// [`WakeReason::then`]).
    fn wake(&mut self, state: WaitState, reason: WakeReason) {
        let (state, reason) = match (self.state, state) {
            (WaitState::Woken(pending), WaitState::Woken(new)) => {
                let r = pending.then(new);
                (WaitState::Woken(r), r)
            }
            _ => (state, reason),
        };
        self.state = state;
        self.woken = self.woken.saturating_add(1);
        self.last_wake = reason;
        self.task.wake_up();
    }
}

/// A FIFO list of blocked requests; see the module documentation.
pub(crate) struct WaitList<T> {
    next_id: u64,
    waiters: KVec<Waiter<T>>,
}

impl<T> WaitList<T> {
    /// An empty list.
    pub(crate) fn new() -> Self {
        Self {
            next_id: 1,
            waiters: KVec::new(),
        }
    }

    /// Appends a waiter for the current task; returns its id.
    pub(crate) fn park(&mut self, mask: u64, data: T) -> Result<u64> {
        let task: &Task = current!();
        let id = self.next_id;
        self.waiters.push(
            Waiter {
                id,
                mask,
                data,
                state: WaitState::Parked,
                woken: 0,
                last_wake: WakeReason::None,
                task: task.into(),
            },
            GFP_KERNEL,
        )?;
        self.next_id += 1;
        Ok(id)
    }

    /// Parks a woken waiter again in its old place, with a new mask.
    pub(crate) fn repark(&mut self, id: u64, mask: u64) -> Result {
        let w = self.get_mut(id).ok_or(ENOENT)?;
        w.mask = mask;
        w.state = WaitState::Parked;
        Ok(())
    }

    /// Whether waiter `id` is parked (not woken or granted yet).
    pub(crate) fn is_parked(&self, id: u64) -> bool {
        self.waiters
            .iter()
            .any(|w| w.id == id && w.state == WaitState::Parked)
    }

    /// Wakes every waiter that is not granted yet; returns how many.
    pub(crate) fn wake_all(&mut self, reason: WakeReason) -> usize {
        let mut n = 0;
        for w in self.waiters.iter_mut() {
            if w.state != WaitState::Granted {
                w.wake(WaitState::Woken(reason), reason);
                n += 1;
            }
        }
        n
    }

    /// Wakes waiter `id` (if waiting) with `reason`.
    pub(crate) fn wake_one(&mut self, id: u64, reason: WakeReason) -> bool {
        match self.get_mut(id) {
            Some(w) if w.state != WaitState::Granted => {
                w.wake(WaitState::Woken(reason), reason);
                true
            }
            _ => false,
        }
    }

    /// Offers resources to parked waiters in FIFO order: `try_grant` is
    /// called for each parked waiter whose mask meets `devs` and that no
    /// earlier waiter still waiting blocks; when it returns true the waiter
    /// is granted and woken with `reason`. Returns the number granted.
    pub(crate) fn grant(
        &mut self,
        devs: u64,
        reason: WakeReason,
        mut try_grant: impl FnMut(&mut T) -> bool,
    ) -> usize {
        let mut blocked = 0u64;
        let mut n = 0;
        for w in self.waiters.iter_mut() {
            match w.state {
                WaitState::Granted => continue,
                WaitState::Woken(_) => {
                    // It will retry itself: keep its place.
                    blocked |= w.mask;
                    continue;
                }
                WaitState::Parked => {}
            }
            if w.mask & blocked == 0 && w.mask & devs != 0 && try_grant(&mut w.data) {
                w.wake(WaitState::Granted, reason);
                n += 1;
            } else {
                blocked |= w.mask;
            }
        }
        n
    }

    /// Removes waiter `id` without waking anyone.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Waiter<T>> {
        let pos = self.waiters.iter().position(|w| w.id == id)?;
        self.waiters.remove(pos).ok()
    }

    /// Waiter `id`.
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Waiter<T>> {
        self.waiters.iter_mut().find(|w| w.id == id)
    }

    /// The waiters, in FIFO order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Waiter<T>> {
        self.waiters.iter()
    }

    /// Number of waiters.
    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }
}

/// A doorbell for a background thread: anyone rings it, the thread idles
/// until rung or a timeout passes. A ring while the thread works is kept
/// for its next idle.
#[pin_data]
pub(crate) struct Kick {
    #[pin]
    rung: Mutex<Rung>,
    #[pin]
    sleep: Sleep,
}

struct Rung {
    kicked: bool,
    /// The thread, while it idles.
    idler: Option<ARef<Task>>,
}

impl Kick {
    /// A doorbell not yet rung.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            rung <- new_mutex!(Rung {
                kicked: false,
                idler: None,
            }),
            sleep <- Sleep::new(),
        })
    }

    /// Makes the thread look for work now.
    pub(crate) fn kick(&self) {
        let mut r = self.rung.lock();
        r.kicked = true;
        if let Some(t) = &r.idler {
            t.wake_up();
        }
    }

    /// Sleeps until kicked, woken (`kthread_stop()` wakes it) or `ms`
    /// passed; a kick before the sleep counts. `Killed` when a fatal signal
    /// ended it.
    pub(crate) fn idle(&self, ms: u32) -> Slept {
        let mut r = self.rung.lock();
        let task: &Task = current!();
        r.idler = Some(task.into());
        let (mut r, slept) = self.sleep.sleep(r, Some(ms), |r| !r.kicked);
        r.kicked = false;
        r.idler = None;
        slept
    }
}

#[kunit_tests(bkalloc_waitlist)]
mod tests {
    use super::*;
    use kernel::{sync::Arc, workqueue};

    #[test]
    fn fifo_order_on_a_shared_device() -> Result {
        let mut l = WaitList::new();
        let a = l.park(0b1, 1u32)?;
        let b = l.park(0b1, 2u32)?;
        let c = l.park(0b1, 3u32)?;
        // Room for exactly one grant per pass: the earliest wins each time.
        let mut order = KVec::new();
        for _ in 0..3 {
            let mut budget = 1;
            let mut got = 0;
            l.grant(0b1, WakeReason::BucketsFreed, |d| {
                if budget == 0 {
                    return false;
                }
                budget -= 1;
                got = *d;
                true
            });
            order.push(got, GFP_KERNEL)?;
            let id = l
                .iter()
                .find(|w| w.state == WaitState::Granted)
                .map(|w| w.id);
            l.remove(id.ok_or(EINVAL)?);
        }
        assert_eq!(&order[..], &[1, 2, 3]);
        assert!(a < b && b < c);
        Ok(())
    }

    #[test]
    fn no_overtaking_while_an_earlier_waiter_blocks() -> Result {
        let mut l = WaitList::new();
        // The first needs devices 0 and 1 and cannot be served; the second
        // only needs device 1 but must not overtake it; the third uses
        // device 2 only and goes ahead.
        l.park(0b011, 0u32)?;
        l.park(0b010, 1u32)?;
        let third = l.park(0b100, 2u32)?;
        let n = l.grant(0b111, WakeReason::BucketsFreed, |d| *d != 0);
        assert_eq!(n, 1);
        let granted = l.iter().filter(|w| w.state == WaitState::Granted).count();
        assert_eq!(granted, 1);
        assert_eq!(l.get_mut(third).map(|w| w.state), Some(WaitState::Granted));
        Ok(())
    }

    #[test]
    fn device_wake_is_targeted() -> Result {
        let mut l = WaitList::new();
        let on0 = l.park(0b01, ())?;
        let on1 = l.park(0b10, ())?;
        assert_eq!(l.grant(0b10, WakeReason::Discard, |()| true), 1);
        let w0 = l.get_mut(on0).ok_or(EINVAL)?;
        assert_eq!((w0.state, w0.woken), (WaitState::Parked, 0));
        let w1 = l.get_mut(on1).ok_or(EINVAL)?;
        assert_eq!(
            (w1.state, w1.last_wake),
            (WaitState::Granted, WakeReason::Discard)
        );
        Ok(())
    }

    /// A wait list under its lock, with a place to sleep, as the
    /// allocator has them.
    #[pin_data]
    struct Parking {
        #[pin]
        list: Mutex<WaitList<()>>,
        #[pin]
        sleep: Sleep,
    }

    fn parking() -> Result<Arc<Parking>> {
        Arc::pin_init(
            pin_init!(Parking {
                list <- new_mutex!(WaitList::new()),
                sleep <- Sleep::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Sleeps `ms` as waiter `id` of `p` does.
    fn nap(p: &Parking, id: u64, ms: u32) -> Slept {
        p.sleep
            .sleep(p.list.lock(), Some(ms), |l| l.is_parked(id))
            .1
    }

    #[test]
    fn removal_wakes_nobody() -> Result {
        let p = parking()?;
        let (a, b) = {
            let mut l = p.list.lock();
            (l.park(0b1, ())?, l.park(0b1, ())?)
        };
        let mut l = p.list.lock();
        assert!(l.remove(a).is_some());
        assert_eq!(l.len(), 1);
        let w = l.get_mut(b).ok_or(EINVAL)?;
        assert_eq!((w.state, w.woken), (WaitState::Parked, 0));
        drop(l);
        assert_eq!(nap(&p, b, 10), Slept::TimedOut);
        Ok(())
    }

    #[test]
    fn timeout_and_wake_all() -> Result {
        let p = parking()?;
        let a = p.list.lock().park(0b1, ())?;
        assert_eq!(nap(&p, a, 20), Slept::TimedOut);
        assert_eq!(p.list.lock().wake_all(WakeReason::Options), 1);
        // Woken before it sleeps: it does not sleep.
        assert_eq!(nap(&p, a, 5000), Slept::Woken);
        let mut l = p.list.lock();
        let w = l.get_mut(a).ok_or(EINVAL)?;
        assert_eq!(w.state, WaitState::Woken(WakeReason::Options));
        // Reparked, it keeps its place and sleeps again.
        l.repark(a, 0b1)?;
        drop(l);
        assert_eq!(nap(&p, a, 10), Slept::TimedOut);
        assert!(p.list.lock().wake_one(a, WakeReason::Abort));
        assert_eq!(nap(&p, a, 5000), Slept::Woken);
        Ok(())
    }

    #[test]
    fn an_unseen_abort_is_not_overwritten() -> Result {
        let mut l = WaitList::new();
        let a = l.park(0b1, ())?;
        let b = l.park(0b1, ())?;
        assert!(l.wake_one(a, WakeReason::Abort));
        // An option write lands before the aborted waiter looks.
        assert_eq!(l.wake_all(WakeReason::Options), 2);
        let w = l.get_mut(a).ok_or(EINVAL)?;
        assert_eq!(
            (w.state, w.last_wake),
            (WaitState::Woken(WakeReason::Abort), WakeReason::Abort)
        );
        let w = l.get_mut(b).ok_or(EINVAL)?;
        assert_eq!(w.state, WaitState::Woken(WakeReason::Options));
        Ok(())
    }

    #[test]
    fn wake_racing_park() -> Result {
        let p = parking()?;
        for _ in 0..500 {
            let (id, l) = {
                let mut l = p.list.lock();
                let id = l.park(0b1, ())?;
                // The waker may run before we sleep: the wake must not be
                // lost.
                let waker = p.clone();
                workqueue::system().try_spawn(GFP_KERNEL, move || {
                    waker.list.lock().wake_all(WakeReason::BucketsFreed);
                })?;
                (id, l)
            };
            let (mut l, slept) = p.sleep.sleep(l, Some(5000), |l| l.is_parked(id));
            assert_eq!(slept, Slept::Woken);
            assert!(!l.is_parked(id));
            l.remove(id);
        }
        Ok(())
    }

    #[test]
    fn kick_before_idle_is_kept() -> Result {
        let k = KBox::pin_init(Kick::new(), GFP_KERNEL)?;
        k.kick();
        assert_eq!(k.idle(5000), Slept::Woken);
        assert_eq!(k.idle(10), Slept::TimedOut);
        Ok(())
    }
}
