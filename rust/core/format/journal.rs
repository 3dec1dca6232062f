// SPDX-License-Identifier: GPL-2.0

//! Journal entries: a header and fixed-size records, occupying one or more whole blocks of
//! the journal region (which is a ring, mirrored on every member at the same block
//! positions). An entry never wraps around the end of the region.

use super::super::buckets::BucketState;
use super::super::uuid::Uuid;
use super::codec::{need_mut, put, put_u32, put_u64, put_u8, seal, zero, Fields};
use super::error::{ErrorKind, FormatError};
use super::{Value, BLOCK_SIZE, VALUE_SIZE};

/// "BKJE".
pub const JOURNAL_MAGIC: [u8; 4] = *b"BKJE";
/// Bytes before the records.
pub const ENTRY_HEADER_SIZE: usize = 48;
/// Bytes per record.
pub const RECORD_SIZE: usize = 48;
/// Largest entry, in bytes (16 blocks).
pub const MAX_ENTRY_SIZE: usize = 16 * BLOCK_SIZE;
/// Most records in one entry.
pub const MAX_RECORDS: usize = (MAX_ENTRY_SIZE - ENTRY_HEADER_SIZE) / RECORD_SIZE;
/// Records that fit in an entry of one block.
pub const RECORDS_PER_BLOCK: usize = (BLOCK_SIZE - ENTRY_HEADER_SIZE) / RECORD_SIZE;

const S: &str = "journal_entry";

/// Field offsets within an entry (records within a record).
pub mod off {
    /// `magic`, 4 bytes.
    pub const MAGIC: usize = 0;
    /// `crc32c` of bytes 8..len.
    pub const CRC: usize = 4;
    /// `volume_uuid`, 16 bytes.
    pub const VOLUME_UUID: usize = 8;
    /// `seq`, u64 (≥ 1; consecutive entries have consecutive numbers).
    pub const SEQ: usize = 24;
    /// `len`, u32: header plus records, bytes.
    pub const LEN: usize = 32;
    /// `nr_records`, u32.
    pub const NR_RECORDS: usize = 36;
    /// Reserved, 8 bytes.
    pub const RESERVED: usize = 40;
    /// First record.
    pub const RECORDS: usize = 48;

    /// Record: `type`, u8 (1 = insert, 2 = bucket_state).
    pub const REC_TYPE: usize = 0;
    /// Record: reserved, 7 bytes.
    pub const REC_RESERVED: usize = 1;
    /// Insert record: `key`, u64.
    pub const INS_KEY: usize = 8;
    /// Insert record: `value`, 32 bytes.
    pub const INS_VALUE: usize = 16;
    /// Bucket state record: `bucket`, u64.
    pub const BS_BUCKET: usize = 8;
    /// Bucket state record: `member`, u32.
    pub const BS_MEMBER: usize = 16;
    /// Bucket state record: `state`, u8.
    pub const BS_STATE: usize = 20;
    /// Bucket state record: reserved to the end of the record.
    pub const BS_RESERVED: usize = 21;
}

const REC_INSERT: u8 = 1;
const REC_BUCKET_STATE: u8 = 2;

/// A journal record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A key was inserted (or overwritten) in the btree.
    Insert {
        /// The key.
        key: u64,
        /// Its value.
        value: Value,
    },
    /// A bucket changed state.
    BucketState {
        /// Member index of the device.
        member: u32,
        /// The bucket.
        bucket: u64,
        /// Its new state.
        state: BucketState,
    },
}

impl Record {
    fn encode(&self, buf: &mut [u8], o: usize) {
        zero(buf, o, o + RECORD_SIZE);
        match *self {
            Record::Insert { key, ref value } => {
                put_u8(buf, o + off::REC_TYPE, REC_INSERT);
                put_u64(buf, o + off::INS_KEY, key);
                put(buf, o + off::INS_VALUE, value);
            }
            Record::BucketState {
                member,
                bucket,
                state,
            } => {
                put_u8(buf, o + off::REC_TYPE, REC_BUCKET_STATE);
                put_u64(buf, o + off::BS_BUCKET, bucket);
                put_u32(buf, o + off::BS_MEMBER, member);
                put_u8(buf, o + off::BS_STATE, state.to_u8());
            }
        }
    }

