// SPDX-License-Identifier: GPL-2.0

//! Degraded registration: a volume registered with members missing, and their return.
//!
//! Each member stores only its own alloc table, so while a member is missing nobody can
//! write its table. The present members' checkpoints keep what it needs instead
//! ([`Checkpoint::missing`]): the generation of the table copy it holds, and the bucket
//! state changes journaled for it that the copy lacks (the pending records of
//! [`super::format::checkpoint`]), since later checkpoints trim the journal that held them.
//! Which of its btree buckets are still used is not kept: the tree says, and register
//! reconciles every member's table with it.
//!
//! - A member goes missing: its `missing` entry is the generation the register starts from,
//!   whose table copy every member has, unless it was missing already (then its copy is the
//!   older one).
//! - It returns: its table is the copy of its `missing` generation, with the pending
//!   records applied on top, then the journal and the reconcile as for every member. That
//!   is refused when its own newest checkpoint is newer: it was registered without the
//!   others meanwhile, and the volume's two histories diverged. One newer checkpoint
//!   written while every member was present is the exception: a checkpoint that reached it
//!   but was cut short on the others, which the others replayed from the one before.

use super::format::{Checkpoint, MAX_MEMBERS};
use core::fmt;

/// A member that was opened for the register, with its own newest checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Present {
    /// Its member index.
    pub index: u32,
    /// The generation of its own newest valid checkpoint.
    pub generation: u64,
    /// Whether that checkpoint has members missing.
    pub degraded: bool,
}

/// What a register does with each member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The `missing` entries of every checkpoint written from now on.
    pub missing: [u64; MAX_MEMBERS],
    /// Per member index, the generation of the alloc table copy to load; 0 if missing.
    pub table: [u64; MAX_MEMBERS],
    /// Members that were missing and are back (bit `i`: member `i`): their tables take the
    /// pending records, and the register checkpoints at once.
    pub returning: u32,
}

impl Plan {
    /// Whether member `i` is missing.
    pub fn is_missing(&self, i: u32) -> bool {
        self.missing.get(i as usize).is_some_and(|&g| g != 0)
    }

    /// How many members are missing.
    pub fn nr_missing(&self) -> u32 {
        self.missing.iter().filter(|&&g| g != 0).count() as u32
    }
}

/// Why a register with members missing or returning is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A member is missing and degraded registration was not asked for.
    NotAsked {
        /// The first missing member.
        member: u32,
    },
    /// A returning member has a newer checkpoint than its table copy: it was registered
    /// without the others while they went on without it.
    Diverged {
        /// The member.
        member: u32,
        /// Its own newest checkpoint's generation.
        own: u64,
        /// The generation the others recorded it missing since.
        since: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NotAsked { member } => write!(
                f,
                "member {member} is missing: register every member, or add degraded=1 to go on without it"
            ),
            Self::Diverged { member, own, since } => write!(
                f,
                "member {member} has checkpoint generation {own}, written after the others recorded it missing (since generation {since}): it was registered without them, and the two diverged: register the others with degraded=1 to go on without it"
            ),
        }
    }
}

