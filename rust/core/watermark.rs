// SPDX-License-Identifier: GPL-2.0

//! Watermarks and the reserve arithmetic per device.
//!
//! A request at watermark `w` may take a device's buckets down to that device's reserve
//! for `w` (see the interface): `normal` keeps `btree_reserve + nbuckets/64`, `btree`
//! keeps `btree_reserve`, `reclaim` keeps nothing. Higher watermarks may dig deeper, so
//! btree node allocations (and, in the end, reclaim) still find buckets when user data
//! has filled a device.
//!
//! **Counting.** `free` is the number of buckets whose persistent state is `free`,
//! *including* the open ones (an open bucket stays `free` on disk until its new state is
//! committed, see [`super::buckets`]), so `free - open` are the buckets nobody holds.
//! `need_discard` buckets never count as usable: only a completed discard turns them
//! into `free` ones. All arithmetic saturates; nothing here can overflow or panic.

use core::fmt;

/// Number of watermarks.
pub const NR_WATERMARKS: usize = 3;

/// How deep into a device's reserve a request may dig, low to high.
///
/// The discriminant is the value in the ioctl ABI and the index of [`reserves`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Watermark {
    /// User data: keeps `btree_reserve + nbuckets/64` back.
    Normal = 0,
    /// Btree nodes: keeps `btree_reserve` back.
    Btree = 1,
    /// Last resort (freeing space): keeps nothing back.
    Reclaim = 2,
}

impl Watermark {
    /// Every watermark, low to high.
    pub const ALL: [Watermark; NR_WATERMARKS] =
        [Watermark::Normal, Watermark::Btree, Watermark::Reclaim];

    /// Dense index 0..[`NR_WATERMARKS`] (the ABI value).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The watermark with ABI value `v`, `None` for anything else.
    pub const fn from_u32(v: u32) -> Option<Watermark> {
        match v {
            0 => Some(Watermark::Normal),
            1 => Some(Watermark::Btree),
            2 => Some(Watermark::Reclaim),
            _ => None,
        }
    }

    /// The name used in sysfs (`waiters`, `alloc_stuck`), the tool and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Watermark::Normal => "normal",
            Watermark::Btree => "btree",
            Watermark::Reclaim => "reclaim",
        }
    }

    /// The watermark called `name` (exactly).
    pub fn from_name(name: &str) -> Option<Watermark> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Parses a name written by a person: surrounding whitespace (the newline of `echo`)
    /// is ignored.
    pub fn parse(text: &str) -> Option<Watermark> {
        Self::from_name(text.trim())
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Buckets a device with `nbuckets` buckets and `btree_reserve` keeps back from requests
/// at watermark `w`.
pub const fn reserve(w: Watermark, btree_reserve: u32, nbuckets: u64) -> u64 {
    // A u32 plus a u64 divided by 64 cannot overflow a u64; saturate anyway.
    let r = btree_reserve as u64;
    match w {
        Watermark::Normal => r.saturating_add(nbuckets / 64),
        Watermark::Btree => r,
        Watermark::Reclaim => 0,
    }
}

/// The reserve for every watermark, indexed by [`Watermark::index`] (sysfs `usage`:
/// `reserve_normal`, `reserve_btree`, `reserve_reclaim`).
pub const fn reserves(btree_reserve: u32, nbuckets: u64) -> [u64; NR_WATERMARKS] {
    [
        reserve(Watermark::Normal, btree_reserve, nbuckets),
        reserve(Watermark::Btree, btree_reserve, nbuckets),
        reserve(Watermark::Reclaim, btree_reserve, nbuckets),
    ]
}

/// Buckets a request may take now: `free - open - reserve`, saturating at 0.
///
/// `free` includes the `open` buckets (see the module docs); `need_discard` buckets are
/// not an argument because they never count.
pub const fn usable(free: u64, open: u64, reserve: u64) -> u64 {
    free.saturating_sub(open).saturating_sub(reserve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order() {
        for (i, w) in Watermark::ALL.into_iter().enumerate() {
            assert_eq!(w.index(), i);
            assert_eq!(Watermark::from_u32(i as u32), Some(w));
            assert_eq!(Watermark::from_name(w.name()), Some(w));
        }
        assert_eq!(Watermark::parse(" btree\n"), Some(Watermark::Btree));
        assert_eq!(Watermark::from_name("Btree"), None);
        assert_eq!(Watermark::from_u32(3), None);
        assert!(Watermark::Normal < Watermark::Btree && Watermark::Btree < Watermark::Reclaim);
    }

    #[test]
    fn reserves_shrink_with_the_watermark() {
        assert_eq!(reserves(2, 9469), [2 + 147, 2, 0]);
        assert_eq!(
            reserve(Watermark::Normal, u32::MAX, u64::MAX),
            u64::from(u32::MAX) + (u64::MAX / 64)
        );
        assert_eq!(usable(1, 0, 2), 0);
        assert_eq!(usable(5109, 0, 2), 5107);
        assert_eq!(usable(10, 9, 0), 1);
        assert_eq!(usable(3, 7, 0), 0);
    }
}
