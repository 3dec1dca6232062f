// SPDX-License-Identifier: GPL-2.0

//! A volume's health: where its register-time replay and its
//! re-replication are, whether it went read-only, and who is told when
//! these (or the waiters) change.
//!
//! Read-only follows a failed metadata write.
//! A journal entry or a checkpoint whose write or flush fails may have
//! left some members with the new blocks and some without. Writing on
//! would mean rewriting blocks a durable checkpoint may reference, or
//! acknowledging changes behind a hole, so the volume stops taking
//! changes: every one acknowledged before is in the journal or a
//! checkpoint on disk, and the next register recovers from them. Reads,
//! `status`, `unregister` (without its checkpoint) keep working; `state`
//! in sysfs says why.

use crate::bkcore::options::WaitPolicy;
use core::fmt;
use kernel::{
    prelude::*,
    time::{Instant, Monotonic},
};

/// Why a volume went read-only.
#[derive(Clone, Copy)]
pub(crate) struct ReadOnly {
    /// The write that failed: "journal write", "checkpoint".
    pub(crate) what: &'static str,
    /// Its error.
    pub(crate) err: Error,
}

impl fmt::Display for ReadOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ro: {} failed (error {})",
            self.what,
            self.err.to_errno()
        )
    }
}

/// Where replay is (the numbers are the `bkalloc_replay` tracepoint's).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not started.
    Pending = 0,
    /// Re-inserting keys.
    Running = 1,
    /// Done: the volume is up.
    Done = 2,
    /// Failed: the volume is going away.
    Failed = 3,
}

/// What `replay` shows.
pub(crate) struct ReplayStatus {
    /// Where replay is.
    pub(crate) phase: Phase,
    /// Keys re-inserted so far.
    pub(crate) replayed: u64,
    /// Keys to re-insert.
    pub(crate) total: u64,
    start: Option<Instant<Monotonic>>,
    elapsed_ms: u64,
    error: i32,
    /// Every key is re-inserted (the closing checkpoint may still run).
    keys_done: bool,
}

impl ReplayStatus {
    /// Before replay.
    pub(crate) fn new() -> Self {
        Self {
            phase: Phase::Pending,
            replayed: 0,
            total: 0,
            start: None,
            elapsed_ms: 0,
            error: 0,
            keys_done: false,
        }
    }

    /// Replay has yet to re-insert its keys, or is at it, or at its
    /// closing checkpoint: the discard thread then serves only devices
    /// whose waiters starve (unless [`ReplayStatus::keys_done`] said that
    /// checkpoint needs bulk discards' room).
    pub(crate) fn reinserting(&self) -> bool {
        matches!(self.phase, Phase::Pending | Phase::Running) && !self.keys_done
    }

    /// Every key is re-inserted and the closing checkpoint needs room only
    /// discards make: bulk discards may run.
    pub(crate) fn keys_done(&mut self) {
        self.keys_done = true;
    }

    /// How long replay ran (so far, while it runs).
    pub(crate) fn elapsed_ms(&self) -> u64 {
        match (self.phase, self.start) {
            (Phase::Running, Some(t)) => t.elapsed().as_millis().max(0) as u64,
            _ => self.elapsed_ms,
        }
    }

    /// Replay starts re-inserting keys.
    pub(crate) fn begin(&mut self) {
        self.phase = Phase::Running;
        self.start = Some(Instant::now());
    }

    /// Replay ended in `phase`, with `error` (0 if none).
    pub(crate) fn finish(&mut self, phase: Phase, error: i32) {
        self.elapsed_ms = self.elapsed_ms();
        self.phase = phase;
        self.error = error;
    }
}

impl fmt::Display for ReplayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.phase {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Done => "done",
            Phase::Failed => "failed",
        };
        write!(
            f,
            "state={} replayed={} total={} elapsed_ms={}",
            state,
            self.replayed,
            self.total,
            self.elapsed_ms()
        )?;
        if self.error != 0 {
            write!(f, " error={}", self.error)?;
        }
        Ok(())
    }
}

/// Where re-replication is (`rereplicate`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RereplicateState {
    /// No node was found short since register.
    Idle,
    /// Nodes are short: rewritten as room allows.
    Running,
    /// Every node short before has been rewritten.
    Done,
}

