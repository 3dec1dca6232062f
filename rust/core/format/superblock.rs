// SPDX-License-Identifier: GPL-2.0

//! The per-device superblock: one 4 KiB block, kept twice (blocks 0 and 1; layout in
//! [`super`]), and the rules that pick a copy and a volume's options from them.

use super::super::member_state::MemberState;
use super::super::options::{OptId, OptType, Options, NR_OPTS};
use super::super::uuid::{Uuid, NIL};
use super::codec::{need_mut, put, put_u32, put_u64, seal, zero, Fields};
use super::error::{ErrorKind, FormatError};
use super::layout::{Layout, ALLOC_OFFSET, CHECKPOINT_OFFSET};
use super::{BLOCK_SIZE, FORMAT_VERSION, MAX_MEMBERS};

/// "bkalloc\0".
pub const SB_MAGIC: [u8; 8] = *b"bkalloc\0";
/// Size of the superblock: one block.
pub const SB_SIZE: usize = BLOCK_SIZE;
/// Option value slots in the superblock (ids beyond the table must be unset and zero).
pub const OPT_SLOTS: usize = 32;

const S: &str = "superblock";

const _: () = assert!(NR_OPTS <= OPT_SLOTS && NR_OPTS <= 32);

/// Field offsets (bytes from the start of the superblock).
pub mod off {
    /// `magic`, 8 bytes.
    pub const MAGIC: usize = 0;
    /// `crc32c` of bytes 12..4096.
    pub const CRC: usize = 8;
    /// `version`, u32.
    pub const VERSION: usize = 12;
    /// `volume_uuid`, 16 bytes.
    pub const VOLUME_UUID: usize = 16;
    /// `member_uuid`, 16 bytes.
    pub const MEMBER_UUID: usize = 32;
    /// `seq`, u64.
    pub const SEQ: usize = 48;
    /// `member_index`, u32.
    pub const MEMBER_INDEX: usize = 56;
    /// `member_count`, u32.
    pub const MEMBER_COUNT: usize = 60;
    /// `bucket_size`, u32.
    pub const BUCKET_SIZE: usize = 64;
    /// `btree_reserve`, u32.
    pub const BTREE_RESERVE: usize = 68;
    /// `bucket_count`, u64.
    pub const BUCKET_COUNT: usize = 72;
    /// `node_max_entries`, u32.
    pub const NODE_MAX_ENTRIES: usize = 80;
    /// `journal_blocks`, u32.
    pub const JOURNAL_BLOCKS: usize = 84;
    /// `sb_buckets`, u32.
    pub const SB_BUCKETS: usize = 88;
    /// `alloc_blocks`, u32.
    pub const ALLOC_BLOCKS: usize = 92;
    /// `checkpoint_offset`, u64.
    pub const CHECKPOINT_OFFSET: usize = 96;
    /// `alloc_offset`, u64.
    pub const ALLOC_OFFSET: usize = 104;
    /// `journal_offset`, u64.
    pub const JOURNAL_OFFSET: usize = 112;
    /// `opts_set`, u32 bitmap.
    pub const OPTS_SET: usize = 120;
    /// Reserved u32.
    pub const RESERVED0: usize = 124;
    /// `opts`, 32 × u32.
    pub const OPTS: usize = 128;
    /// `member_states`, 32 × u8: each member's state by index (0 = rw, 1 = ro,
    /// 2 = failed, 3 = spare); 0 past `member_count`.
    pub const MEMBER_STATES: usize = 256;
    /// Reserved up to `members`.
    pub const RESERVED1: usize = 288;
    /// `members`, 32 × 16 bytes.
    pub const MEMBERS: usize = 512;
    /// Reserved to the end of the block.
    pub const RESERVED2: usize = 1024;
}

/// A decoded, validated superblock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// The volume this device belongs to.
    pub volume_uuid: Uuid,
    /// This member's own id (equals `members[member_index]`).
    pub member_uuid: Uuid,
    /// Bumped on every rewrite; the volume's options are those of the member with the
    /// lowest `seq` ([`options_source`]).
    pub seq: u64,
    /// This device's index in the volume (the `dev` of btree pointers).
    pub member_index: u32,
    /// Devices in the volume.
    pub member_count: u32,
    /// Every member's uuid by index; entries past `member_count` are zero.
    pub members: [Uuid; MAX_MEMBERS],
    /// Bytes per bucket (power of two, 64 KiB..=1 GiB; the same on every member).
    pub bucket_size: u32,
    /// Buckets kept for btree allocations at the normal watermark.
    pub btree_reserve: u32,
    /// Buckets on this device.
    pub bucket_count: u64,
    /// Entries per btree node, at most (the same on every member).
    pub node_max_entries: u32,
    /// Journal blocks (the same on every member).
    pub journal_blocks: u32,
    /// The volume's persistent options.
    pub options: Options,
    /// Every member's state by index (as the options, the newest superblock's count);
    /// entries past `member_count` are `rw`.
    pub member_states: [MemberState; MAX_MEMBERS],
}

