// SPDX-License-Identifier: GPL-2.0

//! A misc device whose ioctls reach data owned by its registration.
//!
//! The kernel crate's `MiscDevice::open` only gets the registration, not
//! any data the driver keeps with it. [`CtlDevice`] keeps an `Arc<H>` next
//! to the registration and hands it to every open file; the ioctls then go
//! to [`IoctlHandler::ioctl`].

use core::marker::PhantomData;
use kernel::{
    container_of,
    fs::File,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

/// What a [`CtlDevice`]'s ioctls do.
pub(crate) trait IoctlHandler: Send + Sync + 'static {
    /// Handles ioctl `cmd` with user address `arg`.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;
}

/// A registered misc device serving `handler`'s ioctls; deregistered when
/// dropped.
#[pin_data]
pub(crate) struct CtlDevice<H: IoctlHandler> {
    #[pin]
    reg: MiscDeviceRegistration<Fops<H>>,
    handler: Arc<H>,
}

impl<H: IoctlHandler> CtlDevice<H> {
    /// Registers `/dev/<name>` (root only) for `handler`.
    pub(crate) fn register(name: &'static CStr, handler: Arc<H>) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            reg <- MiscDeviceRegistration::register(MiscDeviceOptions { name }),
            handler,
        })
    }
}

/// The file operations; only ever registered inside a [`CtlDevice`].
struct Fops<H>(PhantomData<H>);

#[vtable]
impl<H: IoctlHandler> MiscDevice for Fops<H> {
    type Ptr = Arc<H>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<H>> {
        let reg: *const MiscDeviceRegistration<Self> = misc;
        // SAFETY: `Fops<H>` is private to this file and only registered as
        // the `reg` field of a `CtlDevice<H>`, which outlives its open files
        // (deregistration waits for `open` to return, and the module cannot
        // unload while files are open).
        let dev = unsafe { &*container_of!(reg.cast_mut(), CtlDevice<H>, reg) };
        Ok(dev.handler.clone())
    }

    fn ioctl(handler: ArcBorrow<'_, H>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        handler.ioctl(cmd, arg)
    }
}
