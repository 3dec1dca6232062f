// SPDX-License-Identifier: GPL-2.0

//! sysfs directories and attribute files.
//!
//! The kernel crate has no kobject abstraction in 7.3, so this wraps
//! `kobject_create_and_add()`, `kset_create_and_add()`,
//! `sysfs_create_file_ns()`, `kobject_uevent_env()` and friends. An
//! attribute file dispatches `show`/`store` to an [`AttrOps`] implementation
//! with an attribute id, so one Rust object serves a whole directory.

use core::{cell::Cell, fmt, ptr::NonNull};
use kernel::{
    bindings, container_of,
    ffi::c_char,
    prelude::*,
    str::CString,
    sync::{Arc, LockClassKey},
    types::Opaque,
    ModuleMetadata,
};

/// Mode of a read-only attribute file.
pub(crate) const MODE_RO: u16 = 0o444;
/// Mode of a read-write attribute file (writes need root).
pub(crate) const MODE_RW: u16 = 0o644;
/// Mode of a write-only attribute file (root only).
pub(crate) const MODE_WO: u16 = 0o200;

/// A directory in sysfs, removed when the value is dropped.
///
/// # Invariants
///
/// `kobj` points to a live kobject on which this value owns one reference.
/// `kset` is null, or the kset whose embedded kobject `kobj` is.
pub(crate) struct KobjectDir {
    kobj: NonNull<bindings::kobject>,
    kset: *mut bindings::kset,
}

/// The type of the kobjects [`KobjectDir::new_child`] puts in a kset: the
/// attribute operations of `kobject_create()`'s own type, and a release
/// that frees the box they were made in.
struct DirType(bindings::kobj_type);

// SAFETY: The type is never written after initialisation; the kobject core
// only reads it.
unsafe impl Sync for DirType {}

static KSET_CHILD_TYPE: DirType = DirType(bindings::kobj_type {
    release: Some(release_kset_child),
    sysfs_ops: &raw const bindings::kobj_sysfs_ops,
    default_groups: core::ptr::null_mut(),
    child_ns_type: None,
    namespace: None,
    get_ownership: None,
});

/// # Safety
///
/// Called by the kobject core once, on the last reference of a kobject made
/// by [`KobjectDir::new_child`] in a kset.
unsafe extern "C" fn release_kset_child(kobj: *mut bindings::kobject) {
    // SAFETY: Such a kobject is the content of a `KBox` turned into a raw
    // pointer (`KobjectDir::create_in_kset`); nobody uses it any more.
    drop(unsafe { KBox::from_raw(kobj.cast::<Opaque<bindings::kobject>>()) });
}

/// A kobject action of [`KobjectDir::uevent`].
#[derive(Clone, Copy)]
pub(crate) enum Uevent {
    /// The directory appeared (with its files).
    Add,
    /// Something it reports changed.
    Change,
}

// SAFETY: A kobject is reference counted and its sysfs operations take their
// own locks, so it may be used and released from any thread.
unsafe impl Send for KobjectDir {}

// SAFETY: The only operations through a shared reference create children or
// attributes, or send uevents, which the kobject core serialises itself.
unsafe impl Sync for KobjectDir {}

impl KobjectDir {
    /// Creates `/sys/fs/<name>` as a kset: the directories made in it with
    /// [`KobjectDir::new_child`] are its members, so they can send uevents
    /// (`SUBSYSTEM=<name>`).
    pub(crate) fn new_kset_in_fs(name: &CStr) -> Result<Self> {
        // SAFETY: `fs_kobj` is set once during boot, before modules load, and
        // never changes afterwards.
        let parent = unsafe { bindings::fs_kobj };
        // SAFETY: `name` is NUL-terminated and copied; `fs_kobj` is a live
        // kobject for as long as the kernel runs; no uevent filter.
        let kset =
            unsafe { bindings::kset_create_and_add(name.as_char_ptr(), core::ptr::null(), parent) };
        let kset = NonNull::new(kset).ok_or(ENOMEM)?;
        // INVARIANT: The kset comes with one reference on its kobject, which
        // we own; dropping it (`kobject_put`) is what `kset_unregister()`
        // does after removing the directory, which the last put does too.
        Ok(Self {
            // SAFETY: `kset` is live; only the field's address is taken.
            kobj: unsafe { NonNull::new_unchecked(&raw mut (*kset.as_ptr()).kobj) },
            kset: kset.as_ptr(),
        })
    }

