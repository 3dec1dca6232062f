// SPDX-License-Identifier: GPL-2.0

//! A registered volume: its member devices, its options and `opts_gen`, its
//! sysfs directory, and the register/unregister lifecycle.
//!
//! Options are applied in this order at register: the superblocks (the
//! member with the highest `seq` wins), the module parameters
//! (`stuck_timeout_secs` as the default of `allocator_stuck_timeout`,
//! `recovery_metadata_replicas` if non-zero), then the register string.
//! Register-time options are not written to disk: they get a volume up. A
//! runtime write to `options/<name>` is validated, applied, written to every
//! member's superblock, bumps `opts_gen` and calls
//! [`Volume::options_changed`].

use crate::allocator::Allocator;
use crate::bkcore::{
    buckets::BucketState,
    format::superblock,
    options::{OptId, Options, When, NR_OPTS, OPTIONS},
    uuid::{Hyphenated, Uuid},
    watermark::{self, Watermark},
};
use crate::btree::Tree;
use crate::discard::{DiscardThread, Discarder};
use crate::fmt::Core;
use crate::glue::kthread::Kthread;
use crate::glue::{
    bdev::BlockDevice,
    kobject::{AttrFile, AttrOps, KobjectDir, ShowBuf, StoreCtx, MODE_RO, MODE_RW, MODE_WO},
};
use crate::health::ReadOnly;
use crate::journal::Journal;
use crate::member::Member;
use crate::registry::Registry;
use crate::replay::{Phase, ReplayStatus};
use crate::writer::Writer;
use core::{fmt::Write, ptr::NonNull};
use kernel::{
    new_mutex,
    prelude::*,
    str::CString,
    sync::{lock::mutex::MutexBackend, lock::Guard, Arc, Mutex},
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
}

/// A volume's mutable state, under its lock.
pub(crate) struct Inner {
    /// Empty once the volume is torn down.
    pub(crate) members: KVec<Member>,
    /// The options as stored in the superblocks.
    disk_options: Options,
    /// The options in effect.
    pub(crate) options: Options,
    /// +1 on every accepted option write.
    pub(crate) opts_gen: u64,
    /// Requests, waiters, counters.
    pub(crate) alloc: Allocator,
    /// Set first thing by teardown: requests fail with ENODEV, ioctls too.
    pub(crate) closing: bool,
    /// Register-time recovery, shown in `replay`.
    pub(crate) replay: ReplayStatus,
    /// Set when a metadata write failed: no more changes (`state`).
    pub(crate) read_only: Option<ReadOnly>,
}

impl Inner {
    /// Whether register's replay is over and the volume is up.
    pub(crate) fn up(&self) -> bool {
        self.replay.phase == Phase::Done
    }
}

/// A registered volume.
#[pin_data]
pub(crate) struct Volume {
    registry: Arc<Registry>,
    uuid: Uuid,
    nr_members: u32,
    #[pin]
    inner: Mutex<Inner>,
    /// Serialises btree writers (inserts, checkpoints, replay), held
    /// across a split's allocation; readers need only `tree`.
    #[pin]
    pub(crate) writer: Writer,
    /// The btree. Lock order: `writer`, `tree`, `inner`, `journal`.
    #[pin]
    pub(crate) tree: Mutex<Tree>,
    /// The journal.
    #[pin]
    pub(crate) journal: Mutex<Journal>,
    #[pin]
    sysfs: Mutex<Option<VolumeSysfs>>,
    discarder: Arc<Discarder>,
    #[pin]
    discard_thread: Mutex<Option<Kthread<DiscardThread>>>,
    /// Exclusive-open holder of the member devices; outlives them (`inner`
    /// drops first).
    _holder: KBox<u8>,
}

/// A volume's sysfs directory and files; dropping it removes them.
struct VolumeSysfs {
    _files: KVec<AttrFile<Volume>>,
    _dirs: KVec<KobjectDir>,
}

/// The attribute files of a volume, as ids for [`AttrOps`].
#[derive(Clone, Copy)]
enum Attr {
    Option(OptId),
    OptsGen,
    Replay,
    Unregister,
    Waiters,
    AbortWaiting,
    AllocStuck,
    Counters,
    State,
    Usage(usize),
    Device(usize),
}

impl Attr {
    fn to_id(self) -> usize {
        match self {
            Attr::Option(o) => o.index(),
            Attr::OptsGen => 0x100,
            Attr::Replay => 0x101,
            Attr::Unregister => 0x102,
            Attr::Waiters => 0x103,
            Attr::AbortWaiting => 0x104,
            Attr::AllocStuck => 0x105,
            Attr::Counters => 0x106,
            Attr::State => 0x107,
            Attr::Usage(i) => 0x1000 + i,
            Attr::Device(i) => 0x2000 + i,
        }
    }

