// SPDX-License-Identifier: GPL-2.0

//! Bucket states, the legal transitions between them, and per-state counts.
//!
//! A bucket's persistent state is one byte in the alloc table (see
//! [`super::format::alloc_table`]). "open" (handed out, not yet committed) is an in-memory
//! pin, not a state: an open bucket is still `free` on disk until its new state is journaled.

use core::fmt;

/// Number of persistent bucket states.
pub const NR_STATES: usize = 5;

/// The persistent state of a bucket. The discriminant is the on-disk byte; 0 is never a
/// state (it pads the alloc table past the last bucket, and an all-zero block is not a
/// valid table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum BucketState {
    /// Usable by the allocator.
    Free = 1,
    /// Freed; must be discarded (or, with `discard=0`, just released) before reuse.
    NeedDiscard = 2,
    /// Part of the metadata region at the start of the device (superblock, checkpoint
    /// slots, alloc table, journal). Fixed at format; never changes.
    Sb = 3,
    /// Holds one replica of one btree node.
    Btree = 4,
    /// Holds user data.
    User = 5,
}

impl BucketState {
    /// Every state, in on-disk code order (also the order of [`BucketCounts`]).
    pub const ALL: [BucketState; NR_STATES] = [
        BucketState::Free,
        BucketState::NeedDiscard,
        BucketState::Sb,
        BucketState::Btree,
        BucketState::User,
    ];

    /// The on-disk byte.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// The state for an on-disk byte, `None` for anything that is not one.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Free),
            2 => Some(Self::NeedDiscard),
            3 => Some(Self::Sb),
            4 => Some(Self::Btree),
            5 => Some(Self::User),
            _ => None,
        }
    }

    /// Dense index 0..[`NR_STATES`], for per-state arrays.
    pub const fn index(self) -> usize {
        self as usize - 1
    }

    /// The name used in sysfs `usage`, the tool and scenario files.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::NeedDiscard => "need_discard",
            Self::Sb => "sb",
            Self::Btree => "btree",
            Self::User => "user",
        }
    }

    /// Whether a user of the control device may free a bucket in this state:
    /// only user buckets. A btree bucket holds a live tree node (freeing it
    /// would let the discard thread erase it and the allocator hand it out
    /// again); free, need_discard and sb buckets are nobody's to free.
    pub const fn freeable_by_user(self) -> bool {
        matches!(self, Self::User)
    }

    /// The state called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether a bucket in state `self` may move to `to`.
    ///
    /// free → btree | user (allocation); btree | user → need_discard (freeing: a freed
    /// bucket is never reused before it is discarded, so stale data is never read back as
    /// a node); need_discard → free (discard done, or skipped with `discard=0`). `sb` is
    /// fixed at format. Staying in the same state is not a transition.
    pub const fn can_become(self, to: BucketState) -> bool {
        matches!(
            (self, to),
            (Self::Free, Self::Btree)
                | (Self::Free, Self::User)
                | (Self::Btree, Self::NeedDiscard)
                | (Self::User, Self::NeedDiscard)
                | (Self::NeedDiscard, Self::Free)
        )
    }
}

impl fmt::Display for BucketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Number of buckets in each state, indexed by [`BucketState::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketCounts(pub [u64; NR_STATES]);

impl BucketCounts {
    /// All zero.
    pub const fn new() -> Self {
        Self([0; NR_STATES])
    }

    /// Buckets in `state`.
    pub const fn get(&self, state: BucketState) -> u64 {
        self.0[state.index()]
    }

    /// Counts one more bucket in `state` (saturating: counts come from disk).
    pub fn add(&mut self, state: BucketState) {
        let c = &mut self.0[state.index()];
        *c = c.saturating_add(1);
    }

    /// Moves one bucket from `from` to `to`; `false` (and no change) if `from` is empty.
    pub fn transfer(&mut self, from: BucketState, to: BucketState) -> bool {
        let Some(n) = self.0[from.index()].checked_sub(1) else {
            return false;
        };
        self.0[from.index()] = n;
        self.add(to);
        true
    }

    /// All buckets counted.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_free_only_user_buckets() {
        let freeable: Vec<_> = BucketState::ALL
            .into_iter()
            .filter(|s| s.freeable_by_user())
            .collect();
        assert_eq!(freeable, [BucketState::User]);
    }

    #[test]
    fn codes_names_round_trip() {
        for (i, s) in BucketState::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(BucketState::from_u8(s.to_u8()), Some(s));
            assert_eq!(BucketState::from_name(s.name()), Some(s));
        }
        assert_eq!(BucketState::from_u8(0), None);
        assert_eq!(BucketState::from_u8(6), None);
        assert_eq!(BucketState::from_name("open"), None);
    }

    #[test]
    fn transitions() {
        use BucketState::*;
        let legal = [
            (Free, Btree),
            (Free, User),
            (Btree, NeedDiscard),
            (User, NeedDiscard),
            (NeedDiscard, Free),
        ];
        for a in BucketState::ALL {
            for b in BucketState::ALL {
                assert_eq!(a.can_become(b), legal.contains(&(a, b)), "{a} -> {b}");
            }
        }
    }

    #[test]
    fn counts() {
        let mut c = BucketCounts::new();
        c.add(BucketState::Free);
        c.add(BucketState::Free);
        assert!(c.transfer(BucketState::Free, BucketState::User));
        assert!(!c.transfer(BucketState::Btree, BucketState::User));
        assert_eq!(c.get(BucketState::Free), 1);
        assert_eq!(c.get(BucketState::User), 1);
        assert_eq!(c.total(), 2);
    }
}
