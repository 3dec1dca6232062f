// SPDX-License-Identifier: GPL-2.0

//! bkalloc: a multi-device bucket allocator whose journal replay cannot hang.
//!
//! Volumes of NVMe namespaces are registered through `/sys/fs/bkalloc/`.
//! Every wait for buckets is bounded, restartable when options change, and
//! abortable; see `Documentation/` for the user-facing interface.

use kernel::prelude::*;

mod allocator;
mod bench;
#[expect(unused_attributes)]
#[path = "core/lib.rs"]
pub mod bkcore;
mod btree;
mod checkpoint;
mod ctl;
mod discard;
mod fmt;
mod glue;
mod health;
mod insert;
mod journal;
mod member;
mod registry;
mod replay;
mod rereplicate;
mod sysfs;
mod volume;
mod waitlist;
mod writer;

use bkcore::options::{OptErrorKind, OptId};
use ctl::Ctl;
use glue::miscdev::CtlDevice;
use registry::{Registry, UnregisterAll};
use sysfs::Sysfs;
use volume::ModuleDefaults;

module! {
    type: BkAlloc,
    name: "bkalloc",
    authors: ["bkalloc developers"],
    description: "Multi-device bucket allocator with bounded, restartable waits",
    license: "GPL",
    params: {
        recovery_metadata_replicas: u32 {
            default: 0,
            description: "If non-zero, start every volume registered while loaded with this metadata_replicas (recovery)",
        },
        degraded: bool {
            default: false,
            description: "If 1, volumes register with members missing as with degraded=1 (recovery)",
        },
        stuck_timeout_secs: u32 {
            // The option table's default.
            default: crate::bkcore::options::Options::defaults()
                .get(crate::bkcore::options::OptId::AllocatorStuckTimeout),
            description: "Default allocator_stuck_timeout in seconds (0 = never report)",
        },
    },
}

/// Module state: `/dev/bkalloc`, the registered volumes and
/// `/sys/fs/bkalloc`.
#[pin_data]
struct BkAlloc {
    // Fields drop in declaration order. No new ioctls first; then every
    // volume goes, those still replaying too, which ends a register write
    // blocked in a replay; only then the register file, whose removal waits
    // for that write. `init` builds them in the reverse order, so a failed
    // init tears down the same way, and `/dev/bkalloc` (whose open pins the
    // module) appears only once nothing can fail.
    #[pin]
    _ctl: CtlDevice<Ctl>,
    _volumes: UnregisterAll,
    _sysfs: Sysfs,
    _said: Farewell,
}

/// Says "unloaded" when dropped, last.
struct Farewell;

impl Drop for Farewell {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}

impl kernel::InPlaceModule for BkAlloc {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let defaults = ModuleDefaults {
            recovery_metadata_replicas: module_parameters::recovery_metadata_replicas.value(),
            stuck_timeout_secs: module_parameters::stuck_timeout_secs.value(),
            degraded: module_parameters::degraded.value(),
        };
        let r = defaults.recovery_metadata_replicas;
        // 0 is off; anything else must be a metadata_replicas value.
        let registry = match OptId::MetadataReplicas.desc().check(r) {
            Err(OptErrorKind::OutOfRange { min, max }) if r != 0 => {
                pr_err!("recovery_metadata_replicas={r} is out of range (0 = off, {min}..{max})\n");
                Err(EINVAL)
            }
            _ => Registry::new(defaults),
        };
        try_pin_init!(Self {
            _sysfs: Sysfs::new(registry.clone()?)?,
            _volumes: UnregisterAll::new(registry.clone()?),
            _ctl <- CtlDevice::register(c"bkalloc", Ctl::new(registry.clone()?)?),
            _said: Farewell,
            _: {
                pr_info!(
                    "loaded (recovery_metadata_replicas={}, stuck_timeout_secs={}, degraded={})\n",
                    defaults.recovery_metadata_replicas,
                    defaults.stuck_timeout_secs,
                    u32::from(defaults.degraded)
                );
            },
        })
    }
}
