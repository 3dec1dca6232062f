// SPDX-License-Identifier: GPL-2.0

//! Printing values formatted by the kernel-free core with `pr_*!`.
//!
//! The core implements `core::fmt::Display` (the host tool uses the same
//! messages); the kernel's print macros take `kernel::fmt::Display`.

use core::fmt;

/// Wraps a `core::fmt::Display` value for `pr_*!`.
pub(crate) struct Core<T>(pub(crate) T);

impl<T: fmt::Display> kernel::fmt::Display for Core<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
