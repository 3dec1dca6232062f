// SPDX-License-Identifier: GPL-2.0

//! The one error type of every decoder and encoder.

use core::fmt;

/// What is wrong with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The buffer ends before the structure does.
    TooShort {
        /// Bytes the structure needs.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// Not this structure's magic number.
    BadMagic,
    /// The stored checksum does not match the contents.
    BadChecksum {
        /// Checksum on disk.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
    /// A format version this code does not know.
    UnsupportedVersion(u32),
    /// A number outside its allowed range.
    OutOfRange {
        /// The value found.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A size that must be a power of two is not.
    NotPowerOfTwo(u64),
    /// A field that is derived from others (or must equal a known value) does not match.
    Mismatch {
        /// The value it must have.
        expected: u64,
        /// The value found.
        found: u64,
    },
    /// Reserved or unused bytes that must be zero are not.
    NotZero,
    /// An identifier that must not be all zero is.
    Zero,
    /// The same value appears twice where values must be distinct.
    Duplicate,
    /// A uuid that is not where the members list says it is.
    NotListed,
    /// Belongs to another volume (stale, e.g. from an earlier format).
    WrongVolume,
    /// The two superblock copies are both valid but describe different devices.
    CopiesDisagree,
    /// A bucket state that contradicts the layout: `sb` exactly for the buckets of the
    /// metadata region.
    SbRegion {
        /// The bucket.
        bucket: u64,
        /// Whether it is in the metadata region.
        inside: bool,
    },
    /// Not a bucket state byte.
    BadState(u8),
    /// Not a journal record type.
    BadRecordType(u8),
    /// Keys not strictly increasing.
    Unordered {
        /// The previous key.
        prev: u64,
        /// The key that should be larger.
        key: u64,
    },
    /// A key outside the node's key range.
    OutsideRange(u64),
    /// Encoding: the structure is full.
    Full,
    /// A record of a missing member names a member that is not missing.
    NotMissing(u32),
}

/// A decoding or encoding error: which structure, which field, at which byte offset within
/// the structure (the buffer handed to the decoder), and what is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatError {
    /// "superblock", "alloc_table", "journal_entry", "btree_node", "checkpoint".
    pub structure: &'static str,
    /// The field, as named in the format documentation.
    pub field: &'static str,
    /// Byte offset of the field within the structure.
    pub offset: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl FormatError {
    /// An error in `field` at `offset` of `structure`.
    pub const fn new(
        structure: &'static str,
        field: &'static str,
        offset: usize,
        kind: ErrorKind,
    ) -> Self {
        Self {
            structure,
            field,
            offset,
            kind,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { need, have } => write!(f, "buffer too short ({have} < {need} bytes)"),
            Self::BadMagic => f.write_str("bad magic"),
            Self::BadChecksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::UnsupportedVersion(v) => write!(
                f,
                "format version {v} is not supported (this code reads version {}: reformat)",
                super::FORMAT_VERSION
            ),
            Self::OutOfRange { value, min, max } => {
                write!(f, "{value} out of range {min}..={max}")
            }
            Self::NotPowerOfTwo(v) => write!(f, "{v} is not a power of two"),
            Self::Mismatch { expected, found } => write!(f, "is {found}, expected {expected}"),
            Self::NotZero => f.write_str("reserved bytes not zero"),
            Self::Zero => f.write_str("must not be zero"),
            Self::Duplicate => f.write_str("duplicate value"),
            Self::NotListed => f.write_str("not the members list's entry at member_index"),
            Self::WrongVolume => f.write_str("belongs to another volume"),
            Self::CopiesDisagree => f.write_str("differs from copy 0 (not this device's)"),
            Self::SbRegion {
                bucket,
                inside: true,
            } => write!(f, "bucket {bucket} is in the metadata region but not sb"),
            Self::SbRegion {
                bucket,
                inside: false,
            } => write!(
                f,
                "bucket {bucket} is past the metadata region but marked sb"
            ),
            Self::BadState(b) => write!(f, "invalid bucket state byte {b}"),
            Self::BadRecordType(t) => write!(f, "invalid record type {t}"),
            Self::Unordered { prev, key } => write!(f, "key {key} not after {prev}"),
            Self::OutsideRange(k) => write!(f, "key {k} outside the node's range"),
            Self::Full => f.write_str("no room left"),
            Self::NotMissing(m) => write!(f, "member {m} is not missing"),
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: field {} at offset {}: {}",
            self.structure, self.field, self.offset, self.kind
        )
    }
}
