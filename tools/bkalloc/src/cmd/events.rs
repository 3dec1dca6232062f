// SPDX-License-Identifier: GPL-2.0

//! `bkalloc events UUID`: a volume's changes as they happen. The module wakes `poll()`
//! on `waiters`, `alloc_stuck`, `replay` and `state` when they change
//! (`sysfs_notify`); each wake prints one line, the file's name and what it says now
//! (for `waiters`, how many wait): `waiters: 1`, `replay: state=done ...`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::admin::volume_dir;

/// The files watched, in the order their lines print when several change at once.
const FILES: [&str; 4] = ["replay", "state", "waiters", "alloc_stuck"];

/// What `name` says now, on one line.
fn summary(name: &str, text: &str) -> String {
    match name {
        "waiters" => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
            .to_string(),
        _ => text.lines().next().unwrap_or("").trim().to_string(),
    }
}

/// Reads `f` from the start (which also re-arms its poll).
fn reread(f: &mut File) -> std::io::Result<String> {
    f.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok(text)
}

/// Prints changes of volume `uuid` until `count` lines were printed (`None`: until
/// interrupted or the volume goes away). Returns false when `timeout` passed first.
pub fn run(uuid: &str, count: Option<u64>, timeout: Option<Duration>) -> crate::Result<bool> {
    let dir = volume_dir(uuid)?;
    let mut files = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        let mut f = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        // A sysfs file's poll() wakes only after it was read once.
        reread(&mut f).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push((name, f));
    }
    let end = timeout.map(|t| Instant::now() + t);
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    while count.is_none_or(|c| printed < c) {
        let left = match end {
            Some(end) => match end.checked_duration_since(Instant::now()) {
                Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
                None => return Ok(false),
            },
            None => -1,
        };
        let mut fds: Vec<libc::pollfd> = files
            .iter()
            .map(|(_, f)| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLPRI | libc::POLLERR,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, left) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        for (i, (name, f)) in files.iter_mut().enumerate() {
            if fds[i].revents & (libc::POLLPRI | libc::POLLERR) == 0 {
                continue;
            }
            let text = match reread(f) {
                Ok(t) => t,
                // The files went with the volume.
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                    let _ = writeln!(out, "volume gone");
                    return Ok(true);
                }
                Err(e) => return Err(format!("{name}: {e}")),
            };
            let _ = writeln!(out, "{name}: {}", summary(name, &text));
            let _ = out.flush();
            printed += 1;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summaries() {
        assert_eq!(summary("waiters", ""), "0");
        assert_eq!(summary("waiters", "1 btree ...\n2 user ...\n"), "2");
        assert_eq!(
            summary("replay", "state=done replayed=3\n"),
            "state=done replayed=3"
        );
        assert_eq!(
            summary("alloc_stuck", "waiter 1 stuck\n  dev0 ...\n"),
            "waiter 1 stuck"
        );
        assert_eq!(summary("state", ""), "");
    }
}
