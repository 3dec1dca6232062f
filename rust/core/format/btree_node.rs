// SPDX-License-Identifier: GPL-2.0

//! Btree nodes (one per bucket replica) and btree pointers.
//!
//! A node is written whole, `node_size` bytes (see [`super::layout::Layout`]), at the start
//! of its bucket; `len` says how much of it is meaningful and checksummed.

use super::super::uuid::Uuid;
use super::codec::{need_mut, put, put_u32, put_u64, put_u8, seal, zero, Fields};
use super::error::{ErrorKind, FormatError};
use super::{Value, BLOCK_SIZE, MAX_LEVEL, MAX_MEMBERS, MAX_REPLICAS, VALUE_SIZE};
use core::fmt;

/// "BKBN".
pub const NODE_MAGIC: [u8; 4] = *b"BKBN";
/// Bytes before the entries.
pub const NODE_HEADER_SIZE: usize = 64;
/// A leaf entry: key u64, value.
pub const LEAF_ENTRY_SIZE: usize = 8 + VALUE_SIZE;
/// An encoded [`BtreePtr`].
pub const PTR_SIZE: usize = 40;
/// An interior entry: key u64 (the child's min key), child pointer.
pub const INTERIOR_ENTRY_SIZE: usize = 8 + PTR_SIZE;

const S: &str = "btree_node";

/// Field offsets within a node.
pub mod off {
    /// `magic`, 4 bytes.
    pub const MAGIC: usize = 0;
    /// `crc32c` of bytes 8..len.
    pub const CRC: usize = 4;
    /// `volume_uuid`, 16 bytes.
    pub const VOLUME_UUID: usize = 8;
    /// `seq`, u64.
    pub const SEQ: usize = 24;
    /// `min_key`, u64.
    pub const MIN_KEY: usize = 32;
    /// `max_key`, u64 (inclusive).
    pub const MAX_KEY: usize = 40;
    /// `len`, u32: header plus entries, in bytes.
    pub const LEN: usize = 48;
    /// `nr_entries`, u32.
    pub const NR_ENTRIES: usize = 52;
    /// `level`, u8 (0 = leaf).
    pub const LEVEL: usize = 56;
    /// Reserved, 7 bytes.
    pub const RESERVED: usize = 57;
    /// First entry.
    pub const ENTRIES: usize = 64;
}

/// One replica of a node: member index and bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Replica {
    /// Member index of the device.
    pub dev: u8,
    /// Bucket on that device.
    pub bucket: u64,
}

/// Where a node lives: 1..=4 replicas, each a (device, bucket) pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BtreePtr {
    nr: u8,
    replicas: [Replica; MAX_REPLICAS],
}

impl BtreePtr {
    /// A pointer with these replicas (1..=4 of them).
    pub fn new(replicas: &[Replica]) -> Option<BtreePtr> {
        let mut p = BtreePtr::default();
        if replicas.is_empty() {
            return None;
        }
        for r in replicas {
            if !p.push(*r) {
                return None;
            }
        }
        Some(p)
    }

    /// Adds a replica; `false` if there are already four.
    pub fn push(&mut self, r: Replica) -> bool {
        match self.replicas.get_mut(self.nr as usize) {
            Some(slot) => {
                *slot = r;
                self.nr += 1;
                true
            }
            None => false,
        }
    }

    /// The replicas.
    pub fn replicas(&self) -> &[Replica] {
        self.replicas.get(..self.nr as usize).unwrap_or(&[])
    }

    /// Number of replicas.
    pub const fn len(&self) -> usize {
        self.nr as usize
    }

    /// Whether there is no replica (only the default value).
    pub const fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// Whether no two replicas share a device (fsck's invariant; decoding allows it so
    /// that fsck can name it).
    pub fn has_distinct_devs(&self) -> bool {
        let r = self.replicas();
        r.iter()
            .enumerate()
            .all(|(i, a)| r.get(..i).unwrap_or(&[]).iter().all(|b| b.dev != a.dev))
    }

    /// The bucket of the replica on member `dev`, if any.
    pub fn bucket_on(&self, dev: u8) -> Option<u64> {
        self.replicas()
            .iter()
            .find(|r| r.dev == dev)
            .map(|r| r.bucket)
    }

