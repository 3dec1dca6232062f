// SPDX-License-Identifier: GPL-2.0

//! Read-only after a failed metadata write.
//!
//! A journal append or a checkpoint whose write or flush fails may have
//! left some members with the new blocks and some without. Writing on
//! would mean rewriting blocks a durable checkpoint may reference, or
//! acknowledging changes behind a hole, so the volume stops taking
//! changes: every one acknowledged before is in the journal or a
//! checkpoint on disk, and the next register recovers from them. Reads,
//! `status`, `unregister` (without its checkpoint) keep working; `state`
//! in sysfs says why.

use crate::volume::Volume;
use kernel::prelude::*;

/// Why a volume went read-only.
#[derive(Clone, Copy)]
pub(crate) struct ReadOnly {
    /// The write that failed: "journal write", "checkpoint".
    pub(crate) what: &'static str,
    /// Its error.
    pub(crate) err: Error,
}

impl core::fmt::Display for ReadOnly {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "ro: {} failed (error {})",
            self.what,
            self.err.to_errno()
        )
    }
}

impl Volume {
    /// Stops taking changes after `what` failed with `err` (the first
    /// reason stays); blocked requests fail with `EROFS`.
    pub(crate) fn go_read_only(&self, what: &'static str, err: Error) {
        {
            let mut inner = self.lock_inner();
            if inner.read_only.is_some() {
                return;
            }
            inner.read_only = Some(ReadOnly { what, err });
        }
        pr_err!(
            "volume {}: {} failed (error {}): read-only now; every change acknowledged before is on disk, unregister and register again to recover\n",
            self.name(),
            what,
            err.to_errno()
        );
        self.wake_waiters_for_teardown();
    }

    /// Like [`Volume::check_up`], and `EROFS` once read-only: the gate of
    /// every change (alloc, free, insert, flush, option writes).
    pub(crate) fn check_writable(&self) -> Result {
        self.check_up()?;
        if self.lock_inner().read_only.is_some() {
            return Err(EROFS);
        }
        Ok(())
    }
}
