// SPDX-License-Identifier: GPL-2.0

//! `bkalloc bench`: the measuring halves of `make bench`, run in the test VM. Each prints
//! one JSON object on one line: what ran, how long, the rate, and latency percentiles
//! and a CDF from every sample (no histogram buckets).
//!
//! - `bench inserts UUID --writers N --count C [--first K]`: N threads, each inserting C
//!   keys of its own through `/dev/bkalloc` (keys K + w*C ..); each insert is durable
//!   when it returns. `cpu_busy` is the share of all CPUs' time that was busy meanwhile
//!   (`/proc/stat`).
//! - `bench write-flush DEVICE --count C [--offset BYTES]`: the device's own rate of a
//!   4 KiB O_DIRECT write followed by a flush (`fdatasync`), in a loop: the physical
//!   limit a durable insert is measured against.
//! - `bench restart UUID --trials N`: wake-to-restart. Each trial parks a user alloc
//!   that `data_replicas=2` cannot serve, writes `data_replicas=1` and times from the
//!   write to the alloc's return (then frees its bucket and writes 2 back). The
//!   baseline is the option write alone, nobody waiting: its superblock I/O. The
//!   module's own `restart_latency_ns_*` (the write's wake to the rebuilt attempt)
//!   come along, and `parts`: each trial's split from the module's `last_*_ns`
//!   counters (the option write's wait for the lock and its superblock writes; the
//!   restart's wake, lock and rebuild, and their sum), as percentiles over the trials.
//! - `bench register DEVICE... [--options OPTS] [--label L]`: registers the volume on the
//!   devices and unregisters it, timing both, with what the module then holds: buckets,
//!   keys, the replay's keys and time, and its memory counters.
//! - `bench discard DEVICE --bucket-size BYTES --trace FILE --dev D`: the discard
//!   thread's rate, from the `bkalloc_discard` events of member D in a tracefs trace
//!   (buckets after the first event over the time from it to the last), against one
//!   process issuing BLKDISCARD over the same ranges of DEVICE, each holding a written
//!   first block again as the scenario left them (the volume must be unregistered).

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bkcore::ctl_abi::{
    AllocArgs, FreeArgs, InsertArgs, FROM_OPTIONS, IOC_ALLOC, IOC_FREE, IOC_INSERT,
};
use bkcore::uuid;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::build::value_for;
use crate::ctl::{ioctl_on, open_ctl};

/// `bkalloc bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Concurrent durable inserts through /dev/bkalloc.
    Inserts {
        /// The volume's uuid.
        volume: String,
        /// Threads, each with its own keys.
        #[arg(long, default_value_t = 1)]
        writers: u64,
        /// Inserts per thread.
        #[arg(long)]
        count: u64,
        /// The first key.
        #[arg(long, default_value_t = 1)]
        first: u64,
    },
    /// Wake-to-restart: an option write that lets a parked alloc through.
    Restart {
        /// The volume's uuid: a 2-replica user alloc must wait on it, a 1-replica one
        /// must not.
        volume: String,
        /// Trials.
        #[arg(long)]
        trials: u64,
    },
    /// Register and unregister, timed, with the volume's size and memory.
    Register {
        /// The member devices, in order.
        devices: Vec<PathBuf>,
        /// Register options (`opt=val,...`).
        #[arg(long)]
        options: Option<String>,
        /// A name for this run in the result.
        #[arg(long, default_value = "register")]
        label: String,
    },
    /// The discard thread's rate from a trace, against BLKDISCARD over the same ranges
    /// (destroys what they hold).
    Discard {
        /// The member device, not registered.
        device: PathBuf,
        /// The volume's bucket size in bytes.
        #[arg(long)]
        bucket_size: u64,
        /// A copy of /sys/kernel/tracing/trace with the bkalloc_discard events.
        #[arg(long)]
        trace: PathBuf,
        /// The member index whose events count.
        #[arg(long)]
        dev: u32,
    },
    /// A 4 KiB O_DIRECT write and a flush, in a loop (destroys what is at --offset).
    WriteFlush {
        /// A scratch device or file.
        device: PathBuf,
        /// Writes.
        #[arg(long)]
        count: u64,
        /// Where to write, in bytes (a multiple of 4096).
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
}