    /// The file's lockdep class: one per kind of file (0 is `register`'s).
    fn lock_class(self) -> usize {
        match self {
            Attr::Option(o) => 1 + o.index(),
            Attr::OptsGen => 10,
            Attr::Replay => 11,
            Attr::Unregister => 12,
            Attr::Waiters => 13,
            Attr::AbortWaiting => 14,
            Attr::AllocStuck => 15,
            Attr::Counters => 16,
            Attr::State => 17,
            Attr::Usage(_) => 18,
            Attr::Device(_) => 19,
        }
    }

    fn from_id(id: usize) -> Option<Self> {
        Some(match id {
            0x100 => Attr::OptsGen,
            0x101 => Attr::Replay,
            0x102 => Attr::Unregister,
            0x103 => Attr::Waiters,
            0x104 => Attr::AbortWaiting,
            0x105 => Attr::AllocStuck,
            0x106 => Attr::Counters,
            0x107 => Attr::State,
            0x1000..0x2000 => Attr::Usage(id - 0x1000),
            0x2000..0x3000 => Attr::Device(id - 0x2000),
            _ => Attr::Option(OptId::from_index(id)?),
        })
    }
}

impl Volume {
    /// Opens and validates the members named by `args`, resolves options and
    /// loads the alloc tables. Nothing is visible in sysfs yet.
    pub(crate) fn open(
        registry: Arc<Registry>,
        args: &RegisterArgs<'_>,
        defaults: ModuleDefaults,
    ) -> Result<Arc<Self>> {
        let holder = KBox::new(0u8, GFP_KERNEL)?;
        let holder_ptr = NonNull::from(&*holder);
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
            if let Some(twin) = members.iter().find(|m| m.dev.dev() == dev.dev()) {
                pr_err!("{}: same device as {}\n", path, &*twin.path);
                return Err(EINVAL);
            }
            members.push(Member::open(cpath, dev)?, GFP_KERNEL)?;
        }
        let members = Self::check_members(members)?;
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
        let options = Self::resolve_options(disk_options, args, defaults, first.member_count)?;
        let uuid = first.volume_uuid;
        let nr_members = first.member_count;
        let mut members = members;
        for m in members.iter_mut() {
            m.load_checkpoint()?;
        }
        // Every member's table copy of the volume's newest checkpoint was
        // written before any member's checkpoint, so it is there even on a
        // member whose own checkpoint write was cut short.
        let generation = members
            .iter()
            .filter_map(|m| m.checkpoint())
            .map(|c| c.generation)
            .max()
            .ok_or(EINVAL)?;
        for m in members.iter_mut() {
            m.load_alloc_table(generation)?;
        }
        let journal = Journal::new(uuid, &members)?;
        Arc::pin_init(
            try_pin_init!(Volume {
                registry,
                uuid,
                nr_members,
                inner <- new_mutex!(Inner {
                    members,
                    disk_options,
                    options,
                    opts_gen: 0,
                    alloc: Allocator::new(),
                    closing: false,
                    replay: ReplayStatus::new(),
                    read_only: None,
                }),
                writer <- Writer::new(),
                tree <- new_mutex!(Tree::new()),
                journal <- new_mutex!(journal),
                sysfs <- new_mutex!(None),
                discarder: Discarder::new()?,
                discard_thread <- new_mutex!(None),
                _holder: holder,
            }),
            GFP_KERNEL,
        )
    }

    /// Members must agree on the volume and all be present; returns them
    /// ordered by member index.
    fn check_members(mut members: KVec<Member>) -> Result<KVec<Member>> {
        let first = members[0].sb;
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
            let Some(pos) = members
                .iter()
                .position(|m| m.sb.member_index as usize == index)
            else {
                pr_err!(
                    "volume {}: member {} ({}) is missing: register every member\n",
                    Core(Hyphenated(&first.volume_uuid)),
                    index,
                    Core(Hyphenated(&first.members[index]))
                );
                return Err(EINVAL);
            };
            ordered.push(members.remove(pos).map_err(|_| EINVAL)?, GFP_KERNEL)?;
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
    ) -> Result<Options> {
        let mut options = disk;
        options
            .set_default(OptId::AllocatorStuckTimeout, defaults.stuck_timeout_secs)
            .map_err(|_| EINVAL)?;
        if defaults.recovery_metadata_replicas != 0 {
            options
                .set(OptId::MetadataReplicas, defaults.recovery_metadata_replicas)
                .map_err(|_| EINVAL)?;
        }
        if let Some(list) = args.options {
            options.apply_list(list, When::REGISTER).map_err(|e| {
                pr_err!("register: {}\n", Core(e));
                EINVAL
            })?;
        }
        options.check_members(members).map_err(|e| {
            pr_err!("register: {}\n", Core(e));
            EINVAL
        })?;
        Ok(options)
    }

    /// The volume's uuid.
    pub(crate) fn uuid(&self) -> &Uuid {
        &self.uuid
    }

    /// Creates the volume's sysfs directory under `root`.
    pub(crate) fn add_sysfs(self: &Arc<Self>, root: &KobjectDir) -> Result {
        let name = CString::try_from_fmt(fmt!("{}", Core(Hyphenated(&self.uuid))))?;
        let dir = root.new_child(&name)?;
        let mut files = KVec::new();
        let mut dirs = KVec::new();
        let file = |d: &KobjectDir, name: &str, mode, attr: Attr| {
            d.add_file(name, mode, self.clone(), attr.to_id(), attr.lock_class())
        };
        files.push(file(&dir, "opts_gen", MODE_RO, Attr::OptsGen)?, GFP_KERNEL)?;
        files.push(file(&dir, "replay", MODE_RO, Attr::Replay)?, GFP_KERNEL)?;
        files.push(
            file(&dir, "unregister", MODE_WO, Attr::Unregister)?,
            GFP_KERNEL,
        )?;
        files.push(file(&dir, "waiters", MODE_RO, Attr::Waiters)?, GFP_KERNEL)?;
        files.push(
            file(&dir, "abort_waiting", MODE_WO, Attr::AbortWaiting)?,
            GFP_KERNEL,
        )?;
        files.push(
            file(&dir, "alloc_stuck", MODE_RO, Attr::AllocStuck)?,
            GFP_KERNEL,
        )?;
        files.push(file(&dir, "counters", MODE_RO, Attr::Counters)?, GFP_KERNEL)?;
        files.push(file(&dir, "state", MODE_RO, Attr::State)?, GFP_KERNEL)?;
        let opts = dir.new_child(c"options")?;
        for desc in OPTIONS.iter() {
            let mode = if desc.settable.intersects(When::RUNTIME) {
                MODE_RW
            } else {
                MODE_RO
            };
            files.push(
                file(&opts, desc.name, mode, Attr::Option(desc.id))?,
                GFP_KERNEL,
            )?;
        }
        dirs.push(opts, GFP_KERNEL)?;
        for i in 0..self.nr_members as usize {
            let dname = CString::try_from_fmt(fmt!("dev-{i}"))?;
            let d = dir.new_child(&dname)?;
            files.push(file(&d, "usage", MODE_RO, Attr::Usage(i))?, GFP_KERNEL)?;
            files.push(file(&d, "device", MODE_RO, Attr::Device(i))?, GFP_KERNEL)?;
            dirs.push(d, GFP_KERNEL)?;
        }
        dirs.push(dir, GFP_KERNEL)?;
        *self.sysfs.lock() = Some(VolumeSysfs {
            _files: files,
            _dirs: dirs,
        });
        Ok(())
    }

    /// Starts the volume's discard thread, unless it runs already or the
    /// volume is going away.
    pub(crate) fn start_discard(self: &Arc<Self>) -> Result {
        let mut slot = self.discard_thread.lock();
        if slot.is_some() || self.inner.lock().closing {
            return Ok(());
        }
        // Task names hold 15 characters: "bkdiscard/" and the uuid's start.
        let u = &self.uuid;
        let name = CString::try_from_fmt(fmt!("bkdiscard/{:02x}{:02x}", u[0], u[1]))?;
        *slot = Some(Kthread::spawn(&name, DiscardThread::new(self.clone())?)?);
        Ok(())
    }

    /// The discard thread's wake-up.
    pub(crate) fn discarder(&self) -> &Discarder {
        &self.discarder
    }

    /// Fails waiters, stops the discard thread, checkpoints (if the volume
    /// was up), removes the sysfs directory and releases the member
    /// devices. Safe to call more than once.
    pub(crate) fn teardown(&self) {
        self.inner.lock().closing = true;
        // Waiters see `closing` and fail with ENODEV; a blocked insert or
        // replay lets go of the writer, and those waiting for it leave.
        self.wake_waiters_for_teardown();
        self.writer.close();
        // Stopping waits for a batch in flight; take it out of the mutex so
        // a kick meanwhile does not wait on us.
        let thread = self.discard_thread.lock().take();
        self.discarder.kick();
        drop(thread);
        {
            // After any writer (a replay's own checkpoint included) is done;
            // those waiting to write leave.
            let _w = self.writer.enter_always();
            let up = {
                let inner = self.inner.lock();
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
        // `inner`: drop the files with no lock held.
        let sysfs = self.sysfs.lock().take();
        drop(sysfs);
        self.journal.lock().close();
        let members = core::mem::take(&mut self.inner.lock().members);
        self.wake_waiters_for_teardown();
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
        self.wake_waiters_for_options();
        self.discarder.kick();
    }

    /// The volume's state, locked.
    pub(crate) fn lock_inner(&self) -> Guard<'_, Inner, MutexBackend> {
        self.inner.lock()
    }

    /// The volume's uuid, for messages.
    pub(crate) fn name(&self) -> Core<Hyphenated<'_>> {
        Core(Hyphenated(&self.uuid))
    }

    /// Validates, applies and persists a runtime write of option `id`.
    fn store_option(&self, id: OptId, input: &str) -> Result {
        let desc = id.desc();
        let value = desc.parse(input.trim()).map_err(|e| {
            pr_err!("volume {}: {}\n", Core(Hyphenated(&self.uuid)), Core(e));
            EINVAL
        })?;
        let gen = {
            let mut inner = self.inner.lock();
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
                let seq = inner.members.iter().map(|m| m.sb.seq).max().unwrap_or(0) + 1;
                for m in inner.members.iter_mut() {
                    m.write_superblock(disk, seq)?;
                }
            }
            inner.disk_options = disk;
            inner.options = options;
            inner.opts_gen += 1;
            inner.opts_gen
        };
        self.options_changed(gen, id);
        Ok(())
    }

    fn show_usage(&self, i: usize, out: &mut ShowBuf<'_>) -> Result {
        let inner = self.inner.lock();
        let m = inner.members.get(i).ok_or(ENODEV)?;
        writeln!(out, "bucket_size {}", m.sb.bucket_size)?;
        writeln!(out, "buckets {}", m.sb.bucket_count)?;
        writeln!(out, "free {}", m.count(BucketState::Free))?;
        writeln!(out, "open {}", m.open)?;
        for state in [
            BucketState::NeedDiscard,
            BucketState::Sb,
            BucketState::Btree,
            BucketState::User,
        ] {
            writeln!(out, "{} {}", state.name(), m.count(state))?;
        }
        let reserves = watermark::reserves(m.sb.btree_reserve, m.sb.bucket_count);
        for w in [Watermark::Normal, Watermark::Btree, Watermark::Reclaim] {
            writeln!(out, "reserve_{} {}", w.name(), reserves[w.index()])?;
        }
        Ok(())
    }
}

