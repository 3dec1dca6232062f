// SPDX-License-Identifier: GPL-2.0

//! `bkalloc events --uevents`: the uevents bkalloc's volumes send, read from the kernel's
//! netlink socket as udev reads them. A volume's directory `/sys/fs/bkalloc/<uuid>` is a
//! member of the `bkalloc` kset: it sends `add` and `remove`, and `change` with
//! `BKALLOC_EVENT=` stuck, unstuck, deadline, degraded, read_only, replay_done,
//! replay_failed, discard_error or replicated, `BKALLOC_UUID=`, and where it applies `BKALLOC_WAITER=`,
//! `BKALLOC_POLICY=`, `BKALLOC_REPLICAS=got/wanted`, `BKALLOC_DEV=`, `BKALLOC_DEVICE=`,
//! `BKALLOC_ERROR=` (a negative errno). Each prints as one line: the action, then the
//! `BKALLOC_` variables but the uuid, as the kernel sent them:
//! `change BKALLOC_EVENT=stuck BKALLOC_WAITER=1`.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// `NETLINK_KOBJECT_UEVENT`'s multicast group of the kernel's own events (udev re-sends
/// them on group 2, with a `libudev` header).
const KERNEL_GROUP: u32 = 1;

/// The subsystem of bkalloc's uevents (the kset's name).
const SUBSYSTEM: &str = "bkalloc";

/// One kernel uevent, as parsed from a netlink datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Uevent {
    /// `add`, `remove`, `change`, ...
    pub action: String,
    /// The sysfs path below `/sys`.
    pub devpath: String,
    /// `KEY=value` pairs in the order sent (`ACTION`, `DEVPATH` and `SEQNUM` included).
    pub env: Vec<(String, String)>,
}

impl Uevent {
    /// The value of `key`, if sent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The uuid of the volume the event is about: the last part of its path.
    pub fn volume(&self) -> &str {
        self.devpath.rsplit('/').next().unwrap_or("")
    }

    /// Whether it is one of bkalloc's volumes' (not the kset's own).
    pub fn is_volume(&self) -> bool {
        self.get("SUBSYSTEM") == Some(SUBSYSTEM)
            && self.devpath.starts_with("/fs/bkalloc/")
            && !self.volume().is_empty()
    }

    /// The line `bkalloc events --uevents` prints.
    pub fn line(&self) -> String {
        let mut line = self.action.clone();
        for (k, v) in &self.env {
            if k.starts_with("BKALLOC_") && k != "BKALLOC_UUID" {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        line
    }
}

/// Parses a kernel uevent datagram: `ACTION@DEVPATH`, then NUL-separated `KEY=value`
/// strings. `None` for anything else (udev's re-sent events start with `libudev`).
pub fn parse(buf: &[u8]) -> Option<Uevent> {
    let mut parts = buf.split(|&b| b == 0).filter(|p| !p.is_empty());
    let head = std::str::from_utf8(parts.next()?).ok()?;
    let (action, devpath) = head.split_once('@')?;
    let mut env = Vec::new();
    for p in parts {
        let s = std::str::from_utf8(p).ok()?;
        let (k, v) = s.split_once('=')?;
        env.push((k.to_string(), v.to_string()));
    }
    let ev = Uevent {
        action: action.to_string(),
        devpath: devpath.to_string(),
        env,
    };
    // The header and the variables must agree, as the kernel sends them.
    (ev.get("ACTION") == Some(action) && ev.get("DEVPATH") == Some(devpath)).then_some(ev)
}

/// A socket on the kernel's uevent multicast group.
fn listen() -> crate::Result<OwnedFd> {
    // SAFETY: Plain socket(2) call; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_KOBJECT_UEVENT,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "netlink uevent socket: {e} (the kernel needs CONFIG_NET)"
        ));
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: An all-zero sockaddr_nl is valid; the fields that matter are set below.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = KERNEL_GROUP;
    // SAFETY: `addr` is a valid sockaddr_nl of the length given.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(format!(
            "netlink uevent socket: bind: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd)
}