/// The `q` quantile (0..=1) of sorted `v`, by the nearest-rank method.
fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Latency figures of `samples` (ns): percentiles, and a CDF of at most 50 points
/// (`[ns, fraction at or below]`).
fn latency(mut samples: Vec<u64>) -> Value {
    samples.sort_unstable();
    let n = samples.len();
    let step = n.div_ceil(50).max(1);
    let mut cdf: Vec<Value> = (step - 1..n)
        .step_by(step)
        .map(|i| json!([samples[i], (i + 1) as f64 / n as f64]))
        .collect();
    if n > 0 && (n - 1) % step != step - 1 {
        cdf.push(json!([samples[n - 1], 1.0]));
    }
    json!({
        "samples": n,
        "p50": quantile(&samples, 0.50),
        "p99": quantile(&samples, 0.99),
        "max": samples.last().copied().unwrap_or(0),
        "cdf": cdf,
    })
}

/// The result line of a run of `ops` operations in `took` with `samples`.
fn result(bench: &str, ops: u64, took: Duration, samples: Vec<u64>, extra: Value) -> Value {
    let secs = took.as_secs_f64();
    let mut v = json!({
        "bench": bench,
        "ops": ops,
        "secs": secs,
        "per_s": if secs > 0.0 { ops as f64 / secs } else { 0.0 },
        "lat_ns": latency(samples),
    });
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// The machine's CPU time so far, from `/proc/stat`'s `cpu` line, in ticks: busy (all
/// but idle and iowait) and total.
fn cpu_ticks() -> crate::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("/proc/stat: no cpu line")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().map_err(|_| format!("/proc/stat: '{line}'")))
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal (guest time is in user already).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

fn inserts(volume: &str, writers: u64, count: u64, first: u64) -> crate::Result<Value> {
    let uuid = uuid::parse(volume).ok_or_else(|| format!("'{volume}' is not a volume uuid"))?;
    if writers == 0 || count == 0 {
        return Err("--writers and --count must be at least 1".into());
    }
    let cpu_before = cpu_ticks()?;
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            std::thread::spawn(move || -> crate::Result<Vec<u64>> {
                let ctl = open_ctl().map_err(|e| format!("/dev/bkalloc: {e}"))?;
                let mut lat = Vec::with_capacity(count as usize);
                for i in 0..count {
                    let key = first + w * count + i;
                    let args = InsertArgs {
                        uuid,
                        key,
                        value: value_for(key),
                        seq: 0,
                    };
                    let t = Instant::now();
                    ioctl_on(&ctl, IOC_INSERT, &args)
                        .map_err(|e| format!("insert key {key}: {e}"))?;
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                Ok(lat)
            })
        })
        .collect();
    let mut samples = Vec::new();
    for t in threads {
        samples.extend(t.join().map_err(|_| "a writer panicked".to_string())??);
    }
    let took = start.elapsed();
    let cpu_after = cpu_ticks()?;
    let (busy, total) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    Ok(result(
        "inserts",
        writers * count,
        took,
        samples,
        json!({
            "writers": writers,
            // The share of every CPU's time that was busy during the run.
            "cpu_busy": if total > 0 { busy as f64 / total as f64 } else { 0.0 },
        }),
    ))
}

/// Writes `value` to a volume's sysfs file, returning how long it took.
fn write_file(path: &std::path::Path, value: &str) -> crate::Result<Duration> {
    let t = Instant::now();
    std::fs::write(path, value).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(t.elapsed())
}

/// `counters` as name -> value.
fn counters(dir: &std::path::Path) -> crate::Result<std::collections::BTreeMap<String, Value>> {
    Ok(super::admin::pairs(&super::admin::read(
        &dir.join("counters"),
    )?))
}

/// The module's `counters` that split one option write and the restart it causes,
/// each with its name in the result's `parts`.
const PARTS: [(&str, &str); 6] = [
    ("last_option_lock_ns", "option_lock"),
    ("last_option_superblock_ns", "option_superblock"),
    ("last_restart_wake_ns", "wake"),
    ("last_restart_lock_ns", "lock"),
    ("last_restart_rebuild_ns", "rebuild"),
    ("last_restart_ns", "restart"),
];