impl AttrOps for Volume {
    fn show(&self, id: usize, out: &mut ShowBuf<'_>) -> Result {
        match Attr::from_id(id).ok_or(EINVAL)? {
            Attr::Option(o) => {
                let v = self.inner.lock().options.get(o);
                writeln!(out, "{}", o.desc().display(v))?;
            }
            Attr::OptsGen => writeln!(out, "{}", self.inner.lock().opts_gen)?,
            Attr::Replay => writeln!(out, "{}", self.inner.lock().replay)?,
            Attr::Usage(i) => self.show_usage(i, out)?,
            Attr::Device(i) => {
                let inner = self.inner.lock();
                let m = inner.members.get(i).ok_or(ENODEV)?;
                writeln!(out, "{}", m.path.to_str().map_err(|_| EINVAL)?)?;
            }
            Attr::Waiters => self.show_waiters(out)?,
            Attr::AllocStuck => self.show_stuck(out)?,
            Attr::Counters => self.show_counters(out)?,
            Attr::State => match self.inner.lock().read_only {
                Some(ro) => writeln!(out, "{ro}")?,
                None => writeln!(out, "rw")?,
            },
            Attr::Unregister | Attr::AbortWaiting => return Err(EINVAL),
        }
        Ok(())
    }

    fn store(this: &Arc<Self>, id: usize, input: &[u8], ctx: &StoreCtx) -> Result {
        let input = core::str::from_utf8(input).map_err(|_| EINVAL)?;
        match Attr::from_id(id).ok_or(EINVAL)? {
            Attr::Option(o) => {
                // Discards asked for during a replay registered without
                // them (the thread starts after replay then): the thread
                // starts first, so a failure to start it changes nothing;
                // it does nothing the options do not allow.
                let on = matches!(o, OptId::ReplayDiscardPriority | OptId::Discard)
                    && o.desc().parse(input.trim()).is_ok_and(|v| v != 0);
                if on {
                    this.start_discard()?;
                }
                this.store_option(o, input)
            }
            Attr::AbortWaiting => this.abort_waiting(input.trim()),
            Attr::Unregister => {
                if input.trim() != "1" {
                    return Err(EINVAL);
                }
                ctx.allow_self_removal()?;
                this.registry.unregister(this)
            }
            _ => Err(EINVAL),
        }
    }
}

/// Checks at compile time that option ids fit below the other attribute ids,
/// and option lock classes below the others'.
const _: () = assert!(NR_OPTS < 0x100 && NR_OPTS < 10);
