// SPDX-License-Identifier: GPL-2.0

//! The btree writer: one at a time (inserts, checkpoints, replay,
//! re-replication), and a wait for it that has ways out, like every wait in
//! bkalloc.
//!
//! A kernel mutex sleeps uninterruptibly. The writer is held across a
//! split's allocation, which may block for as long as the volume cannot
//! serve it (policy `wait`); a second insert, a flush, or an alloc or free
//! that finds the journal full would sit behind it in D state, unkillable,
//! and a free queued there may be what the split needs. So the writer is a
//! gate: a caller waits for it interruptibly, and leaves on a signal
//! (EINTR), on `abort_waiting all` (ECANCELED), or when the volume goes
//! away (ENODEV). Only teardown and replay, whose waits end by other
//! means, wait for it without those ways out.
//!
//! The holder also takes `lock`, a mutex the gate never lets two callers
//! contend for, so that lockdep keeps seeing the writer in the lock order
//! writer, tree, inner, journal.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{lock::mutex::MutexBackend, lock::Guard, CondVar, Mutex},
};

/// Who may write the btree, and who waits.
#[pin_data]
pub(crate) struct Writer {
    #[pin]
    gate: Mutex<Gate>,
    #[pin]
    opened: CondVar,
    #[pin]
    lock: Mutex<()>,
}

struct Gate {
    /// A writer is in.
    held: bool,
    /// Bumped by `abort_waiting all`: waiters that saw an older value leave.
    aborts: u64,
    /// The volume is going away: waiters leave, nobody new comes in.
    closed: bool,
}

/// The writer, held until dropped.
pub(crate) struct WriterGuard<'a> {
    writer: &'a Writer,
    lock: Option<Guard<'a, (), MutexBackend>>,
}

impl Writer {
    /// A free writer.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            gate <- new_mutex!(Gate {
                held: false,
                aborts: 0,
                closed: false,
            }),
            opened <- new_condvar!(),
            lock <- new_mutex!(()),
        })
    }

    /// Waits for the writer on behalf of a user's request: ends with EINTR
    /// on a signal, ECANCELED on `abort_waiting all`, ENODEV once the
    /// volume is going away.
    pub(crate) fn enter(&self) -> Result<WriterGuard<'_>> {
        let mut gate = self.gate.lock();
        let aborts = gate.aborts;
        loop {
            if gate.closed {
                return Err(ENODEV);
            }
            if gate.aborts != aborts {
                return Err(ECANCELED);
            }
            if !gate.held {
                break;
            }
            if self.opened.wait_interruptible(&mut gate) {
                return Err(EINTR);
            }
        }
        gate.held = true;
        drop(gate);
        Ok(self.hold())
    }

    /// Waits for the writer with no way out but its release: for teardown
    /// (after [`Writer::close`], so the holder's own waits end) and replay
    /// (the first writer of a volume).
    pub(crate) fn enter_always(&self) -> WriterGuard<'_> {
        let mut gate = self.gate.lock();
        while gate.held {
            self.opened.wait(&mut gate);
        }
        gate.held = true;
        drop(gate);
        self.hold()
    }

    /// The writer if nobody holds it, without waiting: for background work
    /// (re-replication), which must never wait behind a user's insert nor
    /// make one wait for it. `None` when it is held or the volume is going
    /// away.
    pub(crate) fn try_enter(&self) -> Option<WriterGuard<'_>> {
        let mut gate = self.gate.lock();
        if gate.closed || gate.held {
            return None;
        }
        gate.held = true;
        drop(gate);
        Some(self.hold())
    }

    fn hold(&self) -> WriterGuard<'_> {
        WriterGuard {
            writer: self,
            lock: Some(self.lock.lock()),
        }
    }

    /// `abort_waiting all`: everyone waiting for the writer now leaves.
    pub(crate) fn abort_waiters(&self) {
        self.gate.lock().aborts += 1;
        self.opened.notify_all();
    }

    /// The volume is going away: waiters leave and [`Writer::enter`] fails.
    pub(crate) fn close(&self) {
        self.gate.lock().closed = true;
        self.opened.notify_all();
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        // The inner lock first, so the next writer never waits on it.
        drop(self.lock.take());
        self.writer.gate.lock().held = false;
        self.writer.opened.notify_all();
    }
}
