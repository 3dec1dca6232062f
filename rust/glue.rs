// SPDX-License-Identifier: GPL-2.0

//! Thin safe wrappers over kernel C APIs the kernel crate does not abstract
//! yet. All of the module's `unsafe` lives under this module; nothing here
//! knows about buckets.

pub(crate) mod bdev;
pub(crate) mod capability;
pub(crate) mod kobject;
pub(crate) mod kthread;
pub(crate) mod miscdev;
pub(crate) mod wake;
