// SPDX-License-Identifier: GPL-2.0

//! Every sysfs file of bkalloc: `/sys/fs/bkalloc/register`, and each
//! volume's directory (`opts_gen`, `replay`, `unregister`, `waiters`,
//! `abort_waiting`, `alloc_stuck`, `counters`, `state`, `rereplicate`,
//! `options/<name>`, `dev-<i>/usage` and `dev-<i>/device`): the attribute
//! table, show/store dispatch and the text of each file. The parts they
//! show write their text into a [`core::fmt::Write`]; only this file knows
//! the kobject glue. `waiters`, `alloc_stuck`, `replay`, `state` and
//! `rereplicate` wake their `poll()`ers when they change (a [`Watcher`] in
//! the allocator's pool). Each volume also gets a debugfs directory,
//! `/sys/kernel/debug/bkalloc/<uuid>`, for the micro-benchmarks of
//! `bench.rs`.

use crate::bench;
use crate::bkcore::{
    buckets::BucketState,
    options::{OptId, When, NR_OPTS, OPTIONS},
    uuid::Hyphenated,
    watermark::{self, Watermark},
};
use crate::fmt::Core;
use crate::glue::{
    capability,
    kobject::{
        AttrFile, AttrOps, FileNotifier, KobjectDir, ShowBuf, StoreCtx, Uevent, MODE_RO, MODE_RW,
        MODE_WO, UEVENT_ENV_MAX,
    },
};
use crate::health::{Changed, Event, Watcher};
use crate::registry::Registry;
use crate::volume::Volume;
use core::fmt::Write;
use kernel::{debugfs, prelude::*, str::CString, sync::Arc};

/// `/sys/fs/bkalloc` and its `register` file; dropping it removes them
/// (the file first: its removal waits for a register write in progress).
pub(crate) struct Sysfs {
    _register: AttrFile<Root>,
    _root: Arc<Root>,
}

/// What the `register` file writes to.
struct Root {
    dir: KobjectDir,
    /// `/sys/kernel/debug/bkalloc`.
    debug: debugfs::Dir,
    registry: Arc<Registry>,
}

impl Sysfs {
    /// Creates `/sys/fs/bkalloc/register` for `registry`.
    pub(crate) fn new(registry: Arc<Registry>) -> Result<Self> {
        let dir = KobjectDir::new_kset_in_fs(c"bkalloc")?;
        let debug = debugfs::Dir::new(c"bkalloc");
        let root = Arc::new(
            Root {
                dir,
                debug,
                registry,
            },
            GFP_KERNEL,
        )?;
        let register = root.dir.add_file("register", MODE_WO, root.clone(), 0, 0)?;
        Ok(Self {
            _register: register,
            _root: root,
        })
    }
}

impl AttrOps for Root {
    fn show(&self, _id: usize, _out: &mut ShowBuf<'_>) -> Result {
        Err(EINVAL)
    }

    fn store(this: &Arc<Self>, _id: usize, input: &[u8], _ctx: &StoreCtx) -> Result {
        if !capability::sys_admin() {
            return Err(EPERM);
        }
        let input = core::str::from_utf8(input).map_err(|_| EINVAL)?;
        // The directory exists before replay, so `replay`, `waiters` and
        // `abort_waiting` can be used while it runs.
        this.registry
            .register(input, |volume| add_volume(this, volume))
    }
}

/// A volume's sysfs directory and files; dropping it removes them.
struct VolumeSysfs {
    _files: KVec<AttrFile<VolumeFiles>>,
    _dirs: KVec<KobjectDir>,
    /// Its debugfs file (and so directory).
    _fastpath: Pin<KBox<debugfs::File<bench::FastPath>>>,
    /// Last: the files go before this reference does.
    volume: Arc<Volume>,
}

impl Drop for VolumeSysfs {
    fn drop(&mut self) {
        // Nobody is told of changes to files that are going away.
        drop(self.volume.lock_pool().watcher.take());
    }
}

