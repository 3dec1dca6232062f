// SPDX-License-Identifier: GPL-2.0

//! The commands that work on member devices directly, and `fuzz`, which throws hostile
//! input at a registered volume, and `mutate`, which writes corrupted images for register,
//! and `crash`, which rebuilds member images at crash points from a QEMU write log.

pub mod admin;
pub mod bench;
pub mod crash;
pub mod events;
pub mod format;
pub mod fsck;
pub mod fuzz;
pub mod mutate;
pub mod options;
pub mod scenario;
pub mod show;
pub mod uevent;