    /// Encodes into `buf[off..off + PTR_SIZE]`: nr u8, devs [u8; 4], 3 reserved bytes,
    /// buckets [u64; 4]; unused slots zero.
    pub(super) fn encode(&self, buf: &mut [u8], off: usize) {
        zero(buf, off, off + PTR_SIZE);
        put_u8(buf, off, self.nr);
        for (i, r) in self.replicas().iter().enumerate() {
            put_u8(buf, off + 1 + i, r.dev);
            put_u64(buf, off + 8 + 8 * i, r.bucket);
        }
    }

    /// Decodes and validates the pointer at `off`.
    pub(super) fn decode(f: &Fields<'_>, off: usize) -> Result<BtreePtr, FormatError> {
        let nr = f.u8("ptr.nr", off)?;
        f.range("ptr.nr", off, u64::from(nr), 1, MAX_REPLICAS as u64)?;
        f.zero("ptr.reserved", off + 5, 3)?;
        let mut p = BtreePtr {
            nr,
            ..BtreePtr::default()
        };
        for (i, r) in p.replicas.iter_mut().enumerate() {
            let (doff, boff) = (off + 1 + i, off + 8 + 8 * i);
            if i < nr as usize {
                r.dev = f.u8("ptr.dev", doff)?;
                f.range("ptr.dev", doff, u64::from(r.dev), 0, MAX_MEMBERS as u64 - 1)?;
                r.bucket = f.u64("ptr.bucket", boff)?;
            } else {
                f.zero("ptr.dev", doff, 1)?;
                f.zero("ptr.bucket", boff, 8)?;
            }
        }
        Ok(p)
    }
}

/// The header fields a writer chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeHeader {
    /// 0 for a leaf; a child of a level-n node has level n-1.
    pub level: u8,
    /// Journal sequence number at which the node was written.
    pub seq: u64,
    /// Smallest key the node covers.
    pub min_key: u64,
    /// Largest key the node covers (inclusive).
    pub max_key: u64,
}

const fn entry_size(level: u8) -> usize {
    if level == 0 {
        LEAF_ENTRY_SIZE
    } else {
        INTERIOR_ENTRY_SIZE
    }
}

/// Bytes of a node with `nr` entries at `level`.
pub const fn encoded_len(level: u8, nr: u32) -> usize {
    NODE_HEADER_SIZE + nr as usize * entry_size(level)
}

/// Builds a node in a buffer; entries must come in strictly increasing key order within
/// the node's range, and an interior node's first key must be its `min_key` (every key of
/// the range belongs to some child).
#[derive(Debug)]
pub struct NodeWriter<'a> {
    buf: &'a mut [u8],
    hdr: NodeHeader,
    nr: u32,
    cap: u32,
    last: Option<u64>,
}

/// What encoder and decoder both require of a header: a level in range
/// and `min_key <= max_key`.
fn check_header(f: &Fields<'_>, hdr: &NodeHeader) -> Result<(), FormatError> {
    f.range(
        "level",
        off::LEVEL,
        u64::from(hdr.level),
        0,
        u64::from(MAX_LEVEL),
    )?;
    if hdr.min_key > hdr.max_key {
        return Err(f.err(
            "max_key",
            off::MAX_KEY,
            ErrorKind::Unordered {
                prev: hdr.min_key,
                key: hdr.max_key,
            },
        ));
    }
    Ok(())
}

impl<'a> NodeWriter<'a> {
    /// Starts a node in `buf` (normally `node_size` bytes) holding at most `max_entries`.
    pub fn new(buf: &'a mut [u8], hdr: NodeHeader, max_entries: u32) -> Result<Self, FormatError> {
        need_mut(buf, S, NODE_HEADER_SIZE)?;
        let f = Fields::new(&[], S);
        check_header(&f, &hdr)?;
        let room = (buf.len() - NODE_HEADER_SIZE) / entry_size(hdr.level);
        let cap = (max_entries as usize).min(room) as u32;
        Ok(Self {
            buf,
            hdr,
            nr: 0,
            cap,
            last: None,
        })
    }

    /// Entries so far.
    pub const fn len(&self) -> u32 {
        self.nr
    }