    /// Creates the subdirectory `<self>/<name>`; in a kset, as a member.
    pub(crate) fn new_child(&self, name: &CStr) -> Result<Self> {
        if !self.kset.is_null() {
            // SAFETY: `self.kset` is a live kset (type invariant).
            return unsafe { Self::create_in_kset(name, self.kset) };
        }
        // SAFETY: `self.kobj` is live (type invariant); the child holds its
        // own reference to it.
        unsafe { Self::create(name, self.kobj.as_ptr()) }
    }

    /// Creates `<kset>/<name>`, a member of `kset`.
    ///
    /// # Safety
    ///
    /// `kset` must be a live kset.
    unsafe fn create_in_kset(name: &CStr, kset: *mut bindings::kset) -> Result<Self> {
        let node = KBox::new(Opaque::<bindings::kobject>::zeroed(), GFP_KERNEL)?;
        let kobj = KBox::into_raw(node).cast::<bindings::kobject>();
        // SAFETY: `kobj` is a zeroed kobject of our own; the type is static.
        // From here its last `kobject_put()` frees it (`release_kset_child`).
        unsafe { bindings::kobject_init(kobj, &KSET_CHILD_TYPE.0) };
        // SAFETY: `kobj` is initialised and not yet added: its kset may be
        // set. `kset` is live by the safety requirement, and its kobject
        // becomes the parent (which takes a reference on it). The format
        // is "%s" with one NUL-terminated string, which is copied.
        let ret = unsafe {
            (*kobj).kset = kset;
            bindings::kobject_add(
                kobj,
                core::ptr::null_mut(),
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        if ret != 0 {
            // SAFETY: Our one reference; a failed add still needs the put.
            unsafe { bindings::kobject_put(kobj) };
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: `kobject_init` gave us the one reference.
        Ok(Self {
            // SAFETY: `kobj` came from a `KBox`, so it is not null.
            kobj: unsafe { NonNull::new_unchecked(kobj) },
            kset: core::ptr::null_mut(),
        })
    }

    /// Creates the directory `<parent>/<name>`.
    ///
    /// # Safety
    ///
    /// `parent` must be null or a live kobject.
    unsafe fn create(name: &CStr, parent: *mut bindings::kobject) -> Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string that the kobject
        // core copies; `parent` is as the caller promises.
        let kobj = unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), parent) };
        // INVARIANT: A non-null result carries one reference that we own.
        let kobj = NonNull::new(kobj).ok_or(ENOMEM)?;
        Ok(Self {
            kobj,
            kset: core::ptr::null_mut(),
        })
    }

    /// Sends a uevent `action` for this directory, with `env` (`KEY=value`
    /// strings, at most [`UEVENT_ENV_MAX`]) added to what the kobject core
    /// puts in (`ACTION`, `DEVPATH`, `SUBSYSTEM`). Only members of a kset
    /// have a subsystem to send under (`EINVAL` otherwise). May sleep.
    pub(crate) fn uevent(&self, action: Uevent, env: &[&CStr]) -> Result {
        let mut envp = [core::ptr::null_mut::<c_char>(); UEVENT_ENV_MAX + 1];
        if env.len() > UEVENT_ENV_MAX {
            return Err(EINVAL);
        }
        for (p, e) in envp.iter_mut().zip(env) {
            *p = e.as_char_ptr().cast_mut();
        }
        let action = match action {
            Uevent::Add => bindings::kobject_action_KOBJ_ADD,
            Uevent::Change => bindings::kobject_action_KOBJ_CHANGE,
        };
        // SAFETY: `self.kobj` is live (type invariant); `envp` is a
        // NULL-terminated array of NUL-terminated strings that the call
        // only reads (it copies them into the event).
        kernel::error::to_result(unsafe {
            bindings::kobject_uevent_env(self.kobj.as_ptr(), action, envp.as_mut_ptr())
        })
    }

    /// Creates the attribute file `<self>/<name>` whose reads and writes call
    /// `ops` with `id`. The file is removed when the returned value drops.
    ///
    /// `class` (below [`LOCK_CLASSES`]) is the file's lockdep class: give
    /// each kind of file its own, so that removing files of one kind from a
    /// callback of another (a failed register removing the volume's files
    /// from the `register` write) is not taken for recursive locking.
    pub(crate) fn add_file<T: AttrOps>(
        &self,
        name: &str,
        mode: u16,
        ops: Arc<T>,
        id: usize,
        class: usize,
    ) -> Result<AttrFile<T>> {
        let key = LOCK_CLASS_KEYS.get(class).ok_or(EINVAL)?;
        // sysfs keeps using the name until the file is removed: own a copy.
        let name = CString::try_from_fmt(fmt!("{name}"))?;
        let mut kattr = bindings::kobj_attribute::default();
        kattr.attr.name = name.as_char_ptr();
        kattr.attr.mode = mode;
        #[cfg(CONFIG_DEBUG_LOCK_ALLOC)]
        {
            // Static: a file may be removed from its own callback (see
            // `StoreCtx`), which still holds its class when it returns.
            kattr.attr.key = key.as_ptr();
        }
        #[cfg(not(CONFIG_DEBUG_LOCK_ALLOC))]
        let _ = key;
        kattr.__bindgen_anon_1.show = Some(show_callback::<T>);
        kattr.__bindgen_anon_2.store = Some(store_callback::<T>);
        let node = KBox::new(
            AttrNode {
                kattr: Opaque::new(kattr),
                ops,
                id,
                _name: name,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `self.kobj` is live by the type invariant; `node.kattr` has
        // a stable heap address that outlives the file (`AttrFile::drop`
        // removes the file before the node is freed).
        let ret = unsafe {
            bindings::sysfs_create_file_ns(
                self.kobj.as_ptr(),
                &raw mut (*node.kattr.get()).attr,
                core::ptr::null(),
            )
        };
        kernel::error::to_result(ret)?;
        // SAFETY: `self.kobj` is live; the file keeps its own reference so it
        // may outlive this directory handle.
        unsafe { bindings::kobject_get(self.kobj.as_ptr()) };
        // INVARIANT: The file was created and we took a kobject reference.
        Ok(AttrFile {
            kobj: self.kobj,
            node,
        })
    }
}

impl Clone for KobjectDir {
    /// Another handle on the same directory (one more reference).
    fn clone(&self) -> Self {
        // SAFETY: `self.kobj` is live (type invariant).
        unsafe { bindings::kobject_get(self.kobj.as_ptr()) };
        // INVARIANT: We took the reference the new value owns.
        Self {
            kobj: self.kobj,
            kset: self.kset,
        }
    }
}

impl Drop for KobjectDir {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one reference; dropping the
        // last one removes the directory and frees the kobject.
        unsafe { bindings::kobject_put(self.kobj.as_ptr()) };
    }
}

