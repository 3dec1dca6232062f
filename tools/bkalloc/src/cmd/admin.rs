// SPDX-License-Identifier: GPL-2.0

//! What an administrator runs against the module's sysfs files: `list`, `register`,
//! `unregister`, `set-option` and `usage`. Errors say what is wrong ("module not
//! loaded", "no volume with uuid X", "volume is still replaying") instead of an errno.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bkcore::options::{OptId, When};
use bkcore::uuid::{self, Hyphenated};
use serde_json::{json, Value};

/// The module's sysfs directory.
pub const SYSFS: &str = "/sys/fs/bkalloc";

/// The module's directory, or why there is none.
pub(crate) fn root() -> crate::Result<PathBuf> {
    let root = PathBuf::from(SYSFS);
    if !root.is_dir() {
        return Err(format!(
            "module not loaded: {SYSFS} does not exist (insmod bkalloc.ko)"
        ));
    }
    Ok(root)
}

/// The directory of the registered volume `uuid`.
pub(crate) fn volume_dir(uuid: &str) -> crate::Result<PathBuf> {
    let u = uuid::parse(uuid).ok_or_else(|| format!("'{uuid}' is not a volume uuid"))?;
    let dir = root()?.join(Hyphenated(&u).to_string());
    if !dir.is_dir() {
        return Err(format!(
            "no volume with uuid {} is registered",
            Hyphenated(&u)
        ));
    }
    Ok(dir)
}

/// A sysfs file's text, without its trailing newline.
pub(crate) fn read(path: &Path) -> crate::Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim_end().to_string())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What an errno from one of the module's files means.
fn explain(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EINVAL) => "refused as invalid; the kernel log says why (dmesg | tail)",
        Some(libc::EROFS) => {
            "the volume is read-only after a failed metadata write (see its state)"
        }
        Some(libc::EAGAIN) => "the volume is still replaying",
        Some(libc::ENODEV) => "the volume is going away",
        Some(libc::EBUSY) => "a device is in use (mounted, or held by another volume)",
        Some(libc::EEXIST) => "a volume with this uuid is registered already",
        Some(libc::EPERM) | Some(libc::EACCES) => "needs root (CAP_SYS_ADMIN)",
        Some(libc::ENOENT) => "no such device",
        Some(libc::ENOTBLK) => "not a block device",
        Some(libc::ECANCELED) => "a blocked request was aborted (abort_waiting)",
        Some(libc::ENOSPC) => "no room: a request cannot be met",
        _ => "failed",
    }
}

/// Writes `value` to the module's file `path` in one write.
pub(crate) fn write_attr(path: &Path, value: &str, what: &str) -> crate::Result<()> {
    let res = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|e| format!("{what}: {} ({e})", explain(&e)))
}

/// The uuids of the registered volumes, sorted.
pub(crate) fn volumes() -> crate::Result<Vec<String>> {
    let mut v = Vec::new();
    for entry in fs::read_dir(root()?).map_err(|e| format!("{SYSFS}: {e}"))? {
        let name = entry.map_err(|e| e.to_string())?.file_name();
        if let Some(name) = name.to_str().filter(|n| uuid::parse(n).is_some()) {
            v.push(name.to_string());
        }
    }
    v.sort();
    Ok(v)
}

/// "name value" lines as a map (values that are numbers become numbers).
pub(crate) fn pairs(text: &str) -> BTreeMap<String, Value> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| {
            let v = v.trim();
            let val = v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n));
            (k.to_string(), val)
        })
        .collect()
}

/// What `list` shows of one volume.
fn volume_summary(uuid: &str) -> crate::Result<Value> {
    let dir = root()?.join(uuid);
    let mut members = Vec::new();
    for i in 0.. {
        let d = dir.join(format!("dev-{i}"));
        if !d.is_dir() {
            break;
        }
        members.push(read(&d.join("device"))?);
    }
    let replay = read(&dir.join("replay"))?;
    let phase = replay
        .split_whitespace()
        .find_map(|w| w.strip_prefix("state="))
        .unwrap_or("unknown")
        .to_string();
    let counters = pairs(&read(&dir.join("counters"))?);
    Ok(json!({
        "uuid": uuid,
        "state": read(&dir.join("state"))?,
        "replay": phase,
        "members": members,
        "opts_gen": read(&dir.join("opts_gen"))?.parse::<u64>().unwrap_or(0),
        "waiters": counters.get("waiters").cloned().unwrap_or(json!(0)),
    }))
}

/// `bkalloc list`: every registered volume, its state and members.
pub fn list(json_out: bool) -> crate::Result<()> {
    let mut all = Vec::new();
    for uuid in volumes()? {
        all.push(volume_summary(&uuid)?);
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    if all.is_empty() {
        println!("no volume registered");
    }
    for v in &all {
        let members: Vec<&str> = v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str())
            .collect();
        println!(
            "{} state {} replay {} waiters {} members {}",
            v["uuid"].as_str().unwrap_or(""),
            v["state"].as_str().unwrap_or(""),
            v["replay"].as_str().unwrap_or(""),
            v["waiters"],
            members.join(",")
        );
    }
    Ok(())
}

