// SPDX-License-Identifier: GPL-2.0

//! Which journal entries replay applies: the one policy of the kernel's
//! register and the tool's fsck.
//!
//! Entries are appended in sequence order, and entry `n + 1` is written
//! only once entry `n` is durable on every member (appends are serialised
//! and each is flushed before it returns; a group commit that lets several
//! callers share an entry keeps this, since it only batches records into
//! one entry and still writes entries one after another). So after the
//! newest checkpoint, which covers entries up to its `journal_seq`, the
//! entries on disk are `journal_seq + 1 ..= last` with no hole, plus at
//! most one torn entry being written at the crash, which decodes on no
//! member and so is simply absent.
//!
//! An entry found after a missing one therefore means that the missing
//! entry was acknowledged and then lost on every member (a medium error,
//! an overwrite): the entries after it were acknowledged too. Replaying
//! only up to the hole would silently drop all of them; replaying past it
//! would apply changes whose predecessor is gone. Neither is silent here:
//! the window is refused and the caller says which entry is missing.
//! Entries at or below the checkpoint are covered and play no part, in
//! whatever order the ring left them.

use core::fmt;

/// The entries replay applies: `first..=last` (empty when `last < first`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The first entry after the checkpoint (`journal_seq + 1`).
    pub first: u64,
    /// The newest entry on disk, or `first - 1` if there is none.
    pub last: u64,
}

impl Window {
    /// Entries in the window.
    pub const fn len(&self) -> u64 {
        (self.last + 1).saturating_sub(self.first)
    }

    /// Whether no entry is to be replayed.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether entry `seq` is replayed.
    pub const fn contains(&self, seq: u64) -> bool {
        seq >= self.first && seq <= self.last
    }
}

/// Acknowledged journal entries are lost: `missing` is on no member while
/// `next` (and maybe more) after it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// The first entry after the checkpoint that no member holds.
    pub missing: u64,
    /// The first entry after it that a member holds.
    pub next: u64,
    /// Entries after the hole.
    pub after: u64,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal entry {} is missing on every member but entry {} is there ({} entr{} \
             after the gap): acknowledged changes were lost",
            self.missing,
            self.next,
            self.after,
            if self.after == 1 { "y" } else { "ies" }
        )
    }
}

/// The replay window after a checkpoint at `checkpoint_seq`, given the
/// sequence numbers of every entry found on any member, in ascending order
/// without duplicates.
pub fn replay_window(
    seqs: impl IntoIterator<Item = u64>,
    checkpoint_seq: u64,
) -> Result<Window, Lost> {
    let first = checkpoint_seq + 1;
    let mut last = checkpoint_seq;
    let mut hole: Option<Lost> = None;
    for seq in seqs.into_iter().filter(|&s| s > checkpoint_seq) {
        match hole.as_mut() {
            Some(h) => h.after += 1,
            None if seq == last + 1 => last = seq,
            None => {
                hole = Some(Lost {
                    missing: last + 1,
                    next: seq,
                    after: 1,
                })
            }
        }
    }
    match hole {
        Some(h) => Err(h),
        None => Ok(Window { first, last }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_entries_after_the_checkpoint() {
        let w = replay_window([3, 4, 5, 6, 7], 4).unwrap();
        assert_eq!((w.first, w.last, w.len()), (5, 7, 3));
        assert!(w.contains(5) && w.contains(7) && !w.contains(4) && !w.contains(8));
    }

    #[test]
    fn nothing_after_the_checkpoint() {
        let w = replay_window([1, 2, 9], 9).unwrap();
        assert!(w.is_empty());
        assert_eq!(w.first, 10);
        assert!(replay_window([], 0).unwrap().is_empty());
    }

    #[test]
    fn covered_entries_may_have_holes() {
        // An old lap's entries below the checkpoint, partly overwritten.
        assert_eq!(replay_window([2, 5, 9, 10, 11], 9).unwrap().len(), 2);
    }

    #[test]
    fn an_entry_after_a_hole_is_lost_data_not_noise() {
        assert_eq!(
            replay_window([5, 6, 8, 9], 4),
            Err(Lost {
                missing: 7,
                next: 8,
                after: 2
            })
        );
        // The hole right after the checkpoint.
        let e = replay_window([6], 4).unwrap_err();
        assert_eq!((e.missing, e.next, e.after), (5, 6, 1));
        assert_eq!(
            e.to_string(),
            "journal entry 5 is missing on every member but entry 6 is there (1 entry after \
             the gap): acknowledged changes were lost"
        );
    }
}
