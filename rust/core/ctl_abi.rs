// SPDX-License-Identifier: GPL-2.0

//! The `/dev/bkalloc` ioctl ABI, shared by the module and the tool.
//!
//! Every argument is one `#[repr(C)]` structure of fixed size, read and
//! written as little-endian bytes through [`Encode`] and [`Decode`] so that
//! neither side needs `unsafe` to move it across the user boundary. The
//! structures name a volume by its uuid.

use super::format::{Value, MAX_MEMBERS};
use super::placement::MAX_REPLICAS;
use super::uuid::Uuid;

/// The ioctl type byte (`'B'`).
pub const IOCTL_TYPE: u32 = b'B' as u32;

/// Linux's `_IOWR(type, nr, size)`: read and write, `size` bytes.
pub const fn iowr(nr: u32, size: usize) -> u32 {
    // dir (read | write) << 30 | size << 16 | type << 8 | nr
    (3 << 30) | ((size as u32 & 0x3fff) << 16) | (IOCTL_TYPE << 8) | nr
}

/// `BKALLOC_IOC_ALLOC`: allocate buckets (blocks like any request).
pub const IOC_ALLOC: u32 = iowr(1, AllocArgs::SIZE);
/// `BKALLOC_IOC_FREE`: free buckets (they become need_discard).
pub const IOC_FREE: u32 = iowr(2, FreeArgs::SIZE);
/// `BKALLOC_IOC_STATUS`: the volume's counts.
pub const IOC_STATUS: u32 = iowr(3, StatusArgs::SIZE);
/// `BKALLOC_IOC_INSERT`: insert one key, durably (returns once its journal
/// entry is on disk).
pub const IOC_INSERT: u32 = iowr(4, InsertArgs::SIZE);
/// `BKALLOC_IOC_GET`: look one key up.
pub const IOC_GET: u32 = iowr(5, GetArgs::SIZE);
/// `BKALLOC_IOC_FLUSH`: write a checkpoint of the volume's btree.
pub const IOC_FLUSH: u32 = iowr(6, FlushArgs::SIZE);
/// `BKALLOC_IOC_VERSION`: the ABI version and features the module speaks.
pub const IOC_VERSION: u32 = iowr(7, VersionArgs::SIZE);

/// The version of this ABI. A caller names the version it speaks in
/// [`VersionArgs::abi`]; a module refuses one it does not know.
pub const ABI_VERSION: u32 = 1;

/// [`VersionArgs::features`]: one bit per ioctl number the module serves
/// (bit `nr - 1`), so a caller can ask before it relies on one.
pub const FEATURES: u64 = (1 << 7) - 1;

/// "Take it from the options" in [`AllocArgs`] fields.
pub const FROM_OPTIONS: u32 = u32::MAX;

/// Fixed-size little-endian encoding.
pub trait Encode {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Writes `Self::SIZE` bytes to `out` (which must be that long).
    fn encode(&self, out: &mut [u8]);
}

/// Fixed-size little-endian decoding.
pub trait Decode: Sized {
    /// Reads `Self` from `Self::SIZE` bytes; `None` if `buf` is too short.
    fn decode(buf: &[u8]) -> Option<Self>;
}

fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

/// A bucket of a member device.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BucketRef {
    /// Member index.
    pub dev: u32,
    /// Zero.
    pub pad: u32,
    /// Bucket number on that member.
    pub bucket: u64,
}

const BUCKET_REF_SIZE: usize = 16;

fn put_refs(out: &mut [u8], off: usize, refs: &[BucketRef; MAX_REPLICAS]) {
    for (i, r) in refs.iter().enumerate() {
        let o = off + i * BUCKET_REF_SIZE;
        put(out, o, &r.dev.to_le_bytes());
        put(out, o + 4, &0u32.to_le_bytes());
        put(out, o + 8, &r.bucket.to_le_bytes());
    }
}

fn get_refs(b: &[u8], off: usize) -> Option<[BucketRef; MAX_REPLICAS]> {
    let mut refs = [BucketRef::default(); MAX_REPLICAS];
    for (i, r) in refs.iter_mut().enumerate() {
        let o = off + i * BUCKET_REF_SIZE;
        r.dev = get_u32(b, o)?;
        r.pad = get_u32(b, o + 4)?;
        r.bucket = get_u64(b, o + 8)?;
    }
    Some(refs)
}

fn get_uuid(b: &[u8]) -> Option<Uuid> {
    b.get(..16)?.try_into().ok()
}

fn get_value(b: &[u8], off: usize) -> Option<Value> {
    b.get(off..off + 32)?.try_into().ok()
}