/// The most `KEY=value` strings [`KobjectDir::uevent`] adds.
pub(crate) const UEVENT_ENV_MAX: usize = 6;

/// Reads and writes of a directory's attribute files.
pub(crate) trait AttrOps: Send + Sync + 'static {
    /// Formats attribute `id` into `out`.
    fn show(&self, id: usize, out: &mut ShowBuf<'_>) -> Result;

    /// Applies a write of `input` to attribute `id` of `this`. An error
    /// leaves the state unchanged and is returned to the writer.
    fn store(this: &Arc<Self>, id: usize, input: &[u8], ctx: &StoreCtx) -> Result;
}

/// Memory behind one attribute file.
#[repr(C)]
struct AttrNode<T: AttrOps> {
    kattr: Opaque<bindings::kobj_attribute>,
    ops: Arc<T>,
    id: usize,
    /// Heap storage behind `kattr.attr.name`.
    _name: CString,
}

/// Lockdep classes of attribute files (see [`KobjectDir::add_file`]).
pub(crate) const LOCK_CLASSES: usize = 32;

static LOCK_CLASS_KEYS: [LockClassKey; LOCK_CLASSES] = [const {
    // SAFETY: The keys live in static memory, never move and are never
    // dropped.
    unsafe { LockClassKey::new_static() }
}; LOCK_CLASSES];

/// An attribute file, removed from sysfs when dropped.
///
/// # Invariants
///
/// The file for `node.kattr` exists in the directory of `kobj`, on which
/// this value owns one reference.
pub(crate) struct AttrFile<T: AttrOps> {
    kobj: NonNull<bindings::kobject>,
    node: KBox<AttrNode<T>>,
}