/// The plan for registering the members in `present` (distinct indices below
/// `member_count`) from `newest`, the newest checkpoint among them. `degraded`: the
/// register allows members to be missing.
pub fn plan(
    newest: &Checkpoint,
    member_count: u32,
    present: &[Present],
    degraded: bool,
) -> Result<Plan, Refusal> {
    let mut out = Plan {
        missing: [0; MAX_MEMBERS],
        table: [0; MAX_MEMBERS],
        returning: 0,
    };
    for i in 0..(member_count as usize).min(MAX_MEMBERS) {
        let since = newest.missing[i];
        let Some(p) = present.iter().find(|p| p.index as usize == i) else {
            if !degraded {
                return Err(Refusal::NotAsked { member: i as u32 });
            }
            // Its copy: the one it held when it went missing, or the newest's.
            out.missing[i] = if since != 0 { since } else { newest.generation };
            continue;
        };
        if since == 0 {
            out.table[i] = newest.generation;
            continue;
        }
        let cut_short = p.generation == since + 1 && !p.degraded;
        if p.generation > since && !cut_short {
            return Err(Refusal::Diverged {
                member: i as u32,
                own: p.generation,
                since,
            });
        }
        out.table[i] = since;
        out.returning |= 1 << i;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::format::{BtreePtr, Replica};
    use super::*;

    fn newest(generation: u64, missing: &[(usize, u64)]) -> Checkpoint {
        let mut m = [0; MAX_MEMBERS];
        for &(i, g) in missing {
            m[i] = g;
        }
        Checkpoint {
            generation,
            journal_seq: 1,
            member_index: 0,
            root_level: 0,
            root: BtreePtr::new(&[Replica { dev: 0, bucket: 9 }]).unwrap(),
            counts: Default::default(),
            missing: m,
        }
    }

    fn at(index: u32, generation: u64) -> Present {
        Present {
            index,
            generation,
            degraded: false,
        }
    }

    #[test]
    fn every_member_present_loads_the_newest_tables() {
        let p = plan(&newest(7, &[]), 3, &[at(0, 7), at(1, 6), at(2, 7)], false).unwrap();
        assert_eq!(p.nr_missing(), 0);
        assert_eq!(&p.table[..4], &[7, 7, 7, 0]);
        assert_eq!(p.returning, 0);
    }

    #[test]
    fn a_missing_member_needs_degraded_and_keeps_its_oldest_copy() {
        let cp = newest(7, &[]);
        let present = [at(0, 7), at(2, 7)];
        assert_eq!(
            plan(&cp, 3, &present, false),
            Err(Refusal::NotAsked { member: 1 })
        );
        let p = plan(&cp, 3, &present, true).unwrap();
        assert!(p.is_missing(1) && !p.is_missing(0) && !p.is_missing(2));
        assert_eq!(p.missing[1], 7);
        assert_eq!(p.table[1], 0);
        // Still missing at a later register: the copy it holds is still generation 7.
        let p = plan(&newest(12, &[(1, 7)]), 3, &present, true).unwrap();
        assert_eq!(p.missing[1], 7);
        assert_eq!(p.nr_missing(), 1);
        // A second one goes missing: since the newest generation.
        let p = plan(&newest(12, &[(1, 7)]), 3, &present[..1], true).unwrap();
        assert_eq!((p.missing[1], p.missing[2]), (7, 12));
    }

    #[test]
    fn a_member_returns_with_its_recorded_copy() {
        let cp = newest(12, &[(1, 7)]);
        for own in [6, 7] {
            let p = plan(&cp, 3, &[at(0, 12), at(1, own), at(2, 12)], false).unwrap();
            assert_eq!(p.nr_missing(), 0);
            assert_eq!(&p.table[..3], &[12, 7, 12]);
            assert_eq!(p.returning, 0b10);
        }
    }

    #[test]
    fn a_diverged_member_is_refused_but_a_cut_short_checkpoint_is_not() {
        let cp = newest(12, &[(1, 7)]);
        // Registered alone meanwhile: its own checkpoint names others missing.
        let alone = Present {
            index: 1,
            generation: 8,
            degraded: true,
        };
        let want = Err(Refusal::Diverged {
            member: 1,
            own: 8,
            since: 7,
        });
        assert_eq!(plan(&cp, 2, &[at(0, 12), alone], false), want);
        assert_eq!(plan(&cp, 2, &[at(0, 12), alone], true), want);
        // Generation 8 reached it before it went, and not the others: they went on from 7.
        let p = plan(&cp, 2, &[at(0, 12), at(1, 8)], false).unwrap();
        assert_eq!(p.table[1], 7);
        // Two generations ahead cannot be that.
        assert!(plan(&cp, 2, &[at(0, 12), at(1, 9)], false).is_err());
    }

    #[test]
    fn refusals_say_what_to_do() {
        let s = format!("{}", Refusal::NotAsked { member: 2 });
        assert!(
            s.contains("member 2 is missing") && s.contains("degraded=1"),
            "{s}"
        );
        let s = format!(
            "{}",
            Refusal::Diverged {
                member: 1,
                own: 8,
                since: 7
            }
        );
        assert!(s.contains("member 1") && s.contains("generation 8") && s.contains("diverged"));
    }
}
