// SPDX-License-Identifier: GPL-2.0

//! The registered volumes: register and unregister.

use crate::bkcore::uuid::{Hyphenated, Uuid};
use crate::fmt::Core;
use crate::volume::{ModuleDefaults, RegisterArgs, Volume};
use kernel::{new_mutex, prelude::*, sync::Arc, sync::Mutex};

/// Every registered volume.
#[pin_data]
pub(crate) struct Registry {
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
    /// An empty registry; volumes start from `defaults`.
    pub(crate) fn new(defaults: ModuleDefaults) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Registry {
                defaults,
                volumes <- new_mutex!(Volumes {
                    list: KVec::new(),
                    closed: false,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// Registers the volume a register string names; returns when it is
    /// up. `publish` makes it visible (its sysfs directory) before replay.
    pub(crate) fn register(
        &self,
        input: &str,
        publish: impl FnOnce(&Arc<Volume>) -> Result,
    ) -> Result {
        let args = RegisterArgs::parse(input)?;
        // Device I/O happens without the registry lock: registering one
        // volume never waits for another.
        let volume = Volume::open(&args, self.defaults)?;
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
        let res = publish(&volume).and_then(|()| volume.recover());
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

/// Unregisters every volume when dropped (module unload; see
/// [`Registry::unregister_all`]).
pub(crate) struct UnregisterAll(Arc<Registry>);

impl UnregisterAll {
    /// A guard for `registry`.
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        Self(registry)
    }
}

impl Drop for UnregisterAll {
    fn drop(&mut self) {
        self.0.unregister_all();
    }
}