/// `IOC_ALLOC`: in: volume, kind, replicas, watermark, deadline; out: the
/// buckets, one per device.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocArgs {
    /// The volume.
    pub uuid: Uuid,
    /// 0 = btree, 1 = user.
    pub kind: u32,
    /// Distinct devices, or [`FROM_OPTIONS`] (then an options change
    /// rebuilds it).
    pub replicas: u32,
    /// 0 normal, 1 btree, 2 reclaim, or [`FROM_OPTIONS`] (the kind's).
    pub watermark: u32,
    /// Seconds (0 = none), or [`FROM_OPTIONS`] (`alloc_deadline`).
    pub deadline_secs: u32,
    /// Out: buckets granted.
    pub n: u32,
    /// Zero.
    pub pad: u32,
    /// Out: the buckets.
    pub buckets: [BucketRef; MAX_REPLICAS],
}

impl Encode for AllocArgs {
    const SIZE: usize = 40 + MAX_REPLICAS * BUCKET_REF_SIZE;
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.uuid);
        put(out, 16, &self.kind.to_le_bytes());
        put(out, 20, &self.replicas.to_le_bytes());
        put(out, 24, &self.watermark.to_le_bytes());
        put(out, 28, &self.deadline_secs.to_le_bytes());
        put(out, 32, &self.n.to_le_bytes());
        put(out, 36, &0u32.to_le_bytes());
        put_refs(out, 40, &self.buckets);
    }
}

impl Decode for AllocArgs {
    fn decode(b: &[u8]) -> Option<Self> {
        Some(Self {
            uuid: get_uuid(b)?,
            kind: get_u32(b, 16)?,
            replicas: get_u32(b, 20)?,
            watermark: get_u32(b, 24)?,
            deadline_secs: get_u32(b, 28)?,
            n: get_u32(b, 32)?,
            pad: get_u32(b, 36)?,
            buckets: get_refs(b, 40)?,
        })
    }
}

/// `IOC_FREE`: the buckets to free.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FreeArgs {
    /// The volume.
    pub uuid: Uuid,
    /// Buckets used in `buckets`.
    pub n: u32,
    /// Zero.
    pub pad: u32,
    /// The buckets.
    pub buckets: [BucketRef; MAX_REPLICAS],
}

impl Encode for FreeArgs {
    const SIZE: usize = 24 + MAX_REPLICAS * BUCKET_REF_SIZE;
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.uuid);
        put(out, 16, &self.n.to_le_bytes());
        put(out, 20, &0u32.to_le_bytes());
        put_refs(out, 24, &self.buckets);
    }
}

impl Decode for FreeArgs {
    fn decode(b: &[u8]) -> Option<Self> {
        Some(Self {
            uuid: get_uuid(b)?,
            n: get_u32(b, 16)?,
            pad: get_u32(b, 20)?,
            buckets: get_refs(b, 24)?,
        })
    }
}

impl AllocArgs {
    /// Whether the reserved field is zero (the module refuses the request
    /// with `EINVAL` otherwise, so it can be given a meaning later).
    pub fn reserved_zero(&self) -> bool {
        self.pad == 0
    }
}

impl GetArgs {
    /// Whether the reserved field is zero (see [`AllocArgs::reserved_zero`]).
    pub fn reserved_zero(&self) -> bool {
        self.pad == 0
    }
}

/// Why a free request is refused before anything is looked up (the module
/// answers `EINVAL` for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// `n` is 0 or more than [`MAX_REPLICAS`].
    Count(u32),
    /// A reserved field is not zero.
    Reserved,
    /// The same bucket twice: a free that would half-apply.
    Duplicate(BucketRef),
}

impl FreeArgs {
    /// The buckets to free: `n` of them, 1..=[`MAX_REPLICAS`], each named
    /// once, reserved fields zero. Nothing past `n` is looked at.
    pub fn refs(&self) -> Result<&[BucketRef], FreeError> {
        let n = self.n as usize;
        if n == 0 || n > MAX_REPLICAS {
            return Err(FreeError::Count(self.n));
        }
        let refs = &self.buckets[..n];
        if self.pad != 0 || refs.iter().any(|r| r.pad != 0) {
            return Err(FreeError::Reserved);
        }
        for (i, r) in refs.iter().enumerate() {
            if refs[..i]
                .iter()
                .any(|q| (q.dev, q.bucket) == (r.dev, r.bucket))
            {
                return Err(FreeError::Duplicate(*r));
            }
        }
        Ok(refs)
    }
}

/// Per-member counts in [`StatusArgs`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevStatus {
    /// Free buckets (open ones included).
    pub free: u64,
    /// Open buckets.
    pub open: u64,
    /// Buckets waiting for a discard.
    pub need_discard: u64,
    /// Btree buckets.
    pub btree: u64,
    /// User buckets.
    pub user: u64,
}

const DEV_STATUS_SIZE: usize = 40;

