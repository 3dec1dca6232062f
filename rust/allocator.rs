// SPDX-License-Identifier: GPL-2.0

//! The allocator: requests for buckets on distinct devices, the volume's
//! wait list, restart on a newer `opts_gen`, stuck reports, deadline
//! policies, aborts.
//!
//! A request is built from the volume's options and remembers the
//! generation it was built from. If placement says it can never be
//! satisfied it fails at once with `ENOSPC`. Otherwise it parks on the wait
//! list (see `waitlist.rs` for the protocol) and is granted in FIFO order
//! when buckets become free. Every wake makes it compare `opts_gen` and, on a
//! change, rebuild itself from the current options before trying again.
//! After `allocator_stuck_timeout` it prints a stuck report; at
//! `alloc_deadline` its `alloc_wait_policy` applies; `abort_waiting` fails it
//! with `ECANCELED` and a fatal signal with `EINTR`.

use crate::bkcore::{
    buckets::BucketState,
    format::{MAX_MEMBERS, MAX_REPLICAS},
    latency::Histogram,
    options::{Options, WaitPolicy},
    placement::{self, Choice, DevSnapshot, Kind, Verdict},
    request::{self, Overrides, RequestSpec},
    stuck::{DiscardState, InfeasibleMsg, StuckReport, WaiterLine, WakeReason},
    uuid::{Hyphenated, Uuid},
    watermark::Watermark,
};
use crate::fmt::Core;
use crate::glue::trace;
use crate::glue::wake::{Sleep, Slept};
use crate::health::{Changed, Event, Phase, ReadOnly, ReplayStatus, RereplicateStatus, Watcher};
use crate::member::{Absent, Member};
use crate::waitlist::{Kick, WaitList, WaitState};
use core::{fmt::Write, ops::Deref};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{lock::mutex::MutexBackend, lock::Guard, Arc, Mutex},
    time::{Instant, Monotonic},
};

/// Buckets granted to a request, `(device, bucket)`: one per chosen device.
/// Held inline so that an allocation allocates no memory.
#[derive(Clone, Copy, Default)]
pub(crate) struct Grant {
    buckets: [(u32, u64); MAX_REPLICAS],
    n: usize,
}

impl Grant {
    /// Adds a bucket; `false` (and no change) when the grant is full.
    fn push(&mut self, dev: u32, bucket: u64) -> bool {
        match self.buckets.get_mut(self.n) {
            Some(slot) => {
                *slot = (dev, bucket);
                self.n += 1;
                true
            }
            None => false,
        }
    }
}

impl Deref for Grant {
    type Target = [(u32, u64)];

    fn deref(&self) -> &[(u32, u64)] {
        self.buckets.get(..self.n).unwrap_or(&[])
    }
}

/// The request behind a waiter.
pub(crate) struct Pending {
    spec: RequestSpec,
    start: Instant<Monotonic>,
    granted: Option<Grant>,
}

/// Event counters, shown in `counters`.
#[derive(Default)]
pub(crate) struct Counters {
    allocs: u64,
    waits: u64,
    wakeups: u64,
    restarts: u64,
    timeouts: u64,
    aborts: u64,
    degraded: u64,
    infeasible: u64,
    interrupted: u64,
    stuck_reports: u64,
    frees: u64,
    discards_issued: u64,
    discard_buckets: u64,
    starved_discard_buckets: u64,
    discard_buckets_dev: [u64; MAX_MEMBERS],
    released_buckets: u64,
}

/// What the allocator's lock guards: the members and their buckets, the
/// options requests are built from, the requests, and the volume's health
/// (which ends requests).
pub(crate) struct Pool {
    /// Empty once the volume is torn down.
    pub(crate) members: KVec<Member>,
    /// The options as stored in the superblocks.
    pub(crate) disk_options: Options,
    /// The options in effect.
    pub(crate) options: Options,
    /// +1 on every accepted option write.
    pub(crate) opts_gen: u64,
    /// Requests, waiters, counters.
    pub(crate) requests: Requests,
    /// Set first thing by teardown: requests fail with ENODEV, ioctls too.
    pub(crate) closing: bool,
    /// Register-time recovery, shown in `replay`.
    pub(crate) replay: ReplayStatus,
    /// Set when a metadata write failed: no more changes (`state`).
    pub(crate) read_only: Option<ReadOnly>,
    /// Background re-replication of btree nodes, shown in `rereplicate`.
    pub(crate) rereplicate: RereplicateStatus,
    /// Told of changes to the status files while they are published.
    pub(crate) watcher: Option<Arc<dyn Watcher>>,
    /// Room for the members' snapshots on the allocation path, kept so
    /// that it allocates no memory.
    scratch: KVec<DevSnapshot>,
    /// What the present members keep for missing ones.
    pub(crate) absent: Absent,
}

