// SPDX-License-Identifier: GPL-2.0

//! The commands that work on member devices directly, and `fuzz`, which throws hostile
//! input at a registered volume.

pub mod format;
pub mod fsck;
pub mod fuzz;
pub mod options;
pub mod scenario;
pub mod show;
