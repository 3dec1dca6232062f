// SPDX-License-Identifier: GPL-2.0

//! bkalloc: a multi-device bucket allocator whose journal replay cannot hang.
//!
//! Volumes of NVMe namespaces are registered through `/sys/fs/bkalloc/`.
//! Every wait for buckets is bounded, restartable when options change, and
//! abortable; see `Documentation/` for the user-facing interface.

use kernel::prelude::*;

mod allocator;
#[allow(unused_attributes)]
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
mod volume;
mod waitlist;
mod writer;

use ctl::Ctl;
use glue::kobject::{AttrFile, MODE_WO};
use glue::miscdev::CtlDevice;
use kernel::sync::Arc;
use registry::Registry;
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
        stuck_timeout_secs: u32 {
            default: 30,
            description: "Default allocator_stuck_timeout in seconds (0 = never report)",
        },
    },
}

/// Module state: the registered volumes, `/sys/fs/bkalloc/register` and
/// `/dev/bkalloc`.
struct BkAlloc {
    ctl: Option<Pin<KBox<CtlDevice<Ctl>>>>,
    register: Option<AttrFile<Registry>>,
    registry: Arc<Registry>,
}

impl kernel::Module for BkAlloc {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let defaults = ModuleDefaults {
            recovery_metadata_replicas: module_parameters::recovery_metadata_replicas.value(),
            stuck_timeout_secs: module_parameters::stuck_timeout_secs.value(),
        };
        if defaults.recovery_metadata_replicas > 4 {
            pr_err!(
                "recovery_metadata_replicas={} is out of range (0 = off, 1..4)\n",
                defaults.recovery_metadata_replicas
            );
            return Err(EINVAL);
        }
        let registry = Registry::new(defaults)?;
        let register = registry
            .root()
            .add_file("register", MODE_WO, registry.clone(), 0, 0)?;
        let ctl = KBox::pin_init(
            CtlDevice::register(c"bkalloc", Ctl::new(registry.clone())?),
            GFP_KERNEL,
        )?;
        pr_info!(
            "loaded (recovery_metadata_replicas={}, stuck_timeout_secs={})\n",
            defaults.recovery_metadata_replicas,
            defaults.stuck_timeout_secs
        );
        Ok(BkAlloc {
            ctl: Some(ctl),
            register: Some(register),
            registry,
        })
    }
}

impl Drop for BkAlloc {
    fn drop(&mut self) {
        // No new ioctls; then every volume goes, those still replaying too,
        // which ends a register write blocked in a replay; only then the
        // register file, whose removal waits for that write.
        self.ctl.take();
        self.registry.unregister_all();
        self.register.take();
        pr_info!("unloaded\n");
    }
}
