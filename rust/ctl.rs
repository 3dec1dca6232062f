// SPDX-License-Identifier: GPL-2.0

//! `/dev/bkalloc`: allocate, free, insert, get, flush and status ioctls on
//! a volume named by its uuid. The argument structures are `bkcore::ctl_abi`, shared with the tool.

use crate::bkcore::{
    buckets::BucketState,
    ctl_abi::{
        AllocArgs, BucketRef, Decode, DevStatus, Encode, FlushArgs, FreeArgs, GetArgs, InsertArgs,
        StatusArgs, VersionArgs, ABI_VERSION, FEATURES, FROM_OPTIONS, IOCTL_TYPE, IOC_ALLOC,
        IOC_FLUSH, IOC_FREE, IOC_GET, IOC_INSERT, IOC_STATUS, IOC_VERSION,
    },
    placement::Kind,
    request::Overrides,
    watermark::Watermark,
};
use crate::glue::miscdev::IoctlHandler;
use crate::registry::Registry;
use kernel::{
    prelude::*,
    sync::Arc,
    uaccess::{UserPtr, UserSlice},
};

// The core computes the ioctl numbers without the kernel crate (the tool
// shares them); here they are checked against the kernel's own `_IOWR` on
// the very structures, whose encoded sizes must be their C sizes.
const _: () = {
    use kernel::ioctl::_IOWR;
    assert!(IOC_ALLOC == _IOWR::<AllocArgs>(IOCTL_TYPE, 1));
    assert!(IOC_FREE == _IOWR::<FreeArgs>(IOCTL_TYPE, 2));
    assert!(IOC_STATUS == _IOWR::<StatusArgs>(IOCTL_TYPE, 3));
    assert!(IOC_INSERT == _IOWR::<InsertArgs>(IOCTL_TYPE, 4));
    assert!(IOC_GET == _IOWR::<GetArgs>(IOCTL_TYPE, 5));
    assert!(IOC_FLUSH == _IOWR::<FlushArgs>(IOCTL_TYPE, 6));
    assert!(IOC_VERSION == _IOWR::<VersionArgs>(IOCTL_TYPE, 7));
};

/// The control device's handler.
pub(crate) struct Ctl {
    registry: Arc<Registry>,
}

impl Ctl {
    /// A handler serving `registry`'s volumes.
    pub(crate) fn new(registry: Arc<Registry>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self { registry }, GFP_KERNEL)?)
    }
}

/// Runs `f` on the structure at user address `arg` and copies the result
/// back. The structure is written back unchanged first, so a result that
/// cannot be returned (`EFAULT`: read-only or unmapped memory) is refused
/// before `f` does anything durable.
fn in_out<T: Encode + Decode>(arg: usize, f: impl FnOnce(&mut T) -> Result) -> Result<isize> {
    let mut buf = KVec::with_capacity(T::SIZE, GFP_KERNEL)?;
    buf.resize(T::SIZE, 0, GFP_KERNEL)?;
    UserSlice::new(UserPtr::from_addr(arg), T::SIZE)
        .reader()
        .read_slice(&mut buf)?;
    UserSlice::new(UserPtr::from_addr(arg), T::SIZE)
        .writer()
        .write_slice(&buf)?;
    let mut args = T::decode(&buf).ok_or(EINVAL)?;
    f(&mut args)?;
    args.encode(&mut buf);
    UserSlice::new(UserPtr::from_addr(arg), T::SIZE)
        .writer()
        .write_slice(&buf)?;
    Ok(0)
}

fn option_or(v: u32) -> Option<u32> {
    (v != FROM_OPTIONS).then_some(v)
}

impl IoctlHandler for Ctl {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            IOC_ALLOC => {
                let mut granted = None;
                let res = in_out(arg, |a: &mut AllocArgs| {
                    let volume = self.registry.find(&a.uuid)?;
                    if !a.reserved_zero() {
                        return Err(EINVAL);
                    }
                    let kind = Kind::from_u32(a.kind).ok_or(EINVAL)?;
                    let watermark = match option_or(a.watermark) {
                        Some(w) => Some(Watermark::from_u32(w).ok_or(EINVAL)?),
                        None => None,
                    };
                    let overrides = Overrides {
                        replicas: option_or(a.replicas),
                        watermark,
                        deadline_secs: option_or(a.deadline_secs),
                        ..Overrides::NONE
                    };
                    let grant = volume.alloc_for_user(kind, overrides)?;
                    a.n = grant.len() as u32;
                    for (slot, &(dev, bucket)) in a.buckets.iter_mut().zip(grant.iter()) {
                        *slot = BucketRef {
                            dev,
                            pad: 0,
                            bucket,
                        };
                    }
                    granted = Some((volume, grant));
                    Ok(())
                });
                if let (Err(_), Some((volume, grant))) = (&res, granted) {
                    // Allocated, but the caller's memory went away before it
                    // could learn which buckets: nobody owns them, so they go
                    // back (durably) instead of leaking.
                    if let Err(e) = volume.free_for_user(&grant) {
                        pr_warn!(
                            "volume {}: giving back an alloc whose result could not be returned failed (error {})\n",
                            volume.name(),
                            e.to_errno()
                        );
                    }
                }
                res
            }
            IOC_FREE => in_out(arg, |f: &mut FreeArgs| {
                let refs = f.refs().map_err(|_| EINVAL)?;
                let volume = self.registry.find(&f.uuid)?;
                let mut buckets = KVec::with_capacity(refs.len(), GFP_KERNEL)?;
                for r in refs {
                    buckets.push((r.dev, r.bucket), GFP_KERNEL)?;
                }
                volume.free_for_user(&buckets)
            }),
            IOC_STATUS => in_out(arg, |s: &mut StatusArgs| {
                let volume = self.registry.find(&s.uuid)?;
                let inner = volume.lock_pool();
                s.opts_gen = inner.opts_gen;
                s.waiters = inner.requests.waiters.len() as u32;
                s.members = inner.members.len() as u32;
                for (d, m) in s.devs.iter_mut().zip(inner.members.iter()) {
                    *d = DevStatus {
                        free: m.count(BucketState::Free),
                        open: m.open,
                        need_discard: m.count(BucketState::NeedDiscard),
                        btree: m.count(BucketState::Btree),
                        user: m.count(BucketState::User),
                    };
                }
                Ok(())
            }),
            IOC_INSERT => in_out(arg, |a: &mut InsertArgs| {
                let volume = self.registry.find(&a.uuid)?;
                a.seq = volume.insert(a.key, a.value)?;
                Ok(())
            }),
            IOC_GET => in_out(arg, |a: &mut GetArgs| {
                let volume = self.registry.find(&a.uuid)?;
                if !a.reserved_zero() {
                    return Err(EINVAL);
                }
                let value = volume.get(a.key)?;
                a.found = u32::from(value.is_some());
                a.value = value.unwrap_or_default();
                Ok(())
            }),
            IOC_FLUSH => in_out(arg, |a: &mut FlushArgs| {
                let volume = self.registry.find(&a.uuid)?;
                (a.generation, a.journal_seq) = volume.flush()?;
                Ok(())
            }),
            IOC_VERSION => in_out(arg, |v: &mut VersionArgs| {
                // A version this module does not know is refused, not guessed.
                if !v.reserved_zero() || !v.known_version() {
                    return Err(EINVAL);
                }
                v.abi = ABI_VERSION;
                v.features = FEATURES;
                Ok(())
            }),
            _ => Err(ENOTTY),
        }
    }
}
