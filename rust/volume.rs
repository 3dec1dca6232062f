// SPDX-License-Identifier: GPL-2.0

//! A registered volume: its member devices, its options and `opts_gen`,
//! the parts it composes (allocator, journal, btree, discard thread, whose
//! second job is re-replication) and its lifecycle from open to teardown.
//! Its sysfs files are `sysfs.rs`'s.
//!
//! Options are applied in this order at register: the superblocks (the
//! member with the highest `seq` wins), the module parameters
//! (`stuck_timeout_secs` as the default of `allocator_stuck_timeout`,
//! `recovery_metadata_replicas` if non-zero), then the register string.
//! Register-time options are not written to disk: they get a volume up. A
//! runtime write to `options/<name>` is validated, applied, written to every
//! member's superblock, bumps `opts_gen` and calls
//! [`Volume::options_changed`].

use crate::allocator::{Allocator, Pool};
use crate::bkcore::{
    degraded::{self, Refusal},
    format::superblock,
    member_state::{self, MemberState},
    options::{OptId, Options, RegisterFlags},
    uuid::{Hyphenated, Uuid},
};
use crate::btree::Tree;
use crate::discard::{DiscardThread, Discards};
use crate::fmt::Core;
use crate::glue::{bdev::BlockDevice, kthread::Kthread};
use crate::health::{Changed, Event, Phase, ReadOnly};
use crate::journal::{Journal, Ring};
use crate::member::{member_states, Absent, Member};
use crate::waitlist::Kick;
use crate::writer::Writer;
use core::ptr::NonNull;
use kernel::{
    new_mutex,
    prelude::*,
    str::CString,
    sync::{lock::mutex::MutexBackend, lock::Guard, Arc, Mutex},
    time::{Instant, Monotonic},
};

/// What a register string asks for.
pub(crate) struct RegisterArgs<'a> {
    /// Member device paths.
    pub(crate) paths: KVec<&'a str>,
    /// The `opt=val,...` list, if any.
    pub(crate) options: Option<&'a str>,
}

impl<'a> RegisterArgs<'a> {
    /// Parses `DEV [DEV...] [opt=val[,opt=val...]]`.
    pub(crate) fn parse(input: &'a str) -> Result<Self> {
        let mut paths = KVec::new();
        let mut options = None;
        for word in input.split_ascii_whitespace() {
            if options.is_some() {
                pr_err!("register: the option list must come last\n");
                return Err(EINVAL);
            }
            if word.contains('=') {
                options = Some(word);
            } else if word.starts_with('/') {
                paths.push(word, GFP_KERNEL)?;
            } else {
                pr_err!(
                    "register: '{}' is neither a device path nor an option\n",
                    word
                );
                return Err(EINVAL);
            }
        }
        if paths.is_empty() {
            pr_err!("register: no device given\n");
            return Err(EINVAL);
        }
        Ok(Self { paths, options })
    }
}

/// Module-wide settings a volume starts from.
#[derive(Clone, Copy)]
pub(crate) struct ModuleDefaults {
    /// `recovery_metadata_replicas` (0 = off).
    pub(crate) recovery_metadata_replicas: u32,
    /// `stuck_timeout_secs`.
    pub(crate) stuck_timeout_secs: u32,
    /// `degraded`: every register as with `degraded=1`.
    pub(crate) degraded: bool,
}

/// A registered volume.
#[pin_data]
pub(crate) struct Volume {
    uuid: Uuid,
    nr_members: u32,
    /// The members, options and requests, under the allocator's lock.
    #[pin]
    alloc: Allocator,
    /// Serialises btree writers (inserts, checkpoints, replay), held
    /// across a split's allocation; readers need only `tree`.
    #[pin]
    pub(crate) writer: Writer,
    /// The btree. Lock order: `writer`, `tree`, the pool, `journal`.
    #[pin]
    pub(crate) tree: Mutex<Tree>,
    /// The journal.
    #[pin]
    pub(crate) journal: Journal,
    /// Its sysfs directory, published by register; teardown removes it.
    #[pin]
    published: Mutex<Option<KBox<dyn Published>>>,
    #[pin]
    discard_thread: Mutex<Option<Kthread<DiscardThread<Volume>>>>,
    /// Exclusive-open holder of the member devices; outlives them (`alloc`
    /// drops first).
    _holder: KBox<u8>,
}

