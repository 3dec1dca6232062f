// SPDX-License-Identifier: GPL-2.0

//! A block device opened exclusively by path, with synchronous I/O.
//!
//! The kernel crate has a block-mq driver API but nothing for using another
//! driver's block device, so this wraps `bdev_file_open_by_path()`,
//! `bdev_rw_virt()`, `blkdev_issue_flush()` and `blkdev_issue_discard()`.
//! I/O goes straight to the device (no page cache), in whole logical blocks.

use core::ptr::NonNull;
use kernel::{bindings, error::to_result, prelude::*};

// `BLK_OPEN_*` are macros with casts, which bindgen does not emit.
const BLK_OPEN_READ: bindings::blk_mode_t = 1 << 0;
const BLK_OPEN_WRITE: bindings::blk_mode_t = 1 << 1;

const SECTOR_SHIFT: u32 = 9;

/// A block device held open for reading and writing, exclusively.
///
/// # Invariants
///
/// `file` was returned by `bdev_file_open_by_path()` and is released only by
/// `drop`; `bdev` is `file_bdev(file)`, valid while `file` is open.
pub(crate) struct BlockDevice {
    file: NonNull<bindings::file>,
    bdev: NonNull<bindings::block_device>,
}

// SAFETY: An open block device file may be used and released from any
// thread; the block layer serialises what it must.
unsafe impl Send for BlockDevice {}

// SAFETY: All methods taking `&self` submit independent I/O, which the
// block layer allows concurrently.
unsafe impl Sync for BlockDevice {}

impl BlockDevice {
    /// Opens the block device at `path` exclusively for `holder`: another
    /// exclusive opener with a different holder gets `EBUSY` until this value
    /// drops. Must run in the context of the process that names the path.
    pub(crate) fn open(path: &CStr, holder: NonNull<u8>) -> Result<Self> {
        // SAFETY: `path` is NUL terminated; `holder` is only compared by the
        // block layer, never dereferenced; null holder ops are allowed.
        let file = unsafe {
            bindings::bdev_file_open_by_path(
                path.as_char_ptr(),
                BLK_OPEN_READ | BLK_OPEN_WRITE,
                holder.as_ptr().cast(),
                core::ptr::null(),
            )
        };
        // `bdev_file_open_by_path` returns a valid pointer or an ERR_PTR.
        let file = kernel::error::from_err_ptr(file)?;
        let file = NonNull::new(file).ok_or(EINVAL)?;
        // SAFETY: `file` is an open block device file.
        let bdev = unsafe { bindings::file_bdev(file.as_ptr()) };
        let Some(bdev) = NonNull::new(bdev) else {
            // SAFETY: `file` is open and released once, here.
            unsafe { bindings::bdev_fput(file.as_ptr()) };
            return Err(EINVAL);
        };
        // INVARIANT: Both pointers come from a successful open.
        Ok(Self { file, bdev })
    }

    /// Size of the device in bytes.
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: `bdev` is valid while the device is open (type invariant);
        // `bd_nr_sectors` is read as `bdev_nr_sectors()` does.
        let sectors =
            unsafe { core::ptr::read_volatile(&raw const (*self.bdev.as_ptr()).bd_nr_sectors) };
        sectors << SECTOR_SHIFT
    }

    /// The device's logical block size in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: `bdev`, its disk and the disk's queue live while the device
        // is open; this is `bdev_logical_block_size()`.
        unsafe {
            (*(*(*self.bdev.as_ptr()).bd_disk).queue)
                .limits
                .logical_block_size
        }
    }

    /// The device number, as `major:minor` in `/proc/partitions`.
    pub(crate) fn dev(&self) -> u32 {
        // SAFETY: `bdev` is valid while the device is open.
        unsafe { (*self.bdev.as_ptr()).bd_dev }
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<u64> {
        let lbs = u64::from(self.logical_block_size());
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        // `checked_rem`: no division-by-zero panic path in the kernel.
        let aligned = |v: u64| v.checked_rem(lbs) == Some(0);
        if !aligned(offset) || !aligned(len) || end > self.size() {
            return Err(EINVAL);
        }
        Ok(offset >> SECTOR_SHIFT)
    }

    /// Reads or writes (`op`) `len` bytes at `data` at byte `offset`.
    ///
    /// # Safety
    ///
    /// `data` must point to `len` bytes of kmalloc memory (in the direct
    /// mapping) valid for the call; for a read, writable and not otherwise
    /// borrowed.
    unsafe fn rw(&self, offset: u64, data: *mut u8, len: usize, op: bindings::req_op) -> Result {
        let sector = self.check_range(offset, len as u64)?;
        // SAFETY: `bdev` is open; `data` is as the caller promises.
        to_result(unsafe {
            bindings::bdev_rw_virt(self.bdev.as_ptr(), sector, data.cast(), len, op)
        })
    }

    /// Reads `buf.len()` bytes at byte `offset` (both in whole logical
    /// blocks) into `buf`.
    pub(crate) fn read(&self, offset: u64, buf: &mut KVec<u8>) -> Result {
        // SAFETY: A `KVec` is kmalloc memory; `buf` is borrowed mutably for
        // the call.
        unsafe {
            self.rw(
                offset,
                buf.as_mut_ptr(),
                buf.len(),
                bindings::req_op_REQ_OP_READ,
            )
        }
    }

    /// Writes `buf` at byte `offset` (both in whole logical blocks). The data
    /// is durable only after [`BlockDevice::flush`].
    pub(crate) fn write(&self, offset: u64, buf: &KVec<u8>) -> Result {
        // SAFETY: A `KVec` is kmalloc memory, borrowed for the call; the
        // block layer only reads from a write's buffer.
        unsafe {
            self.rw(
                offset,
                buf.as_ptr().cast_mut(),
                buf.len(),
                bindings::req_op_REQ_OP_WRITE,
            )
        }
    }

    /// Writes the first `len` bytes of `buf` at byte `offset` (both in whole
    /// logical blocks), so a buffer kept for reuse need not be cut to size.
    pub(crate) fn write_part(&self, offset: u64, buf: &KVec<u8>, len: usize) -> Result {
        if len > buf.len() {
            return Err(EINVAL);
        }
        // SAFETY: A `KVec` is kmalloc memory, borrowed for the call, and
        // `len` is within it; the block layer only reads from a write's
        // buffer.
        unsafe {
            self.rw(
                offset,
                buf.as_ptr().cast_mut(),
                len,
                bindings::req_op_REQ_OP_WRITE,
            )
        }
    }

    /// Discards `len` bytes at byte `offset` (both in whole logical blocks).
    pub(crate) fn discard(&self, offset: u64, len: u64) -> Result {
        let sector = self.check_range(offset, len)?;
        // SAFETY: `bdev` is open; the range was checked against its size.
        to_result(unsafe {
            bindings::blkdev_issue_discard(
                self.bdev.as_ptr(),
                sector,
                len >> SECTOR_SHIFT,
                bindings::GFP_KERNEL,
            )
        })
    }

    /// Flushes the device's volatile write cache.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: `bdev` is open.
        to_result(unsafe { bindings::blkdev_issue_flush(self.bdev.as_ptr()) })
    }
}

impl Drop for BlockDevice {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `file` is open and released only here.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}
