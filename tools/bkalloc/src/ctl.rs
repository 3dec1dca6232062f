// SPDX-License-Identifier: GPL-2.0

//! Commands that drive a registered volume through `/dev/bkalloc`: alloc,
//! free, status. The ioctl structures are `bkcore::ctl_abi`, the module's own.

use bkcore::ctl_abi::{
    AllocArgs, BucketRef, Decode, Encode, FreeArgs, StatusArgs, FROM_OPTIONS, IOC_ALLOC, IOC_FREE,
    IOC_STATUS,
};
use bkcore::placement::{Kind, MAX_REPLICAS};
use bkcore::uuid::{self, Uuid};
use bkcore::watermark::Watermark;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

/// The control device.
pub const CTL_PATH: &str = "/dev/bkalloc";

fn parse_uuid(s: &str) -> crate::Result<Uuid> {
    uuid::parse(s).ok_or_else(|| format!("'{s}' is not a volume uuid"))
}

/// Issues ioctl `cmd` on `args` (in and out).
fn ioctl<T: Encode + Decode>(cmd: u32, args: &T) -> io::Result<T> {
    let ctl = OpenOptions::new().read(true).write(true).open(CTL_PATH)?;
    let mut buf = vec![0u8; T::SIZE];
    args.encode(&mut buf);
    // SAFETY: `buf` is `T::SIZE` bytes, the size encoded in `cmd`, and
    // lives across the call; the kernel reads and writes only those bytes.
    let ret = unsafe { libc::ioctl(ctl.as_raw_fd(), cmd as libc::c_ulong, buf.as_mut_ptr()) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    T::decode(&buf).ok_or_else(|| io::Error::other("short ioctl reply"))
}

/// `bkalloc alloc`: prints the granted buckets as `dev:bucket` words.
pub fn alloc(
    volume: &str,
    kind: &str,
    replicas: Option<u32>,
    watermark: Option<&str>,
    deadline: Option<u32>,
) -> crate::Result<()> {
    let kind = Kind::from_name(kind).ok_or_else(|| format!("unknown kind '{kind}'"))?;
    let watermark = match watermark {
        Some(w) => {
            Watermark::from_name(w).ok_or_else(|| format!("unknown watermark '{w}'"))? as u32
        }
        None => FROM_OPTIONS,
    };
    let args = AllocArgs {
        uuid: parse_uuid(volume)?,
        kind: kind as u32,
        replicas: replicas.unwrap_or(FROM_OPTIONS),
        watermark,
        deadline_secs: deadline.unwrap_or(FROM_OPTIONS),
        ..Default::default()
    };
    let out = ioctl(IOC_ALLOC, &args).map_err(|e| format!("alloc: {e}"))?;
    let words: Vec<String> = out
        .buckets
        .iter()
        .take(out.n as usize)
        .map(|b| format!("{}:{}", b.dev, b.bucket))
        .collect();
    println!("{}", words.join(" "));
    Ok(())
}

/// `bkalloc free`: frees `dev:bucket` buckets.
pub fn free(volume: &str, buckets: &[String]) -> crate::Result<()> {
    if buckets.len() > MAX_REPLICAS {
        return Err(format!("at most {MAX_REPLICAS} buckets per call"));
    }
    let mut args = FreeArgs {
        uuid: parse_uuid(volume)?,
        n: buckets.len() as u32,
        ..Default::default()
    };
    for (slot, word) in args.buckets.iter_mut().zip(buckets) {
        let (dev, bucket) = word
            .split_once(':')
            .and_then(|(d, b)| Some((d.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| format!("'{word}' is not dev:bucket"))?;
        *slot = BucketRef {
            dev,
            pad: 0,
            bucket,
        };
    }
    ioctl(IOC_FREE, &args).map_err(|e| format!("free: {e}"))?;
    Ok(())
}

/// `bkalloc status`: the volume's counts.
pub fn status(volume: &str) -> crate::Result<()> {
    let args = StatusArgs {
        uuid: parse_uuid(volume)?,
        ..Default::default()
    };
    let s = ioctl(IOC_STATUS, &args).map_err(|e| format!("status: {e}"))?;
    println!("opts_gen {}", s.opts_gen);
    println!("waiters {}", s.waiters);
    for (i, d) in s.devs.iter().take(s.members as usize).enumerate() {
        println!(
            "dev-{i} free {} open {} need_discard {} btree {} user {}",
            d.free, d.open, d.need_discard, d.btree, d.user
        );
    }
    Ok(())
}