/// Receives one datagram; `None` if it did not come from the kernel (only the kernel
/// may speak for a volume).
fn receive(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    // SAFETY: As in `listen`.
    let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: `buf` is writable for its length; `from` and `len` describe a valid
    // address buffer.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&raw mut from).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((from.nl_pid == 0).then_some(n as usize))
}

/// Prints the uevents of volume `uuid` (every volume's, with `None`, each line then
/// starting with the uuid) until `count` lines were printed (`None`: until interrupted).
/// Returns false when `timeout` passed first.
pub fn run(
    uuid: Option<&str>,
    count: Option<u64>,
    timeout: Option<Duration>,
) -> crate::Result<bool> {
    let fd = listen()?;
    let end = timeout.map(|t| Instant::now() + t);
    let mut printed = 0u64;
    let mut buf = vec![0u8; 8192];
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|c| printed < c) {
        let left = match end {
            Some(end) => match end.checked_duration_since(Instant::now()) {
                Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
                None => return Ok(false),
            },
            None => -1,
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: One valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        if n == 0 {
            continue;
        }
        let len = match receive(&fd, &mut buf) {
            Ok(Some(len)) => len,
            Ok(None) => continue,
            // The socket's buffer overflowed: say so, events were lost.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                let _ = writeln!(out, "uevents lost (receive buffer full)");
                continue;
            }
            Err(e) => return Err(format!("netlink uevent socket: {e}")),
        };
        let Some(ev) = parse(&buf[..len]).filter(Uevent::is_volume) else {
            continue;
        };
        let line = match uuid {
            Some(u) if ev.volume() != u => continue,
            Some(_) => ev.line(),
            None => format!("{} {}", ev.volume(), ev.line()),
        };
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        printed += 1;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(parts: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for p in parts {
            v.extend_from_slice(p.as_bytes());
            v.push(0);
        }
        v
    }

    const U: &str = "6f1b2c3d-0000-4000-8000-000000000001";

    #[test]
    fn a_volume_change_parses_and_prints_its_bkalloc_variables() {
        let path = format!("/fs/bkalloc/{U}");
        let d = datagram(&[
            &format!("change@{path}"),
            "ACTION=change",
            &format!("DEVPATH={path}"),
            "SUBSYSTEM=bkalloc",
            "BKALLOC_EVENT=discard_error",
            &format!("BKALLOC_UUID={U}"),
            "BKALLOC_DEVICE=/dev/nvme0n1",
            "BKALLOC_DEV=0",
            "BKALLOC_ERROR=-5",
            "SEQNUM=1234",
        ]);
        let ev = parse(&d).expect("parses");
        assert!(ev.is_volume());
        assert_eq!(ev.volume(), U);
        assert_eq!(ev.get("BKALLOC_EVENT"), Some("discard_error"));
        assert_eq!(
            ev.line(),
            "change BKALLOC_EVENT=discard_error BKALLOC_DEVICE=/dev/nvme0n1 BKALLOC_DEV=0 BKALLOC_ERROR=-5"
        );
    }

    #[test]
    fn others_and_malformed_datagrams_are_not_volume_events() {
        // Another subsystem.
        let d = datagram(&[
            "add@/devices/virtual/block/loop0",
            "ACTION=add",
            "DEVPATH=/devices/virtual/block/loop0",
            "SUBSYSTEM=block",
        ]);
        assert!(!parse(&d).unwrap().is_volume());
        // The kset itself.
        let d = datagram(&[
            "add@/fs/bkalloc",
            "ACTION=add",
            "DEVPATH=/fs/bkalloc",
            "SUBSYSTEM=bkalloc",
        ]);
        assert!(!parse(&d).unwrap().is_volume());
        // udev's re-sent form, a header without '@', a header the variables contradict.
        assert_eq!(parse(b"libudev\0\xfe\xed\xca\xfe"), None);
        assert_eq!(parse(&datagram(&["change", "ACTION=change"])), None);
        let d = datagram(&[
            "change@/fs/bkalloc/x",
            "ACTION=add",
            "DEVPATH=/fs/bkalloc/x",
        ]);
        assert_eq!(parse(&d), None);
        assert_eq!(parse(b""), None);
    }
}
