// SPDX-License-Identifier: GPL-2.0
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

//! bkcore: the pure core of bkalloc.
//!
//! Everything here is plain computation over byte slices and fixed-size types: no `std`, no
//! `alloc`, no floats, no `unsafe`, no dependencies. The kernel module compiles these very
//! files with `#[path = "core/lib.rs"] pub mod bkcore;` and the host builds them as the
//! `bkcore` crate for the `bkalloc` tool and the tests, so paths inside are relative
//! (`super::`), never `crate::`.
//!
//! - [`crc32c`]: the checksum of every on-disk structure.
//! - [`degraded`]: registering with members missing, and their return.
//! - [`format`]: the on-disk format, its one definition (documented there).
//! - [`journal_ring`]: where journal entries go, and group commit's join rule.
//! - [`options`]: the option table.
//! - [`buckets`]: bucket states, legal transitions, per-state counts.
//! - [`uuid`]: volume and member identifiers.

pub mod buckets;
pub mod crc32c;
pub mod ctl_abi;
pub mod degraded;
pub mod discard_order;
pub mod format;
pub mod journal_ring;
pub mod latency;
pub mod member_state;
pub mod options;
pub mod placement;
pub mod replay_window;
pub mod request;
pub mod stuck;
pub mod uuid;
pub mod watermark;