/// What `register` takes: the devices, then the options if any.
pub(crate) fn register_line(devices: &[PathBuf], options: Option<&str>) -> String {
    let mut line = devices
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(o) = options {
        line = format!("{line} {o}");
    }
    line
}

/// `bkalloc register`: registers the volume on `devices` (with `options`, an
/// `opt=val,...` list for this registration) and prints its uuid once it is up.
pub fn register(devices: &[PathBuf], options: Option<&str>) -> crate::Result<()> {
    let root = root()?;
    let before = volumes()?;
    write_attr(
        &root.join("register"),
        &register_line(devices, options),
        "register",
    )?;
    for u in volumes()?.into_iter().filter(|u| !before.contains(u)) {
        println!("{u}");
    }
    Ok(())
}

/// `bkalloc unregister`: checkpoints and unregisters the volume `uuid`.
pub fn unregister(uuid: &str) -> crate::Result<()> {
    let dir = volume_dir(uuid)?;
    write_attr(&dir.join("unregister"), "1", "unregister")
}

/// `bkalloc set-option`: a runtime option write, checked against the option table first.
pub fn set_option(uuid: &str, name: &str, value: &str) -> crate::Result<()> {
    let dir = volume_dir(uuid)?;
    let id = OptId::from_name(name)
        .ok_or_else(|| format!("no option '{name}' (bkalloc options lists them)"))?;
    let desc = id.desc();
    if !desc.settable.intersects(When::RUNTIME) {
        return Err(format!(
            "{name} cannot change while the volume is registered (set it at format or register)"
        ));
    }
    desc.parse(value).map_err(|e| e.to_string())?;
    write_attr(
        &dir.join("options").join(name),
        value,
        &format!("{name}={value}"),
    )?;
    println!(
        "{name} {} (opts_gen {})",
        read(&dir.join("options").join(name))?,
        read(&dir.join("opts_gen"))?
    );
    Ok(())
}

/// One look at a volume's buckets per state, waiters and discards.
fn usage_now(dir: &Path) -> crate::Result<Value> {
    let mut members = Vec::new();
    for i in 0.. {
        let d = dir.join(format!("dev-{i}"));
        if !d.is_dir() {
            break;
        }
        let mut m = pairs(&read(&d.join("usage"))?);
        m.insert("device".into(), json!(read(&d.join("device"))?));
        members.push(m);
    }
    let c = pairs(&read(&dir.join("counters"))?);
    let get = |k: &str| c.get(k).cloned().unwrap_or(json!(0));
    Ok(json!({
        "members": members,
        "waiters": get("waiters"),
        "discard_buckets": get("discard_buckets"),
        "released_buckets": get("released_buckets"),
        "discards_issued": get("discards_issued"),
        "allocs": get("allocs"),
        "frees": get("frees"),
    }))
}

/// `bkalloc usage`: buckets per state on each member, waiters and discards; with
/// `watch`, again every `watch` seconds (`count` times, 0 = until interrupted).
pub fn usage(uuid: &str, json_out: bool, watch: Option<u64>, count: u64) -> crate::Result<()> {
    let dir = volume_dir(uuid)?;
    let mut n = 0u64;
    loop {
        let u = usage_now(&dir)?;
        if json_out {
            println!("{}", serde_json::to_string(&u).map_err(|e| e.to_string())?);
        } else {
            print_usage(&u);
        }
        n += 1;
        match watch {
            Some(secs) if count == 0 || n < count => {
                std::thread::sleep(Duration::from_secs(secs.max(1)));
                if !dir.is_dir() {
                    return Err("the volume was unregistered".into());
                }
            }
            _ => return Ok(()),
        }
    }
}

fn print_usage(u: &Value) {
    println!(
        "{:<6} {:>9} {:>9} {:>6} {:>12} {:>9} {:>9}  device",
        "member", "buckets", "free", "open", "need_discard", "btree", "user"
    );
    for (i, m) in u["members"].as_array().into_iter().flatten().enumerate() {
        println!(
            "dev-{i:<2} {:>9} {:>9} {:>6} {:>12} {:>9} {:>9}  {}",
            m["buckets"],
            m["free"],
            m["open"],
            m["need_discard"],
            m["btree"],
            m["user"],
            m["device"].as_str().unwrap_or("")
        );
    }
    println!(
        "waiters {}  allocs {}  frees {}  discarded {} buckets in {} discards, released {}",
        u["waiters"],
        u["allocs"],
        u["frees"],
        u["discard_buckets"],
        u["discards_issued"],
        u["released_buckets"]
    );
}