impl Superblock {
    /// The members in use, by index.
    pub fn members(&self) -> &[Uuid] {
        self.members
            .get(..self.member_count as usize)
            .unwrap_or(&self.members)
    }

    /// The device layout (validated).
    pub fn layout(&self) -> Result<Layout, FormatError> {
        Layout::new(
            self.bucket_size,
            self.bucket_count,
            self.journal_blocks,
            self.node_max_entries,
        )
    }

    /// Checks everything but the encoding itself; returns the layout.
    pub fn validate(&self) -> Result<Layout, FormatError> {
        let f = Fields::new(&[], S);
        if self.volume_uuid == NIL {
            return Err(f.err("volume_uuid", off::VOLUME_UUID, ErrorKind::Zero));
        }
        if self.seq == 0 {
            return Err(f.err("seq", off::SEQ, ErrorKind::Zero));
        }
        f.range(
            "member_count",
            off::MEMBER_COUNT,
            u64::from(self.member_count),
            1,
            MAX_MEMBERS as u64,
        )?;
        f.range(
            "member_index",
            off::MEMBER_INDEX,
            u64::from(self.member_index),
            0,
            u64::from(self.member_count) - 1,
        )?;
        for (i, m) in self.members.iter().enumerate() {
            let o = off::MEMBERS + 16 * i;
            let used = i < self.member_count as usize;
            if used && *m == NIL {
                return Err(f.err("members", o, ErrorKind::Zero));
            }
            if !used && *m != NIL {
                return Err(f.err("members", o, ErrorKind::NotZero));
            }
            if used && self.members.get(..i).unwrap_or(&[]).contains(m) {
                return Err(f.err("members", o, ErrorKind::Duplicate));
            }
        }
        for (i, s) in self.member_states.iter().enumerate() {
            if i >= self.member_count as usize && *s != MemberState::Rw {
                return Err(f.err("member_states", off::MEMBER_STATES + i, ErrorKind::NotZero));
            }
        }
        if self.members.get(self.member_index as usize) != Some(&self.member_uuid) {
            return Err(f.err("member_uuid", off::MEMBER_UUID, ErrorKind::NotListed));
        }
        let layout = self.layout()?;
        f.range(
            "btree_reserve",
            off::BTREE_RESERVE,
            u64::from(self.btree_reserve),
            0,
            layout.data_buckets(),
        )?;
        if let Err(e) = self.options.check_members(self.member_count) {
            let id = OptId::from_name(e.option).unwrap_or(OptId::MetadataReplicas);
            return Err(f.err(
                "opts",
                off::OPTS + 4 * id.index(),
                ErrorKind::OutOfRange {
                    value: u64::from(self.options.get(id)),
                    min: 1,
                    max: u64::from(self.member_count),
                },
            ));
        }
        Ok(layout)
    }