fn restart(volume: &str, trials: u64) -> crate::Result<Value> {
    let uuid = uuid::parse(volume).ok_or_else(|| format!("'{volume}' is not a volume uuid"))?;
    let dir = super::admin::volume_dir(volume)?;
    let replicas = dir.join("options/data_replicas");
    let waiters = dir.join("waiters");
    let before = counters(&dir)?;
    let ctl = std::sync::Arc::new(open_ctl().map_err(|e| format!("/dev/bkalloc: {e}"))?);
    let (mut samples, mut writes) = (Vec::new(), Vec::new());
    let mut parts = vec![Vec::new(); PARTS.len()];
    let num = |m: &std::collections::BTreeMap<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_u64).unwrap_or(0)
    };
    let mut restarts = num(&before, "restarts");
    let start = Instant::now();
    for trial in 0..trials {
        // The baseline: the same write with nobody waiting.
        writes.push(write_file(&replicas, "2")?.as_nanos() as u64);
        let c = ctl.clone();
        let alloc = std::thread::spawn(move || {
            let args = AllocArgs {
                uuid,
                kind: 1,
                replicas: FROM_OPTIONS,
                watermark: FROM_OPTIONS,
                deadline_secs: FROM_OPTIONS,
                ..Default::default()
            };
            let r = ioctl_on(&c, IOC_ALLOC, &args);
            (r, Instant::now())
        });
        // Parked: its line is in `waiters`.
        let parked_by = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&waiters)
            .map_err(|e| e.to_string())?
            .trim()
            .is_empty()
        {
            if Instant::now() > parked_by || alloc.is_finished() {
                return Err(format!(
                    "trial {trial}: the 2-replica alloc did not wait (is a device starved?)"
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let t0 = Instant::now();
        write_file(&replicas, "1")?;
        let (r, done) = alloc
            .join()
            .map_err(|_| "the alloc thread panicked".to_string())?;
        let got = r.map_err(|e| format!("trial {trial}: alloc after the option write: {e}"))?;
        samples.push(done.duration_since(t0).as_nanos() as u64);
        // This trial's parts, when its restart is the only one since the last trial
        // (a module without them has no `last_*` counters: no parts).
        let now = counters(&dir)?;
        let n = num(&now, "restarts");
        if n == restarts + 1 {
            let got: Option<Vec<u64>> = PARTS
                .iter()
                .map(|(k, _)| now.get(*k).and_then(Value::as_u64))
                .collect();
            for (all, v) in parts.iter_mut().zip(got.unwrap_or_default()) {
                all.push(v);
            }
        }
        restarts = n;
        let mut free = FreeArgs {
            uuid,
            n: got.n,
            ..Default::default()
        };
        free.buckets = got.buckets;
        ioctl_on(&ctl, IOC_FREE, &free).map_err(|e| format!("trial {trial}: free: {e}"))?;
    }
    let took = start.elapsed();
    let after = counters(&dir)?;
    let get = |k: &str| num(&after, k);
    let restarts = get("restarts").saturating_sub(num(&before, "restarts"));
    Ok(result(
        "restart",
        trials,
        took,
        samples,
        json!({
            "parts": PARTS
                .iter()
                .zip(parts)
                .map(|((_, name), v)| (name.to_string(), latency(v)))
                .collect::<serde_json::Map<_, _>>(),
            "option_write_ns": latency(writes),
            "module": {
                "restarts": restarts,
                "restart_latency_ns_p50": get("restart_latency_ns_p50"),
                "restart_latency_ns_p99": get("restart_latency_ns_p99"),
                "restart_latency_ns_max": get("restart_latency_ns_max"),
            },
        }),
    ))
}

/// A 4 KiB buffer aligned for O_DIRECT.
#[repr(C, align(4096))]
struct Block([u8; 4096]);

fn write_flush(device: &PathBuf, count: u64, offset: u64) -> crate::Result<Value> {
    if !offset.is_multiple_of(4096) || count == 0 {
        return Err("--offset must be a multiple of 4096 and --count at least 1".into());
    }
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(device)
        .map_err(|e| format!("{}: {e}", device.display()))?;
    let mut block = Box::new(Block([0u8; 4096]));
    let start = Instant::now();
    let mut samples = Vec::with_capacity(count as usize);
    for i in 0..count {
        block.0[..8].copy_from_slice(&i.to_le_bytes());
        let t = Instant::now();
        f.write_all_at(&block.0, offset)
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("{}: write and flush {i}: {e}", device.display()))?;
        samples.push(t.elapsed().as_nanos() as u64);
    }
    Ok(result(
        "write_flush",
        count,
        start.elapsed(),
        samples,
        json!({}),
    ))
}

fn register(devices: &[PathBuf], options: Option<&str>, label: &str) -> crate::Result<Value> {
    use super::admin::{pairs, read, register_line, root, volumes, write_attr};
    let root = root()?;
    let before = volumes()?;
    let line = register_line(devices, options);
    let t = Instant::now();
    write_attr(&root.join("register"), &line, "register")?;
    let register_ns = t.elapsed().as_nanos() as u64;
    let uuid = volumes()?
        .into_iter()
        .find(|u| !before.contains(u))
        .ok_or("register: no new volume appeared")?;
    let dir = root.join(&uuid);
    // What the module holds now; the volume goes again whatever happens.
    let figures = || -> crate::Result<Value> {
        let counters = pairs(&read(&dir.join("counters"))?);
        let num = |k: &str| counters.get(k).and_then(Value::as_u64).unwrap_or(0);
        let mut buckets = 0;
        for i in 0..devices.len() {
            let usage = pairs(&read(&dir.join(format!("dev-{i}/usage")))?);
            buckets += usage.get("buckets").and_then(Value::as_u64).unwrap_or(0);
        }
        let cache_mib: u64 = read(&dir.join("options/btree_cache_size"))?
            .trim()
            .parse()
            .map_err(|e| format!("options/btree_cache_size: {e}"))?;
        let text = read(&dir.join("replay"))?;
        let replay = pairs(&text.replace(' ', "\n").replace('=', " "));
        let rnum = |k: &str| replay.get(k).and_then(Value::as_u64).unwrap_or(0);
        if replay.get("state").and_then(Value::as_str) != Some("done")
            || rnum("replayed") != rnum("total")
        {
            return Err(format!("register: replay did not finish: {text}"));
        }
        Ok(json!({
            "bench": "register",
            "label": label,
            "register_ms": register_ns as f64 / 1e6,
            "members": devices.len(),
            "buckets": buckets,
            "keys": num("btree_keys"),
            "replayed": rnum("replayed"),
            "replay_ms": rnum("elapsed_ms"),
            "memory_bucket_bytes": num("memory_bucket_bytes"),
            "memory_btree_bytes": num("memory_btree_bytes"),
            "btree_cache_bytes": num("btree_cache_bytes"),
            "btree_cache_size_bytes": cache_mib << 20,
        }))
    };
    let res = figures();
    let t = Instant::now();
    write_attr(&dir.join("unregister"), "1", "unregister")?;
    let unregister_ms = t.elapsed().as_nanos() as f64 / 1e6;
    let mut v = res?;
    if let Some(o) = v.as_object_mut() {
        o.insert("unregister_ms".into(), json!(unregister_ms));
    }
    Ok(v)
}

/// One `bkalloc_discard` event: when it fired (seconds), and its range in buckets.
#[derive(Debug, PartialEq)]
struct DiscardEvent {
    at: f64,
    first: u64,
    buckets: u64,
}

/// The successful `bkalloc_discard` events of member `dev` in a tracefs `trace`, in
/// order. A line reads `TASK-PID [CPU] FLAGS SECONDS: bkalloc_discard: UUID dev=D
/// first=F buckets=N err=E`.
fn discard_events(trace: &str, dev: u32) -> Vec<DiscardEvent> {
    let field = |words: &[&str], name: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse::<i64>().ok())
    };
    trace
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" bkalloc_discard: ")?;
            let at = head
                .split_whitespace()
                .last()?
                .strip_suffix(':')?
                .parse()
                .ok()?;
            let words: Vec<&str> = tail.split_whitespace().collect();
            (field(&words, "dev")? == i64::from(dev) && field(&words, "err")? == 0).then_some(())?;
            Some(DiscardEvent {
                at,
                first: u64::try_from(field(&words, "first")?).ok()?,
                buckets: u64::try_from(field(&words, "buckets")?).ok()?,
            })
        })
        .collect()
}