/// Wakes the `poll()`ers of the status files that changed, and sends a
/// volume's events as uevents of its directory.
struct StatusWatcher {
    waiters: FileNotifier,
    alloc_stuck: FileNotifier,
    replay: FileNotifier,
    state: FileNotifier,
    rereplicate: FileNotifier,
    /// The volume's directory, a member of the `bkalloc` kset.
    dir: KobjectDir,
    /// `BKALLOC_UUID=<uuid>`.
    uuid: CString,
    /// `BKALLOC_DEVICE=<path>` of each member.
    devices: KVec<CString>,
}

impl StatusWatcher {
    /// The uevent of `what`: its name, the volume, and where it applies.
    fn send(&self, what: Event) -> Result {
        let name = CString::try_from_fmt(fmt!("BKALLOC_EVENT={}", what.name()))?;
        let mut extra = KVec::<CString>::new();
        let mut device = None;
        let mut add = |f: core::fmt::Arguments<'_>| -> Result {
            extra.push(CString::try_from_fmt(f)?, GFP_KERNEL)?;
            Ok(())
        };
        match what {
            Event::Stuck { waiter } | Event::Unstuck { waiter } => {
                add(fmt!("BKALLOC_WAITER={waiter}"))?;
            }
            Event::Deadline { waiter, policy } => {
                add(fmt!("BKALLOC_WAITER={waiter}"))?;
                add(fmt!("BKALLOC_POLICY={}", policy.name()))?;
            }
            Event::Degraded {
                waiter,
                replicas,
                wanted,
            } => {
                add(fmt!("BKALLOC_WAITER={waiter}"))?;
                add(fmt!("BKALLOC_REPLICAS={replicas}/{wanted}"))?;
            }
            Event::ReadOnly { errno } | Event::ReplayFailed { errno } => {
                add(fmt!("BKALLOC_ERROR={errno}"))?;
            }
            Event::ReplayDone | Event::Replicated => {}
            Event::DiscardError { dev, errno } => {
                add(fmt!("BKALLOC_DEV={dev}"))?;
                add(fmt!("BKALLOC_ERROR={errno}"))?;
                device = self.devices.get(dev as usize);
            }
        }
        let mut env: [&CStr; UEVENT_ENV_MAX] = [c""; UEVENT_ENV_MAX];
        let mut n = 0;
        let fixed = [Some(&name), Some(&self.uuid), device];
        // `Init::chain` is in scope too: the iterator's, named.
        for e in Iterator::chain(fixed.into_iter().flatten(), extra.iter()) {
            *env.get_mut(n).ok_or(EINVAL)? = &**e;
            n += 1;
        }
        self.dir.uevent(Uevent::Change, &env[..n])
    }
}

impl Watcher for StatusWatcher {
    fn changed(&self, what: Changed) {
        match what {
            Changed::Waiters => self.waiters.notify(),
            Changed::AllocStuck => self.alloc_stuck.notify(),
            Changed::Replay => self.replay.notify(),
            Changed::State => self.state.notify(),
            Changed::Rereplicate => self.rereplicate.notify(),
        }
    }

    fn event(&self, what: Event) {
        if let Err(e) = self.send(what) {
            pr_warn!(
                "bkalloc: {}: uevent {} not sent (error {})\n",
                &*self.uuid,
                what.name(),
                e.to_errno()
            );
        }
    }
}

/// What a volume's files show and write to.
struct VolumeFiles {
    registry: Arc<Registry>,
    volume: Arc<Volume>,
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
    Rereplicate,
    Usage(usize),
    Device(usize),
    MemberState(usize),
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
            Attr::Rereplicate => 0x108,
            Attr::Usage(i) => 0x1000 + i,
            Attr::Device(i) => 0x2000 + i,
            Attr::MemberState(i) => 0x3000 + i,
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
            Attr::MemberState(_) => 20,
            Attr::Rereplicate => 21,
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
            0x108 => Attr::Rereplicate,
            0x1000..0x2000 => Attr::Usage(id - 0x1000),
            0x2000..0x3000 => Attr::Device(id - 0x2000),
            0x3000..0x4000 => Attr::MemberState(id - 0x3000),
            _ => Attr::Option(OptId::from_index(id)?),
        })
    }
}

