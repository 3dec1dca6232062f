// SPDX-License-Identifier: GPL-2.0

//! A one-shot wake-up with a killable, bounded sleep.
//!
//! The kernel crate's `Completion` only offers an uninterruptible wait and
//! `CondVar` has no killable one, so this wraps a C `struct completion`
//! with `wait_for_completion_killable_timeout()`. A `complete()` that comes
//! before the sleep is not lost: the completion counts it.

use kernel::{bindings, prelude::*, sync::Arc, time, types::Opaque};

/// How a sleep on a [`Wake`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slept {
    /// [`Wake::wake`] was called (before or during the sleep).
    Woken,
    /// The timeout passed first.
    TimedOut,
    /// A fatal signal is pending for the sleeping task.
    Killed,
}

/// A one-shot wake-up: one task sleeps, anyone wakes it.
#[pin_data]
pub(crate) struct Wake {
    #[pin]
    done: Opaque<bindings::completion>,
}

// SAFETY: A completion is designed to be completed and waited on from any
// thread; its state is protected by its own lock.
unsafe impl Send for Wake {}

// SAFETY: See above; every operation takes the completion's own lock.
unsafe impl Sync for Wake {}

impl Wake {
    /// A new wake-up, not yet woken.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                done <- Opaque::ffi_init(|slot: *mut bindings::completion| {
                    // SAFETY: `slot` is valid for writes and pinned.
                    unsafe { bindings::init_completion(slot) }
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// Wakes the sleeper, or makes its next sleep return at once.
    pub(crate) fn wake(&self) {
        // SAFETY: `done` was initialised by `init_completion()` and is pinned.
        unsafe { bindings::complete_all(self.done.get()) };
    }

    /// Sleeps until woken, a fatal signal, or `timeout_ms` milliseconds
    /// (`None`: no timeout; the sleep still ends on a fatal signal).
    pub(crate) fn sleep(&self, timeout_ms: Option<u32>) -> Slept {
        let jiffies = match timeout_ms {
            Some(ms) => time::msecs_to_jiffies(ms),
            None => kernel::task::MAX_SCHEDULE_TIMEOUT as time::Jiffies,
        };
        // SAFETY: `done` was initialised and is pinned; the call sleeps in
        // TASK_KILLABLE, which is allowed here (process context, no locks
        // held is the caller's duty, checked by might_sleep()).
        let ret =
            unsafe { bindings::wait_for_completion_killable_timeout(self.done.get(), jiffies) };
        match ret {
            0 => Slept::TimedOut,
            r if r < 0 => Slept::Killed,
            _ => Slept::Woken,
        }
    }
}