/// BLKDISCARD, `_IO(0x12, 119)`.
const BLKDISCARD: libc::c_ulong = 0x1277;

fn discard(device: &PathBuf, bucket_size: u64, trace: &PathBuf, dev: u32) -> crate::Result<Value> {
    let text = std::fs::read_to_string(trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let events = discard_events(&text, dev);
    if events.len() < 2 || bucket_size == 0 || !bucket_size.is_multiple_of(4096) {
        return Err(format!(
            "{}: {} bkalloc_discard events of dev {dev} (need 2), bucket size {bucket_size}",
            trace.display(),
            events.len()
        ));
    }
    // The first event ends a batch that began before any timestamp: it only
    // starts the clock.
    let timed = &events[1..];
    let buckets: u64 = timed.iter().map(|e| e.buckets).sum();
    let module_secs = events[events.len() - 1].at - events[0].at;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(device)
        .map_err(|e| format!("{}: {e}", device.display()))?;
    // Data back in each bucket's first block, as before the module's discards.
    let block = Box::new(Block([0xa5u8; 4096]));
    for e in timed {
        for b in e.first..e.first + e.buckets {
            f.write_all_at(&block.0, b * bucket_size)
                .map_err(|err| format!("{}: bucket {b}: {err}", device.display()))?;
        }
    }
    f.sync_all()
        .map_err(|e| format!("{}: flush: {e}", device.display()))?;
    let mut samples = Vec::with_capacity(timed.len());
    let start = Instant::now();
    for e in timed {
        let range: [u64; 2] = [e.first * bucket_size, e.buckets * bucket_size];
        let t = Instant::now();
        // SAFETY: BLKDISCARD reads two u64s (start, length) from the pointer, which
        // points to `range`, alive for the call.
        let r = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&f),
                BLKDISCARD,
                range.as_ptr(),
            )
        };
        if r != 0 {
            return Err(format!(
                "{}: BLKDISCARD of buckets {}+{}: {}",
                device.display(),
                e.first,
                e.buckets,
                std::io::Error::last_os_error()
            ));
        }
        samples.push(t.elapsed().as_nanos() as u64);
    }
    let took = start.elapsed();
    let secs = took.as_secs_f64();
    Ok(result(
        "discard",
        buckets,
        took,
        samples,
        json!({
            "ranges": timed.len(),
            "module_secs": module_secs,
            "module_per_s": if module_secs > 0.0 { buckets as f64 / module_secs } else { 0.0 },
            "blkdiscard_per_s": if secs > 0.0 { buckets as f64 / secs } else { 0.0 },
        }),
    ))
}

