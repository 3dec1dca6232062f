// SPDX-License-Identifier: GPL-2.0

//! The commands that work on member devices directly.

pub mod format;
pub mod fsck;
pub mod options;
pub mod scenario;
pub mod show;