/// What `rereplicate` shows: the background rewrite of btree nodes with
/// fewer readable replicas than `metadata_replicas` (`rereplicate.rs`).
pub(crate) struct RereplicateStatus {
    /// Where it is.
    pub(crate) state: RereplicateState,
    /// Nodes short at the last scan.
    pub(crate) pending: u64,
    /// Short nodes rewritten since register.
    pub(crate) done: u64,
    /// `(opts_gen, checkpoint generation)` of the last scan that found no
    /// short node: the tree is not scanned again before either changes.
    pub(crate) clean_at: Option<(u64, u64)>,
}

impl RereplicateStatus {
    /// Nothing scanned yet.
    pub(crate) fn new() -> Self {
        Self {
            state: RereplicateState::Idle,
            pending: 0,
            done: 0,
            clean_at: None,
        }
    }

    /// A scan found `pending` short nodes after `rewritten` more were
    /// rewritten; whether what the file shows changed.
    pub(crate) fn update(&mut self, pending: u64, rewritten: u64) -> bool {
        let before = (self.state, self.pending, self.done);
        self.pending = pending;
        self.done += rewritten;
        if pending > 0 {
            self.state = RereplicateState::Running;
        } else if self.state == RereplicateState::Running || rewritten > 0 {
            self.state = RereplicateState::Done;
        }
        before != (self.state, self.pending, self.done)
    }
}

impl fmt::Display for RereplicateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            RereplicateState::Idle => "idle",
            RereplicateState::Running => "running",
            RereplicateState::Done => "done",
        };
        write!(
            f,
            "state={} pending={} done={}",
            state, self.pending, self.done
        )
    }
}

/// A change in what a volume's status files show, for those who watch them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Changed {
    /// A request parked or left (`waiters`).
    Waiters,
    /// A stuck report was written (`alloc_stuck`).
    AllocStuck,
    /// Replay moved to another phase (`replay`).
    Replay,
    /// The volume went read-only (`state`).
    State,
    /// Re-replication's progress changed (`rereplicate`).
    Rereplicate,
}

/// Something an administrator is told of as it happens (a uevent, with
/// udev rules acting on it), beyond what the status files show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A waiter's stuck report was written (`alloc_stuck`).
    Stuck {
        /// The waiter.
        waiter: u64,
    },
    /// A waiter that had a stuck report got its buckets.
    Unstuck {
        /// The waiter.
        waiter: u64,
    },
    /// A waiter reached its deadline; `policy` is what was done.
    Deadline {
        /// The waiter.
        waiter: u64,
        /// `fail` or `degrade`.
        policy: WaitPolicy,
    },
    /// A waiter went on with fewer replicas than asked, at its deadline.
    Degraded {
        /// The waiter.
        waiter: u64,
        /// Replicas it got.
        replicas: u32,
        /// Replicas it asked for.
        wanted: u32,
    },
    /// The volume went read-only (see [`ReadOnly`]).
    ReadOnly {
        /// The failed write's error (negative errno).
        errno: i32,
    },
    /// Register's replay finished; the volume is up.
    ReplayDone,
    /// Register's replay failed; the volume does not come up.
    ReplayFailed {
        /// Its error (negative errno).
        errno: i32,
    },
    /// A discard failed on member `dev` (at most one a second per volume).
    DiscardError {
        /// The member.
        dev: u32,
        /// The discard's error (negative errno).
        errno: i32,
    },
    /// Re-replication rewrote the last btree node that had fewer replicas
    /// than `metadata_replicas`.
    Replicated,
}

impl Event {
    /// The event's name (`BKALLOC_EVENT=`).
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Event::Stuck { .. } => "stuck",
            Event::Unstuck { .. } => "unstuck",
            Event::Deadline { .. } => "deadline",
            Event::Degraded { .. } => "degraded",
            Event::ReadOnly { .. } => "read_only",
            Event::ReplayDone => "replay_done",
            Event::ReplayFailed { .. } => "replay_failed",
            Event::DiscardError { .. } => "discard_error",
            Event::Replicated => "replicated",
        }
    }
}

/// Told of every [`Changed`] and [`Event`].
pub(crate) trait Watcher: Send + Sync {
    /// `what` changed. Called under the allocator's lock: must not sleep.
    fn changed(&self, what: Changed);

    /// `what` happened. Called with no lock held: may sleep.
    fn event(&self, what: Event);
}
