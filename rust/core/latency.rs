// SPDX-License-Identifier: GPL-2.0

//! A fixed-size latency histogram: log2 buckets of nanoseconds, no allocation.
//!
//! Feeds `restart_latency_ns_p50` / `_p99` in sysfs `counters` (the wake-to-restart
//! latency of waiters).
//!
//! **Buckets.** Bucket 0 holds the value 0; bucket `i` (1..=64) holds `2^(i-1) ..=
//! 2^i - 1`, so every `u64` has a bucket and recording is a count of leading zeros and
//! an increment.
//!
//! **Precision.** [`Histogram::percentile`] returns the *upper bound* of the bucket that
//! holds the sample of that rank: for a returned `ub ≥ 1`, the true sample `v` satisfies
//! `ub / 2 < v <= ub` — never an underestimate, at most a factor of 2 over (a p99 of
//! 40 µs reads as 65535 ns when the sample is between 32768 and 65535 ns). Good enough to
//! tell microseconds from milliseconds from seconds, which is what the figure is for.
//!
//! Counters saturate; nothing panics.

/// Number of buckets: one for 0, one per bit position.
pub const NR_BUCKETS: usize = 65;

/// Counts of nanosecond values in log2 buckets (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Histogram {
    buckets: [u64; NR_BUCKETS],
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of `ns`.
const fn bucket_of(ns: u64) -> usize {
    (u64::BITS - ns.leading_zeros()) as usize
}

/// The largest value bucket `i` holds (`u64::MAX` for the last and any larger `i`).
pub const fn bucket_upper(i: usize) -> u64 {
    if i >= 64 {
        u64::MAX
    } else {
        (1u64 << i) - 1
    }
}

impl Histogram {
    /// Empty.
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [0; NR_BUCKETS],
            count: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, ns: u64) {
        if let Some(b) = self.buckets.get_mut(bucket_of(ns)) {
            *b = b.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
    }

    /// Values recorded.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// The count of bucket `i` (0 for `i >= NR_BUCKETS`).
    pub fn bucket(&self, i: usize) -> u64 {
        self.buckets.get(i).copied().unwrap_or(0)
    }

    /// An upper bound of the `p_permille`/1000 quantile (p50 = 500, p99 = 990, p100 =
    /// 1000 the maximum; larger values read as 1000, 0 as the minimum): the upper bound
    /// of the bucket holding the sample of rank `ceil(count * p / 1000)` (at least 1).
    /// 0 when nothing was recorded. See the module docs for the precision.
    pub fn percentile(&self, p_permille: u32) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let p = u64::from(p_permille.min(1000));
        // ceil(count * p / 1000) without overflow (and without u128, which the kernel
        // may not divide): count = 1000q + r.
        let (q, r) = (self.count / 1000, self.count % 1000);
        let rank = (q * p).saturating_add((r * p).div_ceil(1000)).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(n);
            if seen >= rank {
                return bucket_upper(i);
            }
        }
        // Only if the bucket counts saturated below `count`.
        u64::MAX
    }

    /// Adds `other`'s counts (e.g. per-CPU histograms into one).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a = a.saturating_add(*b);
        }
        self.count = self.count.saturating_add(other.count);
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = Histogram::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 1);
        assert_eq!(bucket_of(2), 2);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(4), 3);
        assert_eq!(bucket_of(u64::MAX), 64);
        for i in 0..NR_BUCKETS {
            assert_eq!(bucket_of(bucket_upper(i)), i);
        }
        assert_eq!(bucket_upper(100), u64::MAX);
    }
}