/// Creates `volume`'s directories under `root` and hands them to the
/// volume, which keeps them until teardown.
fn add_volume(root: &Root, volume: &Arc<Volume>) -> Result {
    let registry = &root.registry;
    let name = CString::try_from_fmt(fmt!("{}", Core(Hyphenated(volume.uuid()))))?;
    let fastpath = bench::publish(&root.debug.subdir(&name), volume)?;
    let target = Arc::new(
        VolumeFiles {
            registry: registry.clone(),
            volume: volume.clone(),
        },
        GFP_KERNEL,
    )?;
    let dir = root.dir.new_child(&name)?;
    let mut files = KVec::new();
    let mut dirs = KVec::new();
    let file = |d: &KobjectDir, name: &str, mode, attr: Attr| {
        d.add_file(name, mode, target.clone(), attr.to_id(), attr.lock_class())
    };
    for (name, mode, attr) in [
        ("opts_gen", MODE_RO, Attr::OptsGen),
        ("replay", MODE_RO, Attr::Replay),
        ("unregister", MODE_WO, Attr::Unregister),
        ("waiters", MODE_RO, Attr::Waiters),
        ("abort_waiting", MODE_WO, Attr::AbortWaiting),
        ("alloc_stuck", MODE_RO, Attr::AllocStuck),
        ("counters", MODE_RO, Attr::Counters),
        ("state", MODE_RO, Attr::State),
        ("rereplicate", MODE_RO, Attr::Rereplicate),
    ] {
        files.push(file(&dir, name, mode, attr)?, GFP_KERNEL)?;
    }
    let mut devices = KVec::new();
    for i in 0..volume.nr_members() as usize {
        let inner = volume.lock_pool();
        let m = inner.members.get(i).ok_or(ENODEV)?;
        let path = m.path.to_str().map_err(|_| EINVAL)?;
        let env = CString::try_from_fmt(fmt!("BKALLOC_DEVICE={path}"))?;
        drop(inner);
        devices.push(env, GFP_KERNEL)?;
    }
    // The first nine files, in the order above.
    let watcher: Arc<dyn Watcher> = Arc::new(
        StatusWatcher {
            waiters: files[3].notifier()?,
            alloc_stuck: files[5].notifier()?,
            replay: files[1].notifier()?,
            state: files[7].notifier()?,
            rereplicate: files[8].notifier()?,
            dir: dir.clone(),
            uuid: CString::try_from_fmt(fmt!("BKALLOC_UUID={}", &*name))?,
            devices,
        },
        GFP_KERNEL,
    )?;
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
    for i in 0..volume.nr_members() as usize {
        let dname = CString::try_from_fmt(fmt!("dev-{i}"))?;
        let d = dir.new_child(&dname)?;
        files.push(file(&d, "usage", MODE_RO, Attr::Usage(i))?, GFP_KERNEL)?;
        files.push(file(&d, "device", MODE_RO, Attr::Device(i))?, GFP_KERNEL)?;
        files.push(
            file(&d, "state", MODE_RW, Attr::MemberState(i))?,
            GFP_KERNEL,
        )?;
        dirs.push(d, GFP_KERNEL)?;
    }
    let published_dir = dir.clone();
    dirs.push(dir, GFP_KERNEL)?;
    let published = KBox::new(
        VolumeSysfs {
            _files: files,
            _dirs: dirs,
            _fastpath: fastpath,
            volume: volume.clone(),
        },
        GFP_KERNEL,
    )?;
    volume.lock_pool().watcher = Some(watcher);
    // udev learns of the volume once its files are there.
    if let Err(e) = published_dir.uevent(Uevent::Add, &[]) {
        pr_warn!(
            "bkalloc: {}: uevent add not sent (error {})\n",
            &*name,
            e.to_errno()
        );
    }
    volume.publish(published)
}

