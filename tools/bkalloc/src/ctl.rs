// SPDX-License-Identifier: GPL-2.0

//! Commands that drive a registered volume through `/dev/bkalloc`: alloc,
//! free, status, insert, get, flush; and the raw ioctl `bkalloc fuzz` uses.
//! The ioctl structures are `bkcore::ctl_abi`, the module's own.

use bkcore::ctl_abi::{
    AllocArgs, BucketRef, Decode, Encode, FlushArgs, FreeArgs, GetArgs, InsertArgs, StatusArgs,
    VersionArgs, ABI_VERSION, FROM_OPTIONS, IOC_ALLOC, IOC_FLUSH, IOC_FREE, IOC_GET, IOC_INSERT,
    IOC_STATUS, IOC_VERSION,
};
use bkcore::format::{Value, VALUE_SIZE};
use bkcore::placement::{Kind, MAX_REPLICAS};
use bkcore::uuid::{self, Uuid};
use bkcore::watermark::Watermark;
use std::fmt::Write;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::build::value_for;

/// The control device.
pub const CTL_PATH: &str = "/dev/bkalloc";

/// How many offending keys `get --verify` names on stderr.
const MAX_REPORTED: usize = 5;

fn parse_uuid(s: &str) -> crate::Result<Uuid> {
    uuid::parse(s).ok_or_else(|| format!("'{s}' is not a volume uuid"))
}

/// Opens the control device for reading and writing.
pub(crate) fn open_ctl() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(CTL_PATH)
}

/// Issues ioctl `cmd` on `args` (in and out) through an open control device.
pub(crate) fn ioctl_on<T: Encode + Decode>(ctl: &File, cmd: u32, args: &T) -> io::Result<T> {
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

/// Issues ioctl number `cmd` on the open control device with `arg` as it is: no encoding,
/// no size check, the pointer handed to the kernel unchanged. Returns the ioctl's return
/// value, or the errno it failed with. For `bkalloc fuzz`, which sends hostile command
/// numbers, payloads and pointers.
///
/// # Safety
///
/// The module may write through `arg` as many bytes as the size field of `cmd` says (at
/// most 0x3fff). `arg` must be null, or an address this process cannot write (unmapped,
/// read-only, outside user space), or point to at least that many bytes that the caller
/// owns and that nothing else reads or writes during the call.
pub unsafe fn ioctl_raw(ctl: &File, cmd: u32, arg: *mut libc::c_void) -> Result<i32, i32> {
    // SAFETY: the caller guarantees that whatever the kernel may write through `arg` is
    // either refused by the kernel (EFAULT) or memory the caller set aside for it; `ctl`
    // stays open across the call.
    let ret = unsafe { libc::ioctl(ctl.as_raw_fd(), cmd as libc::c_ulong, arg) };
    if ret < 0 {
        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(ret)
}

/// Issues ioctl `cmd` on `args` (in and out).
fn ioctl<T: Encode + Decode>(cmd: u32, args: &T) -> io::Result<T> {
    ioctl_on(&open_ctl()?, cmd, args)
}

/// Parses a value given as `2 * VALUE_SIZE` hex digits (either case), byte 0 first: the
/// form `get` prints.
pub fn parse_value_hex(s: &str) -> crate::Result<Value> {
    if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "'{c}' at position {i} is not a hex digit (a value is {} hex digits)",
            2 * VALUE_SIZE
        ));
    }
    if s.len() != 2 * VALUE_SIZE {
        return Err(format!(
            "{} hex digits, a value is {} ({VALUE_SIZE} bytes)",
            s.len(),
            2 * VALUE_SIZE
        ));
    }
    let mut v = [0u8; VALUE_SIZE];
    for (i, b) in v.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(v)
}

