// SPDX-License-Identifier: GPL-2.0

//! Which device the discard thread serves next, and how much.
//!
//! With replay priority on and requests blocked, the most starved device
//! comes first: among the devices blocked requests could use, the one
//! furthest below what the waiting watermark needs, in small batches so
//! its waiters proceed as soon as possible. Otherwise the device with the
//! most need_discard buckets goes first, in large batches, but not while
//! replay re-inserts keys: a bulk batch then helps no waiter and holds the
//! devices and CPUs the replay needs, and a waiter that parks behind one
//! waits for all of it (the #1108 replay took 21x as long as on the same
//! images with nothing to discard). A device whose discards fail is left
//! alone for a while ([`backoff_ms`]).

use super::placement::DevSnapshot;
use super::watermark::{self, Watermark};

/// Buckets per batch for a starved device (beyond its deficit).
pub const STARVED_SLACK: u64 = 8;
/// Largest batch for a starved device.
pub const STARVED_MAX: u64 = 64;
/// Batch size when nobody starves.
pub const BULK: u64 = 1024;

/// First pause after a failed discard on a device; it doubles per failure in a row.
pub const BACKOFF_FIRST_MS: u64 = 1000;
/// Longest pause between discard attempts on a failing device.
pub const BACKOFF_MAX_MS: u64 = 64_000;

/// How long the discard thread leaves a device alone after `failures` failed discards in
/// a row (its buckets stay need_discard meanwhile): 1 s, doubling, at most 64 s.
pub const fn backoff_ms(failures: u32) -> u64 {
    if failures == 0 {
        return 0;
    }
    let shift = if failures - 1 > 6 { 6 } else { failures - 1 };
    let ms = BACKOFF_FIRST_MS << shift;
    if ms > BACKOFF_MAX_MS {
        BACKOFF_MAX_MS
    } else {
        ms
    }
}

/// Whether the `failures`-th failure in a row is worth a log line: the 1st, 2nd, 4th, 8th
/// ..., so a device that keeps failing logs a few lines, not one per attempt.
pub const fn log_failure(failures: u32) -> bool {
    failures.is_power_of_two()
}

/// What to discard next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// Member index.
    pub dev: u32,
    /// At most this many buckets.
    pub max_buckets: u64,
    /// Chosen because blocked requests starve on it.
    pub starved: bool,
}

/// How far `d` is from serving one bucket at `w`: 0 if it can serve now.
pub fn deficit(d: &DevSnapshot, w: Watermark) -> u64 {
    let need = watermark::reserve(w, d.btree_reserve, d.nbuckets) + 1;
    need.saturating_sub(d.free.saturating_sub(d.open))
}

/// Picks the next device to discard on. `waiting` is the mask of devices
/// blocked requests could use and `w` the highest watermark among them
/// (`None`: nobody waits); `replaying`: the volume's replay has keys to
/// re-insert. `None` when there is nothing to do now.
pub fn pick(
    devs: &[DevSnapshot],
    waiting: u64,
    w: Option<Watermark>,
    priority: bool,
    replaying: bool,
) -> Option<Pick> {
    let candidates = || devs.iter().filter(|d| d.online && d.need_discard > 0);
    if let (true, Some(w)) = (priority, w) {
        let starved = candidates()
            .filter(|d| d.index < 64 && waiting & (1 << d.index) != 0)
            .map(|d| (deficit(d, w), d))
            .filter(|&(def, _)| def > 0)
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.index.cmp(&a.1.index)));
        if let Some((def, d)) = starved {
            return Some(Pick {
                dev: d.index,
                max_buckets: (def + STARVED_SLACK).min(STARVED_MAX),
                starved: true,
            });
        }
    }
    if replaying {
        return None;
    }
    candidates()
        .max_by(|a, b| {
            a.need_discard
                .cmp(&b.need_discard)
                .then(b.index.cmp(&a.index))
        })
        .map(|d| Pick {
            dev: d.index,
            max_buckets: BULK,
            starved: false,
        })
}