/// A volume's parts before it exists (on the heap: they are large).
struct Parts {
    uuid: Uuid,
    nr_members: u32,
    ring: Ring,
    pool: Pool,
}

/// What a volume keeps until teardown removes it: its sysfs directory.
pub(crate) trait Published: Send + Sync {}

impl<T: Send + Sync> Published for T {}

impl Discards for Volume {
    fn allocator(&self) -> &Allocator {
        &self.alloc
    }

    fn after_discards(&self) -> bool {
        self.rereplicate()
    }
}

impl Volume {
    /// Opens and validates the members named by `args`, resolves options and
    /// loads the alloc tables. Nothing is visible in sysfs yet.
    // Each step is its own function, never inlined: superblocks,
    // checkpoints and members moved by value would otherwise share one
    // frame, and the kernel stack is 16 KiB (make check bounds frames).
    #[inline(never)]
    pub(crate) fn open(args: &RegisterArgs<'_>, defaults: ModuleDefaults) -> Result<Arc<Self>> {
        let holder = KBox::new(0u8, GFP_KERNEL)?;
        let members = Self::open_members(args, NonNull::from(&*holder))?;
        let parts = Self::assemble(members, args, defaults)?;
        Self::build(parts, holder)
    }

    /// The volume, from its parts.
    #[inline(never)]
    fn build(parts: KBox<Parts>, holder: KBox<u8>) -> Result<Arc<Self>> {
        let Parts {
            uuid,
            nr_members,
            ring,
            pool,
        } = KBox::into_inner(parts);
        Arc::pin_init(
            try_pin_init!(Volume {
                uuid,
                nr_members,
                alloc <- Allocator::new(*uuid, pool),
                writer <- Writer::new(),
                tree <- new_mutex!(Tree::new()),
                journal <- Journal::new(ring),
                published <- new_mutex!(None),
                discard_thread <- new_mutex!(None),
                _holder: holder,
            }),
            GFP_KERNEL,
        )
    }

    /// Opens the devices of `args` (exclusively, for `holder`) and reads
    /// their superblocks; returns them in member index order.
    #[inline(never)]
    fn open_members(args: &RegisterArgs<'_>, holder_ptr: NonNull<u8>) -> Result<KVec<Member>> {
        let mut members: KVec<Member> = KVec::with_capacity(args.paths.len(), GFP_KERNEL)?;
        for path in args.paths.iter() {
            let cpath = CString::try_from_fmt(fmt!("{path}"))?;
            let dev = BlockDevice::open(&cpath, holder_ptr).inspect_err(|e| {
                pr_err!(
                    "{}: cannot open exclusively (error {})\n",
                    path,
                    e.to_errno()
                );
            })?;
            if let Some(twin) = members
                .iter()
                .find(|m| m.dev().is_ok_and(|d| d.dev() == dev.dev()))
            {
                pr_err!("{}: same device as {}\n", path, &*twin.path);
                return Err(EINVAL);
            }
            members.push(Member::open(cpath, dev)?, GFP_KERNEL)?;
        }
        Self::check_members(members)
    }

