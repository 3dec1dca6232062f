// SPDX-License-Identifier: GPL-2.0

//! A fixed-size latency histogram: log-linear buckets of nanoseconds, no allocation.
//!
//! Feeds `restart_latency_ns_p50` / `_p99` / `_max` in sysfs `counters` (the
//! wake-to-restart latency of waiters).
//!
//! **Buckets.** Values below 8 have a bucket each. Above, each power of two `2^e ..
//! 2^(e+1)` up to 2^40 ns (18 minutes) is cut into 8 equal sub-buckets (as HdrHistogram
//! does with 3 significant bits); everything from 2^40 on shares the last bucket. Every
//! `u64` has a bucket and recording is a count of leading zeros, a shift and an
//! increment. 304 buckets of `u32`: the histogram lives in a volume's allocator state,
//! which is built on the kernel stack before it moves into place.
//!
//! **Precision.** [`Histogram::percentile`] returns the *upper bound* of the bucket that
//! holds the sample of that rank: never an underestimate, and below 2^40 ns at most 1/8
//! (12.5 %) over the true sample (a p99 of 40 000 ns reads as at most 40 959). The
//! maximum is kept exactly.
//!
//! Counters saturate; nothing panics.

/// Sub-buckets per power of two (and values with a bucket each below it).
const SUB: usize = 8;
/// log2 of [`SUB`].
const SUB_BITS: u32 = 3;
/// Powers of two with sub-buckets: 2^3 .. 2^40.
const TOP_BIT: u32 = 40;

/// Number of buckets: one per value below 8, 8 per power of two from 2^3 to 2^39, and
/// one for 2^40 and above.
pub const NR_BUCKETS: usize = SUB + (TOP_BIT - SUB_BITS) as usize * SUB + 1;

/// Counts of nanosecond values in log-linear buckets (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Histogram {
    buckets: [u32; NR_BUCKETS],
    count: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of `ns`.
const fn bucket_of(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    // e >= SUB_BITS: the top bit's position; the next 3 bits pick the sub-bucket.
    let e = u64::BITS - 1 - ns.leading_zeros();
    if e >= TOP_BIT {
        return NR_BUCKETS - 1;
    }
    let sub = ((ns >> (e - SUB_BITS)) as usize) & (SUB - 1);
    SUB + (e - SUB_BITS) as usize * SUB + sub
}

/// The largest value bucket `i` holds (`u64::MAX` for the last and any larger `i`).
pub const fn bucket_upper(i: usize) -> u64 {
    if i >= NR_BUCKETS - 1 {
        return u64::MAX;
    }
    if i < SUB {
        return i as u64;
    }
    let e = ((i - SUB) / SUB) as u32 + SUB_BITS;
    let sub = ((i - SUB) % SUB) as u64;
    let width = 1u64 << (e - SUB_BITS);
    ((SUB as u64 + sub) << (e - SUB_BITS)) + (width - 1)
}

impl Histogram {
    /// Empty.
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [0; NR_BUCKETS],
            count: 0,
            max: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, ns: u64) {
        if let Some(b) = self.buckets.get_mut(bucket_of(ns)) {
            *b = b.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.max = self.max.max(ns);
    }

    /// The largest value recorded (0 when nothing was).
    pub const fn max(&self) -> u64 {
        self.max
    }

    /// Values recorded.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// The count of bucket `i` (0 for `i >= NR_BUCKETS`).
    pub fn bucket(&self, i: usize) -> u64 {
        self.buckets.get(i).copied().map_or(0, u64::from)
    }

    /// An upper bound of the `p_permille`/1000 quantile (p50 = 500, p99 = 990, p100 =
    /// 1000 the maximum; larger values read as 1000, 0 as the minimum): the upper bound
    /// of the bucket holding the sample of rank `ceil(count * p / 1000)` (at least 1),
    /// or the maximum if that is lower.
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
            seen = seen.saturating_add(u64::from(n));
            if seen >= rank {
                // The exact maximum bounds every sample too.
                return bucket_upper(i).min(self.max);
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
        self.max = self.max.max(other.max);
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
        for v in 0..8 {
            assert_eq!(bucket_of(v), v as usize);
            assert_eq!(bucket_upper(v as usize), v);
        }
        // 8..15: a bucket each; 16..31: 8 buckets of 2.
        assert_eq!(bucket_of(15), 15);
        assert_eq!(bucket_of(16), 16);
        assert_eq!(bucket_of(17), 16);
        assert_eq!(bucket_upper(16), 17);
        assert_eq!(bucket_of((1 << 40) - 1), NR_BUCKETS - 2);
        assert_eq!(bucket_of(1 << 40), NR_BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), NR_BUCKETS - 1);
        assert_eq!(bucket_upper(NR_BUCKETS - 2), (1 << 40) - 1);
        for i in 0..NR_BUCKETS {
            assert_eq!(bucket_of(bucket_upper(i)), i, "{i}");
            if i > 0 {
                assert_eq!(bucket_of(bucket_upper(i - 1) + 1), i, "{i}");
            }
        }
        assert_eq!(bucket_upper(NR_BUCKETS + 3), u64::MAX);
    }
}