impl Pool {
    /// A pool of `members` (ordered by index) before replay.
    pub(crate) fn new(
        members: KVec<Member>,
        absent: Absent,
        disk_options: Options,
        options: Options,
    ) -> Self {
        Self {
            members,
            disk_options,
            options,
            opts_gen: 0,
            requests: Requests::new(),
            closing: false,
            replay: ReplayStatus::new(),
            read_only: None,
            rereplicate: RereplicateStatus::new(),
            watcher: None,
            scratch: KVec::new(),
            absent,
        }
    }

    /// Tells the watcher, if any, that `what` changed.
    pub(crate) fn changed(&self, what: Changed) {
        if let Some(w) = &self.watcher {
            w.changed(what);
        }
    }

    /// Takes waiter `id` off the wait list (waking nobody) and tells the
    /// watcher; returns its request.
    fn unpark(&mut self, id: u64) -> Option<Pending> {
        let w = self.requests.waiters.remove(id);
        self.changed(Changed::Waiters);
        w.map(|w| w.data)
    }

    /// [`try_take`] on this pool's members.
    fn try_take(&mut self, spec: &RequestSpec) -> Result<Option<Grant>> {
        try_take(&mut self.members, &mut self.scratch, spec)
    }

    /// Whether register's replay is over and the volume is up.
    pub(crate) fn up(&self) -> bool {
        self.replay.phase == Phase::Done
    }
}

/// Where the time from an option write to a waiter's restart went, in
/// nanoseconds, the last time each part happened.
#[derive(Clone, Copy, Default)]
struct Parts {
    /// The option write waiting for the pool's lock.
    option_lock: u64,
    /// The option write's superblock writes on every member.
    option_superblock: u64,
    /// From the wake until the waiter's task ran again.
    restart_wake: u64,
    /// From then until it held the pool's lock again.
    restart_lock: u64,
    /// From then until its request was rebuilt from the new options.
    restart_rebuild: u64,
    /// From the wake to the rebuilt request (the three above).
    restart: u64,
}

/// Nanoseconds from `a` to `b` (0 if `b` is earlier).
fn ns_between(a: Instant<Monotonic>, b: Instant<Monotonic>) -> u64 {
    (b - a).as_nanos().max(0) as u64
}

/// The requests of a volume and their counters, in its [`Pool`].
pub(crate) struct Requests {
    pub(crate) waiters: WaitList<Pending>,
    counters: Counters,
    restart_latency: Histogram,
    /// When options last woke the waiters (start of restart latency).
    options_woke_at: Option<Instant<Monotonic>>,
    /// The parts of the last restart and of the last option write, for
    /// `counters` (a benchmark reads them after each trial).
    last: Parts,
    /// When the last stuck report was printed (at most one per interval).
    last_stuck: Option<Instant<Monotonic>>,
    /// The last stuck report, for `alloc_stuck`.
    stuck_text: KVec<u8>,
}

impl Requests {
    /// The devices blocked requests could use, and the highest watermark
    /// among them (`None` if nobody waits).
    pub(crate) fn waiting(&self) -> (u64, Option<Watermark>) {
        let mut mask = 0;
        let mut w: Option<Watermark> = None;
        for waiter in self.waiters.iter() {
            mask |= waiter.mask;
            w = w.max(Some(waiter.data.spec.watermark));
        }
        (mask, w)
    }

    /// Counts a finished discard batch.
    pub(crate) fn note_discard(&mut self, dev: u32, runs: u64, buckets: u64, starved: bool) {
        let c = &mut self.counters;
        c.discards_issued += runs;
        c.discard_buckets += buckets;
        if starved {
            c.starved_discard_buckets += buckets;
        }
        if let Some(d) = c.discard_buckets_dev.get_mut(dev as usize) {
            *d += buckets;
        }
    }

    /// Notes the parts of an option write that asked for the pool's lock
    /// at `asked`, held it from `locked` and has written the superblocks
    /// now.
    pub(crate) fn note_option_write(
        &mut self,
        asked: Instant<Monotonic>,
        locked: Instant<Monotonic>,
    ) {
        self.last.option_lock = ns_between(asked, locked);
        self.last.option_superblock = ns_between(locked, Instant::now());
    }

    /// Counts `buckets` released without a discard (a device that cannot
    /// discard).
    pub(crate) fn note_release(&mut self, buckets: u64) {
        self.counters.released_buckets += buckets;
    }

    /// No requests yet.
    fn new() -> Self {
        Self {
            waiters: WaitList::new(),
            counters: Counters::default(),
            restart_latency: Histogram::new(),
            options_woke_at: None,
            last: Parts::default(),
            last_stuck: None,
            stuck_text: KVec::new(),
        }
    }
}