    /// Decodes the record at `o` of the entry.
    fn decode(f: &Fields<'_>, o: usize) -> Result<Record, FormatError> {
        let ty = f.u8("record.type", o + off::REC_TYPE)?;
        f.zero("record.reserved", o + off::REC_RESERVED, 7)?;
        match ty {
            REC_INSERT => Ok(Record::Insert {
                key: f.u64("record.key", o + off::INS_KEY)?,
                value: f.bytes("record.value", o + off::INS_VALUE)?,
            }),
            REC_BUCKET_STATE => {
                let s = f.u8("record.state", o + off::BS_STATE)?;
                let state = BucketState::from_u8(s).ok_or(f.err(
                    "record.state",
                    o + off::BS_STATE,
                    ErrorKind::BadState(s),
                ))?;
                f.zero(
                    "record.reserved",
                    o + off::BS_RESERVED,
                    RECORD_SIZE - off::BS_RESERVED,
                )?;
                Ok(Record::BucketState {
                    member: f.u32("record.member", o + off::BS_MEMBER)?,
                    bucket: f.u64("record.bucket", o + off::BS_BUCKET)?,
                    state,
                })
            }
            t => Err(f.err(
                "record.type",
                o + off::REC_TYPE,
                ErrorKind::BadRecordType(t),
            )),
        }
    }
}

/// Blocks an entry of `len` bytes occupies.
pub const fn entry_blocks(len: usize) -> usize {
    len.div_ceil(BLOCK_SIZE)
}

/// Builds one entry in a buffer of whole blocks.
#[derive(Debug)]
pub struct EntryWriter<'a> {
    buf: &'a mut [u8],
    nr: u32,
    cap: u32,
}

impl<'a> EntryWriter<'a> {
    /// Starts an entry in `buf`; it can grow to `min(buf.len(), MAX_ENTRY_SIZE)` bytes.
    pub fn new(buf: &'a mut [u8]) -> Result<Self, FormatError> {
        need_mut(buf, S, BLOCK_SIZE)?;
        let room = buf.len().min(MAX_ENTRY_SIZE) - ENTRY_HEADER_SIZE;
        Ok(Self {
            cap: (room / RECORD_SIZE) as u32,
            buf,
            nr: 0,
        })
    }

    /// Records so far.
    pub const fn len(&self) -> u32 {
        self.nr
    }

    /// Whether no record was added yet.
    pub const fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// Records that still fit.
    pub const fn remaining(&self) -> u32 {
        self.cap - self.nr
    }

    /// Bytes of the entry so far (`len`).
    pub const fn bytes(&self) -> usize {
        ENTRY_HEADER_SIZE + self.nr as usize * RECORD_SIZE
    }

    /// Adds a record.
    pub fn push(&mut self, rec: &Record) -> Result<(), FormatError> {
        if self.nr >= self.cap {
            return Err(FormatError::new(
                S,
                "nr_records",
                off::NR_RECORDS,
                ErrorKind::Full,
            ));
        }
        rec.encode(self.buf, self.bytes());
        self.nr += 1;
        Ok(())
    }

    /// Writes header and checksum, zero-pads to the end of the last block; returns the
    /// bytes to write (whole blocks).
    pub fn finish(self, volume: &Uuid, seq: u64) -> Result<usize, FormatError> {
        if seq == 0 {
            return Err(FormatError::new(S, "seq", off::SEQ, ErrorKind::Zero));
        }
        let len = self.bytes();
        let out = entry_blocks(len) * BLOCK_SIZE;
        zero(self.buf, len, out);
        zero(self.buf, 0, ENTRY_HEADER_SIZE);
        put(self.buf, off::MAGIC, &JOURNAL_MAGIC);
        put(self.buf, off::VOLUME_UUID, volume);
        put_u64(self.buf, off::SEQ, seq);
        put_u32(self.buf, off::LEN, len as u32);
        put_u32(self.buf, off::NR_RECORDS, self.nr);
        seal(self.buf, off::CRC, off::VOLUME_UUID, len);
        Ok(out)
    }
}

