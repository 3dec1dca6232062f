// SPDX-License-Identifier: GPL-2.0

//! The journal ring's arithmetic: where the next entry goes, and whether a
//! caller's records can join the open entry (group commit). The module's
//! `journal.rs` keeps the state and does the I/O; these decide.
//!
//! The ring holds whole entries, each in consecutive blocks; one never
//! wraps around the end: an entry that would is placed at block 0 and the
//! blocks it skipped at the end are zeroed first. Live entries (not yet
//! covered by a checkpoint) fill the ring from the oldest one's first block
//! (the tail) to the head.
//!
//! Group commit: records join the open entry while it has room for them
//! and the ring has room for the entry grown by them; otherwise the caller
//! waits for the open entry to be written (it makes room for a fresh one)
//! or, with nothing open, for the entry being written to be durable (a
//! checkpoint can then trim it); only with neither does it checkpoint.

use super::format::journal::{entry_blocks, ENTRY_HEADER_SIZE, MAX_RECORDS, RECORD_SIZE};

/// Where an entry of `blocks` blocks goes in a ring of `ring` blocks whose
/// next entry would start at `head`, with the oldest live entry starting at
/// `tail` (`None`: no live entry); `None` if it does not fit now.
pub const fn place(ring: u32, head: u32, tail: Option<u32>, blocks: u32) -> Option<u32> {
    if blocks == 0 || blocks > ring || head >= ring {
        return None;
    }
    let start = if head + blocks > ring { 0 } else { head };
    let Some(tail) = tail else {
        return Some(start);
    };
    if tail < head {
        // Live entries fill [tail, head): free are [head, end) and [0, tail).
        if start == head || blocks <= tail {
            return Some(start);
        }
        None
    } else if start == head && head + blocks <= tail {
        // Live entries fill [tail, end) and [0, head): free is [head, tail).
        Some(start)
    } else {
        None
    }
}

/// Blocks of an entry holding `records` records.
pub const fn blocks_for(records: usize) -> u32 {
    entry_blocks(ENTRY_HEADER_SIZE + records * RECORD_SIZE) as u32
}

/// What a caller adding records to the journal does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// They join the open entry.
    Joined,
    /// Wait for the open entry to be written, then try again.
    AfterOpen,
    /// Wait for the entry being written to be durable, then try again.
    AfterWriting,
    /// Checkpoint (nothing is open or in flight, and no room), then try again.
    NoRoom,
    /// More records than any entry holds.
    TooMany,
}

/// Whether `adding` records can join an open entry of `open` records, given
/// whether an entry is being written and `fits(blocks)`: whether the ring
/// has room now for an entry of that many blocks.
pub fn join(open: usize, adding: usize, writing: bool, fits: impl Fn(u32) -> bool) -> Join {
    if adding > MAX_RECORDS {
        return Join::TooMany;
    }
    let n = open + adding;
    if n <= MAX_RECORDS && fits(blocks_for(n)) {
        Join::Joined
    } else if open > 0 {
        Join::AfterOpen
    } else if writing {
        Join::AfterWriting
    } else {
        Join::NoRoom
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::journal::RECORDS_PER_BLOCK;
    use super::*;

    #[test]
    fn an_empty_ring_takes_any_entry_that_fits_it() {
        assert_eq!(place(64, 0, None, 1), Some(0));
        assert_eq!(place(64, 10, None, 16), Some(10));
        assert_eq!(place(64, 60, None, 5), Some(0), "wraps rather than split");
        assert_eq!(place(64, 0, None, 64), Some(0));
        assert_eq!(place(64, 0, None, 65), None);
        assert_eq!(place(64, 0, None, 0), None);
    }

    #[test]
    fn live_entries_ahead_of_the_head() {
        // Live [40, 64) and [0, 10): free [10, 40).
        assert_eq!(place(64, 10, Some(40), 30), Some(10));
        assert_eq!(place(64, 10, Some(40), 31), None);
        // Never over the tail.
        assert_eq!(place(64, 60, Some(62), 3), None);
    }

    #[test]
    fn live_entries_behind_the_head() {
        // Live [20, 50): free [50, 64) and [0, 20).
        assert_eq!(place(64, 50, Some(20), 14), Some(50));
        assert_eq!(place(64, 50, Some(20), 15), Some(0), "skips the tail end");
        assert_eq!(place(64, 50, Some(20), 20), Some(0));
        assert_eq!(place(64, 50, Some(20), 21), None);
    }

    #[test]
    fn one_block_holds_the_first_records() {
        assert_eq!(blocks_for(1), 1);
        assert_eq!(blocks_for(RECORDS_PER_BLOCK), 1);
        assert_eq!(blocks_for(RECORDS_PER_BLOCK + 1), 2);
        assert_eq!(blocks_for(MAX_RECORDS), 16);
    }

    #[test]
    fn records_join_while_the_entry_and_the_ring_have_room() {
        let roomy = |_| true;
        assert_eq!(join(0, 1, false, roomy), Join::Joined);
        assert_eq!(
            join(5, 1, true, roomy),
            Join::Joined,
            "while another is written"
        );
        assert_eq!(join(MAX_RECORDS - 1, 1, false, roomy), Join::Joined);
        assert_eq!(join(MAX_RECORDS, 1, false, roomy), Join::AfterOpen);
        assert_eq!(join(0, MAX_RECORDS + 1, false, roomy), Join::TooMany);
        assert_eq!(join(0, MAX_RECORDS, false, roomy), Join::Joined);
    }

    #[test]
    fn without_room_wait_for_what_frees_it_before_checkpointing() {
        // Room for a one-block entry only.
        let one = |b| b <= 1;
        assert_eq!(join(RECORDS_PER_BLOCK, 1, false, one), Join::AfterOpen);
        assert_eq!(join(0, 1, true, |_| false), Join::AfterWriting);
        assert_eq!(join(0, 1, false, |_| false), Join::NoRoom);
        assert_eq!(join(3, 1, true, |_| false), Join::AfterOpen);
    }
}