/// `dev-<i>/usage`: bucket counts by state and the reserves.
fn show_usage(volume: &Volume, i: usize, out: &mut impl Write) -> Result {
    let inner = volume.lock_pool();
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

/// `counters`: the btree's and the journal's, then the allocator's.
fn show_counters(volume: &Volume, out: &mut impl Write) -> Result {
    // Lock order: the tree and the journal are read before the pool.
    let (keys, nodes, generation, tree_bytes, cached, misses, evictions) = {
        let t = volume.tree.lock();
        let g = t.checkpoint.map_or(0, |c| c.generation);
        (
            t.len(),
            t.nodes.len() as u64,
            g,
            t.memory_bytes(),
            t.cached_bytes(),
            t.misses,
            t.evictions,
        )
    };
    let (jseq, pending, written) = {
        let j = volume.journal.lock();
        (j.last_seq(), j.pending() as u64, j.entries_written())
    };
    for (name, v) in [
        ("btree_keys", keys),
        ("btree_nodes", nodes),
        ("checkpoint_generation", generation),
        ("journal_seq", jseq),
        ("journal_pending_entries", pending),
        ("journal_entries_written", written),
        ("memory_btree_bytes", tree_bytes),
        ("btree_cache_bytes", cached),
        ("btree_cache_misses", misses),
        ("btree_cache_evictions", evictions),
    ] {
        writeln!(out, "{name} {v}")?;
    }
    volume.allocator().write_counters(out)
}

impl AttrOps for VolumeFiles {
    fn show(&self, id: usize, out: &mut ShowBuf<'_>) -> Result {
        let volume = &*self.volume;
        match Attr::from_id(id).ok_or(EINVAL)? {
            Attr::Option(o) => {
                let v = volume.lock_pool().options.get(o);
                writeln!(out, "{}", o.desc().display(v))?;
            }
            Attr::OptsGen => writeln!(out, "{}", volume.lock_pool().opts_gen)?,
            Attr::Replay => writeln!(out, "{}", volume.lock_pool().replay)?,
            Attr::Usage(i) => show_usage(volume, i, out)?,
            Attr::Device(i) => {
                let inner = volume.lock_pool();
                let m = inner.members.get(i).ok_or(ENODEV)?;
                writeln!(out, "{}", m.path.to_str().map_err(|_| EINVAL)?)?;
            }
            Attr::MemberState(i) => {
                let inner = volume.lock_pool();
                let m = inner.members.get(i).ok_or(ENODEV)?;
                let name = if m.is_missing() {
                    "missing"
                } else {
                    m.state.name()
                };
                writeln!(out, "{name}")?;
            }
            Attr::Waiters => {
                let room = out.room();
                volume.allocator().write_waiters(out, room)?;
            }
            Attr::AllocStuck => volume.allocator().write_stuck(out)?,
            Attr::Counters => show_counters(volume, out)?,
            Attr::Rereplicate => writeln!(out, "{}", volume.lock_pool().rereplicate)?,
            Attr::State => match volume.lock_pool().read_only {
                Some(ro) => writeln!(out, "{ro}")?,
                None => writeln!(out, "rw")?,
            },
            Attr::Unregister | Attr::AbortWaiting => return Err(EINVAL),
        }
        Ok(())
    }

    fn store(this: &Arc<Self>, id: usize, input: &[u8], ctx: &StoreCtx) -> Result {
        let volume = &this.volume;
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
                    volume.start_discard()?;
                }
                volume.store_option(o, input)
            }
            Attr::AbortWaiting => volume.abort_waiting(input.trim()),
            Attr::MemberState(i) => volume.store_member_state(i, input),
            Attr::Unregister => {
                if input.trim() != "1" {
                    return Err(EINVAL);
                }
                ctx.allow_self_removal()?;
                this.registry.unregister(volume)
            }
            _ => Err(EINVAL),
        }
    }
}

/// Checks at compile time that option ids fit below the other attribute ids,
/// and option lock classes below the others'.
const _: () = assert!(NR_OPTS < 0x100 && NR_OPTS < 10);