/// Bytes to read (whole blocks) for the entry whose first block is `first`: checks magic
/// and `len`, not the checksum.
pub fn entry_len(first: &[u8]) -> Result<usize, FormatError> {
    let f = Fields::new(first, S);
    f.magic(&JOURNAL_MAGIC)?;
    let len = u64::from(f.u32("len", off::LEN)?);
    f.range(
        "len",
        off::LEN,
        len,
        ENTRY_HEADER_SIZE as u64,
        MAX_ENTRY_SIZE as u64,
    )?;
    Ok(entry_blocks(len as usize) * BLOCK_SIZE)
}

/// A decoded, validated entry borrowing its buffer.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    seq: u64,
    nr: u32,
    records: &'a [u8],
}

/// Decodes and validates the entry at the start of `buf` (which must hold `len` bytes):
/// magic, `len` and `nr_records` consistent, crc, volume, `seq >= 1`, every record.
/// An entry of another volume fails with [`ErrorKind::WrongVolume`] on `volume_uuid`
/// (stale, from an earlier format: skip it, it is not corruption).
pub fn decode_entry<'a>(buf: &'a [u8], volume: &Uuid) -> Result<Entry<'a>, FormatError> {
    let f = Fields::new(buf, S);
    f.need(ENTRY_HEADER_SIZE)?;
    f.magic(&JOURNAL_MAGIC)?;
    let len = f.u32("len", off::LEN)? as usize;
    f.range(
        "len",
        off::LEN,
        len as u64,
        ENTRY_HEADER_SIZE as u64,
        MAX_ENTRY_SIZE as u64,
    )?;
    f.need(len)?;
    f.crc(off::CRC, off::VOLUME_UUID, len)?;
    if &f.bytes::<16>("volume_uuid", off::VOLUME_UUID)? != volume {
        return Err(f.err("volume_uuid", off::VOLUME_UUID, ErrorKind::WrongVolume));
    }
    let seq = f.counter("seq", off::SEQ)?;
    if seq == 0 {
        return Err(f.err("seq", off::SEQ, ErrorKind::Zero));
    }
    f.zero("reserved", off::RESERVED, off::RECORDS - off::RESERVED)?;
    let nr = f.u32("nr_records", off::NR_RECORDS)?;
    f.range(
        "nr_records",
        off::NR_RECORDS,
        u64::from(nr),
        0,
        MAX_RECORDS as u64,
    )?;
    f.expect(
        "len",
        off::LEN,
        len as u64,
        (ENTRY_HEADER_SIZE + nr as usize * RECORD_SIZE) as u64,
    )?;
    for i in 0..nr as usize {
        Record::decode(&f, off::RECORDS + i * RECORD_SIZE)?;
    }
    Ok(Entry {
        seq,
        nr,
        records: buf.get(off::RECORDS..len).unwrap_or(&[]),
    })
}

impl<'a> Entry<'a> {
    /// Sequence number.
    pub const fn seq(&self) -> u64 {
        self.seq
    }

    /// Number of records.
    pub const fn len(&self) -> usize {
        self.nr as usize
    }

    /// Whether the entry has no record.
    pub const fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// Encoded bytes (`len`).
    pub const fn encoded_len(&self) -> usize {
        ENTRY_HEADER_SIZE + self.nr as usize * RECORD_SIZE
    }

    /// Blocks the entry occupies.
    pub const fn blocks(&self) -> usize {
        entry_blocks(self.encoded_len())
    }

    /// Record `i`.
    pub fn record(&self, i: usize) -> Option<Record> {
        let o = i.checked_mul(RECORD_SIZE)?;
        let r = self.records.get(o..o.checked_add(RECORD_SIZE)?)?;
        Record::decode(&Fields::new(r, S), 0).ok()
    }

    /// The records in order.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        (0..self.len()).filter_map(move |i| self.record(i))
    }
}

const _: () = assert!(VALUE_SIZE == 32 && off::INS_VALUE + VALUE_SIZE == RECORD_SIZE);