    /// Whether no entry was added yet.
    pub const fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// Whether another entry fits.
    pub const fn is_full(&self) -> bool {
        self.nr >= self.cap
    }

    fn check_key(&self, key: u64, level_ok: bool) -> Result<usize, FormatError> {
        let f = Fields::new(&[], S);
        let o = encoded_len(self.hdr.level, self.nr);
        if !level_ok {
            return Err(f.err(
                "level",
                off::LEVEL,
                ErrorKind::Mismatch {
                    expected: if self.hdr.level == 0 { 1 } else { 0 },
                    found: u64::from(self.hdr.level),
                },
            ));
        }
        if self.is_full() {
            return Err(f.err("nr_entries", off::NR_ENTRIES, ErrorKind::Full));
        }
        if key < self.hdr.min_key || key > self.hdr.max_key {
            return Err(f.err("key", o, ErrorKind::OutsideRange(key)));
        }
        match self.last {
            Some(prev) if key <= prev => {
                return Err(f.err("key", o, ErrorKind::Unordered { prev, key }))
            }
            None if self.hdr.level > 0 && key != self.hdr.min_key => {
                return Err(f.err(
                    "key",
                    o,
                    ErrorKind::Mismatch {
                        expected: self.hdr.min_key,
                        found: key,
                    },
                ))
            }
            _ => {}
        }
        Ok(o)
    }

    /// Adds a leaf entry.
    pub fn push_leaf(&mut self, key: u64, value: &Value) -> Result<(), FormatError> {
        let o = self.check_key(key, self.hdr.level == 0)?;
        put_u64(self.buf, o, key);
        put(self.buf, o + 8, value);
        self.nr += 1;
        self.last = Some(key);
        Ok(())
    }

    /// Adds an interior entry: the child covering keys from `key` up to the next entry's
    /// key (or the node's `max_key`).
    pub fn push_child(&mut self, key: u64, child: &BtreePtr) -> Result<(), FormatError> {
        let o = self.check_key(key, self.hdr.level > 0)?;
        if child.is_empty() {
            return Err(FormatError::new(S, "ptr.nr", o + 8, ErrorKind::Zero));
        }
        put_u64(self.buf, o, key);
        child.encode(self.buf, o + 8);
        self.nr += 1;
        self.last = Some(key);
        Ok(())
    }

    /// Writes the header and checksum; zeroes the rest of the buffer. Returns `len`.
    /// Interior nodes need at least one entry.
    pub fn finish(self, volume: &Uuid) -> Result<usize, FormatError> {
        if self.hdr.level > 0 && self.nr == 0 {
            return Err(FormatError::new(
                S,
                "nr_entries",
                off::NR_ENTRIES,
                ErrorKind::Zero,
            ));
        }
        let len = encoded_len(self.hdr.level, self.nr);
        zero(self.buf, len, self.buf.len());
        zero(self.buf, 0, NODE_HEADER_SIZE);
        put(self.buf, off::MAGIC, &NODE_MAGIC);
        put(self.buf, off::VOLUME_UUID, volume);
        put_u64(self.buf, off::SEQ, self.hdr.seq);
        put_u64(self.buf, off::MIN_KEY, self.hdr.min_key);
        put_u64(self.buf, off::MAX_KEY, self.hdr.max_key);
        put_u32(self.buf, off::LEN, len as u32);
        put_u32(self.buf, off::NR_ENTRIES, self.nr);
        put_u8(self.buf, off::LEVEL, self.hdr.level);
        seal(self.buf, off::CRC, off::VOLUME_UUID, len);
        Ok(len)
    }
}

/// A decoded, validated node borrowing its buffer.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    hdr: NodeHeader,
    nr: u32,
    entries: &'a [u8],
}

/// Bytes to read for a node whose first block is `first`: checks magic and `len`. The
/// caller normally reads `node_size` bytes at once and does not need this.
pub fn node_len(first: &[u8]) -> Result<usize, FormatError> {
    let f = Fields::new(first, S);
    f.magic(&NODE_MAGIC)?;
    let len = u64::from(f.u32("len", off::LEN)?);
    f.range(
        "len",
        off::LEN,
        len,
        NODE_HEADER_SIZE as u64,
        u64::from(u32::MAX),
    )?;
    Ok((len as usize).div_ceil(BLOCK_SIZE) * BLOCK_SIZE)
}

