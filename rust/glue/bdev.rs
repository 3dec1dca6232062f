// SPDX-License-Identifier: GPL-2.0

//! A block device opened exclusively by path, with synchronous I/O.
//!
//! The kernel crate has a block-mq driver API but nothing for using another
//! driver's block device, so this wraps `bdev_file_open_by_path()`,
//! `bdev_rw_virt()`, `blkdev_issue_flush()` and `blkdev_issue_discard()`,
//! and, for I/O to several devices at once ([`write_all`], [`flush_all`]),
//! one bio per device, all in flight together, waited for as one. I/O goes straight to the device (no page cache), in whole
//! logical blocks.

use core::{ffi::c_void, ptr::NonNull};
use kernel::{
    bindings,
    error::to_result,
    prelude::*,
    sync::{
        atomic::{
            ordering::{Full, Relaxed},
            Atomic,
        },
        Completion,
    },
};
use pin_init::stack_pin_init;

// `BLK_OPEN_*` are macros with casts, which bindgen does not emit.
const BLK_OPEN_READ: bindings::blk_mode_t = 1 << 0;
const BLK_OPEN_WRITE: bindings::blk_mode_t = 1 << 1;

const SECTOR_SHIFT: u32 = 9;

// `REQ_PREFLUSH` and `REQ_SYNC` are macros with casts, which bindgen does
// not emit.
const REQ_PREFLUSH: bindings::blk_opf_t = 1 << bindings::req_flag_bits___REQ_PREFLUSH;
const REQ_SYNC: bindings::blk_opf_t = 1 << bindings::req_flag_bits___REQ_SYNC;

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

/// One write of [`write_all`]: the first `len` bytes of `buf` at byte
/// `offset` of `dev` (whole logical blocks).
pub(crate) struct WritePart<'a> {
    /// The device.
    pub(crate) dev: &'a BlockDevice,
    /// Where, in bytes.
    pub(crate) offset: u64,
    /// What.
    pub(crate) buf: &'a KVec<u8>,
    /// How much of `buf`.
    pub(crate) len: usize,
}

