// SPDX-License-Identifier: GPL-2.0

//! The `bkalloc` tool as a library, so integration tests can drive it in-process.
//!
//! The commands that work on member devices directly (format, show, fsck, scenario) live
//! in [`cmd`]; all of them go through [`volume`] (reading) and [`build`] (writing), which
//! use `bkcore` for every on-disk byte. Commands that talk to a registered volume through
//! `/dev/bkalloc` (alloc, free, insert, get, flush, status) will get their own module next
//! to `cmd` (the ioctl ABI is shared with the kernel module).

#![warn(missing_docs)]

pub mod build;
pub mod cmd;
pub mod ctl;
pub mod dev;
pub mod progress;
pub mod signature;
pub mod size;
pub mod volume;

/// What a command reports when it cannot do its job at all (as opposed to fsck findings).
pub type Result<T> = std::result::Result<T, String>;