/// Decodes and validates a node: magic, crc, volume, level, range, `nr_entries <=
/// max_entries`, `len` consistent, every key strictly increasing and within the range (an
/// interior node's first key is its `min_key`), every child pointer well formed.
pub fn decode_node<'a>(
    buf: &'a [u8],
    volume: &Uuid,
    max_entries: u32,
) -> Result<Node<'a>, FormatError> {
    let f = Fields::new(buf, S);
    f.need(NODE_HEADER_SIZE)?;
    f.magic(&NODE_MAGIC)?;
    let len = f.u32("len", off::LEN)? as usize;
    f.range(
        "len",
        off::LEN,
        len as u64,
        NODE_HEADER_SIZE as u64,
        buf.len() as u64,
    )?;
    f.crc(off::CRC, off::VOLUME_UUID, len)?;
    if &f.bytes::<16>("volume_uuid", off::VOLUME_UUID)? != volume {
        return Err(f.err("volume_uuid", off::VOLUME_UUID, ErrorKind::WrongVolume));
    }
    f.zero("reserved", off::RESERVED, off::ENTRIES - off::RESERVED)?;
    let level = f.u8("level", off::LEVEL)?;
    let hdr = NodeHeader {
        level,
        seq: f.counter("seq", off::SEQ)?,
        min_key: f.u64("min_key", off::MIN_KEY)?,
        max_key: f.u64("max_key", off::MAX_KEY)?,
    };
    check_header(&f, &hdr)?;
    let nr = f.u32("nr_entries", off::NR_ENTRIES)?;
    let min_nr = if level > 0 { 1 } else { 0 };
    f.range(
        "nr_entries",
        off::NR_ENTRIES,
        u64::from(nr),
        min_nr,
        u64::from(max_entries),
    )?;
    f.expect("len", off::LEN, len as u64, encoded_len(level, nr) as u64)?;

    let es = entry_size(level);
    let mut prev: Option<u64> = None;
    for i in 0..nr as usize {
        let o = off::ENTRIES + i * es;
        let key = f.u64("key", o)?;
        if key < hdr.min_key || key > hdr.max_key {
            return Err(f.err("key", o, ErrorKind::OutsideRange(key)));
        }
        match prev {
            Some(p) if key <= p => {
                return Err(f.err("key", o, ErrorKind::Unordered { prev: p, key }))
            }
            None if level > 0 => f.expect("key", o, key, hdr.min_key)?,
            _ => {}
        }
        if level > 0 {
            BtreePtr::decode(&f, o + 8)?;
        }
        prev = Some(key);
    }
    Ok(Node {
        hdr,
        nr,
        entries: buf.get(off::ENTRIES..len).unwrap_or(&[]),
    })
}

/// What a parent says of the child one of its pointers leads to: the
/// child's level and the key range its separator keys give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildSpec {
    /// One below the parent's.
    pub level: u8,
    /// The child's first key.
    pub min: u64,
    /// The child's last key.
    pub max: u64,
}

/// How a node disagrees with what its parent says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentMismatch {
    /// The node is on another level.
    Level {
        /// The node's level.
        found: u8,
        /// Its parent's level minus one.
        expected: u8,
    },
    /// The node covers another key range.
    Range {
        /// The node's `[min, max]`.
        found: (u64, u64),
        /// What its parent's keys give it.
        expected: (u64, u64),
    },
}

impl fmt::Display for ParentMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParentMismatch::Level { found, expected } => {
                write!(f, "node has level {found}, expected {expected}")
            }
            ParentMismatch::Range { found, expected } => write!(
                f,
                "node covers [{}..={}], its parent says [{}..={}]",
                found.0, found.1, expected.0, expected.1
            ),
        }
    }
}

impl<'a> Node<'a> {
    /// The header fields.
    pub const fn header(&self) -> NodeHeader {
        self.hdr
    }

    /// 0 for a leaf.
    pub const fn level(&self) -> u8 {
        self.hdr.level
    }

    /// Whether this is a leaf.
    pub const fn is_leaf(&self) -> bool {
        self.hdr.level == 0
    }