    /// Resolves the options, plans a register with members missing or
    /// returning (`bkcore::degraded`), loads the checkpoints and alloc
    /// tables: the volume's parts, before it exists.
    #[inline(never)]
    fn assemble(
        members: KVec<Member>,
        args: &RegisterArgs<'_>,
        defaults: ModuleDefaults,
    ) -> Result<KBox<Parts>> {
        let first = &members[0].sb;
        let mut sbs = KVec::with_capacity(members.len(), GFP_KERNEL)?;
        for m in members.iter() {
            sbs.push(m.sb, GFP_KERNEL)?;
        }
        let source = superblock::options_source(&sbs);
        let disk_options = sbs.get(source).ok_or(EINVAL)?.options;
        let top = sbs.iter().map(|sb| sb.seq).max().unwrap_or(0);
        if top > sbs[source].seq {
            pr_warn!(
                "volume {}: an option write (superblock seq {}) did not reach every member; it was never acknowledged: options are those of seq {}\n",
                Core(Hyphenated(&first.volume_uuid)),
                top,
                sbs[source].seq
            );
        }
        let (options, flags) =
            Self::resolve_options(disk_options, args, defaults, first.member_count)?;
        let uuid = first.volume_uuid;
        let nr_members = first.member_count;
        let member_uuids = first.members;
        let mut members = members;
        // Member states come with the options, from the same superblock.
        let states = sbs[source].member_states;
        for m in members.iter_mut() {
            m.state = states
                .get(m.sb.member_index as usize)
                .copied()
                .unwrap_or_default();
        }
        for m in members.iter_mut() {
            m.load_checkpoint()?;
        }
        // Every member's table copy of the volume's newest checkpoint was
        // written before any member's checkpoint, so it is there even on a
        // member whose own checkpoint write was cut short. A member that
        // was missing has the copy of the generation it went missing at.
        let newest = members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, m.checkpoint()?)))
            .max_by_key(|(_, c)| c.generation)
            .map(|(i, _)| i)
            .ok_or(EINVAL)?;
        let cp = members[newest].checkpoint().ok_or(EINVAL)?;
        let mut present = KVec::with_capacity(members.len(), GFP_KERNEL)?;
        for m in members.iter() {
            let own = m.checkpoint().ok_or(EINVAL)?;
            present.push(
                degraded::Present {
                    index: m.sb.member_index,
                    generation: own.generation,
                    degraded: own.degraded(),
                },
                GFP_KERNEL,
            )?;
        }
        let want_degraded = flags.degraded || defaults.degraded;
        let plan = degraded::plan(&cp, nr_members, &present, want_degraded).map_err(|r| {
            let m = match r {
                Refusal::NotAsked { member } | Refusal::Diverged { member, .. } => member,
            };
            pr_err!(
                "volume {}: {} (uuid {})\n",
                Core(Hyphenated(&uuid)),
                Core(r),
                Core(Hyphenated(&member_uuids[m as usize % member_uuids.len()]))
            );
            EINVAL
        })?;
        let mut changes = members[newest].take_checkpoint_pending();
        for m in members.iter_mut() {
            let i = m.sb.member_index;
            m.load_alloc_table(plan.table[i as usize])?;
            if plan.returning & (1 << i) == 0 {
                continue;
            }
            // Back: what was kept for it goes on top of its table, and its
            // journal copy (older than the others', and never replayed) is
            // cleared so no stale entry of it is ever read.
            let mut kept = 0u32;
            for c in changes.iter().filter(|c| c.member == i) {
                m.force_state(c.bucket, c.state).inspect_err(|_| {
                    pr_err!(
                        "{}: member {} is back, but a bucket state kept for it (bucket {}, {}) does not apply to its alloc table\n",
                        &*m.path,
                        i,
                        c.bucket,
                        c.state.name()
                    );
                })?;
                kept += 1;
            }
            m.clear_journal()?;
            pr_info!(
                "volume {}: member {} ({}) is back: its alloc table of generation {} and {} bucket states kept for it\n",
                Core(Hyphenated(&uuid)),
                i,
                &*m.path,
                plan.table[i as usize],
                kept
            );
        }
        changes.retain(|c| plan.is_missing(c.member));
        let all = Self::with_missing(members, &plan, &states, &member_uuids, &uuid, nr_members)?;
        let absent = Absent {
            missing: plan.missing,
            changes,
        };
        let ring = Ring::new(uuid, &all)?;
        Ok(KBox::new(
            Parts {
                uuid,
                nr_members,
                ring,
                pool: Pool::new(all, absent, disk_options, options),
            },
            GFP_KERNEL,
        )?)
    }

    /// `members` with a stand-in for each missing one, in index order.
    #[inline(never)]
    fn with_missing(
        members: KVec<Member>,
        plan: &degraded::Plan,
        states: &[MemberState],
        member_uuids: &[Uuid],
        uuid: &Uuid,
        nr_members: u32,
    ) -> Result<KVec<Member>> {
        // Every member in index order, missing ones too: `members` is in
        // index order, so each stand-in goes in at its index.
        let mut all = members;
        all.reserve((nr_members as usize).saturating_sub(all.len()), GFP_KERNEL)?;
        for i in 0..nr_members {
            if all.get(i as usize).is_some_and(|m| m.sb.member_index == i) {
                continue;
            }
            let like = all.first().ok_or(EINVAL)?;
            let state = states.get(i as usize).copied().unwrap_or_default();
            let m = Member::missing(i, like, state)?;
            pr_warn!(
                "volume {}: registered degraded: member {} (uuid {}) is missing; it holds the alloc table of generation {}\n",
                Core(Hyphenated(uuid)),
                i,
                Core(Hyphenated(&member_uuids[i as usize % member_uuids.len()])),
                plan.missing[i as usize]
            );
            all.insert_within_capacity(i as usize, m)
                .map_err(|_| ENOMEM)?;
        }
        Ok(all)
    }

    /// Members must agree on the volume and be distinct; returns them
    /// ordered by member index (missing ones are register's to judge).
    fn check_members(mut members: KVec<Member>) -> Result<KVec<Member>> {
        let first = &members.first().ok_or(EINVAL)?.sb;
        for m in members.iter().skip(1) {
            if let Err(field) = first.same_volume(&m.sb) {
                pr_err!(
                    "{}: superblock field {} disagrees with {}\n",
                    &*m.path,
                    field,
                    &*members[0].path
                );
                return Err(EINVAL);
            }
        }
        let count = first.member_count as usize;
        let mut ordered = KVec::with_capacity(count, GFP_KERNEL)?;
        for index in 0..count {
            if let Some(pos) = members
                .iter()
                .position(|m| m.sb.member_index as usize == index)
            {
                ordered.push(members.remove(pos).map_err(|_| EINVAL)?, GFP_KERNEL)?;
            }
        }
        if let Some(extra) = members.first() {
            pr_err!(
                "{}: member index {} given twice\n",
                &*extra.path,
                extra.sb.member_index
            );
            return Err(EINVAL);
        }
        Ok(ordered)
    }

    fn resolve_options(
        disk: Options,
        args: &RegisterArgs<'_>,
        defaults: ModuleDefaults,
        members: u32,
    ) -> Result<(Options, RegisterFlags)> {
        let mut options = disk;
        options
            .set_default(OptId::AllocatorStuckTimeout, defaults.stuck_timeout_secs)
            .map_err(|_| EINVAL)?;
        if defaults.recovery_metadata_replicas != 0 {
            options
                .set(OptId::MetadataReplicas, defaults.recovery_metadata_replicas)
                .map_err(|_| EINVAL)?;
        }
        let mut flags = RegisterFlags::default();
        if let Some(list) = args.options {
            flags = options.apply_register_list(list).map_err(|e| {
                pr_err!("register: {}\n", Core(e));
                EINVAL
            })?;
        }
        options.check_members(members).map_err(|e| {
            pr_err!("register: {}\n", Core(e));
            EINVAL
        })?;
        Ok((options, flags))
    }

    /// The volume's uuid.
    pub(crate) fn uuid(&self) -> &Uuid {
        &self.uuid
    }

    /// The number of members.
    pub(crate) fn nr_members(&self) -> u32 {
        self.nr_members
    }

    /// Keeps `what` (its sysfs directory) until teardown; refused once the
    /// volume is closing.
    pub(crate) fn publish(&self, what: KBox<dyn Published>) -> Result {
        let mut slot = self.published.lock();
        if self.alloc.lock().closing {
            return Err(ENODEV);
        }
        *slot = Some(what);
        Ok(())
    }

    /// Starts the volume's discard thread, unless it runs already or the
    /// volume is going away.
    pub(crate) fn start_discard(self: &Arc<Self>) -> Result {
        let mut slot = self.discard_thread.lock();
        if slot.is_some() || self.alloc.lock().closing {
            return Ok(());
        }
        // Task names hold 15 characters: "bkdiscard/" and the uuid's start.
        let u = &self.uuid;
        let name = CString::try_from_fmt(fmt!("bkdiscard/{:02x}{:02x}", u[0], u[1]))?;
        *slot = Some(Kthread::spawn(&name, DiscardThread::new(self.clone())?)?);
        Ok(())
    }

    /// The discard thread's doorbell.
    pub(crate) fn discarder(&self) -> &Kick {
        self.alloc.discard_kick()
    }

    /// The allocator.
    pub(crate) fn allocator(&self) -> &Allocator {
        &self.alloc
    }

    /// Fails waiters, stops the discard thread, checkpoints (if the volume
    /// was up), removes the sysfs directory and releases the member
    /// devices. Safe to call more than once.
    pub(crate) fn teardown(&self) {
        self.alloc.lock().closing = true;
        // Waiters see `closing` and fail with ENODEV; a blocked insert or
        // replay lets go of the writer, and those waiting for it leave.
        self.alloc.wake_waiters_for_teardown();
        self.writer.close();
        // Stopping waits for a batch in flight; take it out of the mutex so
        // a kick meanwhile does not wait on us.
        let thread = self.discard_thread.lock().take();
        self.discarder().kick();
        drop(thread);
        {
            // After any writer (a replay's own checkpoint included) is done;
            // those waiting to write leave.
            let _w = self.writer.enter_always();
            let up = {
                let inner = self.alloc.lock();
                // Read-only: a checkpoint would write where a failed one may
                // have landed; the journal keeps every change instead.
                inner.replay.phase == Phase::Done
                    && !inner.members.is_empty()
                    && inner.read_only.is_none()
            };
            if up {
                if let Err(e) = self.checkpoint_locked() {
                    pr_err!(
                        "volume {}: checkpoint at unregister failed (error {}); the journal keeps every change\n",
                        self.name(),
                        e.to_errno()
                    );
                }
            }
        }
        // Removing a file waits for its running callbacks, which may take
        // the pool's lock: drop the files with no lock held.
        let published = self.published.lock().take();
        drop(published);
        self.journal.close();
        // The tree's devices go with the members'.
        let disks = self.tree.lock().detach();
        drop(disks);
        let members = core::mem::take(&mut self.alloc.lock().members);
        self.alloc.wake_waiters_for_teardown();
        if !members.is_empty() {
            pr_info!("volume {} unregistered\n", Core(Hyphenated(&self.uuid)));
        }
        drop(members);
    }

    /// Called after every accepted option write with the new generation:
    /// every blocked request wakes and rebuilds itself from the options.
    fn options_changed(&self, gen: u64, id: OptId) {
        pr_info!(
            "volume {}: {} changed, opts_gen {}\n",
            self.name(),
            id.desc().name,
            gen
        );
        self.alloc.wake_waiters_for_options();
        self.discarder().kick();
        if id == OptId::BtreeCacheSize {
            let bytes = self.lock_pool().options.btree_cache_bytes();
            self.tree.lock().set_limit(bytes);
        }
    }

    /// The volume's members, options and requests, locked.
    pub(crate) fn lock_pool(&self) -> Guard<'_, Pool, MutexBackend> {
        self.alloc.lock()
    }

    /// `abort_waiting`: "all" or a waiter id.
    pub(crate) fn abort_waiting(&self, what: &str) -> Result {
        self.alloc.abort_waiting(what)?;
        if what == "all" {
            // Those waiting to write the btree too (behind a blocked split).
            self.writer.abort_waiters();
        }
        Ok(())
    }

    /// The volume's uuid, for messages.
    pub(crate) fn name(&self) -> Core<Hyphenated<'_>> {
        Core(Hyphenated(&self.uuid))
    }

    /// Validates, applies and persists a runtime write of option `id`.
    pub(crate) fn store_option(&self, id: OptId, input: &str) -> Result {
        let desc = id.desc();
        let value = desc.parse(input.trim()).map_err(|e| {
            pr_err!("volume {}: {}\n", Core(Hyphenated(&self.uuid)), Core(e));
            EINVAL
        })?;
        let gen = {
            let asked = Instant::<Monotonic>::now();
            let mut inner = self.alloc.lock();
            let locked = Instant::<Monotonic>::now();
            if inner.members.is_empty() {
                return Err(ENODEV);
            }
            if inner.read_only.is_some() {
                return Err(EROFS);
            }
            let mut options = inner.options;
            options.set(id, value).map_err(|_| EINVAL)?;
            options.check_members(self.nr_members).map_err(|e| {
                pr_err!("volume {}: {}\n", Core(Hyphenated(&self.uuid)), Core(e));
                EINVAL
            })?;
            let mut disk = inner.disk_options;
            if desc.persistent {
                disk.set(id, value).map_err(|_| EINVAL)?;
                let states = member_states(&inner.members);
                let seq = inner.members.iter().map(|m| m.sb.seq).max().unwrap_or(0) + 1;
                for m in inner.members.iter_mut().filter(|m| !m.is_missing()) {
                    m.write_superblock(disk, states, seq)?;
                }
            }
            inner.requests.note_option_write(asked, locked);
            inner.disk_options = disk;
            inner.options = options;
            inner.opts_gen += 1;
            inner.opts_gen
        };
        self.options_changed(gen, id);
        Ok(())
    }

    /// Validates, persists and applies a write of member `i`'s state
    /// (`dev-<i>/state`): as an option write, every superblock is
    /// rewritten, `opts_gen` bumps and every blocked request rebuilds
    /// itself. Refused (`EINVAL`) when fewer members would stay `rw` than
    /// `metadata_replicas` or `data_replicas` asks for.
    pub(crate) fn store_member_state(&self, i: usize, input: &str) -> Result {
        let state = MemberState::parse(input).ok_or_else(|| {
            pr_err!(
                "volume {}: dev-{}/state: '{}' is not a member state (rw, ro, failed, spare)\n",
                self.name(),
                i,
                input.trim()
            );
            EINVAL
        })?;
        let (gen, old) = {
            let mut inner = self.alloc.lock();
            if inner.members.is_empty() {
                return Err(ENODEV);
            }
            if inner.read_only.is_some() {
                return Err(EROFS);
            }
            let m = inner.members.get(i).ok_or(ENODEV)?;
            if m.is_missing() {
                pr_err!(
                    "volume {}: dev-{}/state: member {} is missing; its state changes once it is back\n",
                    self.name(),
                    i,
                    i
                );
                return Err(ENXIO);
            }
            let old = m.state;
            if old == state {
                return Ok(());
            }
            let mut states = member_states(&inner.members);
            *states.get_mut(i).ok_or(ENODEV)? = state;
            // A missing member allocates nothing, whatever its state.
            let missing = inner
                .members
                .iter()
                .filter(|m| m.is_missing() && m.state.allocates())
                .count() as u32;
            let rw = member_state::allocating(states.get(..inner.members.len()).unwrap_or(&[]))
                - missing;
            let o = inner.options;
            let needed = o.metadata_replicas().max(o.data_replicas());
            if rw < needed {
                pr_err!(
                    "volume {}: dev-{}/state {}: {} rw member(s) would be left, and metadata_replicas={} data_replicas={} need {}; lower them first\n",
                    self.name(),
                    i,
                    state.name(),
                    rw,
                    o.metadata_replicas(),
                    o.data_replicas(),
                    needed
                );
                return Err(EINVAL);
            }
            let disk = inner.disk_options;
            let seq = inner.members.iter().map(|m| m.sb.seq).max().unwrap_or(0) + 1;
            for m in inner.members.iter_mut().filter(|m| !m.is_missing()) {
                m.write_superblock(disk, states, seq)?;
            }
            if let Some(m) = inner.members.get_mut(i) {
                m.state = state;
            }
            inner.opts_gen += 1;
            (inner.opts_gen, old)
        };
        pr_info!(
            "volume {}: dev-{} state {} -> {}, opts_gen {}\n",
            self.name(),
            i,
            old.name(),
            state.name(),
            gen
        );
        self.alloc.wake_waiters_for_options();
        self.discarder().kick();
        Ok(())
    }

    /// Stops taking changes after `what` failed with `err` (the first
    /// reason stays); blocked requests fail with `EROFS`.
    pub(crate) fn go_read_only(&self, what: &'static str, err: Error) {
        {
            let mut inner = self.alloc.lock();
            if inner.read_only.is_some() {
                return;
            }
            inner.read_only = Some(ReadOnly { what, err });
            inner.changed(Changed::State);
        }
        self.alloc.tell(Event::ReadOnly {
            errno: err.to_errno(),
        });
        pr_err!(
            "volume {}: {} failed (error {}): read-only now; every change acknowledged before is on disk, unregister and register again to recover\n",
            self.name(),
            what,
            err.to_errno()
        );
        self.alloc.wake_waiters_for_teardown();
    }

    /// Like [`Volume::check_up`], and `EROFS` once read-only: the gate of
    /// every change (alloc, free, insert, flush, option writes).
    pub(crate) fn check_writable(&self) -> Result {
        self.check_up()?;
        if self.alloc.lock().read_only.is_some() {
            return Err(EROFS);
        }
        Ok(())
    }

    /// Fails unless the volume is up (replay done, not going away).
    pub(crate) fn check_up(&self) -> Result {
        let inner = self.alloc.lock();
        if inner.closing || inner.members.is_empty() {
            return Err(ENODEV);
        }
        match inner.replay.phase {
            Phase::Done => Ok(()),
            Phase::Failed => Err(ENODEV),
            Phase::Pending | Phase::Running => Err(EAGAIN),
        }
    }
}
