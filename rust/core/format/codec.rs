// SPDX-License-Identifier: GPL-2.0

//! Little-endian field access that cannot panic: every read is bounds-checked and turns
//! into a [`FormatError`] naming the field; writes outside the buffer are ignored (encoders
//! check the buffer length first, so that never happens in practice).

use super::super::crc32c::crc32c;
use super::error::{ErrorKind, FormatError};

/// Read access to one structure's bytes, for error reporting.
#[derive(Clone, Copy)]
pub(super) struct Fields<'a> {
    pub(super) buf: &'a [u8],
    pub(super) structure: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) const fn new(buf: &'a [u8], structure: &'static str) -> Self {
        Self { buf, structure }
    }

    pub(super) const fn err(
        &self,
        field: &'static str,
        offset: usize,
        kind: ErrorKind,
    ) -> FormatError {
        FormatError::new(self.structure, field, offset, kind)
    }

    /// Fails unless the buffer holds at least `need` bytes.
    pub(super) fn need(&self, need: usize) -> Result<(), FormatError> {
        if self.buf.len() < need {
            return Err(self.err(
                "length",
                0,
                ErrorKind::TooShort {
                    need,
                    have: self.buf.len(),
                },
            ));
        }
        Ok(())
    }

    pub(super) fn bytes<const N: usize>(
        &self,
        field: &'static str,
        off: usize,
    ) -> Result<[u8; N], FormatError> {
        self.slice(field, off, N)?.try_into().map_err(|_| {
            self.err(
                field,
                off,
                ErrorKind::TooShort {
                    need: off.saturating_add(N),
                    have: self.buf.len(),
                },
            )
        })
    }

    /// `len` bytes at `off`, or a `TooShort` error naming `field`.
    fn slice(&self, field: &'static str, off: usize, len: usize) -> Result<&[u8], FormatError> {
        off.checked_add(len)
            .and_then(|end| self.buf.get(off..end))
            .ok_or_else(|| {
                let need = off.saturating_add(len);
                self.err(
                    field,
                    off,
                    ErrorKind::TooShort {
                        need,
                        have: self.buf.len(),
                    },
                )
            })
    }

    pub(super) fn u8(&self, field: &'static str, off: usize) -> Result<u8, FormatError> {
        Ok(self.bytes::<1>(field, off)?[0])
    }

    pub(super) fn u32(&self, field: &'static str, off: usize) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.bytes(field, off)?))
    }

    pub(super) fn u64(&self, field: &'static str, off: usize) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.bytes(field, off)?))
    }

    /// A sequence number or generation: a u64 at most [`super::MAX_COUNTER`].
    pub(super) fn counter(&self, field: &'static str, off: usize) -> Result<u64, FormatError> {
        let v = self.u64(field, off)?;
        self.range(field, off, v, 0, super::MAX_COUNTER)?;
        Ok(v)
    }

    /// Checks that `len` bytes at `off` are zero; the error points at the first that is not.
    pub(super) fn zero(
        &self,
        field: &'static str,
        off: usize,
        len: usize,
    ) -> Result<(), FormatError> {
        let s = self.slice(field, off, len)?;
        match s.iter().position(|&b| b != 0) {
            Some(i) => Err(self.err(field, off.saturating_add(i), ErrorKind::NotZero)),
            None => Ok(()),
        }
    }

    /// Checks the magic at offset 0.
    pub(super) fn magic<const N: usize>(&self, magic: &[u8; N]) -> Result<(), FormatError> {
        if &self.bytes::<N>("magic", 0)? != magic {
            return Err(self.err("magic", 0, ErrorKind::BadMagic));
        }
        Ok(())
    }

    /// Checks a crc32c stored at `crc_off` over `buf[from..to]`.
    pub(super) fn crc(&self, crc_off: usize, from: usize, to: usize) -> Result<(), FormatError> {
        let stored = self.u32("crc32c", crc_off)?;
        let data = self.buf.get(from..to).ok_or_else(|| {
            self.err(
                "length",
                0,
                ErrorKind::TooShort {
                    need: to,
                    have: self.buf.len(),
                },
            )
        })?;
        let computed = crc32c(data);
        if stored != computed {
            return Err(self.err(
                "crc32c",
                crc_off,
                ErrorKind::BadChecksum { stored, computed },
            ));
        }
        Ok(())
    }

    /// A value in `min..=max`.
    pub(super) fn range(
        &self,
        field: &'static str,
        off: usize,
        v: u64,
        min: u64,
        max: u64,
    ) -> Result<(), FormatError> {
        if v < min || v > max {
            return Err(self.err(field, off, ErrorKind::OutOfRange { value: v, min, max }));
        }
        Ok(())
    }

    /// A value that must equal `expected`.
    pub(super) fn expect(
        &self,
        field: &'static str,
        off: usize,
        found: u64,
        expected: u64,
    ) -> Result<(), FormatError> {
        if found != expected {
            return Err(self.err(field, off, ErrorKind::Mismatch { expected, found }));
        }
        Ok(())
    }
}

pub(super) fn put(buf: &mut [u8], off: usize, data: &[u8]) {
    if let Some(d) = off
        .checked_add(data.len())
        .and_then(|end| buf.get_mut(off..end))
    {
        d.copy_from_slice(data);
    }
}

pub(super) fn put_u8(buf: &mut [u8], off: usize, v: u8) {
    put(buf, off, &[v]);
}

pub(super) fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    put(buf, off, &v.to_le_bytes());
}

pub(super) fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    put(buf, off, &v.to_le_bytes());
}

/// Zeroes `buf[from..to]` (clamped to the buffer).
pub(super) fn zero(buf: &mut [u8], from: usize, to: usize) {
    let to = to.min(buf.len());
    if let Some(s) = buf.get_mut(from..to) {
        s.fill(0);
    }
}

/// Stores at `crc_off` the crc32c of `buf[from..to]`.
pub(super) fn seal(buf: &mut [u8], crc_off: usize, from: usize, to: usize) {
    let c = buf.get(from..to).map(crc32c).unwrap_or(0);
    put_u32(buf, crc_off, c);
}

/// Fails unless an output buffer holds `need` bytes.
pub(super) fn need_mut(
    buf: &[u8],
    structure: &'static str,
    need: usize,
) -> Result<(), FormatError> {
    Fields::new(buf, structure).need(need)
}