/// What placement sees of every member.
pub(crate) fn snapshots(members: &[Member]) -> Result<KVec<DevSnapshot>> {
    let mut devs = KVec::with_capacity(members.len(), GFP_KERNEL)?;
    fill(&mut devs, members)?;
    Ok(devs)
}

/// What placement sees of every member, in `devs` (cleared first; it only
/// allocates when `members` outgrew it).
fn fill<'a>(devs: &'a mut KVec<DevSnapshot>, members: &[Member]) -> Result<&'a [DevSnapshot]> {
    devs.clear();
    for m in members {
        devs.push(m.snapshot(), GFP_KERNEL)?;
    }
    Ok(devs)
}

fn ms_since(t: Instant<Monotonic>) -> u64 {
    t.elapsed().as_millis().max(0) as u64
}

/// Opens one bucket on each chosen device, all or nothing.
fn open_buckets(members: &mut [Member], choice: &Choice) -> Result<Grant> {
    let mut grant = Grant::default();
    for &dev in choice.devs() {
        let bucket = members.get_mut(dev as usize).and_then(|m| m.open_bucket());
        match bucket {
            // A choice names at most `MAX_REPLICAS` devices.
            Some(b) if grant.push(dev, b) => {}
            Some(b) => {
                if let Some(m) = members.get_mut(dev as usize) {
                    m.release_open(b);
                }
                release(members, &grant);
                return Err(EINVAL);
            }
            None => {
                release(members, &grant);
                return Err(ENOSPC);
            }
        }
    }
    Ok(grant)
}

fn release(members: &mut [Member], grant: &Grant) {
    for &(dev, b) in grant.iter() {
        if let Some(m) = members.get_mut(dev as usize) {
            m.release_open(b);
        }
    }
}

/// Placement's answer for `spec` on `members` now (snapshots in `scratch`).
fn verdict(
    members: &[Member],
    scratch: &mut KVec<DevSnapshot>,
    spec: &RequestSpec,
) -> Result<Verdict> {
    Ok(placement::choose(fill(scratch, members)?, &spec.request()))
}

/// Tries to satisfy `spec` now: `Ok(Some)` with open buckets, `Ok(None)`
/// when blocked, `Err(ENOSPC)` when infeasible.
fn try_take(
    members: &mut [Member],
    scratch: &mut KVec<DevSnapshot>,
    spec: &RequestSpec,
) -> Result<Option<Grant>> {
    match verdict(members, scratch, spec)? {
        Verdict::Ok(choice) => Ok(Some(open_buckets(members, &choice)?)),
        Verdict::Blocked { .. } => Ok(None),
        Verdict::Infeasible { .. } => Err(ENOSPC),
    }
}

/// The grant pass: offers free buckets to parked waiters in FIFO order.
pub(crate) fn grant_pass(inner: &mut Pool, devs_mask: u64, reason: WakeReason) {
    let Pool {
        members,
        requests,
        scratch,
        ..
    } = inner;
    let n = requests
        .waiters
        .grant(devs_mask, reason, |p: &mut Pending| {
            match try_take(members, scratch, &p.spec) {
                Ok(Some(grant)) => {
                    p.granted = Some(grant);
                    true
                }
                _ => false,
            }
        });
    requests.counters.wakeups += n as u64;
}

/// Commits granted open buckets to state `to` in memory; on failure the
/// rest are released and the error returned.
fn commit(members: &mut [Member], grant: &Grant, to: BucketState) -> Result {
    let mut res = Ok(());
    for &(dev, b) in grant.iter() {
        let Some(m) = members.get_mut(dev as usize) else {
            continue;
        };
        if res.is_ok() {
            res = m.commit_open(b, to);
        }
        if res.is_err() {
            m.release_open(b);
        }
    }
    res
}

/// Commits a grant (unless its spec leaves that to the caller, see
/// [`RequestSpec::commit_on_grant`]) and counts the allocation: every
/// successful request ends here.
fn hand_over(inner: &mut Pool, grant: Grant, spec: &RequestSpec) -> Result<Grant> {
    if spec.commit_on_grant() {
        commit(&mut inner.members, &grant, spec.state())?;
    }
    inner.requests.counters.allocs += 1;
    Ok(grant)
}

/// A volume's allocator: it owns the [`Pool`] and its lock.
#[pin_data]
pub(crate) struct Allocator {
    uuid: Uuid,
    #[pin]
    pool: Mutex<Pool>,
    /// Where parked requests sleep.
    #[pin]
    sleep: Sleep,
    /// Rung when discards may help: a request parked, buckets freed.
    #[pin]
    discard_kick: Kick,
}