/// `IOC_STATUS`: in: the volume; out: its counts.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusArgs {
    /// The volume.
    pub uuid: Uuid,
    /// Options generation.
    pub opts_gen: u64,
    /// Blocked requests.
    pub waiters: u32,
    /// Members (entries used in `devs`).
    pub members: u32,
    /// Per member.
    pub devs: [DevStatus; MAX_MEMBERS],
}

impl Default for StatusArgs {
    fn default() -> Self {
        Self {
            uuid: [0; 16],
            opts_gen: 0,
            waiters: 0,
            members: 0,
            devs: [DevStatus::default(); MAX_MEMBERS],
        }
    }
}

impl Encode for StatusArgs {
    const SIZE: usize = 32 + MAX_MEMBERS * DEV_STATUS_SIZE;
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.uuid);
        put(out, 16, &self.opts_gen.to_le_bytes());
        put(out, 24, &self.waiters.to_le_bytes());
        put(out, 28, &self.members.to_le_bytes());
        for (i, d) in self.devs.iter().enumerate() {
            let o = 32 + i * DEV_STATUS_SIZE;
            for (j, v) in [d.free, d.open, d.need_discard, d.btree, d.user]
                .iter()
                .enumerate()
            {
                put(out, o + 8 * j, &v.to_le_bytes());
            }
        }
    }
}

impl Decode for StatusArgs {
    fn decode(b: &[u8]) -> Option<Self> {
        let mut s = Self {
            uuid: get_uuid(b)?,
            opts_gen: get_u64(b, 16)?,
            waiters: get_u32(b, 24)?,
            members: get_u32(b, 28)?,
            ..Self::default()
        };
        for (i, d) in s.devs.iter_mut().enumerate() {
            let o = 32 + i * DEV_STATUS_SIZE;
            d.free = get_u64(b, o)?;
            d.open = get_u64(b, o + 8)?;
            d.need_discard = get_u64(b, o + 16)?;
            d.btree = get_u64(b, o + 24)?;
            d.user = get_u64(b, o + 32)?;
        }
        Some(s)
    }
}

/// `IOC_INSERT`: in: volume, key, value; out: the journal sequence number of
/// the entry that made the insert durable.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertArgs {
    /// The volume.
    pub uuid: Uuid,
    /// The key.
    pub key: u64,
    /// The value stored under `key`.
    pub value: Value,
    /// Out: sequence number of the journal entry holding the insert.
    pub seq: u64,
}

impl Encode for InsertArgs {
    const SIZE: usize = 64;
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.uuid);
        put(out, 16, &self.key.to_le_bytes());
        put(out, 24, &self.value);
        put(out, 56, &self.seq.to_le_bytes());
    }
}

impl Decode for InsertArgs {
    fn decode(b: &[u8]) -> Option<Self> {
        Some(Self {
            uuid: get_uuid(b)?,
            key: get_u64(b, 16)?,
            value: get_value(b, 24)?,
            seq: get_u64(b, 56)?,
        })
    }
}

/// `IOC_GET`: in: volume, key; out: whether the key is present, and its
/// value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetArgs {
    /// The volume.
    pub uuid: Uuid,
    /// The key.
    pub key: u64,
    /// Out: 1 if `key` is present, 0 if not.
    pub found: u32,
    /// Zero.
    pub pad: u32,
    /// Out: the value (zero when not found).
    pub value: Value,
}

impl Encode for GetArgs {
    const SIZE: usize = 64;
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.uuid);
        put(out, 16, &self.key.to_le_bytes());
        put(out, 24, &self.found.to_le_bytes());
        put(out, 28, &0u32.to_le_bytes());
        put(out, 32, &self.value);
    }
}

impl Decode for GetArgs {
    fn decode(b: &[u8]) -> Option<Self> {
        Some(Self {
            uuid: get_uuid(b)?,
            key: get_u64(b, 16)?,
            found: get_u32(b, 24)?,
            pad: get_u32(b, 28)?,
            value: get_value(b, 32)?,
        })
    }
}

/// `IOC_FLUSH`: in: the volume; out: the checkpoint written.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushArgs {
    /// The volume.
    pub uuid: Uuid,
    /// Out: generation of the checkpoint written.
    pub generation: u64,
    /// Out: the journal sequence number the checkpoint covers.
    pub journal_seq: u64,
}

impl Encode for FlushArgs {
    const SIZE: usize = 32;
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.uuid);
        put(out, 16, &self.generation.to_le_bytes());
        put(out, 24, &self.journal_seq.to_le_bytes());
    }
}

impl Decode for FlushArgs {
    fn decode(b: &[u8]) -> Option<Self> {
        Some(Self {
            uuid: get_uuid(b)?,
            generation: get_u64(b, 16)?,
            journal_seq: get_u64(b, 24)?,
        })
    }
}

