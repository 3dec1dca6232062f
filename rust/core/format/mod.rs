// SPDX-License-Identifier: GPL-2.0

//! The on-disk format of bkalloc, version 2: its one definition and its documentation.
//!
//! Every integer is little-endian with an explicit size. Every structure is read and
//! written in whole 4 KiB blocks ([`BLOCK_SIZE`]) at 4 KiB-aligned offsets, and carries a
//! magic number and a CRC-32C ([`super::crc32c`]). Decoders never panic: on any input they
//! return a value or a [`FormatError`] naming the structure, the field and its byte
//! offset. Encoders validate what they are given, so what they write decodes.
//!
//! # A member device
//!
//! A volume has 1..=[`MAX_MEMBERS`] member devices, each cut into `bucket_count` buckets of
//! `bucket_size` bytes (a power of two, 64 KiB..=1 GiB, the same on every member). The first
//! `sb_buckets` buckets hold the metadata regions, packed block by block, and have state
//! `sb`; every other bucket is `free`, `need_discard`, `btree` or `user`.
//!
//! | offset (bytes)                    | size                    | contents                   |
//! |-----------------------------------|-------------------------|----------------------------|
//! | 0                                 | 2 blocks                | superblock copies 0 and 1  |
//! | 8192                              | 2 blocks                | checkpoint slots 0 and 1   |
//! | 16384                             | 2 × `alloc_blocks`      | alloc table copies 0 and 1 |
//! | `journal_offset`                  | `journal_blocks` blocks | journal (mirrored)         |
//! | `sb_buckets * bucket_size`        | rest of the device      | btree nodes, user data     |
//!
//! `alloc_blocks = ceil(bucket_count / 4056)`, `journal_offset = 16384 + 2 * alloc_blocks *
//! 4096`, `sb_buckets = ceil((journal_offset + journal_blocks * 4096) / bucket_size)`.
//! [`Layout`] computes all of it; the superblock stores the results and decoding checks
//! they match.
//!
//! Nothing is rewritten in place without a second copy to fall back on: the superblock
//! is written to copy 0, then copy 1, each flushed; a checkpoint writes the alloc table
//! copy and the checkpoint slot its generation names, which the previous checkpoint does
//! not use. Version 1 (one copy of each) is refused, naming the version.
//!
//! # Superblock ([`superblock`], blocks 0 and 1)
//!
//! A member uses the valid copy with the higher `seq` ([`superblock::pick_copy`]); the
//! volume takes its options from the member with the lowest `seq`
//! ([`superblock::options_source`]): the newest write every member acknowledged.
//!
//! | off  | size | field              | notes                                               |
//! |------|------|--------------------|-----------------------------------------------------|
//! | 0    | 8    | magic              | `"bkalloc\0"`                                       |
//! | 8    | 4    | crc32c             | of bytes 12..4096                                   |
//! | 12   | 4    | version            | 2                                                   |
//! | 16   | 16   | volume_uuid        | not zero                                            |
//! | 32   | 16   | member_uuid        | `== members[member_index]`                          |
//! | 48   | 8    | seq                | ≥ 1, bumped per rewrite (see above)                 |
//! | 56   | 4    | member_index       | `< member_count`                                    |
//! | 60   | 4    | member_count       | 1..=32                                              |
//! | 64   | 4    | bucket_size        | power of two, 65536..=2^30                          |
//! | 68   | 4    | btree_reserve      | `<= bucket_count - sb_buckets`                      |
//! | 72   | 8    | bucket_count       | `sb_buckets + 1..=2^40`                             |
//! | 80   | 4    | node_max_entries   | 4..=[`max_node_entries`]`(bucket_size)`             |
//! | 84   | 4    | journal_blocks     | 16..=2^20, same on every member                     |
//! | 88   | 4    | sb_buckets         | derived                                             |
//! | 92   | 4    | alloc_blocks       | derived                                             |
//! | 96   | 8    | checkpoint_offset  | 8192                                                |
//! | 104  | 8    | alloc_offset       | 16384 (copy 0; copy 1 follows it)                   |
//! | 112  | 8    | journal_offset     | derived                                             |
//! | 120  | 4    | opts_set           | bit i: option id i was explicitly set               |
//! | 124  | 4    | reserved           | 0                                                   |
//! | 128  | 128  | opts               | 32 × u32, slot = option id; unset slots 0           |
//! | 256  | 32   | member_states      | u8 per member: 0 rw, 1 ro, 2 failed, 3 spare        |
//! | 288  | 224  | reserved           | 0                                                   |
//! | 512  | 512  | members            | 32 × uuid; distinct, non-zero below member_count    |
//! | 1024 | 3072 | reserved           | 0                                                   |
//!
//! Options: every entry of the option table ([`super::options`]) is persistent. A set
//! option's value is stored in its slot; an unset one takes its default at register time
//! (for `allocator_stuck_timeout`, the module parameter). `metadata_replicas` and
//! `data_replicas` are always set by `bkalloc format`. Stored values are range-checked
//! and replicas must not exceed `member_count`.
//!
//! # Checkpoint ([`checkpoint`], blocks 2 and 3)
//!
//! | off | size | field        | notes                                               |
//! |-----|------|--------------|-----------------------------------------------------|
//! | 0   | 4    | magic        | `"BKCP"`                                            |
//! | 4   | 4    | crc32c       | of bytes 8..4096                                    |
//! | 8   | 16   | volume_uuid  | the volume's                                        |
//! | 24  | 8    | generation   | ≥ 1; written to slot `generation % 2`               |
//! | 32  | 8    | journal_seq  | journal entries `<= journal_seq` are reflected      |
//! | 40  | 4    | member_index | the member holding this copy                        |
//! | 44  | 1    | root_level   | 0..=15                                              |
//! | 45  | 3    | reserved     | 0                                                   |
//! | 48  | 40   | root         | btree pointer (below)                               |
//! | 88  | 40   | counts       | 5 × u64: this member's free, need_discard, sb, btree, user |
//! | 128 | 256  | missing      | 32 × u64: 0 for a present member, else the generation of the alloc table copy it holds (< generation; 0 at member_index) |
//! | 384 | 4    | nr_pending   | 0..=231                                             |
//! | 388 | 4    | reserved     | 0                                                   |
//! | 392 | 16·n | pending      | bucket states of missing members (below)            |
//! |     |      | reserved     | 0 to the end of the block                           |
//!
//! A pending record is `bucket` u64 at 0, `member` u32 at 8 (a missing one), `state` u8 at
//! 12 (not sb), 3 zero bytes; records are sorted by member, then bucket, one per bucket.
//! They are the bucket state changes journaled for members that were missing when the
//! volume was registered degraded ([`super::degraded`]): the journal holding them is
//! trimmed, so every checkpoint carries them until the member returns. A checkpoint written
//! with every member present has all of 128..4096 zero.
//!
//! The newest valid checkpoint over both slots of all members is the volume's state, with
//! alloc table copy `generation % 2` of every member. A flush writes btree nodes (to new
//! buckets) and that alloc table copy first, then the checkpoint on every member, so the
//! previous checkpoint and its copy stay whole until the new one is durable; changes after
//! it live in the journal. A member whose own newest checkpoint is older (the flush was cut
//! short) still has the newer table copy: it was written before any checkpoint.
//!
//! # Alloc table ([`alloc_table`])
//!
//! Two copies of `alloc_blocks` blocks; block `i` holds the states of buckets `4056*i ..`:
//!
//! | off | size | field        | notes                                                 |
//! |-----|------|--------------|-------------------------------------------------------|
//! | 0   | 4    | magic        | `"BKAT"`                                              |
//! | 4   | 4    | crc32c       | of bytes 8..4096                                      |
//! | 8   | 16   | volume_uuid  |                                                       |
//! | 24  | 4    | member_index | the device it describes                               |
//! | 28  | 4    | block_index  | `i`                                                   |
//! | 32  | 8    | generation   | the checkpoint this copy goes with (copy = g % 2)     |
//! | 40  | 4056 | states       | one byte per bucket ([`super::buckets::BucketState`]: 1 free, 2 need_discard, 3 sb, 4 btree, 5 user); 0 past the last bucket |
//!
//! # Journal ([`journal`])
//!
//! A ring of `journal_blocks` blocks, mirrored: every entry is written at the same block
//! of the journal region on every member, so any member can replay. An entry starts on a
//! block, occupies `ceil(len / 4096)` blocks (at most 16), and never wraps past the end of
//! the region. Valid entries of this volume, sorted by `seq`, must be consecutive; replay
//! applies those with `seq > checkpoint.journal_seq`, in order. Blocks that do not decode
//! (never written, stale from another volume, overwritten tails) are skipped.
//!
//! | off | size | field       | notes                                                  |
//! |-----|------|-------------|--------------------------------------------------------|
//! | 0   | 4    | magic       | `"BKJE"`                                               |
//! | 4   | 4    | crc32c      | of bytes 8..len                                        |
//! | 8   | 16   | volume_uuid |                                                        |
//! | 24  | 8    | seq         | ≥ 1                                                    |
//! | 32  | 4    | len         | `48 + 48 * nr_records`, ≤ 65536                        |
//! | 36  | 4    | nr_records  |                                                        |
//! | 40  | 8    | reserved    | 0                                                      |
//! | 48  | 48·n | records     |                                                        |
//!
//! Records are 48 bytes: `type` u8 at 0, 7 reserved zero bytes, then
//! - type 1, insert: `key` u64 at 8, `value` 32 bytes at 16 (see [`VALUE_SIZE`]);
//! - type 2, bucket state: `bucket` u64 at 8, `member` u32 at 16, `state` u8 at 20, zero
//!   to the end. States are absolute, so replaying a record twice is harmless.
//!
//! # Btree nodes ([`btree_node`])
//!
//! The btree maps u64 keys to 32-byte values. Each node replica fills the start of one
//! bucket (state `btree`); it is read and written as `node_size = ceil((64 + 48 *
//! node_max_entries) / 4096)` blocks. `node_max_entries` defaults to what fits in
//! `min(bucket_size, 256 KiB)` (1364 for 64 KiB buckets); a smaller value recorded at
//! format makes nodes split after few keys, for tests.
//!
//! | off | size | field       | notes                                                  |
//! |-----|------|-------------|--------------------------------------------------------|
//! | 0   | 4    | magic       | `"BKBN"`                                               |
//! | 4   | 4    | crc32c      | of bytes 8..len                                        |
//! | 8   | 16   | volume_uuid |                                                        |
//! | 24  | 8    | seq         | journal seq when written                               |
//! | 32  | 8    | min_key     | smallest key covered                                   |
//! | 40  | 8    | max_key     | largest key covered (inclusive), `>= min_key`          |
//! | 48  | 4    | len         | `64 + nr_entries * entry size`                         |
//! | 52  | 4    | nr_entries  | `<= node_max_entries`; ≥ 1 for interior nodes          |
//! | 56  | 1    | level       | 0 = leaf, ≤ 15                                         |
//! | 57  | 7    | reserved    | 0                                                      |
//! | 64  |      | entries     | keys strictly increasing, within `[min_key, max_key]`  |
//!
//! A leaf entry is 40 bytes: `key` u64, `value` 32 bytes. An interior entry is 48 bytes:
//! `key` u64 (the child's `min_key`; the first equals the node's `min_key`), then a btree
//! pointer to a child of level `level - 1` covering `[key, next key - 1]` (the last child
//! up to the node's `max_key`).
//!
//! A btree pointer is 40 bytes: `nr` u8 (1..=4 replicas), `dev` [u8; 4] (member indices),
//! 3 reserved bytes, `bucket` [u64; 4]; slots past `nr` are zero. Replicas must be on
//! distinct devices, in buckets marked `btree` (fsck's checks: decoding accepts
//! duplicates so fsck can name them).

