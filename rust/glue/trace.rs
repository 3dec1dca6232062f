// SPDX-License-Identifier: GPL-2.0

//! bkalloc's tracepoints (`events/bkalloc/` in tracefs), called through the
//! C wrappers of `bkalloc_events.c` (why C: see there). Each function is
//! cheap when its event is off: the wrapper's tracepoint is a static
//! branch.

use kernel::ffi::c_int;

/// Volume uuids are 16 bytes.
type Uuid = [u8; 16];

mod ffi {
    use kernel::ffi::c_int;

    extern "C" {
        pub(super) fn bkalloc_trace_alloc(
            uuid: *const u8,
            kind: u32,
            nr: u32,
            err: c_int,
            waited: bool,
            ns: u64,
        );
        pub(super) fn bkalloc_trace_wait(uuid: *const u8, id: u64, mask: u64);
        pub(super) fn bkalloc_trace_wake(uuid: *const u8, id: u64, reason: u64);
        pub(super) fn bkalloc_trace_restart(uuid: *const u8, id: u64, opts_gen: u64);
        pub(super) fn bkalloc_trace_leave(uuid: *const u8, id: u64, err: u64);
        pub(super) fn bkalloc_trace_discard(
            uuid: *const u8,
            dev: u32,
            first: u64,
            buckets: u64,
            err: c_int,
        );
        pub(super) fn bkalloc_trace_journal_append(
            uuid: *const u8,
            seq: u64,
            records: u32,
            blocks: u32,
        );
        pub(super) fn bkalloc_trace_checkpoint(
            uuid: *const u8,
            generation: u64,
            journal_seq: u64,
            err: c_int,
        );
        pub(super) fn bkalloc_trace_replay(uuid: *const u8, replayed: u64, total: u64, phase: u32);
    }
}

/// A request ended: `nr` buckets granted, or `err`; `waited` if it parked.
pub(crate) fn alloc(uuid: &Uuid, kind: u32, nr: u32, err: c_int, waited: bool, ns: u64) {
    // SAFETY: `uuid` points to 16 bytes, readable for the call; the event
    // copies them.
    unsafe { ffi::bkalloc_trace_alloc(uuid.as_ptr(), kind, nr, err, waited, ns) }
}

/// Waiter `id` parked on the devices of `mask`.
pub(crate) fn wait(uuid: &Uuid, id: u64, mask: u64) {
    // SAFETY: As in `alloc`.
    unsafe { ffi::bkalloc_trace_wait(uuid.as_ptr(), id, mask) }
}

/// Waiter `id` looked after a wake: `reason` is its `WakeReason` as a number.
pub(crate) fn wake(uuid: &Uuid, id: u64, reason: u64) {
    // SAFETY: As in `alloc`.
    unsafe { ffi::bkalloc_trace_wake(uuid.as_ptr(), id, reason) }
}

/// Waiter `id` rebuilt its request from `opts_gen`.
pub(crate) fn restart(uuid: &Uuid, id: u64, opts_gen: u64) {
    // SAFETY: As in `alloc`.
    unsafe { ffi::bkalloc_trace_restart(uuid.as_ptr(), id, opts_gen) }
}

/// Waiter `id` left without its buckets, with errno `err` (positive).
pub(crate) fn leave(uuid: &Uuid, id: u64, err: u64) {
    // SAFETY: As in `alloc`.
    unsafe { ffi::bkalloc_trace_leave(uuid.as_ptr(), id, err) }
}

/// A discard of `buckets` buckets from `first` on member `dev` ended with
/// `err` (0: done).
pub(crate) fn discard(uuid: &Uuid, dev: u32, first: u64, buckets: u64, err: c_int) {
    // SAFETY: As in `alloc`.
    unsafe { ffi::bkalloc_trace_discard(uuid.as_ptr(), dev, first, buckets, err) }
}

/// Journal entry `seq` of `records` records in `blocks` blocks is durable.
pub(crate) fn journal_append(uuid: &Uuid, seq: u64, records: u32, blocks: u32) {
    // SAFETY: As in `alloc`.
    unsafe { ffi::bkalloc_trace_journal_append(uuid.as_ptr(), seq, records, blocks) }
}

/// A checkpoint of `generation` covering the journal to `journal_seq`
/// ended with `err` (0: durable).
pub(crate) fn checkpoint(uuid: &Uuid, generation: u64, journal_seq: u64, err: c_int) {
    // SAFETY: As in `alloc`.
    unsafe { ffi::bkalloc_trace_checkpoint(uuid.as_ptr(), generation, journal_seq, err) }
}

/// Replay has re-inserted `replayed` of `total` keys and is in `phase`
/// (0 pending, 1 running, 2 done, 3 failed).
pub(crate) fn replay(uuid: &Uuid, replayed: u64, total: u64, phase: u32) {
    // SAFETY: As in `alloc`.
    unsafe { ffi::bkalloc_trace_replay(uuid.as_ptr(), replayed, total, phase) }
}