/// A value as `2 * VALUE_SIZE` lower-case hex digits, byte 0 first.
pub fn value_hex(v: &Value) -> String {
    let mut s = String::with_capacity(2 * v.len());
    for b in v {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The keys `from`, `from + step`, … (`count` of them, the last one at most `u64::MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRange {
    from: u64,
    count: u64,
    step: u64,
}

impl KeyRange {
    /// One key.
    pub fn one(key: u64) -> Self {
        Self {
            from: key,
            count: 1,
            step: 1,
        }
    }

    /// `count` keys from `from`, `step` apart; refuses an empty range, a zero step and a
    /// range that runs past `u64::MAX`.
    pub fn new(from: u64, count: u64, step: u64) -> crate::Result<Self> {
        if count == 0 {
            return Err("--count must be at least 1".into());
        }
        if step == 0 {
            return Err("--step must be at least 1".into());
        }
        (count - 1)
            .checked_mul(step)
            .and_then(|span| from.checked_add(span))
            .ok_or_else(|| {
                format!(
                    "--from {from} --count {count} --step {step} runs past the largest key ({})",
                    u64::MAX
                )
            })?;
        Ok(Self { from, count, step })
    }

    /// How many keys.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The keys, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> {
        let Self { from, step, .. } = *self;
        // `new` checked that the last one fits.
        (0..self.count).map(move |i| from + i * step)
    }
}

/// Which keys `insert` and `get` work on: `KEY`, or `--from A --count N [--step S]`.
#[derive(Clone, Debug, clap::Args)]
pub struct KeyArgs {
    /// The key.
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub key: Option<u64>,
    /// First key of a range (instead of KEY).
    #[arg(long, requires = "count")]
    pub from: Option<u64>,
    /// Keys in the range.
    #[arg(long, requires = "from")]
    pub count: Option<u64>,
    /// Distance between keys of the range [default: 1].
    #[arg(long, requires = "from")]
    pub step: Option<u64>,
}

impl KeyArgs {
    /// The keys these arguments name.
    pub fn keys(&self) -> crate::Result<KeyRange> {
        match (self.key, self.from, self.count) {
            (Some(key), None, None) => Ok(KeyRange::one(key)),
            (None, Some(from), Some(count)) => KeyRange::new(from, count, self.step.unwrap_or(1)),
            _ => Err("give either KEY or --from A --count N".into()),
        }
    }
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
pub fn status(volume: &str, json: bool) -> crate::Result<()> {
    let args = StatusArgs {
        uuid: parse_uuid(volume)?,
        ..Default::default()
    };
    let s = ioctl(IOC_STATUS, &args).map_err(|e| format!("status: {e}"))?;
    if json {
        println!("{}", status_json(&s));
        return Ok(());
    }
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

/// `status --json`: `opts_gen`, `waiters` and per member its bucket counts.
fn status_json(s: &StatusArgs) -> serde_json::Value {
    let devices: Vec<serde_json::Value> = s
        .devs
        .iter()
        .take(s.members as usize)
        .enumerate()
        .map(|(i, d)| {
            serde_json::json!({
                "dev": i,
                "free": d.free,
                "open": d.open,
                "need_discard": d.need_discard,
                "btree": d.btree,
                "user": d.user,
            })
        })
        .collect();
    serde_json::json!({
        "opts_gen": s.opts_gen,
        "waiters": s.waiters,
        "devices": devices,
    })
}

/// Inserts each of `keys` through `insert` (which returns the journal sequence number),
/// with `value` or `value_for(key)`; stops at the first error, naming the key and how
/// many went in before it. Returns the lowest and highest sequence numbers.
fn insert_keys(
    keys: &KeyRange,
    value: Option<Value>,
    mut insert: impl FnMut(u64, &Value) -> io::Result<u64>,
) -> crate::Result<(u64, u64)> {
    let mut seqs: Option<(u64, u64)> = None;
    for (done, key) in keys.iter().enumerate() {
        let seq = insert(key, &value.unwrap_or_else(|| value_for(key)))
            .map_err(|e| format!("insert key {key} failed after {done} keys: {e}"))?;
        seqs = Some(seqs.map_or((seq, seq), |(lo, hi)| (lo.min(seq), hi.max(seq))));
    }
    // `keys` is never empty.
    Ok(seqs.unwrap_or_default())
}

/// Acknowledgement lines for crash tests: `bkack WORDS`, one per 512-byte sector of a
/// device from a given sector on, each written with O_DIRECT (and so ordered in a write
/// log with the device writes around it).
pub struct Acks {
    file: File,
    sector: u64,
}

/// A 512-byte sector aligned for O_DIRECT.
#[repr(C, align(4096))]
struct Sector([u8; 512]);

impl Acks {
    /// Parses `DEVICE:SECTOR` and opens the device.
    pub fn open(spec: &str) -> crate::Result<Self> {
        let (dev, sector) = spec
            .rsplit_once(':')
            .and_then(|(d, s)| Some((d, s.parse::<u64>().ok()?)))
            .ok_or_else(|| format!("--ack {spec}: expected DEVICE:SECTOR"))?;
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(dev)
            .map_err(|e| format!("--ack {dev}: {e}"))?;
        Ok(Self { file, sector })
    }

    /// Writes `bkack WORDS` to the next sector.
    pub fn ack(&mut self, words: &str) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut s = Box::new(Sector([0u8; 512]));
        let line = format!("bkack {words}\n");
        let n = line.len().min(512);
        s.0[..n].copy_from_slice(&line.as_bytes()[..n]);
        self.file.write_all_at(&s.0, self.sector * 512)?;
        self.sector += 1;
        Ok(())
    }
}

/// `bkalloc insert`: inserts each key (with `value`, or `value_for(key)`), each durable
/// before the next; prints the count and the journal sequence numbers they landed in.
/// With `acks`, `begin insert KEY` before each insert and `insert KEY` once it is durable.
pub fn insert(
    volume: &str,
    keys: &KeyArgs,
    value: Option<Value>,
    mut acks: Option<Acks>,
) -> crate::Result<()> {
    let uuid = parse_uuid(volume)?;
    let keys = keys.keys()?;
    let ctl = open_ctl().map_err(|e| format!("insert: {CTL_PATH}: {e}"))?;
    let (lo, hi) = insert_keys(&keys, value, |key, value| {
        let args = InsertArgs {
            uuid,
            key,
            value: *value,
            seq: 0,
        };
        if let Some(a) = acks.as_mut() {
            a.ack(&format!("begin insert {key}"))?;
        }
        let seq = ioctl_on(&ctl, IOC_INSERT, &args)?.seq;
        if let Some(a) = acks.as_mut() {
            a.ack(&format!("insert {key}"))?;
        }
        Ok(seq)
    })?;
    println!("inserted {} keys (journal seq {lo}..={hi})", keys.count());
    Ok(())
}

/// What `get --verify` found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Verified {
    /// Keys present (wrong ones included).
    found: u64,
    /// Keys absent.
    missing: u64,
    /// Keys present with another value than `value_for(key)`.
    wrong: u64,
    /// The first [`MAX_REPORTED`] missing or wrong keys, described.
    offending: Vec<String>,
}

impl Verified {
    fn ok(&self) -> bool {
        self.missing == 0 && self.wrong == 0
    }
}

/// Looks up each of `keys` through `get` (`None`: not found) and checks it holds
/// `value_for(key)`; stops at the first error, naming the key.
fn verify_keys(
    keys: &KeyRange,
    mut get: impl FnMut(u64) -> io::Result<Option<Value>>,
) -> crate::Result<Verified> {
    let mut v = Verified::default();
    for (done, key) in keys.iter().enumerate() {
        let got = get(key).map_err(|e| format!("get key {key} failed after {done} keys: {e}"))?;
        let expected = value_for(key);
        let problem = match got {
            None => {
                v.missing += 1;
                format!("key {key} missing")
            }
            Some(value) => {
                v.found += 1;
                if value == expected {
                    continue;
                }
                v.wrong += 1;
                format!(
                    "key {key} wrong: {} (expected {})",
                    value_hex(&value),
                    value_hex(&expected)
                )
            }
        };
        if v.offending.len() < MAX_REPORTED {
            v.offending.push(problem);
        }
    }
    Ok(v)
}

/// `bkalloc get`: prints `KEY VALUEHEX` or `KEY not found` for each key; `Ok(false)` if
/// one was not found. With `verify`, checks instead that every key holds
/// `value_for(key)` and prints counts (`Ok(false)` on any missing or wrong key).
pub fn get(volume: &str, keys: &KeyArgs, verify: bool) -> crate::Result<bool> {
    let uuid = parse_uuid(volume)?;
    let keys = keys.keys()?;
    let ctl = open_ctl().map_err(|e| format!("get: {CTL_PATH}: {e}"))?;
    let get = |key: u64| -> io::Result<Option<Value>> {
        let args = GetArgs {
            uuid,
            key,
            ..Default::default()
        };
        let out = ioctl_on(&ctl, IOC_GET, &args)?;
        Ok((out.found != 0).then_some(out.value))
    };
    if verify {
        let v = verify_keys(&keys, get)?;
        println!(
            "checked {} keys: {} found, {} missing, {} wrong",
            keys.count(),
            v.found,
            v.missing,
            v.wrong
        );
        for p in &v.offending {
            eprintln!("bkalloc: {p}");
        }
        let more = v.missing + v.wrong - v.offending.len() as u64;
        if more > 0 {
            eprintln!("bkalloc: ... and {more} more");
        }
        return Ok(v.ok());
    }
    let mut all_found = true;
    for (done, key) in keys.iter().enumerate() {
        let got = get(key).map_err(|e| format!("get key {key} failed after {done} keys: {e}"))?;
        match got {
            Some(value) => println!("{key} {}", value_hex(&value)),
            None => {
                println!("{key} not found");
                all_found = false;
            }
        }
    }
    Ok(all_found)
}

/// `bkalloc flush`: writes a checkpoint; prints its generation and the journal sequence
/// number it covers.
pub fn flush(volume: &str) -> crate::Result<()> {
    let args = FlushArgs {
        uuid: parse_uuid(volume)?,
        ..Default::default()
    };
    let f = ioctl(IOC_FLUSH, &args).map_err(|e| format!("flush: {e}"))?;
    println!(
        "flushed: checkpoint generation {}, journal_seq {}",
        f.generation, f.journal_seq
    );
    Ok(())
}

/// The ioctls by feature bit (bit `nr - 1`).
const FEATURE_NAMES: [&str; 7] = [
    "alloc", "free", "status", "insert", "get", "flush", "version",
];

/// `bkalloc version`: the tool's ABI and the module's, asking in ABI version `abi`.
pub fn version(abi: u32) -> crate::Result<()> {
    let args = VersionArgs {
        abi,
        ..Default::default()
    };
    let v = ioctl(IOC_VERSION, &args).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => format!("module not loaded: {CTL_PATH} does not exist"),
        Some(libc::EINVAL) => format!("the module does not speak ABI version {abi}"),
        Some(libc::ENOTTY) => "the module predates the version ioctl".to_string(),
        _ => format!("version: {e}"),
    })?;
    let features: Vec<&str> = FEATURE_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| v.features & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    println!(
        "tool {} (ABI {ABI_VERSION}); module ABI {}, features {}",
        env!("CARGO_PKG_VERSION"),
        v.abi,
        features.join(" ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn acks_one_line_per_sector_from_the_given_one() {
        let path = std::env::temp_dir().join(format!("bkalloc-acks-{}", std::process::id()));
        std::fs::write(&path, vec![0u8; 8 * 512]).unwrap();
        let spec = format!("{}:2", path.display());
        let mut a = Acks::open(&spec).unwrap();
        a.ack("begin insert 7").unwrap();
        a.ack("insert 7").unwrap();
        let data = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(data[..1024].iter().all(|&b| b == 0));
        assert!(data[1024..].starts_with(b"bkack begin insert 7\n\0"));
        assert!(data[1536..].starts_with(b"bkack insert 7\n\0"));
        assert!(data[2048..].iter().all(|&b| b == 0));
        assert!(Acks::open("no-sector").is_err());
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        keys: KeyArgs,
        #[arg(value_parser = parse_value_hex, conflicts_with = "from")]
        value: Option<Value>,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("insert").chain(args.iter().copied()))
    }

    fn keys(args: &[&str]) -> crate::Result<Vec<u64>> {
        let cli = parse(args).map_err(|e| e.to_string())?;
        Ok(cli.keys.keys()?.iter().collect())
    }

    #[test]
    fn value_hex_round_trips() {
        let v = value_for(0x0102_0304_0506_0708);
        let h = value_hex(&v);
        assert_eq!(h.len(), 64);
        assert!(h.starts_with("0807060504030201"), "{h}");
        assert_eq!(parse_value_hex(&h), Ok(v));
        assert_eq!(parse_value_hex(&h.to_uppercase()), Ok(v));
        assert_eq!(parse_value_hex(&"0".repeat(64)), Ok([0; 32]));
    }

    #[test]
    fn bad_value_hex_is_a_clear_error() {
        let e = parse_value_hex("abcd").unwrap_err();
        assert_eq!(e, "4 hex digits, a value is 64 (32 bytes)");
        let e = parse_value_hex(&"a".repeat(65)).unwrap_err();
        assert!(e.starts_with("65 hex digits"), "{e}");
        assert!(parse_value_hex("").unwrap_err().starts_with("0 hex digits"));
        let mut bad = "0".repeat(64);
        bad.replace_range(10..11, "g");
        let e = parse_value_hex(&bad).unwrap_err();
        assert_eq!(
            e,
            "'g' at position 10 is not a hex digit (a value is 64 hex digits)"
        );
        // A 0x prefix and non-ASCII are not hex digits either (and never slice mid-char).
        let e = parse_value_hex(&format!("0x{}", "0".repeat(64))).unwrap_err();
        assert!(e.starts_with("'x' at position 1"), "{e}");
        let e = parse_value_hex(&format!("é{}", "0".repeat(62))).unwrap_err();
        assert!(e.starts_with("'é' at position 0"), "{e}");

        // Through clap: the value's error, naming the argument.
        let e = parse(&["5", "xyz"]).err().unwrap().to_string();
        assert!(e.contains("'x' at position 0 is not a hex digit"), "{e}");
        assert!(e.contains("VALUE"), "{e}");
        let v = parse(&["5", &"ff".repeat(32)]).unwrap().value;
        assert_eq!(v, Some([0xff; 32]));
    }

    #[test]
    fn key_lists() {
        assert_eq!(keys(&["7"]), Ok(vec![7]));
        assert_eq!(
            keys(&["--from", "10", "--count", "3"]),
            Ok(vec![10, 11, 12])
        );
        assert_eq!(
            keys(&["--from", "0", "--count", "4", "--step", "5"]),
            Ok(vec![0, 5, 10, 15])
        );
        // Up to and including u64::MAX.
        let max = u64::MAX.to_string();
        let below = (u64::MAX - 2).to_string();
        assert_eq!(keys(&["--from", &max, "--count", "1"]), Ok(vec![u64::MAX]));
        assert_eq!(
            keys(&["--from", &below, "--count", "3"]),
            Ok(vec![u64::MAX - 2, u64::MAX - 1, u64::MAX])
        );
        assert_eq!(
            keys(&[
                "--from",
                "1",
                "--count",
                "2",
                "--step",
                &(u64::MAX - 1).to_string()
            ]),
            Ok(vec![1, u64::MAX])
        );
        let r = KeyRange::new(0, u64::MAX, 1).unwrap();
        assert_eq!(r.count(), u64::MAX);
        assert_eq!(r.iter().nth(5), Some(5));
    }

    #[test]
    fn key_lists_refuse_overflow_and_empty_ranges() {
        let e = keys(&["--from", &u64::MAX.to_string(), "--count", "2"]).unwrap_err();
        assert!(e.contains("runs past the largest key"), "{e}");
        let e = keys(&[
            "--from",
            "1",
            "--count",
            "3",
            "--step",
            &(u64::MAX / 2 + 1).to_string(),
        ])
        .unwrap_err();
        assert!(e.contains("runs past"), "{e}");
        // (count - 1) * step itself overflows.
        assert!(KeyRange::new(0, u64::MAX, 2).is_err());
        assert!(KeyRange::new(0, 1 << 33, 1 << 32).is_err());
        assert_eq!(
            keys(&["--from", "1", "--count", "0"]),
            Err("--count must be at least 1".into())
        );
        assert_eq!(
            keys(&["--from", "1", "--count", "2", "--step", "0"]),
            Err("--step must be at least 1".into())
        );
    }

    #[test]
    fn key_forms_exclude_each_other() {
        // Neither form, both forms, half a range, a value with a range.
        assert!(parse(&[]).is_err());
        assert!(parse(&["5", "--from", "1", "--count", "2"]).is_err());
        assert!(parse(&["--from", "1"]).is_err());
        assert!(parse(&["--count", "1"]).is_err());
        assert!(parse(&["5", "--step", "2"]).is_err());
        assert!(parse(&["--from", "1", "--count", "2", &"00".repeat(32)]).is_err());
        assert!(parse(&["-1"]).is_err());
        assert!(parse(&["18446744073709551616"]).is_err());
    }

    #[test]
    fn insert_stops_at_the_first_error_naming_the_key() {
        let keys = KeyRange::new(1, 40, 1).unwrap();
        let mut seen = Vec::new();
        let e = insert_keys(&keys, None, |key, value| {
            assert_eq!(*value, value_for(key));
            seen.push(key);
            if key == 17 {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            } else {
                Ok(100 + key)
            }
        })
        .unwrap_err();
        assert_eq!(
            e,
            "insert key 17 failed after 16 keys: No space left on device (os error 28)"
        );
        assert_eq!(seen, (1..=17).collect::<Vec<_>>());

        // Sequence numbers: lowest and highest, shared entries allowed.
        let keys = KeyRange::new(10, 3, 5).unwrap();
        let r = insert_keys(&keys, Some([7; 32]), |key, value| {
            assert_eq!(*value, [7; 32]);
            Ok(key / 10 + 40)
        });
        assert_eq!(r, Ok((41, 42)));
    }

    #[test]
    fn verify_counts_and_names_the_first_offenders() {
        let keys = KeyRange::new(0, 20, 3).unwrap();
        // Keys below 30 right, 30..45 missing, the rest wrong.
        let v = verify_keys(&keys, |key| {
            Ok(match key {
                0..30 => Some(value_for(key)),
                30..45 => None,
                _ => Some([0; 32]),
            })
        })
        .unwrap();
        assert_eq!((v.found, v.missing, v.wrong), (15, 5, 5));
        assert!(!v.ok());
        assert_eq!(v.offending.len(), MAX_REPORTED);
        assert_eq!(v.offending[0], "key 30 missing");
        assert_eq!(v.offending[4], "key 42 missing");

        let v = verify_keys(&keys, |key| Ok(Some(value_for(key)))).unwrap();
        assert_eq!((v.found, v.missing, v.wrong), (20, 0, 0));
        assert!(v.ok() && v.offending.is_empty());

        let v = verify_keys(&KeyRange::one(5), |_| Ok(Some(value_for(6)))).unwrap();
        assert_eq!((v.found, v.missing, v.wrong), (1, 0, 1));
        assert!(
            v.offending[0].starts_with("key 5 wrong: 0600000000000000"),
            "{:?}",
            v
        );

        let e = verify_keys(&keys, |key| {
            if key == 6 {
                Err(io::Error::from_raw_os_error(libc::EIO))
            } else {
                Ok(None)
            }
        })
        .unwrap_err();
        assert_eq!(
            e,
            "get key 6 failed after 2 keys: Input/output error (os error 5)"
        );
    }
}
