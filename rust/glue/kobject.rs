// SPDX-License-Identifier: GPL-2.0

//! sysfs directories and attribute files.
//!
//! The kernel crate has no kobject abstraction in 7.3, so this wraps
//! `kobject_create_and_add()`, `sysfs_create_file_ns()` and friends. An
//! attribute file dispatches `show`/`store` to an [`AttrOps`] implementation
//! with an attribute id, so one Rust object serves a whole directory.

use core::{cell::Cell, fmt, ptr::NonNull};
use kernel::{
    bindings, container_of,
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
/// `kobj` points to a kobject created by `kobject_create_and_add()` on which
/// this value owns one reference.
pub(crate) struct KobjectDir {
    kobj: NonNull<bindings::kobject>,
}

// SAFETY: A kobject is reference counted and its sysfs operations take their
// own locks, so it may be used and released from any thread.
unsafe impl Send for KobjectDir {}

// SAFETY: The only operations through a shared reference create children or
// attributes, which the kobject core serialises itself.
unsafe impl Sync for KobjectDir {}

impl KobjectDir {
    /// Creates `/sys/fs/<name>`.
    pub(crate) fn new_in_fs(name: &CStr) -> Result<Self> {
        // SAFETY: `fs_kobj` is set once during boot, before modules load, and
        // never changes afterwards.
        let parent = unsafe { bindings::fs_kobj };
        // SAFETY: `fs_kobj` is a live kobject for as long as the kernel runs.
        unsafe { Self::create(name, parent) }
    }

    /// Creates the subdirectory `<self>/<name>`.
    pub(crate) fn new_child(&self, name: &CStr) -> Result<Self> {
        // SAFETY: `self.kobj` is live (type invariant); the child holds its
        // own reference to it.
        unsafe { Self::create(name, self.kobj.as_ptr()) }
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
        Ok(Self { kobj })
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

impl Drop for KobjectDir {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one reference; dropping the
        // last one removes the directory and frees the kobject.
        unsafe { bindings::kobject_put(self.kobj.as_ptr()) };
    }
}

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