impl Allocator {
    /// The allocator of volume `uuid`, owning `pool`.
    pub(crate) fn new(uuid: Uuid, pool: Pool) -> impl PinInit<Self> {
        pin_init!(Self {
            uuid,
            pool <- new_mutex!(pool),
            sleep <- Sleep::new(),
            discard_kick <- Kick::new(),
        })
    }

    /// The pool, locked.
    pub(crate) fn lock(&self) -> Guard<'_, Pool, MutexBackend> {
        self.pool.lock()
    }

    /// The discard thread's doorbell.
    pub(crate) fn discard_kick(&self) -> &Kick {
        &self.discard_kick
    }

    /// The volume's uuid.
    pub(crate) fn uuid(&self) -> &Uuid {
        &self.uuid
    }

    /// The volume's uuid, for messages.
    pub(crate) fn name(&self) -> Core<Hyphenated<'_>> {
        Core(Hyphenated(&self.uuid))
    }

    /// Allocates one bucket on each of `replicas` distinct devices (from the
    /// options unless overridden) for `kind`. Blocks while the volume cannot
    /// serve it; see the module documentation for how the wait ends.
    pub(crate) fn allocate(&self, kind: Kind, overrides: Overrides) -> Result<Grant> {
        let start = Instant::<Monotonic>::now();
        let mut waited = false;
        let r = self.allocate_traced(kind, overrides, &mut waited);
        let (nr, err) = match &r {
            Ok(g) => (g.len() as u32, 0),
            Err(e) => (0, e.to_errno()),
        };
        let ns = start.elapsed().as_nanos().max(0) as u64;
        trace::alloc(&self.uuid, kind as u32, nr, err, waited, ns);
        r
    }

    /// [`Allocator::allocate`], setting `waited` if the request parked.
    fn allocate_traced(
        &self,
        kind: Kind,
        overrides: Overrides,
        waited: &mut bool,
    ) -> Result<Grant> {
        let mut inner = self.pool.lock();
        if inner.members.is_empty() || inner.closing {
            return Err(ENODEV);
        }
        if inner.read_only.is_some() {
            return Err(EROFS);
        }
        let spec = request::build_with(kind, &inner.options, inner.opts_gen, overrides)
            .map_err(|_| EINVAL)?;
        let start = Instant::<Monotonic>::now();
        // Fast path: nobody waits, so taking now overtakes nobody.
        if inner.requests.waiters.len() == 0 {
            match inner.try_take(&spec) {
                Ok(Some(grant)) => return hand_over(&mut inner, grant, &spec),
                Ok(None) => {}
                Err(e) => return Err(self.infeasible(&mut inner, &spec, e)),
            }
        } else if let Err(e) = Self::check_feasible(&inner, &spec) {
            return Err(self.infeasible(&mut inner, &spec, e));
        }
        let mask = Self::wait_mask(&inner, &spec)?;
        let id = inner.requests.waiters.park(
            mask,
            Pending {
                spec,
                start,
                granted: None,
            },
        )?;
        inner.requests.counters.waits += 1;
        inner.changed(Changed::Waiters);
        *waited = true;
        trace::wait(&self.uuid, id, mask);
        // A blocked request may make a device starved: let discards look.
        self.discard_kick.kick();
        // Our own place in the FIFO may be servable right away.
        grant_pass(&mut inner, u64::MAX, WakeReason::BucketsFreed);
        // Age (ms) of this waiter's last stuck report.
        let mut last_stuck: Option<u64> = None;
        // Whether its deadline was told of (policy degrade retries).
        let mut deadline_told = false;
        // When it last ran after a sleep, and held the lock again.
        let (mut ran, mut locked) = (None, None);
        loop {
            let gen = inner.opts_gen;
            let gone = inner.members.is_empty() || inner.closing;
            let read_only = inner.read_only.is_some();
            let w = inner.requests.waiters.get_mut(id).ok_or(EINVAL)?;
            let (state, stale) = (w.state, w.data.spec.is_stale(gen));
            let (spec, start) = (w.data.spec, w.data.start);
            match state {
                WaitState::Woken(r) => trace::wake(&self.uuid, id, r as u64),
                WaitState::Granted => trace::wake(&self.uuid, id, w.last_wake as u64),
                WaitState::Parked => {}
            }
            match state {
                WaitState::Granted => {
                    let grant = w.data.granted.take().unwrap_or_default();
                    inner.unpark(id);
                    let r = hand_over(&mut inner, grant, &spec);
                    if last_stuck.is_some() && r.is_ok() {
                        drop(inner);
                        self.tell(Event::Unstuck { waiter: id });
                    }
                    return r;
                }
                WaitState::Woken(WakeReason::Abort) => {
                    inner.requests.counters.aborts += 1;
                    return Err(self.leave(&mut inner, id, ECANCELED));
                }
                WaitState::Woken(_) if gone => {
                    return Err(self.leave(&mut inner, id, ENODEV));
                }
                WaitState::Woken(_) if read_only => {
                    return Err(self.leave(&mut inner, id, EROFS));
                }
                WaitState::Woken(_) => {
                    let spec = if stale {
                        let r = self.restart(&mut inner, id, ran, locked);
                        self.or_leave(&mut inner, id, r)?
                    } else {
                        spec
                    };
                    if let Err(e) = Self::check_feasible(&inner, &spec) {
                        let e = self.leave(&mut inner, id, e);
                        return Err(self.infeasible(&mut inner, &spec, e));
                    }
                    let r = Self::wait_mask(&inner, &spec)
                        .and_then(|mask| inner.requests.waiters.repark(id, mask));
                    self.or_leave(&mut inner, id, r)?;
                    grant_pass(&mut inner, u64::MAX, WakeReason::Options);
                    continue;
                }
                WaitState::Parked => {}
            }
            // The timers are checked on every pass, not only after a sleep
            // that timed out: wakes (option writes, frees) come at any rate
            // and must not postpone a deadline or a report.
            let age = ms_since(start);
            let every = u64::from(spec.stuck_timeout_secs) * 1000;
            // The next report is due `every` after the last one, by the
            // current timeout (a restart may have changed it); with
            // `allocator_stuck_timeout=0` there is no report and no timer.
            let mut stuck_at = (every > 0).then(|| last_stuck.map_or(every, |at| at + every));
            if let Some(at) = stuck_at.filter(|&at| age >= at) {
                let r = self.stuck_report(&mut inner, id);
                let reported = self.or_leave(&mut inner, id, r)?;
                last_stuck = Some(at.max(age));
                if reported {
                    // Telling may sleep: unlocked, then this pass again
                    // (the waiter's state may have moved meanwhile).
                    drop(inner);
                    self.tell(Event::Stuck { waiter: id });
                    inner = self.pool.lock();
                    continue;
                }
                stuck_at = last_stuck.map(|at| at + every);
            }
            let deadline_at = match spec.policy {
                WaitPolicy::Wait => None,
                _ => (spec.deadline_secs > 0).then(|| u64::from(spec.deadline_secs) * 1000),
            };
            if deadline_at.is_some_and(|at| age >= at) {
                match spec.policy {
                    WaitPolicy::Wait => {}
                    WaitPolicy::Fail => {
                        inner.requests.counters.timeouts += 1;
                        pr_warn!(
                            "volume {}: waiter {} failed at its deadline ({} s, policy fail)\n",
                            self.name(),
                            id,
                            spec.deadline_secs
                        );
                        let e = self.leave(&mut inner, id, ENOSPC);
                        drop(inner);
                        self.tell(Event::Deadline {
                            waiter: id,
                            policy: WaitPolicy::Fail,
                        });
                        return Err(e);
                    }
                    WaitPolicy::Degrade => {
                        let r = self.degrade(&mut inner, id, &spec);
                        let granted = self.or_leave(&mut inner, id, r)?;
                        if !deadline_told || granted.is_some() {
                            drop(inner);
                            if !deadline_told {
                                self.tell(Event::Deadline {
                                    waiter: id,
                                    policy: WaitPolicy::Degrade,
                                });
                                deadline_told = true;
                            }
                            if let Some(grant) = granted {
                                self.tell(Event::Degraded {
                                    waiter: id,
                                    replicas: grant.len() as u32,
                                    wanted: spec.replicas,
                                });
                                return Ok(grant);
                            }
                            inner = self.pool.lock();
                            continue;
                        }
                    }
                }
            }
            // Past the deadline, degrade tries again once a second (or
            // sooner, when woken).
            let deadline_in = deadline_at.map(|at| if age >= at { 1000 } else { at - age });
            let timeout = match (stuck_at.map(|at| at.saturating_sub(age)), deadline_in) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = timeout.map(|t| t.min(u64::from(u32::MAX)) as u32);
            let slept;
            (inner, slept, ran) = self
                .sleep
                .sleep_timed(inner, timeout, |p| p.requests.waiters.is_parked(id));
            locked = Some(Instant::now());
            if slept == Slept::Killed {
                inner.requests.counters.interrupted += 1;
                return Err(self.leave(&mut inner, id, EINTR));
            }
        }
    }

    /// One try, no waiting, and allowed while the volume is closing: for
    /// checkpoints, which free space rather than wait for it. `Ok(None)`
    /// when the devices cannot serve it now.
    pub(crate) fn allocate_now(&self, kind: Kind, overrides: Overrides) -> Result<Option<Grant>> {
        let mut inner = self.pool.lock();
        if inner.members.is_empty() {
            return Err(ENODEV);
        }
        let spec = request::build_with(kind, &inner.options, inner.opts_gen, overrides)
            .map_err(|_| EINVAL)?;
        match inner.try_take(&spec)? {
            Some(grant) => hand_over(&mut inner, grant, &spec).map(Some),
            None => Ok(None),
        }
    }

    /// Whether a request of `kind` with `overrides` could be served now,
    /// without waiting (nothing is taken).
    pub(crate) fn could_serve_now(&self, kind: Kind, overrides: Overrides) -> Result<bool> {
        let mut inner = self.pool.lock();
        let spec = request::build_with(kind, &inner.options, inner.opts_gen, overrides)
            .map_err(|_| EINVAL)?;
        let Pool {
            members, scratch, ..
        } = &mut *inner;
        Ok(matches!(verdict(members, scratch, &spec)?, Verdict::Ok(_)))
    }

    /// `r`, leaving the wait list if it is an error: a waiter that stops
    /// waiting on an error (ENOMEM, say) must not stay as a ghost that
    /// blocks every later waiter on its devices.
    fn or_leave<T>(&self, inner: &mut Pool, id: u64, r: Result<T>) -> Result<T> {
        r.map_err(|e| self.leave(inner, id, e))
    }

    /// Leaves the wait list; later waiters may now be servable. A grant
    /// the waiter got but will not collect (it was killed in the meantime)
    /// goes back: open buckets nobody commits would be lost until the next
    /// register, and on a starved device one is enough to wedge it.
    fn leave(&self, inner: &mut Pool, id: u64, err: Error) -> Error {
        if let Some(grant) = inner.unpark(id).and_then(|p| p.granted) {
            release(&mut inner.members, &grant);
        }
        trace::leave(&self.uuid, id, err.to_errno().unsigned_abs().into());
        grant_pass(inner, u64::MAX, WakeReason::Device);
        err
    }

    fn check_feasible(inner: &Pool, spec: &RequestSpec) -> Result {
        let devs = snapshots(&inner.members)?;
        match placement::choose(&devs, &spec.request()) {
            Verdict::Infeasible { .. } => Err(ENOSPC),
            _ => Ok(()),
        }
    }

    fn wait_mask(inner: &Pool, spec: &RequestSpec) -> Result<u64> {
        let devs = snapshots(&inner.members)?;
        Ok(placement::could_serve_mask(&devs, &spec.request()))
    }

    fn infeasible(&self, inner: &mut Pool, spec: &RequestSpec, err: Error) -> Error {
        inner.requests.counters.infeasible += 1;
        if let Ok(devs) = snapshots(&inner.members) {
            pr_err!(
                "volume {}: {}\n",
                self.name(),
                Core(InfeasibleMsg { spec, devs: &devs })
            );
        }
        err
    }

    /// Rebuilds waiter `id`'s request from the current options. `ran` is
    /// when its task ran after the wake and `locked` when it held the lock
    /// again (`None` when it did not sleep), for the restart's parts.
    fn restart(
        &self,
        inner: &mut Pool,
        id: u64,
        ran: Option<Instant<Monotonic>>,
        locked: Option<Instant<Monotonic>>,
    ) -> Result<RequestSpec> {
        let (options, gen) = (inner.options, inner.opts_gen);
        let woke_at = inner.requests.options_woke_at;
        let w = inner.requests.waiters.get_mut(id).ok_or(EINVAL)?;
        w.data.spec = w.data.spec.rebuild(&options, gen);
        let spec = w.data.spec;
        let (replicas, watermark) = (spec.replicas, spec.watermark);
        inner.requests.counters.restarts += 1;
        trace::restart(&self.uuid, id, gen);
        if let Some(t) = woke_at {
            let now = Instant::now();
            let ns = ns_between(t, now);
            inner.requests.restart_latency.record(ns);
            if let (Some(ran), Some(locked)) = (ran.filter(|&r| (r - t).as_nanos() >= 0), locked) {
                inner.requests.last = Parts {
                    restart_wake: ns_between(t, ran),
                    restart_lock: ns_between(ran, locked),
                    restart_rebuild: ns_between(locked, now),
                    restart: ns,
                    ..inner.requests.last
                };
            }
        }
        pr_info!(
            "volume {}: waiter {} restarted with opts_gen {}: replicas {}, watermark {}\n",
            self.name(),
            id,
            gen,
            replicas,
            Core(watermark)
        );
        Ok(spec)
    }

    /// At the deadline with policy `degrade`: proceed with the devices that
    /// can serve now, if any.
    fn degrade(&self, inner: &mut Pool, id: u64, spec: &RequestSpec) -> Result<Option<Grant>> {
        let devs = snapshots(&inner.members)?;
        let Some(choice) = placement::degrade(&devs, &spec.request()) else {
            return Ok(None);
        };
        let grant = open_buckets(&mut inner.members, &choice)?;
        inner.unpark(id);
        let grant = hand_over(inner, grant, spec)?;
        inner.requests.counters.degraded += 1;
        pr_warn!(
            "volume {}: waiter {} degraded at its deadline: {} of {} replicas\n",
            self.name(),
            id,
            grant.len(),
            spec.replicas
        );
        grant_pass(inner, u64::MAX, WakeReason::Device);
        Ok(Some(grant))
    }

    /// Tells the watcher, if any, of `what`; may sleep, so the pool must
    /// not be locked.
    pub(crate) fn tell(&self, what: Event) {
        let watcher = self.pool.lock().watcher.clone();
        if let Some(w) = watcher {
            w.event(what);
        }
    }

    /// Prints a stuck report for waiter `id` (at most one per interval per
    /// volume) and keeps it for `alloc_stuck`; whether it did.
    fn stuck_report(&self, inner: &mut Pool, id: u64) -> Result<bool> {
        let Some(w) = inner.requests.waiters.get_mut(id) else {
            return Ok(false);
        };
        let (spec, start) = (w.data.spec, w.data.start);
        if let Some(last) = inner.requests.last_stuck {
            if ms_since(last) < u64::from(spec.stuck_timeout_secs) * 1000 {
                return Ok(false);
            }
        }
        let devs = snapshots(&inner.members)?;
        let report = StuckReport {
            id,
            spec: &spec,
            age_ms: ms_since(start),
            devs: &devs,
            discard: DiscardState {
                enabled: inner.options.discard(),
                replay_priority: inner.options.replay_discard_priority(),
                in_flight: u32::try_from(inner.members.iter().map(|m| m.discarding).sum::<u64>())
                    .unwrap_or(u32::MAX),
                discarded: inner.requests.counters.discard_buckets,
                failing: inner
                    .members
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.discard_failures > 0)
                    .fold(0, |bits, (i, _)| bits | placement::dev_bit(i as u32)),
            },
            waiters: inner.requests.waiters.len() as u64,
        };
        let mut text = KVec::new();
        let mut out = VecWriter(&mut text);
        let _ = report.write_to(&mut out);
        for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(line) = core::str::from_utf8(line) {
                pr_warn!("volume {}: {}\n", self.name(), line);
            }
        }
        inner.requests.stuck_text = text;
        inner.requests.last_stuck = Some(Instant::now());
        inner.requests.counters.stuck_reports += 1;
        inner.changed(Changed::AllocStuck);
        Ok(true)
    }

    /// Wakes every waiter after an option write, so each rebuilds itself.
    pub(crate) fn wake_waiters_for_options(&self) {
        let mut inner = self.pool.lock();
        inner.requests.options_woke_at = Some(Instant::now());
        inner.requests.waiters.wake_all(WakeReason::Options);
    }

    /// Wakes every waiter because the volume goes away; they fail.
    pub(crate) fn wake_waiters_for_teardown(&self) {
        self.pool
            .lock()
            .requests
            .waiters
            .wake_all(WakeReason::Device);
    }

    /// `abort_waiting`: "all" or a waiter id.
    pub(crate) fn abort_waiting(&self, what: &str) -> Result {
        if what == "all" {
            self.pool
                .lock()
                .requests
                .waiters
                .wake_all(WakeReason::Abort);
            return Ok(());
        }
        let mut inner = self.pool.lock();
        let id: u64 = what.parse().map_err(|_| EINVAL)?;
        if inner.requests.waiters.wake_one(id, WakeReason::Abort) {
            Ok(())
        } else {
            Err(ENOENT)
        }
    }

    /// Commits the open buckets of a grant that [`hand_over`] left open to
    /// `to`; on failure the rest go back.
    pub(crate) fn commit_grant(&self, grant: &Grant, to: BucketState) -> Result {
        commit(&mut self.pool.lock().members, grant, to)
    }

    /// Gives back the open buckets of a grant that will not be committed,
    /// and lets the waiters of their devices look.
    pub(crate) fn release_grant(&self, grant: &Grant) {
        let mut inner = self.pool.lock();
        release(&mut inner.members, grant);
        let mask = grant
            .iter()
            .fold(0, |m, &(dev, _)| m | placement::dev_bit(dev));
        grant_pass(&mut inner, mask, WakeReason::BucketsFreed);
    }

    /// Frees buckets: they become need_discard (never free directly), so
    /// they wake nobody until discarded.
    pub(crate) fn free_buckets(&self, buckets: &[(u32, u64)]) -> Result {
        let mut inner = self.pool.lock();
        for &(dev, b) in buckets {
            let m = inner.members.get_mut(dev as usize).ok_or(EINVAL)?;
            m.free_bucket(b)?;
            inner.requests.counters.frees += 1;
        }
        let mut mask = 0;
        for &(dev, _) in buckets {
            mask |= placement::dev_bit(dev);
        }
        grant_pass(&mut inner, mask, WakeReason::BucketsFreed);
        self.discard_kick.kick();
        Ok(())
    }

    /// `waiters`: one line per blocked request, in FIFO order, in at most
    /// `room` bytes. Past that, the last line says how many more there are.
    pub(crate) fn write_waiters(&self, out: &mut impl Write, room: usize) -> Result {
        // Room kept for "+N more waiters".
        const MORE: usize = 32;
        let inner = self.pool.lock();
        let total = inner.requests.waiters.len();
        let mut used = 0;
        let mut line_buf = KVec::new();
        for (shown, w) in inner.requests.waiters.iter().enumerate() {
            let line = WaiterLine {
                id: w.id,
                age_ms: ms_since(w.data.start),
                watermark: w.data.spec.watermark,
                replicas: w.data.spec.replicas,
                devs: w.mask,
                opts_gen: w.data.spec.opts_gen,
                woken: u64::from(w.woken),
                last_wake: w.last_wake,
            };
            line_buf.clear();
            writeln!(VecWriter(&mut line_buf), "{line}")?;
            let more = shown + 1 < total;
            let left = room.saturating_sub(used + line_buf.len());
            if used + line_buf.len() > room || (more && left < MORE) {
                writeln!(out, "+{} more waiters", total - shown)?;
                break;
            }
            out.write_str(core::str::from_utf8(&line_buf).map_err(|_| EINVAL)?)?;
            used += line_buf.len();
        }
        Ok(())
    }

    /// `alloc_stuck`: the last stuck report.
    pub(crate) fn write_stuck(&self, out: &mut impl Write) -> Result {
        let inner = self.pool.lock();
        let text = core::str::from_utf8(&inner.requests.stuck_text).map_err(|_| EINVAL)?;
        out.write_str(text)?;
        Ok(())
    }

    /// The allocator's part of `counters`: "name value" lines.
    pub(crate) fn write_counters(&self, out: &mut impl Write) -> Result {
        let inner = self.pool.lock();
        let a = &inner.requests;
        let c = &a.counters;
        for (name, v) in [
            ("allocs", c.allocs),
            ("frees", c.frees),
            ("waits", c.waits),
            ("wakeups", c.wakeups),
            ("restarts", c.restarts),
            ("timeouts", c.timeouts),
            ("aborts", c.aborts),
            ("degraded", c.degraded),
            ("infeasible", c.infeasible),
            ("interrupted", c.interrupted),
            ("stuck_reports", c.stuck_reports),
            ("discards_issued", c.discards_issued),
            ("discard_buckets", c.discard_buckets),
            ("starved_discard_buckets", c.starved_discard_buckets),
            ("released_buckets", c.released_buckets),
            ("waiters", a.waiters.len() as u64),
            ("restart_latency_count", a.restart_latency.count()),
            ("restart_latency_ns_p50", a.restart_latency.percentile(500)),
            ("restart_latency_ns_p99", a.restart_latency.percentile(990)),
            ("restart_latency_ns_max", a.restart_latency.max()),
            ("last_option_lock_ns", a.last.option_lock),
            ("last_option_superblock_ns", a.last.option_superblock),
            ("last_restart_wake_ns", a.last.restart_wake),
            ("last_restart_lock_ns", a.last.restart_lock),
            ("last_restart_rebuild_ns", a.last.restart_rebuild),
            ("last_restart_ns", a.last.restart),
            (
                "memory_bucket_bytes",
                inner
                    .members
                    .iter()
                    .map(|m| m.states.capacity() as u64)
                    .sum(),
            ),
        ] {
            writeln!(out, "{name} {v}")?;
        }
        for (i, v) in c
            .discard_buckets_dev
            .iter()
            .take(inner.members.len())
            .enumerate()
        {
            writeln!(out, "discard_buckets_dev{i} {v}")?;
        }
        Ok(())
    }
}

/// `core::fmt::Write` into a `KVec<u8>`.
struct VecWriter<'a>(&'a mut KVec<u8>);

impl Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes(), GFP_KERNEL)
            .map_err(|_| core::fmt::Error)
    }
}
