// SPDX-License-Identifier: GPL-2.0

//! Requests built from the volume's options, and rebuilt when the options change.
//!
//! A [`RequestSpec`] is everything a waiter needs to retry on its own: what to ask of
//! the devices (replicas, watermark, buckets per device) and what to do while it waits
//! (deadline, policy, stuck timeout), plus the options generation (`opts_gen`) it was
//! built from. The allocator builds one with [`build`] (or [`build_with`] for the ioctl's
//! explicit values), and on every wake compares [`RequestSpec::is_stale`]; a stale spec
//! is replaced by [`RequestSpec::rebuild`] from the current options before the next try.
//! That is the restart #1108 lacked: its request kept the `metadata_replicas` it was made
//! with and slept forever.
//!
//! **Overrides survive a rebuild.** An explicit value ([`Overrides`]) is the caller's
//! choice, not the volume's, so a rebuild keeps it and only the option-derived fields
//! follow the options. A caller that wants the options to govern (e.g. the ioctl's "0 =
//! from options") passes `None`.
//!
//! **Times are relative to the first attempt.** `deadline_secs` and
//! `stuck_timeout_secs` are durations; the waiter measures them from when it started
//! waiting, and a rebuild does not restart the clock (a flood of option writes must not
//! postpone a deadline forever).

use super::buckets::BucketState;
use super::options::{OptId, Options, WaitPolicy};
use super::placement::{Kind, Request, MAX_REPLICAS};
use super::watermark::Watermark;
use core::fmt;

/// Explicit values that take the place of the option-derived ones; `None` = from the
/// options (or, for `per_dev`, 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Distinct devices, 1..=[`MAX_REPLICAS`].
    pub replicas: Option<u32>,
    /// Watermark instead of the kind's default.
    pub watermark: Option<Watermark>,
    /// Deadline in seconds (0 = none) instead of `alloc_deadline`.
    pub deadline_secs: Option<u32>,
    /// Buckets on each device, ≥ 1 (a btree split of k nodes asks k).
    pub per_dev: Option<u32>,
    /// The buckets go to a user of `/dev/bkalloc`: they take the user state
    /// whatever the kind (a btree-kind request from a user borrows only the
    /// btree's replicas and watermark; no tree node will ever point at its
    /// buckets, so they must not look like tree buckets to replay).
    pub for_user: bool,
}

impl Overrides {
    /// No override: everything from the options.
    pub const NONE: Overrides = Overrides {
        replicas: None,
        watermark: None,
        deadline_secs: None,
        per_dev: None,
        for_user: false,
    };
}

/// A request and its waiting rules, as built from one generation of the options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestSpec {
    /// What the buckets are for.
    pub kind: Kind,
    /// Distinct devices: the override, or `metadata_replicas` (btree) / `data_replicas`
    /// (user).
    pub replicas: u32,
    /// The override, or the kind's default ([`default_watermark`]).
    pub watermark: Watermark,
    /// Buckets on each device (the override, or 1).
    pub per_dev: u32,
    /// Seconds after the first attempt at which `policy` applies; 0 = never.
    pub deadline_secs: u32,
    /// What to do at the deadline (`alloc_wait_policy`).
    pub policy: WaitPolicy,
    /// Seconds after the first attempt at which a stuck report is due
    /// (`allocator_stuck_timeout`); 0 = never.
    pub stuck_timeout_secs: u32,
    /// The options generation this spec was built from.
    pub opts_gen: u64,
    /// The explicit values it was built with, kept for [`RequestSpec::rebuild`].
    pub overrides: Overrides,
}

/// An explicit value that no request can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Replicas outside 1..=[`MAX_REPLICAS`].
    BadReplicas(u32),
    /// Zero buckets per device.
    BadPerDev,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RequestError::BadReplicas(r) => {
                write!(f, "replicas {r} is out of range 1..={MAX_REPLICAS}")
            }
            RequestError::BadPerDev => f.write_str("a request needs at least 1 bucket per device"),
        }
    }
}

/// The watermark a kind allocates at unless told otherwise: btree nodes at `btree`, user
/// data at `normal`.
pub const fn default_watermark(kind: Kind) -> Watermark {
    match kind {
        Kind::Btree => Watermark::Btree,
        Kind::User => Watermark::Normal,
    }
}

/// The option that sets the replicas of `kind` (named in hints and messages).
pub const fn replicas_option(kind: Kind) -> OptId {
    match kind {
        Kind::Btree => OptId::MetadataReplicas,
        Kind::User => OptId::DataReplicas,
    }
}

/// Builds the spec; `overrides` were checked by the caller.
fn assemble(kind: Kind, options: &Options, opts_gen: u64, overrides: Overrides) -> RequestSpec {
    RequestSpec {
        kind,
        replicas: overrides
            .replicas
            .unwrap_or_else(|| options.get(replicas_option(kind))),
        watermark: overrides.watermark.unwrap_or(default_watermark(kind)),
        per_dev: overrides.per_dev.unwrap_or(1),
        deadline_secs: overrides
            .deadline_secs
            .unwrap_or_else(|| options.alloc_deadline()),
        policy: options.alloc_wait_policy(),
        stuck_timeout_secs: options.allocator_stuck_timeout(),
        opts_gen,
        overrides,
    }
}

