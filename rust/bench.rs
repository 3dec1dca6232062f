// SPDX-License-Identifier: GPL-2.0

//! In-module micro-benchmarks, in debugfs (not an ABI): what userspace
//! cannot time without the ioctl, the journal and its I/O around it.
//!
//! `/sys/kernel/debug/bkalloc/<uuid>/fastpath`: writing N (1 to 10^7) runs
//! N allocations of two user buckets on distinct members that need no wait,
//! each given back in memory at once (`Allocator::allocate_now` and
//! `release_grant`: no journal, no I/O, the volume's state unchanged), then
//! N lock, increment and unlock of a mutex in this module, the baseline,
//! then N times the two lock and unlock of the allocator's own mutex that
//! an allocation and its release take (the floor of the fast path), then N
//! times the lock, request build and placement an allocation starts with
//! (`Allocator::could_serve_now`, nothing taken): what is left of the fast
//! path is opening the buckets and giving them back. Reading prints the
//! last run:
//! `iterations N fastpath_ns T baseline_ns B locks_ns L placement_ns P`.
//! The allocations count in `allocs` like any other.

use crate::bkcore::{placement::Kind, request::Overrides};
use crate::volume::Volume;
use core::fmt;
use kernel::{
    debugfs, new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    time::{Instant, Monotonic},
    uaccess::UserSliceReader,
};

/// Most iterations of one run.
const MAX_ITERATIONS: u64 = 10_000_000;

/// One run's figures.
#[derive(Clone, Copy)]
struct Run {
    iterations: u64,
    fastpath_ns: u64,
    baseline_ns: u64,
    locks_ns: u64,
    placement_ns: u64,
}

/// The `fastpath` file's state.
#[pin_data]
pub(crate) struct FastPath {
    volume: Arc<Volume>,
    /// The baseline's mutex and counter.
    #[pin]
    counter: Mutex<u64>,
    #[pin]
    last: Mutex<Option<Run>>,
}

impl FastPath {
    fn new(volume: Arc<Volume>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            volume,
            counter <- new_mutex!(0),
            last <- new_mutex!(None),
        }? Error)
    }

    /// `n` fast-path allocations and releases, then `n` baseline rounds.
    fn run(&self, n: u64) -> Result<Run> {
        let alloc = self.volume.allocator();
        let two = Overrides {
            replicas: Some(2),
            for_user: true,
            ..Overrides::NONE
        };
        let start = Instant::<Monotonic>::now();
        for _ in 0..n {
            // No room now is an error here: the run measures what needs no
            // wait.
            let grant = alloc.allocate_now(Kind::User, two)?.ok_or(ENOSPC)?;
            alloc.release_grant(&grant);
        }
        let fastpath_ns = start.elapsed().as_nanos().max(0) as u64;
        let start = Instant::<Monotonic>::now();
        for _ in 0..n {
            *self.counter.lock() += 1;
        }
        let baseline_ns = start.elapsed().as_nanos().max(0) as u64;
        let start = Instant::<Monotonic>::now();
        for _ in 0..n {
            drop(alloc.lock());
            drop(alloc.lock());
        }
        let locks_ns = start.elapsed().as_nanos().max(0) as u64;
        let start = Instant::<Monotonic>::now();
        for _ in 0..n {
            if !alloc.could_serve_now(Kind::User, two)? {
                return Err(ENOSPC);
            }
        }
        let placement_ns = start.elapsed().as_nanos().max(0) as u64;
        Ok(Run {
            iterations: n,
            fastpath_ns,
            baseline_ns,
            locks_ns,
            placement_ns,
        })
    }
}

/// Reading `fastpath`.
fn show(this: &FastPath, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match *this.last.lock() {
        Some(r) => writeln!(
            f,
            "iterations {} fastpath_ns {} baseline_ns {} locks_ns {} placement_ns {}",
            r.iterations, r.fastpath_ns, r.baseline_ns, r.locks_ns, r.placement_ns
        ),
        None => writeln!(f, "iterations 0"),
    }
}

/// Writing N to `fastpath`.
fn store(this: &FastPath, input: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 16];
    let len = input.len();
    if len == 0 || len > buf.len() {
        return Err(EINVAL);
    }
    input.read_slice(&mut buf[..len])?;
    let n = core::str::from_utf8(&buf[..len])
        .map_err(|_| EINVAL)?
        .trim()
        .parse::<u64>()
        .map_err(|_| EINVAL)?;
    if n == 0 || n > MAX_ITERATIONS {
        return Err(EINVAL);
    }
    this.volume.check_writable()?;
    let run = this.run(n)?;
    *this.last.lock() = Some(run);
    Ok(())
}

/// `volume`'s benchmark files in `dir`, removed when the value drops.
pub(crate) fn publish(
    dir: &debugfs::Dir,
    volume: &Arc<Volume>,
) -> Result<Pin<KBox<debugfs::File<FastPath>>>> {
    KBox::pin_init(
        dir.read_write_callback_file(c"fastpath", FastPath::new(volume.clone()), &show, &store),
        GFP_KERNEL,
    )
}
