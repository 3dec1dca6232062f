// SPDX-License-Identifier: GPL-2.0

//! Killable, bounded sleeps under a mutex, woken per task.
//!
//! A sleeper checks its condition under a mutex, then sleeps; its waker
//! changes that state under the same mutex and wakes the sleeper's task
//! (`Task::wake_up`, `wake_up_process()`). The sleeper's task state must be
//! set before the mutex is dropped, or a wake between the unlock and the
//! sleep is lost. The kernel crate has no `set_current_state()` (a macro)
//! and its `CondVar` has no killable wait, so [`Sleep`] sets the state
//! with `prepare_to_wait_event()` on a wait queue of its own: the queue only
//! carries the sleeper's entry, nobody wakes through it. Nothing here
//! allocates.

use kernel::{
    bindings,
    prelude::*,
    sync::lock::{mutex::MutexBackend, Guard},
    time::{self, Instant, Monotonic},
    types::Opaque,
};

/// How a sleep ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slept {
    /// The task was woken (or its condition no longer held); the caller
    /// looks at its state again.
    Woken,
    /// The timeout passed first.
    TimedOut,
    /// A fatal signal is pending for the sleeping task.
    Killed,
}

/// A place to sleep on: the wait queue whose entry sets the sleeper's task
/// state. One serves every sleeper of the state it sits beside.
#[pin_data]
pub(crate) struct Sleep {
    #[pin]
    head: Opaque<bindings::wait_queue_head>,
}

// SAFETY: A wait queue head is used from any thread; its own spinlock
// protects it.
unsafe impl Send for Sleep {}

// SAFETY: See above; every operation takes the queue's own lock.
unsafe impl Sync for Sleep {}

impl Sleep {
    /// A new place to sleep.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes and pinned; the name and
            // the lock class key are static.
            head <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_waitqueue_head(
                    slot,
                    kernel::c_str!("bkalloc_sleep").as_char_ptr(),
                    kernel::static_lock_class!().as_ptr(),
                )
            }),
        })
    }

    /// Drops `guard` and sleeps, killable, until the task is woken, a fatal
    /// signal, or `timeout_ms` milliseconds (`None`: no timeout); then
    /// locks again. `waiting` is asked under the lock, after the task state
    /// is set: when it says false, nothing sleeps. A waker that changes what
    /// `waiting` reads under the same lock and then wakes the task is never
    /// missed. Spurious wakes return `Woken`: the caller looks again.
    pub(crate) fn sleep<'a, T>(
        &self,
        guard: Guard<'a, T, MutexBackend>,
        timeout_ms: Option<u32>,
        waiting: impl FnOnce(&T) -> bool,
    ) -> (Guard<'a, T, MutexBackend>, Slept) {
        let (guard, slept, _) = self.sleep_timed(guard, timeout_ms, waiting);
        (guard, slept)
    }

    /// [`Sleep::sleep`], also returning when the task ran again, before it
    /// waited for the lock (`None` when it did not sleep): what a wake cost
    /// is then apart from what the lock cost.
    pub(crate) fn sleep_timed<'a, T>(
        &self,
        guard: Guard<'a, T, MutexBackend>,
        timeout_ms: Option<u32>,
        waiting: impl FnOnce(&T) -> bool,
    ) -> (
        Guard<'a, T, MutexBackend>,
        Slept,
        Option<Instant<Monotonic>>,
    ) {
        let lock = guard.lock_ref();
        let jiffies = match timeout_ms {
            Some(ms) => time::msecs_to_jiffies(ms) as c_long,
            None => kernel::task::MAX_SCHEDULE_TIMEOUT,
        };
        let state = (bindings::TASK_WAKEKILL | bindings::TASK_UNINTERRUPTIBLE) as c_int;
        let wait = Opaque::<bindings::wait_queue_entry>::uninit();
        // SAFETY: `wait` is valid for writes; it stays in place until
        // `finish_wait()` below takes it off the queue.
        unsafe { bindings::init_wait(wait.get()) };
        // SAFETY: `head` was initialised and is pinned; `wait` was
        // initialised above. This sets the task state (with the barrier a
        // lockless wake needs), or returns non-zero on a fatal signal.
        let killed =
            unsafe { bindings::prepare_to_wait_event(self.head.get(), wait.get(), state) } != 0;
        if killed || !waiting(&guard) {
            // SAFETY: `head` and `wait` are valid; this sets the task
            // running and takes `wait` off the queue if it is on it.
            unsafe { bindings::finish_wait(self.head.get(), wait.get()) };
            return (
                guard,
                if killed { Slept::Killed } else { Slept::Woken },
                None,
            );
        }
        // Unlocking a mutex does not sleep, so the state set above holds
        // until `schedule_timeout()`, or a wake has made the task runnable.
        drop(guard);
        // SAFETY: Process context, no lock held (might_sleep() checks).
        let left = unsafe { bindings::schedule_timeout(jiffies) };
        let ran = Instant::now();
        // SAFETY: As above; this only looks for a fatal signal (the state
        // it sets is undone by `finish_wait()` before the lock is taken).
        let killed =
            unsafe { bindings::prepare_to_wait_event(self.head.get(), wait.get(), state) } != 0;
        // SAFETY: As above.
        unsafe { bindings::finish_wait(self.head.get(), wait.get()) };
        let slept = match (killed, left) {
            (true, _) => Slept::Killed,
            (false, 0) => Slept::TimedOut,
            _ => Slept::Woken,
        };
        (lock.lock(), slept, Some(ran))
    }
}