    /// Whether `other` (another member's superblock) describes the same volume: the
    /// name of the first field that disagrees, if any. `seq` and options may differ (see
    /// [`options_source`]); the per-device fields naturally do.
    pub fn same_volume(&self, other: &Superblock) -> Result<(), &'static str> {
        if self.volume_uuid != other.volume_uuid {
            return Err("volume_uuid");
        }
        if self.member_count != other.member_count {
            return Err("member_count");
        }
        if self.members != other.members {
            return Err("members");
        }
        if self.bucket_size != other.bucket_size {
            return Err("bucket_size");
        }
        if self.node_max_entries != other.node_max_entries {
            return Err("node_max_entries");
        }
        if self.journal_blocks != other.journal_blocks {
            return Err("journal_blocks");
        }
        Ok(())
    }

    /// Encodes into `buf[..4096]` after validating.
    pub fn encode(&self, buf: &mut [u8]) -> Result<(), FormatError> {
        need_mut(buf, S, SB_SIZE)?;
        let l = self.validate()?;
        zero(buf, 0, SB_SIZE);
        put(buf, off::MAGIC, &SB_MAGIC);
        put_u32(buf, off::VERSION, FORMAT_VERSION);
        put(buf, off::VOLUME_UUID, &self.volume_uuid);
        put(buf, off::MEMBER_UUID, &self.member_uuid);
        put_u64(buf, off::SEQ, self.seq);
        put_u32(buf, off::MEMBER_INDEX, self.member_index);
        put_u32(buf, off::MEMBER_COUNT, self.member_count);
        put_u32(buf, off::BUCKET_SIZE, self.bucket_size);
        put_u32(buf, off::BTREE_RESERVE, self.btree_reserve);
        put_u64(buf, off::BUCKET_COUNT, self.bucket_count);
        put_u32(buf, off::NODE_MAX_ENTRIES, self.node_max_entries);
        put_u32(buf, off::JOURNAL_BLOCKS, self.journal_blocks);
        put_u32(buf, off::SB_BUCKETS, l.sb_buckets);
        put_u32(buf, off::ALLOC_BLOCKS, l.alloc_blocks);
        put_u64(buf, off::CHECKPOINT_OFFSET, CHECKPOINT_OFFSET);
        put_u64(buf, off::ALLOC_OFFSET, ALLOC_OFFSET);
        put_u64(buf, off::JOURNAL_OFFSET, l.journal_offset);
        put_u32(buf, off::OPTS_SET, self.options.set_mask());
        for id in OptId::ALL {
            let v = if self.options.is_set(id) {
                self.options.get(id)
            } else {
                0
            };
            put_u32(buf, off::OPTS + 4 * id.index(), v);
        }
        for (i, m) in self.members.iter().enumerate() {
            put(buf, off::MEMBERS + 16 * i, m);
        }
        for (i, s) in self.member_states.iter().enumerate() {
            put(buf, off::MEMBER_STATES + i, &[s.to_u8()]);
        }
        seal(buf, off::CRC, off::VERSION, SB_SIZE);
        Ok(())
    }

    /// Decodes and validates `buf[..4096]`.
    pub fn decode(buf: &[u8]) -> Result<Superblock, FormatError> {
        let f = Fields::new(buf, S);
        f.need(SB_SIZE)?;
        f.magic(&SB_MAGIC)?;
        f.crc(off::CRC, off::VERSION, SB_SIZE)?;
        let version = f.u32("version", off::VERSION)?;
        if version != FORMAT_VERSION {
            return Err(f.err(
                "version",
                off::VERSION,
                ErrorKind::UnsupportedVersion(version),
            ));
        }
        f.zero("reserved", off::RESERVED0, 4)?;
        f.zero("reserved", off::RESERVED1, off::MEMBERS - off::RESERVED1)?;
        f.zero("reserved", off::RESERVED2, SB_SIZE - off::RESERVED2)?;

        let mut member_states = [MemberState::Rw; MAX_MEMBERS];
        for (i, s) in member_states.iter_mut().enumerate() {
            let o = off::MEMBER_STATES + i;
            let v = f.bytes::<1>("member_states", o)?[0];
            *s = MemberState::from_u8(v).ok_or_else(|| {
                f.err(
                    "member_states",
                    o,
                    ErrorKind::OutOfRange {
                        value: u64::from(v),
                        min: 0,
                        max: MemberState::ALL.len() as u64 - 1,
                    },
                )
            })?;
        }
        let mut members = [NIL; MAX_MEMBERS];
        for (i, m) in members.iter_mut().enumerate() {
            *m = f.bytes("members", off::MEMBERS + 16 * i)?;
        }
        let set = f.u32("opts_set", off::OPTS_SET)?;
        let mut values = [0u32; NR_OPTS];
        for i in 0..OPT_SLOTS {
            let o = off::OPTS + 4 * i;
            let v = f.u32("opts", o)?;
            let is_set = set & (1 << i) != 0;
            match values.get_mut(i) {
                Some(slot) if is_set => *slot = v,
                // Unset or unknown slots must be zero, so a newer writer is noticed.
                _ if v != 0 => return Err(f.err("opts", o, ErrorKind::NotZero)),
                None if is_set => return Err(f.err("opts_set", off::OPTS_SET, ErrorKind::NotZero)),
                _ => {}
            }
        }
        let options = Options::from_raw(set, &values).map_err(|(id, _)| {
            let (min, max) = match id.desc().ty {
                OptType::Uint { min, max } => (u64::from(min), u64::from(max)),
                OptType::Bool => (0, 1),
                OptType::Enum(names) => (0, names.len().saturating_sub(1) as u64),
            };
            let value = u64::from(values.get(id.index()).copied().unwrap_or(0));
            f.err(
                "opts",
                off::OPTS + 4 * id.index(),
                ErrorKind::OutOfRange { value, min, max },
            )
        })?;

        let sb = Superblock {
            volume_uuid: f.bytes("volume_uuid", off::VOLUME_UUID)?,
            member_uuid: f.bytes("member_uuid", off::MEMBER_UUID)?,
            seq: f.counter("seq", off::SEQ)?,
            member_index: f.u32("member_index", off::MEMBER_INDEX)?,
            member_count: f.u32("member_count", off::MEMBER_COUNT)?,
            members,
            bucket_size: f.u32("bucket_size", off::BUCKET_SIZE)?,
            btree_reserve: f.u32("btree_reserve", off::BTREE_RESERVE)?,
            bucket_count: f.u64("bucket_count", off::BUCKET_COUNT)?,
            node_max_entries: f.u32("node_max_entries", off::NODE_MAX_ENTRIES)?,
            journal_blocks: f.u32("journal_blocks", off::JOURNAL_BLOCKS)?,
            options,
            member_states,
        };
        let l = sb.validate()?;
        // The stored layout must be the one the geometry implies.
        let derived = [
            (
                "sb_buckets",
                off::SB_BUCKETS,
                u64::from(f.u32("sb_buckets", off::SB_BUCKETS)?),
                u64::from(l.sb_buckets),
            ),
            (
                "alloc_blocks",
                off::ALLOC_BLOCKS,
                u64::from(f.u32("alloc_blocks", off::ALLOC_BLOCKS)?),
                u64::from(l.alloc_blocks),
            ),
            (
                "checkpoint_offset",
                off::CHECKPOINT_OFFSET,
                f.u64("checkpoint_offset", off::CHECKPOINT_OFFSET)?,
                CHECKPOINT_OFFSET,
            ),
            (
                "alloc_offset",
                off::ALLOC_OFFSET,
                f.u64("alloc_offset", off::ALLOC_OFFSET)?,
                ALLOC_OFFSET,
            ),
            (
                "journal_offset",
                off::JOURNAL_OFFSET,
                f.u64("journal_offset", off::JOURNAL_OFFSET)?,
                l.journal_offset,
            ),
        ];
        for (name, o, found, expected) in derived {
            f.expect(name, o, found, expected)?;
        }
        Ok(sb)
    }
}