// SAFETY: See `KobjectDir`; the node is only read by sysfs callbacks, and
// `T: Send + Sync`.
unsafe impl<T: AttrOps> Send for AttrFile<T> {}

// SAFETY: See `KobjectDir`.
unsafe impl<T: AttrOps> Sync for AttrFile<T> {}

impl<T: AttrOps> AttrFile<T> {
    /// A handle that wakes those who `poll()` this file.
    pub(crate) fn notifier(&self) -> Result<FileNotifier> {
        // SAFETY: By the type invariant the file exists and `kobj` is live,
        // so its directory node `sd` is too; the name is the file's own,
        // NUL-terminated. A found node comes with a reference we own.
        let kn = unsafe {
            bindings::kernfs_find_and_get_ns(
                (*self.kobj.as_ptr()).sd,
                (*self.node.kattr.get()).attr.name,
                core::ptr::null(),
            )
        };
        // INVARIANT: A non-null result carries one reference that we own.
        Ok(FileNotifier {
            kn: NonNull::new(kn).ok_or(ENOENT)?,
        })
    }
}

/// Wakes the `poll()`ers of one sysfs file (`sysfs_notify()` without the
/// lookup, so it may be called from any context, locks held).
///
/// # Invariants
///
/// `kn` is a kernfs file node on which this value owns a reference.
pub(crate) struct FileNotifier {
    kn: NonNull<bindings::kernfs_node>,
}

// SAFETY: A kernfs node is reference counted, and `kernfs_notify()` may be
// called from any thread and context.
unsafe impl Send for FileNotifier {}

// SAFETY: See above.
unsafe impl Sync for FileNotifier {}

impl FileNotifier {
    /// Wakes every `poll()` on the file; they read it again.
    pub(crate) fn notify(&self) {
        // SAFETY: `kn` is a live file node (type invariant); a removed
        // file's node stays valid while we hold the reference.
        unsafe { bindings::kernfs_notify(self.kn.as_ptr()) };
    }
}

impl Drop for FileNotifier {
    fn drop(&mut self) {
        // SAFETY: We own one reference (type invariant).
        unsafe { bindings::kernfs_put(self.kn.as_ptr()) };
    }
}

impl<T: AttrOps> Drop for AttrFile<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the file exists and `kobj` is live.
        // `sysfs_remove_file_ns` waits for running callbacks to finish (unless
        // a callback broke its active protection, see `StoreCtx`), so the node
        // is unused once it returns.
        unsafe {
            bindings::sysfs_remove_file_ns(
                self.kobj.as_ptr(),
                &raw mut (*self.node.kattr.get()).attr,
                core::ptr::null(),
            );
            bindings::kobject_put(self.kobj.as_ptr());
        }
    }
}

/// The page a `show` formats into.
pub(crate) struct ShowBuf<'a> {
    page: &'a mut [u8],
    len: usize,
}

impl ShowBuf<'_> {
    /// Bytes formatted so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes that still fit.
    pub(crate) fn room(&self) -> usize {
        // The last byte stays for the NUL.
        self.page.len().saturating_sub(self.len + 1)
    }
}

