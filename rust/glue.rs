// SPDX-License-Identifier: GPL-2.0

//! Thin safe wrappers over kernel C APIs the kernel crate does not abstract
//! yet. All of the module's `unsafe` lives under this module; nothing here
//! knows about buckets. Its one C file, `bkalloc_events.c`, defines the
//! tracepoints.

pub(crate) mod bdev;
pub(crate) mod capability;
pub(crate) mod kobject;
pub(crate) mod kthread;
pub(crate) mod miscdev;
pub(crate) mod trace;
pub(crate) mod wake;
