// SPDX-License-Identifier: GPL-2.0

//! A sysfs directory backed by a dynamically allocated kobject.
//!
//! The kernel crate has no kobject abstraction in 7.3, so this wraps
//! `kobject_create_and_add()` / `kobject_put()`.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

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
        Self::create(name, parent)
    }

    fn create(name: &CStr, parent: *mut bindings::kobject) -> Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string that the kobject
        // core copies; `parent` is either null or a live kobject.
        let kobj = unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), parent) };
        // INVARIANT: a non-null result carries one reference that we own.
        let kobj = NonNull::new(kobj).ok_or(ENOMEM)?;
        Ok(Self { kobj })
    }
}

impl Drop for KobjectDir {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own one reference; dropping the
        // last one removes the directory and frees the kobject.
        unsafe { bindings::kobject_put(self.kobj.as_ptr()) };
    }
}
