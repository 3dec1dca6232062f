// SPDX-License-Identifier: GPL-2.0

//! A kernel thread running a Rust body, stopped and joined on drop.
//!
//! The kernel crate has no kthread abstraction in 7.3, so this wraps
//! `kthread_create_on_node()`, `wake_up_process()` and `kthread_stop()`.
//! The thread borrows its body from the [`Kthread`] handle, which stops it
//! (and waits for it) before the body can go away. The handle holds a task
//! reference, so the body may return before it is told to stop.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, prelude::*, sync::Arc};

/// The work of a kernel thread.
pub(crate) trait KthreadBody: Send + Sync + 'static {
    /// Runs until `ctx.should_stop()` is true (or returns earlier). It must
    /// not sleep for long without a bound: `kthread_stop` waits for it.
    fn run(&self, ctx: &KthreadCtx);
}

/// The running thread's view of itself, handed to its body only.
pub(crate) struct KthreadCtx {
    /// Stays on the thread that got it.
    _not_send: PhantomData<*mut ()>,
}

impl KthreadCtx {
    /// Whether this thread was asked to stop.
    pub(crate) fn should_stop(&self) -> bool {
        // SAFETY: A `KthreadCtx` is only made by `trampoline`, on the stack
        // of a kthread created by `Kthread::spawn`, and cannot leave it.
        unsafe { bindings::kthread_should_stop() }
    }
}

/// A running kernel thread.
///
/// # Invariants
///
/// `task` is a kthread created by `spawn` running `trampoline::<T>` on
/// `body`, not yet stopped, and we hold a reference to its task.
pub(crate) struct Kthread<T: KthreadBody> {
    task: NonNull<bindings::task_struct>,
    body: Arc<T>,
}

// SAFETY: The handle only stops the thread, which may happen from any thread.
unsafe impl<T: KthreadBody> Send for Kthread<T> {}

// SAFETY: No method takes `&self`.
unsafe impl<T: KthreadBody> Sync for Kthread<T> {}

/// # Safety
///
/// `data` must point to a `T` that outlives the thread.
unsafe extern "C" fn trampoline<T: KthreadBody>(data: *mut c_void) -> c_int {
    // SAFETY: By the safety requirement; `Kthread::drop` stops this thread
    // before the `Arc<T>` it holds is released.
    let body = unsafe { &*data.cast::<T>() };
    body.run(&KthreadCtx {
        _not_send: PhantomData,
    });
    0
}

impl<T: KthreadBody> Kthread<T> {
    /// Starts a kernel thread named `name` running `body.run()`.
    pub(crate) fn spawn(name: &CStr, body: Arc<T>) -> Result<Self> {
        let data = Arc::as_ptr(&body).cast_mut().cast::<c_void>();
        // SAFETY: `trampoline::<T>` matches the thread function type; `data`
        // stays valid until `drop` has stopped the thread; `name` is a
        // NUL-terminated string used as a "%s"-free format.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(trampoline::<T>),
                data,
                bindings::NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        let task = kernel::error::from_err_ptr(task)?;
        let task = NonNull::new(task).ok_or(ENOMEM)?;
        // SAFETY: `task` was just created and not started. The reference
        // keeps it valid for `kthread_stop` even after the body returned.
        unsafe { bindings::get_task_struct(task.as_ptr()) };
        // SAFETY: `task` was just created and not started.
        unsafe { bindings::wake_up_process(task.as_ptr()) };
        // INVARIANT: Created with `trampoline::<T>` on `body`, running, and
        // referenced.
        Ok(Self { task, body })
    }
}

impl<T: KthreadBody> Drop for Kthread<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the thread has not been stopped and
        // we hold a reference to its task, so `task` is valid even if the
        // body returned already. This waits for the thread to return.
        unsafe { bindings::kthread_stop(self.task.as_ptr()) };
        // SAFETY: The reference taken in `spawn`, put once.
        unsafe { bindings::put_task_struct(self.task.as_ptr()) };
        // Only now may `self.body` be released.
        let _ = &self.body;
    }
}