/// Runs `bkalloc bench`: prints the result as one JSON line.
pub fn run(args: &BenchArgs) -> crate::Result<()> {
    let v = match &args.what {
        Bench::Inserts {
            volume,
            writers,
            count,
            first,
        } => inserts(volume, *writers, *count, *first)?,
        Bench::WriteFlush {
            device,
            count,
            offset,
        } => write_flush(device, *count, *offset)?,
        Bench::Restart { volume, trials } => restart(volume, *trials)?,
        Bench::Register {
            devices,
            options,
            label,
        } => register(devices, options.as_deref(), label)?,
        Bench::Discard {
            device,
            bucket_size,
            trace,
            dev,
        } => discard(device, *bucket_size, trace, *dev)?,
    };
    println!("{v}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discard_events_of_one_member() {
        let trace = "\
# tracer: nop
 kworker/u8:1-35 [001] ..... 101.500000: bkalloc_discard: 0a0b dev=0 first=100 buckets=64 err=0
 kworker/u8:1-35 [001] ..... 101.750000: bkalloc_discard: 0a0b dev=1 first=7 buckets=3 err=0
 kworker/u8:1-35 [000] ..... 102.000000: bkalloc_discard: 0a0b dev=0 first=164 buckets=64 err=-5
 kworker/u8:1-35 [000] ..... 102.250000: bkalloc_discard: 0a0b dev=0 first=164 buckets=32 err=0
 kworker/u8:1-35 [000] ..... 102.300000: bkalloc_alloc: 0a0b dev=0 first=1 buckets=1 err=0
";
        assert_eq!(
            discard_events(trace, 0),
            vec![
                DiscardEvent {
                    at: 101.5,
                    first: 100,
                    buckets: 64
                },
                DiscardEvent {
                    at: 102.25,
                    first: 164,
                    buckets: 32
                },
            ]
        );
        assert_eq!(discard_events(trace, 1).len(), 1);
        assert!(discard_events(trace, 2).is_empty());
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn cdf_ends_at_the_maximum() {
        for n in [1u64, 7, 50, 51, 1000, 1234] {
            let l = latency((1..=n).rev().collect());
            let cdf = l["cdf"].as_array().expect("cdf");
            assert!(cdf.len() <= 51, "{n}: {}", cdf.len());
            let last = cdf.last().expect("a point");
            assert_eq!(last[0], n, "{n}");
            assert_eq!(last[1], 1.0, "{n}");
            assert_eq!(l["max"], n);
            // Non-decreasing in both coordinates.
            for w in cdf.windows(2) {
                assert!(w[0][0].as_u64() <= w[1][0].as_u64());
                assert!(w[0][1].as_f64() < w[1][1].as_f64());
            }
        }
    }

    #[test]
    fn write_flush_on_a_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("scratch");
        std::fs::write(&p, vec![0u8; 8192]).expect("scratch");
        // tmpfs has no O_DIRECT: only check the argument errors there.
        match write_flush(&p, 3, 4096) {
            Ok(v) => {
                assert_eq!(v["ops"], 3);
                assert_eq!(v["lat_ns"]["samples"], 3);
            }
            Err(e) => assert!(e.contains("Invalid argument"), "{e}"),
        }
        assert!(write_flush(&p, 3, 100).is_err());
        assert!(write_flush(&p, 0, 0).is_err());
    }
}