/// Submits every write in `parts` at once and waits until all have
/// completed; the first error if any failed. Durable only after a flush.
pub(crate) fn write_all(parts: &[WritePart<'_>]) -> Result {
    let mut ios = KVec::with_capacity(parts.len(), GFP_KERNEL)?;
    for p in parts {
        // An empty write would be an empty bio that is not a flush.
        if p.len == 0 || p.len > p.buf.len() {
            return Err(EINVAL);
        }
        let sector = p.dev.check_range(p.offset, p.len as u64)?;
        let len = u32::try_from(p.len).map_err(|_| EINVAL)?;
        // A `KVec` is kmalloc memory (in the direct mapping), borrowed
        // until this function returns, which is after every bio completed.
        ios.push((p.dev, sector, p.buf.as_ptr().cast_mut(), len), GFP_KERNEL)?;
    }
    // SAFETY: Each buffer is kmalloc memory of at least `len` bytes,
    // borrowed for the call; the block layer only reads from a write's.
    unsafe { submit_and_wait(&ios, bindings::req_op_REQ_OP_WRITE) }
}

/// Flushes every device in `devs` at once and waits for all; the first
/// error if any failed.
pub(crate) fn flush_all(devs: &[&BlockDevice]) -> Result {
    let mut ios = KVec::with_capacity(devs.len(), GFP_KERNEL)?;
    for &dev in devs {
        ios.push((dev, 0, core::ptr::null_mut(), 0), GFP_KERNEL)?;
    }
    // SAFETY: No data: an empty flush, as `blkdev_issue_flush()` sends.
    unsafe { submit_and_wait(&ios, bindings::req_op_REQ_OP_WRITE | REQ_PREFLUSH) }
}

/// What the bios of one [`submit_and_wait`] share: how many have not
/// completed, the first error, and the completion the last one completes.
/// Each bio has its own end_io: a chain (`bio_chain()`) would lose a
/// child's error when a later bio's submission resets its status, as an
/// empty flush to a device without a write cache does.
#[pin_data]
struct Batch {
    remaining: Atomic<usize>,
    error: Atomic<i32>,
    #[pin]
    done: Completion,
}

impl Batch {
    fn new(n: usize) -> impl PinInit<Self> {
        pin_init!(Self {
            remaining: Atomic::new(n),
            error: Atomic::new(0),
            done <- Completion::new(),
        })
    }

    /// One of its bios ended with `status`.
    fn end(&self, status: bindings::blk_status_t) {
        if status != 0 {
            // SAFETY: A plain conversion of a status value.
            let e = unsafe { bindings::blk_status_to_errno(status) };
            // The first error stays.
            let _ = self.error.cmpxchg(0, e, Relaxed);
        }
        // The last one wakes the submitter; the error above is ordered
        // before it by `Full`.
        if self.remaining.fetch_sub(1, Full) == 1 {
            self.done.complete_all();
        }
    }
}

/// The end_io of [`submit_and_wait`]'s bios.
///
/// # Safety
///
/// `bio` was sent by [`submit_and_wait`], which set `bi_private` to its
/// [`Batch`] and waits for every bio before that goes away.
unsafe extern "C" fn batch_end_io(bio: *mut bindings::bio) {
    // SAFETY: `bio` is completing: its status is final and it is ours to
    // free; `bi_private` is a live `Batch` (see the function's safety
    // section), read before the bio is freed.
    let (batch, status) = unsafe {
        let batch = &*(*bio).bi_private.cast::<Batch>();
        let status = (*bio).bi_status;
        bindings::bio_put(bio);
        (batch, status)
    };
    // After this the batch may be gone: nothing of it is used again.
    batch.end(status);
}

/// Sends one bio per `(device, sector, data, len)` with `opf` (no data when
/// `len` is 0) and waits until every one has completed; returns the first
/// error.
///
/// # Safety
///
/// Each `data` with a non-zero `len` points to `len` bytes of kmalloc
/// memory valid for the call, writable and not otherwise borrowed if `opf`
/// reads into it.
unsafe fn submit_and_wait(
    ios: &[(&BlockDevice, u64, *mut u8, u32)],
    opf: bindings::blk_opf_t,
) -> Result {
    stack_pin_init!(let batch = Batch::new(ios.len()));
    let private: *mut c_void = core::ptr::from_ref::<Batch>(&*batch).cast_mut().cast();
    let mut sent = 0;
    for &(dev, sector, data, len) in ios {
        // SAFETY: `dev` is open; `fs_bio_set` is the kernel's bio set for
        // file systems, only passed by address. Each bio is submitted
        // before the next is allocated, so with `GFP_KERNEL` (which may
        // sleep) the allocation waits for the set's pool rather than fail.
        let bio = unsafe {
            bindings::bio_alloc_bioset(
                dev.bdev.as_ptr(),
                u16::from(len > 0),
                opf | REQ_SYNC,
                bindings::GFP_KERNEL,
                &raw mut bindings::fs_bio_set,
            )
        };
        if bio.is_null() {
            break;
        }
        // SAFETY: `bio` was just allocated, with room for one vector when
        // `len` is non-zero; `data` is as the caller promises; `private`
        // is `batch`, which outlives every bio (the wait below).
        unsafe {
            (*bio).bi_iter.bi_sector = sector;
            if len > 0 {
                bindings::bio_add_virt_nofail(bio, data.cast(), len);
            }
            (*bio).bi_private = private;
            (*bio).bi_end_io = Some(batch_end_io);
            bindings::submit_bio(bio);
        }
        sent += 1;
    }
    // Cannot happen (see above), but what was sent must end before the
    // buffers and `batch` go.
    let unsent = ios.len() - sent;
    if unsent > 0 && batch.remaining.fetch_sub(unsent, Full) == unsent {
        batch.done.complete_all();
    }
    batch.done.wait_for_completion();
    if unsent > 0 {
        return Err(ENOMEM);
    }
    match batch.error.load(Relaxed) {
        0 => Ok(()),
        e => Err(Error::from_errno(e)),
    }
}

impl Drop for BlockDevice {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `file` is open and released only here.
        unsafe { bindings::bdev_fput(self.file.as_ptr()) };
    }
}