/// The request for `kind` from the current `options`, generation `opts_gen`.
pub fn build(kind: Kind, options: &Options, opts_gen: u64) -> RequestSpec {
    assemble(kind, options, opts_gen, Overrides::NONE)
}

/// Like [`build`], with explicit values (the ioctl's "allocate at watermark w on n
/// devices"); refuses values no request can have.
pub fn build_with(
    kind: Kind,
    options: &Options,
    opts_gen: u64,
    overrides: Overrides,
) -> Result<RequestSpec, RequestError> {
    if let Some(r) = overrides.replicas {
        if r == 0 || r as usize > MAX_REPLICAS {
            return Err(RequestError::BadReplicas(r));
        }
    }
    if overrides.per_dev == Some(0) {
        return Err(RequestError::BadPerDev);
    }
    Ok(assemble(kind, options, opts_gen, overrides))
}

impl RequestSpec {
    /// Whether the options changed since this spec was built.
    pub const fn is_stale(&self, current_gen: u64) -> bool {
        self.opts_gen != current_gen
    }

    /// The same request built from newer options (same kind, same overrides).
    pub fn rebuild(&self, options: &Options, opts_gen: u64) -> RequestSpec {
        assemble(self.kind, options, opts_gen, self.overrides)
    }

    /// What placement needs.
    pub const fn request(&self) -> Request {
        Request {
            kind: self.kind,
            replicas: self.replicas,
            watermark: self.watermark,
            per_dev: self.per_dev,
        }
    }

    /// The state the granted buckets take: the kind's, or user for a user's request.
    pub const fn state(&self) -> BucketState {
        match (self.kind, self.overrides.for_user) {
            (Kind::Btree, false) => BucketState::Btree,
            (Kind::User, _) | (_, true) => BucketState::User,
        }
    }

    /// Whether the grant is committed to [`RequestSpec::state`] when it is handed over.
    /// A user's grant stays open instead: its caller journals it first and commits it
    /// after, so no checkpoint can record buckets whose journal record never became
    /// durable (they would be the user's on disk, and nobody's).
    pub const fn commit_on_grant(&self) -> bool {
        !self.overrides.for_user
    }

    /// Whether `replicas` came from the options (so changing them changes this request).
    pub const fn replicas_from_options(&self) -> bool {
        self.overrides.replicas.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_pick_their_option_and_watermark() {
        let mut o = Options::defaults();
        o.set(OptId::DataReplicas, 3).unwrap();
        let b = build(Kind::Btree, &o, 1);
        assert_eq!(
            (b.replicas, b.watermark, b.per_dev),
            (2, Watermark::Btree, 1)
        );
        let u = build(Kind::User, &o, 1);
        assert_eq!((u.replicas, u.watermark), (3, Watermark::Normal));
    }

    #[test]
    fn a_users_buckets_are_user_buckets_whatever_the_kind() {
        let o = Options::defaults();
        assert_eq!(build(Kind::Btree, &o, 0).state(), BucketState::Btree);
        assert_eq!(build(Kind::User, &o, 0).state(), BucketState::User);
        let user = Overrides {
            for_user: true,
            ..Overrides::NONE
        };
        let b = build_with(Kind::Btree, &o, 0, user).unwrap();
        assert_eq!(b.state(), BucketState::User);
        // It still asks what a btree node would, and keeps that when rebuilt.
        assert_eq!((b.replicas, b.watermark), (2, Watermark::Btree));
        assert_eq!(b.rebuild(&o, 1).state(), BucketState::User);
        assert_eq!(
            build_with(Kind::User, &o, 0, user).unwrap().state(),
            BucketState::User
        );
        // A user's grant is committed by its caller, after the journal; the tree's and
        // the checkpoint's are committed when granted.
        assert!(!b.commit_on_grant());
        assert!(!b.rebuild(&o, 1).commit_on_grant());
        assert!(build(Kind::Btree, &o, 0).commit_on_grant());
        assert!(build(Kind::User, &o, 0).commit_on_grant());
    }

    #[test]
    fn bad_overrides() {
        let o = Options::defaults();
        for r in [0, 5, u32::MAX] {
            let ov = Overrides {
                replicas: Some(r),
                ..Overrides::NONE
            };
            assert_eq!(
                build_with(Kind::User, &o, 0, ov),
                Err(RequestError::BadReplicas(r))
            );
        }
        let ov = Overrides {
            per_dev: Some(0),
            ..Overrides::NONE
        };
        assert_eq!(
            build_with(Kind::User, &o, 0, ov),
            Err(RequestError::BadPerDev)
        );
    }
}