// The encodings are the `#[repr(C)]` layouts, byte for byte.
const _: () = assert!(AllocArgs::SIZE == core::mem::size_of::<AllocArgs>());
const _: () = assert!(FreeArgs::SIZE == core::mem::size_of::<FreeArgs>());
const _: () = assert!(StatusArgs::SIZE == core::mem::size_of::<StatusArgs>());
const _: () = assert!(StatusArgs::SIZE < 0x3fff);
const _: () = assert!(InsertArgs::SIZE == core::mem::size_of::<InsertArgs>());
const _: () = assert!(GetArgs::SIZE == core::mem::size_of::<GetArgs>());
const _: () = assert!(FlushArgs::SIZE == core::mem::size_of::<FlushArgs>());

#[cfg(test)]
mod tests {
    use super::*;

    fn free(n: u32, refs: &[(u32, u64)]) -> FreeArgs {
        let mut f = FreeArgs {
            n,
            ..FreeArgs::default()
        };
        for (slot, &(dev, bucket)) in f.buckets.iter_mut().zip(refs) {
            *slot = BucketRef {
                dev,
                pad: 0,
                bucket,
            };
        }
        f
    }

    #[test]
    fn a_free_names_1_to_max_distinct_buckets() {
        assert_eq!(free(2, &[(0, 7), (1, 7)]).refs().map(<[_]>::len), Ok(2));
        assert_eq!(free(0, &[]).refs(), Err(FreeError::Count(0)));
        let five = u32::try_from(MAX_REPLICAS + 1).unwrap();
        assert_eq!(free(five, &[]).refs(), Err(FreeError::Count(five)));
        assert_eq!(
            free(3, &[(0, 7), (1, 7), (0, 7)]).refs(),
            Err(FreeError::Duplicate(BucketRef {
                dev: 0,
                pad: 0,
                bucket: 7
            }))
        );
        // A duplicate past n is not part of the request.
        assert_eq!(free(1, &[(0, 7), (0, 7)]).refs().map(<[_]>::len), Ok(1));
    }

    #[test]
    fn alloc_and_get_pads_survive_decoding() {
        let mut bytes = [0u8; AllocArgs::SIZE];
        AllocArgs::default().encode(&mut bytes);
        assert!(AllocArgs::decode(&bytes).unwrap().reserved_zero());
        bytes[36] = 1;
        assert!(!AllocArgs::decode(&bytes).unwrap().reserved_zero());
        let mut bytes = [0u8; GetArgs::SIZE];
        GetArgs::default().encode(&mut bytes);
        assert!(GetArgs::decode(&bytes).unwrap().reserved_zero());
        bytes[28] = 1;
        assert!(!GetArgs::decode(&bytes).unwrap().reserved_zero());
    }

    #[test]
    fn reserved_fields_must_be_zero_and_survive_decoding() {
        let mut bytes = [0u8; FreeArgs::SIZE];
        free(1, &[(0, 7)]).encode(&mut bytes);
        assert!(FreeArgs::decode(&bytes).unwrap().refs().is_ok());
        for off in [20, 24 + 4] {
            let mut b = bytes;
            b[off] = 1;
            assert_eq!(
                FreeArgs::decode(&b).unwrap().refs(),
                Err(FreeError::Reserved),
                "offset {off}"
            );
        }
    }
}

/// `IOC_VERSION`: in: the ABI version the caller speaks; out: the module's
/// version and features.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VersionArgs {
    /// In: the caller's ABI version (1..=[`ABI_VERSION`]); out: the module's.
    pub abi: u32,
    /// Zero.
    pub pad: u32,
    /// Out: [`FEATURES`].
    pub features: u64,
    /// Zero (room for later versions).
    pub reserved: [u64; 2],
}

impl VersionArgs {
    /// Whether the reserved fields are zero.
    pub fn reserved_zero(&self) -> bool {
        self.pad == 0 && self.reserved == [0; 2]
    }

    /// Whether a module of this ABI serves a caller that speaks `self.abi`.
    pub fn known_version(&self) -> bool {
        (1..=ABI_VERSION).contains(&self.abi)
    }
}

impl Encode for VersionArgs {
    const SIZE: usize = 32;
    fn encode(&self, out: &mut [u8]) {
        put(out, 0, &self.abi.to_le_bytes());
        put(out, 4, &self.pad.to_le_bytes());
        put(out, 8, &self.features.to_le_bytes());
        put(out, 16, &self.reserved[0].to_le_bytes());
        put(out, 24, &self.reserved[1].to_le_bytes());
    }
}

impl Decode for VersionArgs {
    fn decode(b: &[u8]) -> Option<Self> {
        Some(Self {
            abi: get_u32(b, 0)?,
            pad: get_u32(b, 4)?,
            features: get_u64(b, 8)?,
            reserved: [get_u64(b, 16)?, get_u64(b, 24)?],
        })
    }
}
