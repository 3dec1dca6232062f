// SPDX-License-Identifier: GPL-2.0

//! Capability checks of the current task (no kernel crate wrapper in 7.3).

use kernel::bindings;

/// Whether the current task has `CAP_SYS_ADMIN`.
pub(crate) fn sys_admin() -> bool {
    // SAFETY: `capable()` only inspects the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
