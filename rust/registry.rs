// SPDX-License-Identifier: GPL-2.0

//! The registered volumes and `/sys/fs/bkalloc/register`.

use crate::bkcore::uuid::{Hyphenated, Uuid};
use crate::fmt::Core;
use crate::glue::{
    capability,
    kobject::{AttrOps, KobjectDir, ShowBuf, StoreCtx},
};
use crate::volume::{ModuleDefaults, RegisterArgs, Volume};
use kernel::{new_mutex, prelude::*, sync::Arc, sync::Mutex};

/// Every registered volume, and the sysfs root they live under.
#[pin_data]
pub(crate) struct Registry {
    root: KobjectDir,
    defaults: ModuleDefaults,
    #[pin]
    volumes: Mutex<Volumes>,
}

/// The registered volumes (replaying ones included).
struct Volumes {
    list: KVec<Arc<Volume>>,
    /// The module is going away: no new volume joins.
    closed: bool,
}

impl Registry {
    /// Creates `/sys/fs/bkalloc` and an empty registry.
    pub(crate) fn new(defaults: ModuleDefaults) -> Result<Arc<Self>> {
        let root = KobjectDir::new_in_fs(c"bkalloc")?;
        Arc::pin_init(
            try_pin_init!(Registry {
                root,
                defaults,
                volumes <- new_mutex!(Volumes {
                    list: KVec::new(),
                    closed: false,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// The `/sys/fs/bkalloc` directory.
    pub(crate) fn root(&self) -> &KobjectDir {
        &self.root
    }

    /// Registers the volume a register string names; returns when it is up.
    fn register(self: &Arc<Self>, input: &str) -> Result {
        let args = RegisterArgs::parse(input)?;
        // Device I/O happens without the registry lock: registering one
        // volume never waits for another.
        let volume = Volume::open(self.clone(), &args, self.defaults)?;
        {
            let mut volumes = self.volumes.lock();
            if volumes.closed {
                return Err(ENODEV);
            }
            if volumes.list.iter().any(|v| v.uuid() == volume.uuid()) {
                pr_err!(
                    "volume {} is already registered\n",
                    Core(Hyphenated(volume.uuid()))
                );
                return Err(EEXIST);
            }
            volumes.list.push(volume.clone(), GFP_KERNEL)?;
        }
        // The directory exists before replay, so `replay`, `waiters` and
        // `abort_waiting` can be used while it runs.
        let res = volume.add_sysfs(&self.root).and_then(|()| volume.recover());
        // A module exit meanwhile took the volume off the list and tore it
        // down, maybe before its directory existed: then it is still ours
        // to tear down (again), and the register fails.
        let listed = self
            .volumes
            .lock()
            .list
            .iter()
            .any(|v| core::ptr::eq::<Volume>(&**v, &*volume));
        if let Err(e) = res.and(if listed { Ok(()) } else { Err(ENODEV) }) {
            // Nothing was written; the devices are released.
            if self.unregister(&volume).is_err() {
                volume.teardown();
            }
            return Err(e);
        }
        pr_info!("volume {} registered\n", Core(Hyphenated(volume.uuid())));
        Ok(())
    }

    /// The registered volume with `uuid`.
    pub(crate) fn find(&self, uuid: &Uuid) -> Result<Arc<Volume>> {
        self.volumes
            .lock()
            .list
            .iter()
            .find(|v| v.uuid() == uuid)
            .cloned()
            .ok_or(ENOENT)
    }

    /// Removes `volume` from the registry and tears it down.
    pub(crate) fn unregister(&self, volume: &Volume) -> Result {
        let found = {
            let mut volumes = self.volumes.lock();
            let list = &mut volumes.list;
            let pos = list
                .iter()
                .position(|v| core::ptr::eq::<Volume>(&**v, volume))
                .ok_or(ENODEV)?;
            list.remove(pos).map_err(|_| ENODEV)?
        };
        found.teardown();
        Ok(())
    }

    /// Unregisters every volume and lets no new one in (module unload). A
    /// volume still replaying is torn down too: its blocked requests fail
    /// with ENODEV, so its register write returns.
    pub(crate) fn unregister_all(&self) {
        let volumes = {
            let mut volumes = self.volumes.lock();
            volumes.closed = true;
            core::mem::take(&mut volumes.list)
        };
        for v in volumes.iter() {
            v.teardown();
        }
    }
}

impl AttrOps for Registry {
    fn show(&self, _id: usize, _out: &mut ShowBuf<'_>) -> Result {
        Err(EINVAL)
    }

    fn store(this: &Arc<Self>, _id: usize, input: &[u8], _ctx: &StoreCtx) -> Result {
        if !capability::sys_admin() {
            return Err(EPERM);
        }
        let input = core::str::from_utf8(input).map_err(|_| EINVAL)?;
        this.register(input)
    }
}