    /// Number of entries.
    pub const fn len(&self) -> usize {
        self.nr as usize
    }

    /// Whether the node has no entry (only an empty tree's root leaf).
    pub const fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// Encoded bytes (`len`).
    pub const fn encoded_len(&self) -> usize {
        encoded_len(self.hdr.level, self.nr)
    }

    fn entry(&self, i: usize) -> Option<&'a [u8]> {
        let es = entry_size(self.hdr.level);
        let o = i.checked_mul(es)?;
        self.entries.get(o..o.checked_add(es)?)
    }

    /// Key of entry `i`.
    pub fn key(&self, i: usize) -> Option<u64> {
        let e = self.entry(i)?;
        Some(u64::from_le_bytes(e.get(..8)?.try_into().ok()?))
    }

    /// Leaf entry `i`: key and value (`None` on an interior node).
    pub fn leaf(&self, i: usize) -> Option<(u64, &'a Value)> {
        if !self.is_leaf() {
            return None;
        }
        let e = self.entry(i)?;
        let key = u64::from_le_bytes(e.get(..8)?.try_into().ok()?);
        Some((key, e.get(8..8 + VALUE_SIZE)?.try_into().ok()?))
    }

    /// Interior entry `i`: the child's min key and pointer (`None` on a leaf).
    pub fn child(&self, i: usize) -> Option<(u64, BtreePtr)> {
        if self.is_leaf() {
            return None;
        }
        let e = self.entry(i)?;
        let f = Fields::new(e, S);
        Some((f.u64("key", 0).ok()?, BtreePtr::decode(&f, 8).ok()?))
    }

    /// Whether this node is what its parent says (`spec`): the level
    /// first, then the key range. Every reader of the tree (the module's
    /// load, the tool's fsck) checks each child with this.
    pub fn check_parent(&self, spec: &ChildSpec) -> Result<(), ParentMismatch> {
        let h = &self.hdr;
        if h.level != spec.level {
            return Err(ParentMismatch::Level {
                found: h.level,
                expected: spec.level,
            });
        }
        if (h.min_key, h.max_key) != (spec.min, spec.max) {
            return Err(ParentMismatch::Range {
                found: (h.min_key, h.max_key),
                expected: (spec.min, spec.max),
            });
        }
        Ok(())
    }

    /// What this interior node says of child `i` (`None` on a leaf or past
    /// the end).
    pub fn child_spec(&self, i: usize) -> Option<ChildSpec> {
        let (min, max) = self.child_range(i)?;
        Some(ChildSpec {
            level: self.hdr.level.checked_sub(1)?,
            min,
            max,
        })
    }

    /// Key range `[min, max]` covered by child `i`.
    pub fn child_range(&self, i: usize) -> Option<(u64, u64)> {
        if self.is_leaf() {
            return None;
        }
        let min = self.key(i)?;
        // Keys are strictly increasing (validated), so `next >= 1`.
        let max = match self.key(i.checked_add(1)?) {
            Some(next) => next.saturating_sub(1),
            None => self.hdr.max_key,
        };
        Some((min, max))
    }

    /// Leaf entries in key order.
    pub fn leaves(&self) -> impl Iterator<Item = (u64, &'a Value)> + '_ {
        (0..self.len()).filter_map(move |i| self.leaf(i))
    }

    /// Interior entries in key order.
    pub fn children(&self) -> impl Iterator<Item = (u64, BtreePtr)> + '_ {
        (0..self.len()).filter_map(move |i| self.child(i))
    }

    /// Binary search: `Ok(i)` if entry `i` has `key`, else `Err(i)` where it would go. For
    /// an interior node the child covering `key` is `Err(i)` → `i - 1`.
    pub fn search(&self, key: u64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid) {
                Some(k) if k < key => lo = mid + 1,
                Some(k) if k > key => hi = mid,
                Some(_) => return Ok(mid),
                None => return Err(lo),
            }
        }
        Err(lo)
    }

    /// The child covering `key` (interior nodes; `key` within the node's range).
    pub fn child_for(&self, key: u64) -> Option<(usize, BtreePtr)> {
        let i = match self.search(key) {
            Ok(i) => i,
            Err(i) => i.checked_sub(1)?,
        };
        Some((i, self.child(i)?.1))
    }
}