/// The superblock copy a member uses: the valid one with the higher `seq` (a write goes to
/// copy 0, then copy 1, each flushed, so a torn write leaves the other copy whole). Both
/// valid but of different volumes or members, or with one `seq` and different contents, is
/// refused: one of them is not this device's.
/// With neither valid, copy 0's error.
pub fn pick_copy(
    copy0: Result<Superblock, FormatError>,
    copy1: Result<Superblock, FormatError>,
) -> Result<Superblock, FormatError> {
    match (copy0, copy1) {
        (Ok(a), Ok(b)) => {
            if let Err(field) = a.same_volume(&b) {
                return Err(copy_mismatch(field));
            }
            if a.member_index != b.member_index {
                return Err(copy_mismatch("member_index"));
            }
            if a.bucket_count != b.bucket_count {
                return Err(copy_mismatch("bucket_count"));
            }
            if a.seq == b.seq && a != b {
                // One write makes both copies: the same seq must mean the same bytes.
                return Err(copy_mismatch("seq"));
            }
            Ok(if b.seq > a.seq { b } else { a })
        }
        (Ok(a), Err(_)) => Ok(a),
        (Err(_), Ok(b)) => Ok(b),
        (Err(e), Err(_)) => Err(e),
    }
}

fn copy_mismatch(field: &'static str) -> FormatError {
    let o = match field {
        "volume_uuid" => off::VOLUME_UUID,
        "member_count" => off::MEMBER_COUNT,
        "members" => off::MEMBERS,
        "bucket_size" => off::BUCKET_SIZE,
        "node_max_entries" => off::NODE_MAX_ENTRIES,
        "journal_blocks" => off::JOURNAL_BLOCKS,
        "bucket_count" => off::BUCKET_COUNT,
        "seq" => off::SEQ,
        _ => off::MEMBER_INDEX,
    };
    FormatError::new("superblock copy 1", field, o, ErrorKind::CopiesDisagree)
}

/// Which member's superblock holds the volume's options: the one with the lowest `seq`.
///
/// An option write goes to every member in index order, each flushed, and is acknowledged
/// only after the last, so every member has reached the lowest `seq` and it is the newest
/// acknowledged state; a higher one is a write that failed or was cut short, never
/// acknowledged, and is dropped. The next write uses the highest `seq` plus one everywhere.
pub fn options_source(sbs: &[Superblock]) -> usize {
    sbs.iter()
        .enumerate()
        .min_by_key(|(i, sb)| (sb.seq, *i))
        .map_or(0, |(i, _)| i)
}