pub mod alloc_table;
pub mod btree_node;
pub mod checkpoint;
mod codec;
pub mod error;
pub mod journal;
pub mod layout;
pub mod superblock;

pub use alloc_table::{decode_block as decode_alloc_block, AllocBlock};
pub use btree_node::{
    decode_node, BtreePtr, ChildSpec, Node, NodeHeader, NodeWriter, ParentMismatch, Replica,
};
pub use checkpoint::{newest as newest_checkpoint, Checkpoint, Pending};
pub use error::{ErrorKind, FormatError};
pub use journal::{decode_entry, Entry, EntryWriter, Record};
pub use layout::{default_journal_blocks, max_node_entries, Layout};
pub use superblock::Superblock;

/// Version written by this code; decoders accept only it.
pub const FORMAT_VERSION: u32 = 2;
/// The unit of all I/O: every structure is whole, aligned blocks.
pub const BLOCK_SIZE: usize = 4096;
/// Smallest bucket.
pub const MIN_BUCKET_SIZE: u32 = 64 << 10;
/// Largest bucket.
pub const MAX_BUCKET_SIZE: u32 = 1 << 30;
/// Most buckets on one device.
pub const MAX_BUCKET_COUNT: u64 = 1 << 40;
/// Most member devices in a volume.
pub const MAX_MEMBERS: usize = 32;
/// Most replicas of a btree node.
pub const MAX_REPLICAS: usize = 4;
/// Bytes of a btree value.
pub const VALUE_SIZE: usize = 32;
/// A btree value.
pub type Value = [u8; VALUE_SIZE];
/// Largest sequence number or generation on disk (superblock seq, checkpoint generation
/// and journal_seq, journal entry seq, node seq). Each only ever grows by one per write: at
/// a billion writes a second this takes 146 years to reach, so a larger value is a crafted
/// or corrupt image, refused at decode before any `+ 1` can overflow.
pub const MAX_COUNTER: u64 = 1 << 62;
/// Highest node level (so at most 16 levels).
pub const MAX_LEVEL: u8 = 15;
/// Largest on-disk node (`node_size`), whatever the bucket size.
pub const MAX_NODE_SIZE: usize = 256 << 10;
/// Smallest `node_max_entries` (a split must leave two non-empty halves).
pub const MIN_NODE_ENTRIES: u32 = 4;
/// Smallest journal.
pub const MIN_JOURNAL_BLOCKS: u32 = 16;
/// Largest journal (4 GiB).
pub const MAX_JOURNAL_BLOCKS: u32 = 1 << 20;
