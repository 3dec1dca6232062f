// SPDX-License-Identifier: GPL-2.0

//! bkalloc: a multi-device bucket allocator whose journal replay cannot hang.
//!
//! Volumes of NVMe namespaces are registered through `/sys/fs/bkalloc/`.
//! Every wait for buckets is bounded, restartable when options change, and
//! abortable; see `Documentation/` for the user-facing interface.

use kernel::prelude::*;

mod glue;

use glue::kobject::KobjectDir;

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

/// Module state: the `/sys/fs/bkalloc` directory.
struct BkAlloc {
    _sysfs_root: KobjectDir,
}

impl kernel::Module for BkAlloc {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let sysfs_root = KobjectDir::new_in_fs(c"bkalloc")?;
        pr_info!(
            "loaded (recovery_metadata_replicas={}, stuck_timeout_secs={})\n",
            module_parameters::recovery_metadata_replicas.value(),
            module_parameters::stuck_timeout_secs.value()
        );
        Ok(BkAlloc {
            _sysfs_root: sysfs_root,
        })
    }
}

impl Drop for BkAlloc {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