impl fmt::Write for ShowBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        // Keep the last byte: sysfs output is NUL terminated.
        if end >= self.page.len() {
            return Err(fmt::Error);
        }
        self.page[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Context of a `store` call.
pub(crate) struct StoreCtx {
    kobj: *mut bindings::kobject,
    attr: *const bindings::attribute,
    /// Set by [`StoreCtx::allow_self_removal`]; dropped when the callback
    /// has let go of everything else.
    removal: Cell<Option<ActiveBreak>>,
}

impl StoreCtx {
    /// Lets this store remove its own file (and directory) without waiting
    /// for itself: sysfs otherwise drains every running callback of a file
    /// it removes. The protection comes back when the callback returns.
    ///
    /// Once the protection is broken, nothing makes the module's exit wait
    /// for this callback, and kernfs takes no module reference for one: the
    /// callback holds one until it has dropped everything of the module's,
    /// the attribute's object included (its last reference may go there).
    /// `ENODEV` if the module is already going away (its exit then does
    /// what this store was about to).
    pub(crate) fn allow_self_removal(&self) -> Result {
        let guard = self.break_active_protection()?;
        self.removal.set(Some(guard));
        Ok(())
    }

    fn break_active_protection(&self) -> Result<ActiveBreak> {
        let module = <crate::LocalModule as ModuleMetadata>::THIS_MODULE.as_ptr();
        // SAFETY: `module` is this module, alive while one of its sysfs
        // callbacks runs with its active protection (the module's exit
        // removes this file, which waits for the callback).
        if !unsafe { bindings::try_module_get(module) } {
            return Err(ENODEV);
        }
        // SAFETY: `kobj` and `attr` are those of the running callback, which
        // keeps them alive; the call takes its own references on both.
        let kn = unsafe { bindings::sysfs_break_active_protection(self.kobj, self.attr) };
        Ok(ActiveBreak { kn, module })
    }
}

/// Held by a [`StoreCtx`] after [`StoreCtx::allow_self_removal`]: the
/// broken protection and a reference on the module.
struct ActiveBreak {
    kn: *mut bindings::kernfs_node,
    module: *mut bindings::module,
}

impl Drop for ActiveBreak {
    fn drop(&mut self) {
        if !self.kn.is_null() {
            // SAFETY: `kn` came from `sysfs_break_active_protection()` and is
            // released exactly once here.
            unsafe { bindings::sysfs_unbreak_active_protection(self.kn) };
        }
        // SAFETY: The reference `allow_self_removal` took, dropped once.
        unsafe { bindings::module_put(self.module) };
    }
}

/// Returns the operations and id of the attribute `kattr` belongs to.
///
/// # Safety
///
/// `kattr` must be the `kattr` field of a live `AttrNode<T>`.
unsafe fn node_ops<T: AttrOps>(kattr: *mut bindings::kobj_attribute) -> (Arc<T>, usize) {
    let kattr = kattr.cast::<Opaque<bindings::kobj_attribute>>();
    // SAFETY: By the safety requirement `kattr` is inside an `AttrNode<T>`,
    // and `Opaque<T>` has the layout of `T`.
    let node = unsafe { &*container_of!(kattr, AttrNode<T>, kattr) };
    // Clone the ops so the node may go away during the call (a store that
    // removes its own file does exactly that).
    (node.ops.clone(), node.id)
}

/// # Safety
///
/// Called by sysfs for a file created by [`KobjectDir::add_file`] with a
/// page-sized `buf`.
unsafe extern "C" fn show_callback<T: AttrOps>(
    _kobj: *mut bindings::kobject,
    kattr: *mut bindings::kobj_attribute,
    buf: *mut u8,
) -> isize {
    // SAFETY: Sysfs holds an active reference on the file, so its node is live.
    let (ops, id) = unsafe { node_ops::<T>(kattr) };
    // SAFETY: Sysfs passes a zeroed buffer of `PAGE_SIZE` bytes.
    let page = unsafe { core::slice::from_raw_parts_mut(buf, kernel::page::PAGE_SIZE) };
    let mut out = ShowBuf { page, len: 0 };
    match ops.show(id, &mut out) {
        Ok(()) => out.len() as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by sysfs for a file created by [`KobjectDir::add_file`] with
/// `count` readable bytes at `buf`.
unsafe extern "C" fn store_callback<T: AttrOps>(
    kobj: *mut bindings::kobject,
    kattr: *mut bindings::kobj_attribute,
    buf: *const u8,
    count: usize,
) -> isize {
    // SAFETY: Sysfs holds an active reference on the file, so its node is live.
    let (ops, id) = unsafe { node_ops::<T>(kattr) };
    // SAFETY: Sysfs passes `count` readable bytes that stay valid for the call.
    let input = unsafe { core::slice::from_raw_parts(buf, count) };
    let ctx = StoreCtx {
        kobj,
        // SAFETY: `kattr` is valid (see above); only its address is taken.
        attr: unsafe { &raw const (*kattr).attr },
        removal: Cell::new(None),
    };
    let res = T::store(&ops, id, input, &ctx);
    // The object's last reference may go here: while a module reference
    // taken by `allow_self_removal` is still held, then that one.
    drop(ops);
    drop(ctx);
    match res {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}
