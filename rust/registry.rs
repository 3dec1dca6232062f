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
    volumes: Mutex<KVec<Arc<Volume>>>,
}

impl Registry {
    /// Creates `/sys/fs/bkalloc` and an empty registry.
    pub(crate) fn new(defaults: ModuleDefaults) -> Result<Arc<Self>> {
        let root = KobjectDir::new_in_fs(c"bkalloc")?;
        Arc::pin_init(
            try_pin_init!(Registry {
                root,
                defaults,
                volumes <- new_mutex!(KVec::new()),
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
            if volumes.iter().any(|v| v.uuid() == volume.uuid()) {
                pr_err!(
                    "volume {} is already registered\n",
                    Core(Hyphenated(volume.uuid()))
                );
                return Err(EEXIST);
            }
            volumes.push(volume.clone(), GFP_KERNEL)?;
        }
        // The directory exists before replay, so `replay`, `waiters` and
        // `abort_waiting` can be used while it runs.
        if let Err(e) = volume.add_sysfs(&self.root).and_then(|()| volume.recover()) {
            // Nothing was written; the devices are released.
            let _ = self.unregister(&volume);
            return Err(e);
        }
        pr_info!("volume {} registered\n", Core(Hyphenated(volume.uuid())));
        Ok(())
    }

    /// The registered volume with `uuid`.
    pub(crate) fn find(&self, uuid: &Uuid) -> Result<Arc<Volume>> {
        self.volumes
            .lock()
            .iter()
            .find(|v| v.uuid() == uuid)
            .cloned()
            .ok_or(ENOENT)
    }

    /// Removes `volume` from the registry and tears it down.
    pub(crate) fn unregister(&self, volume: &Volume) -> Result {
        let found = {
            let mut volumes = self.volumes.lock();
            let pos = volumes
                .iter()
                .position(|v| core::ptr::eq::<Volume>(&**v, volume))
                .ok_or(ENODEV)?;
            volumes.remove(pos).map_err(|_| ENODEV)?
        };
        found.teardown();
        Ok(())
    }

    /// Unregisters every volume (module unload).
    pub(crate) fn unregister_all(&self) {
        let volumes = core::mem::take(&mut *self.volumes.lock());
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
