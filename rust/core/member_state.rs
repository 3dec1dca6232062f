// SPDX-License-Identifier: GPL-2.0

//! A member's state, kept in every superblock (`member_states`, one byte per member) and
//! shown and set in sysfs (`dev-<i>/state`).
//!
//! - `rw`: allocated on and read; what every member is at format.
//! - `ro`: read, never allocated on: its buckets drain as their nodes are rewritten.
//! - `failed`: neither read nor allocated on; its replicas count as lost.
//! - `spare`: formatted in, holding nothing yet; not allocated on until made `rw`.
//!
//! The byte of `rw` is 0, so superblocks written before states existed (all zero) read
//! as every member `rw`.

use core::fmt;

/// Number of member states.
pub const NR_MEMBER_STATES: usize = 4;

/// A member's state. The discriminant is the on-disk byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MemberState {
    /// Allocated on and read.
    #[default]
    Rw = 0,
    /// Read, not allocated on.
    Ro = 1,
    /// Neither read nor allocated on.
    Failed = 2,
    /// Holds nothing; not allocated on until made `rw`.
    Spare = 3,
}

impl MemberState {
    /// Every state, in on-disk code order.
    pub const ALL: [MemberState; NR_MEMBER_STATES] = [
        MemberState::Rw,
        MemberState::Ro,
        MemberState::Failed,
        MemberState::Spare,
    ];

    /// The on-disk byte.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// The state of an on-disk byte; `None` for anything that is not one.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Rw),
            1 => Some(Self::Ro),
            2 => Some(Self::Failed),
            3 => Some(Self::Spare),
            _ => None,
        }
    }

    /// The name sysfs shows and takes.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rw => "rw",
            Self::Ro => "ro",
            Self::Failed => "failed",
            Self::Spare => "spare",
        }
    }

    /// The state a person wrote: a name, surrounding whitespace (the newline of `echo`)
    /// ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        Self::ALL.into_iter().find(|s| s.name() == text)
    }

    /// Whether the allocator may open buckets on the member.
    pub const fn allocates(self) -> bool {
        matches!(self, Self::Rw)
    }

    /// Whether replicas on the member may be read (count as present).
    pub const fn readable(self) -> bool {
        matches!(self, Self::Rw | Self::Ro)
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many members of `states` (the first `member_count`) allocate.
pub fn allocating(states: &[MemberState]) -> u32 {
    states.iter().filter(|s| s.allocates()).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_names_round_trip_and_zero_is_rw() {
        for s in MemberState::ALL {
            assert_eq!(MemberState::from_u8(s.to_u8()), Some(s));
            assert_eq!(MemberState::parse(s.name()), Some(s));
            assert_eq!(MemberState::parse(&format!(" {s}\n")), Some(s));
        }
        assert_eq!(MemberState::from_u8(0), Some(MemberState::Rw));
        assert_eq!(MemberState::default(), MemberState::Rw);
        for v in 4..=255u8 {
            assert_eq!(MemberState::from_u8(v), None);
        }
        for bad in ["", "RW", "r w", "failed2", "degraded", "rw ro"] {
            assert_eq!(MemberState::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_rw_allocates_and_rw_ro_are_readable() {
        use MemberState::*;
        let allocates: Vec<_> = MemberState::ALL
            .into_iter()
            .filter(|s| s.allocates())
            .collect();
        assert_eq!(allocates, [Rw]);
        let readable: Vec<_> = MemberState::ALL
            .into_iter()
            .filter(|s| s.readable())
            .collect();
        assert_eq!(readable, [Rw, Ro]);
        assert_eq!(allocating(&[Rw, Ro, Failed, Spare, Rw]), 2);
    }
}
