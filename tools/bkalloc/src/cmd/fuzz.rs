// SPDX-License-Identifier: GPL-2.0

//! `bkalloc fuzz UUID`: hostile input against a registered volume, from a fuzzer the
//! project owns. Every case must get an error and change nothing, unless it happens to
//! be valid, which the fuzzer works out itself before sending it.
//!
//! **Cases.** Each round writes one random input to every writable file of the volume's
//! sysfs directory except `unregister` (the files of `options/` and `abort_waiting`; never
//! `/sys/fs/bkalloc/register`), each with one write(2) on a freshly opened descriptor,
//! then issues [`IOCTLS_PER_ROUND`] random ioctls on `/dev/bkalloc`: the known commands
//! with random payloads, with the real uuid and fuzzed fields, with unknown uuids, with
//! the size, direction, type or number of the ioctl number changed, and random numbers.
//! After the rounds, every command goes once through bad pointers (NULL, an unmapped page,
//! a `PROT_NONE` page, the top page of the address space, a non-canonical address, a
//! structure running into an unmapped page), and alloc, status and get through a read-only
//! page holding valid arguments. Then the ABI's named refusals go once each (a reserved
//! field set in alloc, get, free and a free's bucket, free's count zero and over the
//! maximum, version 0, the next version, a version query's reserved field set): each
//! must be EINVAL and change nothing (`fuzz: abi: ...` lines). Everything comes from
//! one [`Rng`] seeded by `--seed`.
//!
//! **What must not change.** A [`Snapshot`] (the status counts of every member, `waiters`,
//! `opts_gen` and the text of every file in `options/`) is taken before the run and after
//! every case, and compared with what the case may change ([`changes`]). With `discard`
//! on, buckets moving from need_discard to free between two snapshots are the discard
//! thread's, not the case's.
//!
//! **Expected outcomes** come from the core the module runs, not from a second copy of
//! its rules. A sysfs write ([`expect_write`]): sysfs hands at most a page to the store
//! and ignores an empty write; the store refuses what is not UTF-8, then trims it and
//! parses it with the option table's own [`bkcore::options::OptDesc::parse`], then checks
//! [`Options::set`] and [`Options::check_members`] against the member count; for
//! `abort_waiting`, "all" succeeds, a number (`u64` as Rust parses it) names no waiter on
//! an idle volume (ENOENT), anything else is EINVAL. An ioctl ([`expect_ioctl`]): an
//! unknown number is ENOTTY; the argument is decoded with `bkcore::ctl_abi` and checked in
//! the module's order (free's [`FreeArgs::refs`] first, then the uuid, reserved fields,
//! kind and watermark, [`request::build_with`], and placement's own
//! [`placement::choose`] on the counts of the last snapshot, so an infeasible alloc must
//! be ENOSPC and a blocking one is never sent). The inputs that the classifiers find
//! valid are sent too, except where they would change the volume's setup (`discard`,
//! `replay_discard_priority` and the two replica options get only inputs the classifier
//! rejects). A valid alloc's buckets are freed again at once (they become need_discard);
//! valid inserts use keys from 2^63 up, so the run never overwrites a key below that; the
//! options the run changed are written back at the end.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bkcore::ctl_abi::{
    AllocArgs, BucketRef, Decode, DevStatus, Encode, FlushArgs, FreeArgs, GetArgs, InsertArgs,
    StatusArgs, VersionArgs, ABI_VERSION, FROM_OPTIONS, IOCTL_TYPE, IOC_ALLOC, IOC_FLUSH, IOC_FREE,
    IOC_GET, IOC_INSERT, IOC_STATUS, IOC_VERSION,
};
use bkcore::options::{OptId, OptType, Options, WAIT_POLICY_NAMES};
use bkcore::placement::{self, DevSnapshot, Kind, Verdict, MAX_REPLICAS};
use bkcore::request::{self, Overrides};
use bkcore::uuid::{self, Hyphenated, Uuid};
use bkcore::watermark::Watermark;

use crate::ctl::{self, CTL_PATH};

/// Where registered volumes live.
const SYSFS: &str = "/sys/fs/bkalloc";

/// Random ioctls per round (after the sysfs writes).
pub const IOCTLS_PER_ROUND: u32 = 4;

/// Room for any size an ioctl number can encode (14 bits).
const IOC_BUF: usize = 0x4000;

/// Below this many usable buckets at watermark normal on a member, the fuzzer sends no
/// more valid allocs, inserts or flushes (each takes buckets for good while discard is
/// off), so it never makes a request wait.
const LOW_WATER: u64 = 64;

/// `bkalloc fuzz` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct FuzzArgs {
    /// The volume's uuid (registered, replay done, nothing waiting).
    pub volume: String,
    /// Seed of the random cases; the same seed sends the same cases to a volume in the
    /// same state.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Rounds: each writes every writable sysfs file once and issues 4 ioctls.
    #[arg(long, default_value_t = 100)]
    pub rounds: u32,
    /// Only the sysfs writes.
    #[arg(long, conflicts_with = "ioctl_only")]
    pub sysfs_only: bool,
    /// Only the ioctls (and the bad pointers).
    #[arg(long)]
    pub ioctl_only: bool,
}

// ---------------------------------------------------------------------------------------
// The random source.

/// splitmix64 (Steele, Lea and Flood, 2014): a few lines, any seed is fine, and it is the
/// fuzzer's only source of randomness, so a seed replays a run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A number in `0..n` (0 if `n` is 0); the modulo bias does not matter here.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// An index into something `n` long.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One of `xs` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.index(xs.len())]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------
// Outcomes, snapshots and what changed.

/// What a write(2) or an ioctl returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success, with the return value (bytes written, or the ioctl's value).
    Ok(i64),
    /// Failure, with the errno.
    Err(i32),
}

impl From<Result<i32, i32>> for Outcome {
    fn from(r: Result<i32, i32>) -> Self {
        match r {
            Ok(v) => Outcome::Ok(i64::from(v)),
            Err(e) => Outcome::Err(e),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Outcome::Ok(v) => write!(f, "ok ({v})"),
            Outcome::Err(e) => f.write_str(&errno_name(e)),
        }
    }
}

/// The symbolic name of the errnos the module and the VFS return.
pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ERANGE => "ERANGE",
        libc::ENODATA => "ENODATA",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ECANCELED => "ECANCELED",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

fn errno_list(errs: &[i32]) -> String {
    errs.iter()
        .map(|&e| errno_name(e))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// What must not change, as one moment of the volume shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// `opts_gen`.
    pub opts_gen: u64,
    /// Blocked requests.
    pub waiters: u32,
    /// Status counts of every member.
    pub devs: Vec<DevStatus>,
    /// Every file of `options/` (name, text), sorted by name.
    pub options: Vec<(String, String)>,
}

const COUNT_NAMES: [&str; 5] = ["free", "open", "need_discard", "btree", "user"];
const FREE: usize = 0;
const NEED_DISCARD: usize = 2;
const BTREE: usize = 3;
const USER: usize = 4;

fn counts(d: &DevStatus) -> [u64; 5] {
    [d.free, d.open, d.need_discard, d.btree, d.user]
}

impl Snapshot {
    /// The options the files show, through the option table.
    pub fn parsed_options(&self) -> Result<Options, String> {
        let mut o = Options::defaults();
        for (name, text) in &self.options {
            let Some(id) = OptId::from_name(name) else {
                continue;
            };
            let v = id
                .desc()
                .parse(text)
                .map_err(|e| format!("options/{name} reads {}: {e}", escape(text.as_bytes())))?;
            o.set(id, v).map_err(|e| format!("options/{name}: {e:?}"))?;
        }
        Ok(o)
    }

    /// The text of `options/<name>`.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }

    /// A count summed over the members.
    fn total(&self, which: usize) -> u64 {
        self.devs.iter().map(|d| counts(d)[which]).sum()
    }
}

/// One difference between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `opts_gen` moved.
    OptsGen(u64, u64),
    /// The number of blocked requests moved.
    Waiters(u32, u32),
    /// The number of members moved.
    Members(usize, usize),
    /// A count of a member moved.
    Count {
        /// Member index.
        dev: usize,
        /// Which count (`free`, `user`, ...).
        what: &'static str,
        /// Before.
        old: u64,
        /// After.
        new: u64,
    },
    /// The text of an option file changed (or the file appeared or went away: empty).
    Option {
        /// File name.
        name: String,
        /// Before.
        old: String,
        /// After.
        new: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::OptsGen(a, b) => write!(f, "opts_gen {a}->{b}"),
            Change::Waiters(a, b) => write!(f, "waiters {a}->{b}"),
            Change::Members(a, b) => write!(f, "members {a}->{b}"),
            Change::Count {
                dev,
                what,
                old,
                new,
            } => write!(f, "dev-{dev} {what} {old}->{new}"),
            Change::Option { name, old, new } => write!(
                f,
                "options/{name} {}->{}",
                escape(old.as_bytes()),
                escape(new.as_bytes())
            ),
        }
    }
}

impl Change {
    /// Whether this is a change of a member's user count.
    fn is_user(&self) -> bool {
        matches!(self, Change::Count { what: "user", .. })
    }

    /// Whether this changes the options, the membership or the waiters (what no ioctl may
    /// change).
    fn is_setup(&self) -> bool {
        !matches!(self, Change::Count { .. })
    }
}

fn describe(changes: &[Change]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What changed from `old` to `new`. need_discard buckets that became free meanwhile are
/// the discard thread's doing (a discard, or a release with `discard=0`) and not listed.
pub fn changes(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    if old.opts_gen != new.opts_gen {
        out.push(Change::OptsGen(old.opts_gen, new.opts_gen));
    }
    if old.waiters != new.waiters {
        out.push(Change::Waiters(old.waiters, new.waiters));
    }
    if old.devs.len() != new.devs.len() {
        out.push(Change::Members(old.devs.len(), new.devs.len()));
    }
    for (dev, (o, n)) in old.devs.iter().zip(&new.devs).enumerate() {
        let mut o = counts(o);
        let n = counts(n);
        if n[NEED_DISCARD] < o[NEED_DISCARD] {
            let d = o[NEED_DISCARD] - n[NEED_DISCARD];
            o[NEED_DISCARD] -= d;
            o[FREE] += d;
        }
        for (i, what) in COUNT_NAMES.iter().enumerate() {
            if o[i] != n[i] {
                out.push(Change::Count {
                    dev,
                    what,
                    old: o[i],
                    new: n[i],
                });
            }
        }
    }
    let names: BTreeSet<&str> = old
        .options
        .iter()
        .chain(&new.options)
        .map(|(n, _)| n.as_str())
        .collect();
    for name in names {
        let (a, b) = (old.option(name), new.option(name));
        if a != b {
            out.push(Change::Option {
                name: name.to_string(),
                old: a.unwrap_or("").to_string(),
                new: b.unwrap_or("").to_string(),
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Printing what was sent.

/// `bytes` with everything but printable ASCII as `\xNN` (`"`, `\` and `{` too), and runs
/// of 8 or more equal bytes as `{N x C}`, in quotes.
pub fn escape(bytes: &[u8]) -> String {
    let one = |b: u8| -> String {
        if (0x20..0x7f).contains(&b) && !matches!(b, b'"' | b'\\' | b'{') {
            char::from(b).to_string()
        } else {
            format!("\\x{b:02x}")
        }
    };
    let mut s = String::from("\"");
    for (b, n) in runs(bytes) {
        if n >= 8 {
            let _ = write!(s, "{{{n} x {}}}", one(b));
        } else {
            for _ in 0..n {
                s.push_str(&one(b));
            }
        }
    }
    s.push('"');
    s
}

/// `bytes` in hex, runs of 8 or more equal bytes as `{N x NN}`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (b, n) in runs(bytes) {
        if n >= 8 {
            let _ = write!(s, "{{{n} x {b:02x}}}");
        } else {
            for _ in 0..n {
                let _ = write!(s, "{b:02x}");
            }
        }
    }
    s
}

fn runs(bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out: Vec<(u8, usize)> = Vec::new();
    for &b in bytes {
        match out.last_mut() {
            Some((c, n)) if *c == b => *n += 1,
            _ => out.push((b, 1)),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// sysfs writes: targets, inputs, expected outcomes.

/// A writable file of the volume's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `options/<name>`.
    Option(OptId),
    /// `abort_waiting`.
    AbortWaiting,
}

impl Target {
    /// The path below the volume's directory.
    pub fn rel_path(self) -> String {
        match self {
            Target::Option(id) => format!("options/{}", id.desc().name),
            Target::AbortWaiting => "abort_waiting".to_string(),
        }
    }

    /// Options whose value the run must leave alone (the test set them up): they get
    /// only inputs the classifier rejects.
    pub fn protected(self) -> bool {
        matches!(
            self,
            Target::Option(
                OptId::MetadataReplicas
                    | OptId::DataReplicas
                    | OptId::Discard
                    | OptId::ReplayDiscardPriority
            )
        )
    }
}

/// What a sysfs write must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteExpect {
    /// Nothing reaches the store (an empty write): write(2) returns 0, nothing changes.
    Nothing,
    /// Fails with this errno; nothing changes.
    Fail(i32),
    /// Accepted: write(2) returns `len` (what sysfs handed to the store); an option
    /// takes the value (and `opts_gen` moves by one), `abort_waiting all` changes nothing
    /// on an idle volume.
    Accept {
        /// Bytes the store saw.
        len: usize,
        /// The option set, and its value.
        set: Option<(OptId, u32)>,
    },
}

impl fmt::Display for WriteExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WriteExpect::Nothing => {
                f.write_str("ok (0) (sysfs ignores an empty write), nothing changed")
            }
            WriteExpect::Fail(e) => write!(f, "{}, nothing changed", errno_name(e)),
            WriteExpect::Accept { len, set: None } => write!(f, "ok ({len}), nothing changed"),
            WriteExpect::Accept {
                len,
                set: Some((id, v)),
            } => write!(
                f,
                "ok ({len}), options/{} = {}, opts_gen +1, nothing else changed",
                id.desc().name,
                id.desc().display(v)
            ),
        }
    }
}

/// What writing `input` to `target` must do, on a volume with `members` members, the
/// options `options` and no blocked request; sysfs hands at most `page` bytes to the
/// store. Follows the module's store: UTF-8, trim, the option table's parser, then the
/// range and member checks of [`Options`].
pub fn expect_write(
    target: Target,
    input: &[u8],
    page: usize,
    options: &Options,
    members: u32,
) -> WriteExpect {
    let seen = &input[..input.len().min(page)];
    if seen.is_empty() {
        return WriteExpect::Nothing;
    }
    let Ok(text) = std::str::from_utf8(seen) else {
        return WriteExpect::Fail(libc::EINVAL);
    };
    let text = text.trim();
    match target {
        Target::AbortWaiting => {
            if text == "all" {
                WriteExpect::Accept {
                    len: seen.len(),
                    set: None,
                }
            } else if text.parse::<u64>().is_ok() {
                // No request waits, so no waiter has that id.
                WriteExpect::Fail(libc::ENOENT)
            } else {
                WriteExpect::Fail(libc::EINVAL)
            }
        }
        Target::Option(id) => {
            let Ok(v) = id.desc().parse(text) else {
                return WriteExpect::Fail(libc::EINVAL);
            };
            let mut next = *options;
            if next.set(id, v).is_err() || next.check_members(members).is_err() {
                return WriteExpect::Fail(libc::EINVAL);
            }
            WriteExpect::Accept {
                len: seen.len(),
                set: Some((id, v)),
            }
        }
    }
}

/// Words that are almost, or exactly, what some file takes.
const TOKENS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "00",
    "01",
    "+1",
    "+0",
    "-1",
    " 1",
    "1 1",
    "1,2",
    "1.0",
    "0x1",
    "0b1",
    "1e3",
    "true",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "none",
    "null",
    "wait",
    "fail",
    "degrade",
    "all",
    "30",
    "86400",
    "86401",
    "1\t2",
    "discard=0",
];

/// Numbers past every range, negative ones, and numbers in other notations.
const HUGE: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "9223372036854775807",
    "9223372036854775808",
    "4294967296",
    "4294967295",
    "2147483648",
    "2147483647",
    "99999999999",
    "00000000001",
    "0000000001",
    "-1",
    "-0",
    "-4294967296",
    "-18446744073709551616",
    "1e100",
    "0x7fffffff",
];

/// Junk to put among digits.
const JUNK: &[u8] = b" \t\n\r\0-+.,x_/:;=e\x7f\xff\x80\xc3";

/// Whitespace, ASCII and Unicode (which `str::trim` removes), and near-whitespace (which
/// it does not: zero-width space, BOM).
const SPACE: &[&str] = &[
    "\n", " ", "\t", "\r\n", "\n\n", " \n", "\x0b", "\x0c", "\u{a0}", "\u{2003}", "\u{3000}",
    "\u{85}", "\u{200b}", "\u{feff}",
];

/// Byte strings that are not UTF-8 or are digits in other scripts.
const ODD: &[&[u8]] = &[
    b"\xff",
    b"1\xff",
    b"\xc3",
    b"1\xc3",
    b"\xe2\x80",
    b"\xc0\xb1",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    "\u{ff11}".as_bytes(),
    "\u{661}".as_bytes(),
    "1\u{200b}".as_bytes(),
    "\u{feff}1".as_bytes(),
    "w\u{430}it".as_bytes(),
    "\u{1d7cf}".as_bytes(),
];

/// Mangles `word`: a letter in upper case, one dropped or doubled, one added, a NUL or a
/// space inside.
fn mangle(rng: &mut Rng, word: &str) -> Vec<u8> {
    let mut w = word.as_bytes().to_vec();
    let i = rng.index(w.len());
    match rng.below(7) {
        0 => w[i] = w[i].to_ascii_uppercase(),
        1 => {
            w.remove(i);
        }
        2 => w.insert(i, w[i]),
        3 => w.push(b'a' + rng.below(26) as u8),
        4 => w.insert(0, b'a' + rng.below(26) as u8),
        5 => w.insert(i, 0),
        _ => w.insert(i, b' '),
    }
    w
}

/// A random input for a sysfs file: up to 64 bytes (sometimes up to a page and 16) of
/// arbitrary bytes, digits with junk, huge and negative numbers, mangled names, NULs,
/// odd encodings, whitespace.
pub fn gen_input(rng: &mut Rng) -> Vec<u8> {
    let mut v: Vec<u8> = match rng.below(11) {
        0 => {
            let n = rng.index(65);
            rng.bytes(n)
        }
        1 => {
            let n = 1 + rng.index(12);
            let mut d: Vec<u8> = (0..n).map(|_| b'0' + rng.below(10) as u8).collect();
            if !rng.one_in(4) {
                let at = rng.index(d.len() + 1);
                d.insert(at, rng.pick(JUNK));
            }
            d
        }
        2 => rng.pick(HUGE).as_bytes().to_vec(),
        3 => {
            let words = [WAIT_POLICY_NAMES, &["all"]].concat();
            let word = rng.pick(&words);
            mangle(rng, word)
        }
        4 => match rng.below(3) {
            0 => rng.below(10).to_string().into_bytes(),
            1 => rng.below(100_000).to_string().into_bytes(),
            _ => rng
                .pick(&["30", "86400", "86401", "4294967295", "0"])
                .as_bytes()
                .to_vec(),
        },
        5 => {
            let t = rng.pick(TOKENS).as_bytes();
            match rng.below(3) {
                0 => [t, b"\0"].concat(),
                1 => [b"\0", t].concat(),
                _ => [t, b"\0", rng.pick(TOKENS).as_bytes()].concat(),
            }
        }
        6 => rng.pick(ODD).to_vec(),
        7 => long_input(rng),
        8 => match rng.below(3) {
            0 => Vec::new(),
            1 => rng.pick(SPACE).as_bytes().to_vec(),
            _ => vec![b' '; 1 + rng.index(64)],
        },
        9 => rng.pick(TOKENS).as_bytes().to_vec(),
        _ => {
            let n = 1 + rng.index(16);
            (0..n).map(|_| 0x20 + rng.below(0x5f) as u8).collect()
        }
    };
    if rng.one_in(2) {
        v.extend_from_slice(rng.pick(SPACE).as_bytes());
    }
    if rng.one_in(8) {
        v.splice(0..0, rng.pick(SPACE).bytes());
    }
    v
}

/// An input around a page long: a word padded with spaces (before or after), a page of
/// digits, random bytes, or a two-byte character cut by the page boundary.
fn long_input(rng: &mut Rng) -> Vec<u8> {
    let any = 65 + rng.index(4048);
    let len = rng.pick(&[4095, 4096, 4097, 4100, 4112, any]);
    let word = rng.pick(TOKENS).as_bytes();
    match rng.below(5) {
        0 => {
            let mut v = word.to_vec();
            v.resize(len.max(word.len()), b' ');
            v
        }
        1 => {
            let mut v = vec![b' '; len.saturating_sub(word.len())];
            v.extend_from_slice(word);
            v
        }
        2 => {
            let mut v = vec![b'0'; len - 1];
            v.push(b'1');
            v
        }
        3 => rng.bytes(len),
        _ => {
            let mut v = vec![b' '; 4095];
            v.extend_from_slice("é".as_bytes());
            v.resize(len.max(4097), b' ');
            v
        }
    }
}

/// A random input for `target`: mostly [`gen_input`]; one time in six a value of the
/// file's own kind (a name of the enum, a number around the range, "all" or an id),
/// perhaps with whitespace, so accepted writes happen too.
pub fn gen_input_for(rng: &mut Rng, target: Target) -> Vec<u8> {
    if !rng.one_in(6) {
        return gen_input(rng);
    }
    let mut v = match target {
        Target::AbortWaiting => match rng.below(3) {
            0 | 1 => b"all".to_vec(),
            _ => rng.below(10).to_string().into_bytes(),
        },
        Target::Option(id) => match id.desc().ty {
            OptType::Enum(names) => rng.pick(names).as_bytes().to_vec(),
            OptType::Bool => rng.below(2).to_string().into_bytes(),
            OptType::Uint { min, max } => {
                let v = u64::from(min) + rng.below(u64::from(max - min) + 3);
                v.to_string().into_bytes()
            }
        },
    };
    if rng.one_in(2) {
        v.extend_from_slice(rng.pick(SPACE).as_bytes());
    }
    v
}

/// One random input for `target` and what it must do; regenerated while it would change
/// a protected option (see [`Target::protected`]).
pub fn pick_input(
    rng: &mut Rng,
    target: Target,
    page: usize,
    options: &Options,
    members: u32,
) -> (Vec<u8>, WriteExpect) {
    for _ in 0..64 {
        let input = gen_input_for(rng, target);
        let exp = expect_write(target, &input, page, options, members);
        if !(target.protected() && matches!(exp, WriteExpect::Accept { .. })) {
            return (input, exp);
        }
    }
    let input = b"x\n".to_vec();
    let exp = expect_write(target, &input, page, options, members);
    (input, exp)
}

// ---------------------------------------------------------------------------------------
// ioctls: the volume as the classifier sees it, expected outcomes, cases.

/// A member's fixed geometry (from `dev-<i>/usage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Buckets, sb ones included.
    pub buckets: u64,
    /// The first `sb` buckets are the metadata region.
    pub sb: u64,
    /// The btree reserve set at format.
    pub btree_reserve: u32,
}

/// What the ioctl classifier knows of the volume.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The volume's uuid.
    pub uuid: Uuid,
    /// Every member's geometry.
    pub geometry: Vec<Geometry>,
    /// Every member's counts, as of the last snapshot.
    pub counts: Vec<DevStatus>,
    /// The options in effect.
    pub options: Options,
    /// Buckets this run freed: need_discard now, or free again, never user.
    pub own_freed: BTreeSet<(u32, u64)>,
}

impl Ctx {
    /// Members.
    pub fn members(&self) -> u32 {
        self.geometry.len() as u32
    }

    /// The members as placement sees them.
    pub fn dev_snapshots(&self) -> Vec<DevSnapshot> {
        self.geometry
            .iter()
            .zip(&self.counts)
            .enumerate()
            .map(|(i, (g, c))| DevSnapshot {
                index: i as u32,
                nbuckets: g.buckets,
                free: c.free,
                open: c.open,
                need_discard: c.need_discard,
                btree_reserve: g.btree_reserve,
                online: true,
                state: bkcore::member_state::MemberState::Rw,
            })
            .collect()
    }

    /// Whether some member is close to its reserve for user data.
    pub fn low_on_space(&self) -> bool {
        self.dev_snapshots()
            .iter()
            .any(|d| d.usable(Watermark::Normal) < LOW_WATER)
    }
}

/// What an ioctl must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Fails with one of these errnos; nothing changes.
    Fail(Vec<i32>),
    /// Succeeds and changes nothing (status, get).
    Query,
    /// A valid alloc: succeeds with `replicas` buckets on distinct members (which the
    /// fuzzer frees again).
    Alloc {
        /// Buckets granted.
        replicas: u32,
    },
    /// A valid insert or flush: succeeds; bucket counts may move (a split, a checkpoint),
    /// user counts and options do not.
    Write,
    /// A free of in-range buckets whose state the fuzzer does not know: EINVAL and nothing
    /// changed, or success having turned exactly these user buckets need_discard.
    MaybeFree(Vec<(u32, u64)>),
    /// A valid alloc that would wait: never sent.
    WouldBlock,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Fail(errs) => write!(f, "{}, nothing changed", errno_list(errs)),
            Expect::Query => f.write_str("ok (0), nothing changed"),
            Expect::Alloc { replicas } => write!(
                f,
                "ok (0) with {replicas} buckets on distinct members, user counts unchanged once freed"
            ),
            Expect::Write => f.write_str("ok (0), user counts and options unchanged"),
            Expect::MaybeFree(_) => f.write_str(
                "EINVAL and nothing changed, or ok (0) turning exactly those user buckets need_discard",
            ),
            Expect::WouldBlock => f.write_str("nothing (a request that waits is never sent)"),
        }
    }
}

/// The known commands: number, name, argument size.
const KNOWN: [(u32, &str, usize); 7] = [
    (IOC_ALLOC, "ALLOC", AllocArgs::SIZE),
    (IOC_FREE, "FREE", FreeArgs::SIZE),
    (IOC_STATUS, "STATUS", StatusArgs::SIZE),
    (IOC_INSERT, "INSERT", InsertArgs::SIZE),
    (IOC_GET, "GET", GetArgs::SIZE),
    (IOC_FLUSH, "FLUSH", FlushArgs::SIZE),
    (IOC_VERSION, "VERSION", VersionArgs::SIZE),
];

/// The name of a known command.
pub fn known_name(cmd: u32) -> Option<&'static str> {
    KNOWN.iter().find(|k| k.0 == cmd).map(|k| k.1)
}

/// The size field of an ioctl number.
pub const fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x3fff) as usize
}

/// Ioctl types the VFS serves itself on any file before the driver sees the number
/// (`FIOCLEX`, `FIONBIO`: 'T'; `FIFREEZE`, `FS_IOC_FSSETXATTR`: 'X'; `FS_IOC_SETFLAGS`:
/// 'f'; `FIGETBSZ`: 0; `FS_IOC_GETFSUUID`: 0x15; `FICLONE`: 0x94). Some of those act on
/// the file or the filesystem holding `/dev/bkalloc`, so random numbers avoid them.
const VFS_TYPES: [u8; 6] = [0x00, 0x15, b'T', b'X', b'f', 0x94];

/// Whether a random number may be sent: not one the VFS handles, not a known command.
pub fn is_fuzzable_cmd(cmd: u32) -> bool {
    !VFS_TYPES.contains(&((cmd >> 8) as u8)) && known_name(cmd).is_none()
}

fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn uuid_of(arg: &[u8]) -> Option<Uuid> {
    arg.get(..16)?.try_into().ok()
}

/// What ioctl `cmd` with argument bytes `arg` (what the module reads) must do on the
/// volume `ctx` describes, following the module's checks in its order.
pub fn expect_ioctl(cmd: u32, arg: &[u8], ctx: &Ctx) -> Expect {
    let Some(&(_, _, size)) = KNOWN.iter().find(|k| k.0 == cmd) else {
        return Expect::Fail(vec![libc::ENOTTY]);
    };
    if arg.len() < size {
        // The module would read past what the case holds: not a case the fuzzer makes.
        return Expect::Fail(vec![libc::EFAULT]);
    }
    let ours = uuid_of(arg) == Some(ctx.uuid);
    match cmd {
        IOC_VERSION => match VersionArgs::decode(arg) {
            Some(v) if v.reserved_zero() && v.known_version() => Expect::Query,
            _ => Expect::Fail(vec![libc::EINVAL]),
        },
        IOC_ALLOC => expect_alloc(arg, ctx),
        IOC_FREE => expect_free(arg, ctx),
        IOC_GET => match (ours, le32(arg, 28)) {
            (false, _) => Expect::Fail(vec![libc::ENOENT]),
            (true, 0) => Expect::Query,
            (true, _) => Expect::Fail(vec![libc::EINVAL]),
        },
        _ if !ours => Expect::Fail(vec![libc::ENOENT]),
        IOC_STATUS => Expect::Query,
        _ => Expect::Write,
    }
}

fn expect_alloc(arg: &[u8], ctx: &Ctx) -> Expect {
    let Some(a) = AllocArgs::decode(arg) else {
        return Expect::Fail(vec![libc::EFAULT]);
    };
    if a.uuid != ctx.uuid {
        return Expect::Fail(vec![libc::ENOENT]);
    }
    // Reserved: must be zero (the module checks it right after the uuid).
    if le32(arg, 36) != 0 {
        return Expect::Fail(vec![libc::EINVAL]);
    }
    let Some(kind) = Kind::from_u32(a.kind) else {
        return Expect::Fail(vec![libc::EINVAL]);
    };
    let from = |v: u32| (v != FROM_OPTIONS).then_some(v);
    let watermark = match from(a.watermark) {
        None => None,
        Some(w) => match Watermark::from_u32(w) {
            Some(w) => Some(w),
            None => return Expect::Fail(vec![libc::EINVAL]),
        },
    };
    let overrides = Overrides {
        replicas: from(a.replicas),
        watermark,
        deadline_secs: from(a.deadline_secs),
        for_user: true,
        ..Overrides::NONE
    };
    let Ok(spec) = request::build_with(kind, &ctx.options, 0, overrides) else {
        return Expect::Fail(vec![libc::EINVAL]);
    };
    match placement::choose(&ctx.dev_snapshots(), &spec.request()) {
        Verdict::Ok(_) => Expect::Alloc {
            replicas: spec.replicas,
        },
        Verdict::Blocked { .. } => Expect::WouldBlock,
        Verdict::Infeasible { .. } => Expect::Fail(vec![libc::ENOSPC]),
    }
}

fn expect_free(arg: &[u8], ctx: &Ctx) -> Expect {
    let Some(f) = FreeArgs::decode(arg) else {
        return Expect::Fail(vec![libc::EFAULT]);
    };
    let Ok(refs) = f.refs() else {
        return Expect::Fail(vec![libc::EINVAL]);
    };
    if f.uuid != ctx.uuid {
        return Expect::Fail(vec![libc::ENOENT]);
    }
    let mut unknown = Vec::new();
    for r in refs {
        let known_not_user = match ctx.geometry.get(r.dev as usize) {
            None => true,
            Some(g) => {
                r.bucket >= g.buckets
                    || r.bucket < g.sb
                    || ctx.own_freed.contains(&(r.dev, r.bucket))
                    || ctx.counts.get(r.dev as usize).is_none_or(|c| c.user == 0)
            }
        };
        if known_not_user {
            return Expect::Fail(vec![libc::EINVAL]);
        }
        unknown.push((r.dev, r.bucket));
    }
    Expect::MaybeFree(unknown)
}

/// One ioctl to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoctlCase {
    /// The ioctl number.
    pub cmd: u32,
    /// The argument bytes (the rest of the buffer is zero).
    pub arg: Vec<u8>,
    /// What kind of case, for reports.
    pub label: String,
    /// What it must do.
    pub expect: Expect,
}

impl IoctlCase {
    fn describe(&self) -> String {
        let name = known_name(self.cmd).unwrap_or("unknown");
        format!(
            "ioctl {:#010x} ({name}; {}) arg[{}]={}",
            self.cmd,
            self.label,
            self.arg.len(),
            hex(&self.arg)
        )
    }
}

/// A uuid that is not the volume's: random, nil, all ones, one bit off, reversed.
fn unknown_uuid(rng: &mut Rng, real: &Uuid) -> Uuid {
    let mut u = match rng.below(5) {
        0 => {
            let mut u = [0u8; 16];
            u.copy_from_slice(&rng.bytes(16));
            u
        }
        1 => [0; 16],
        2 => [0xff; 16],
        3 => {
            let mut u = *real;
            u[rng.index(16)] ^= 1 << rng.below(8);
            u
        }
        _ => {
            let mut u = *real;
            u.reverse();
            u
        }
    };
    if u == *real {
        u[15] ^= 1;
    }
    u
}

fn encoded<T: Encode>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; T::SIZE];
    v.encode(&mut b);
    b
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// A nonzero value for a reserved field.
fn nonzero(rng: &mut Rng) -> u32 {
    let any = rng.next_u32() | 1;
    rng.pick(&[1, 0x8000_0000, u32::MAX, any])
}

fn gen_alloc(rng: &mut Rng, ctx: &Ctx, uuid: Uuid) -> Vec<u8> {
    let members = ctx.members();
    let any = rng.next_u32();
    let kind = if rng.below(5) != 0 {
        rng.below(2) as u32
    } else {
        rng.pick(&[2, 3, 0x100, FROM_OPTIONS - 1, FROM_OPTIONS, any])
    };
    let replicas = if rng.below(2) == 0 {
        FROM_OPTIONS
    } else {
        rng.pick(&[
            0,
            1,
            2,
            3,
            4,
            5,
            members,
            members + 1,
            0x8000_0000,
            FROM_OPTIONS - 1,
            any.rotate_left(8),
        ])
    };
    let watermark = if rng.below(2) == 0 {
        FROM_OPTIONS
    } else {
        rng.pick(&[0, 1, 2, 3, FROM_OPTIONS - 1, any.rotate_left(16)])
    };
    let mut a = AllocArgs {
        uuid,
        kind,
        replicas,
        watermark,
        deadline_secs: rng.pick(&[
            FROM_OPTIONS,
            FROM_OPTIONS,
            0,
            1,
            86_400,
            any.rotate_left(24),
        ]),
        n: rng.pick(&[0, 0, 1, 4, u32::MAX, any ^ 0x5555_5555]),
        ..Default::default()
    };
    if rng.one_in(2) {
        for r in a.buckets.iter_mut() {
            r.dev = rng.next_u32();
            r.bucket = rng.next_u64();
        }
    }
    let mut b = encoded(&a);
    if rng.one_in(6) {
        put32(&mut b, 36, nonzero(rng));
    }
    b
}

fn gen_ref(rng: &mut Rng, ctx: &Ctx) -> BucketRef {
    let members = ctx.members();
    let mut dev = if rng.below(5) != 0 {
        rng.below(u64::from(members)) as u32
    } else {
        let any = rng.next_u32();
        rng.pick(&[members, members + 1, 31, 32, 33, u32::MAX, any])
    };
    let g = ctx
        .geometry
        .get(dev as usize)
        .or(ctx.geometry.first())
        .copied()
        .unwrap_or(Geometry {
            buckets: 1,
            sb: 1,
            btree_reserve: 0,
        });
    let bucket = match rng.below(12) {
        0 | 1 => 0,
        2 => g.sb.saturating_sub(1),
        3 => rng.below(g.sb),
        4 => g.buckets,
        5 => g.buckets + 1 + rng.below(1000),
        6 => rng.pick(&[u64::MAX, 1 << 32, 1 << 63, u64::from(u32::MAX)]),
        7 => rng.next_u64(),
        8 | 9 if !ctx.own_freed.is_empty() => {
            let &(d, b) = ctx
                .own_freed
                .iter()
                .nth(rng.index(ctx.own_freed.len()))
                .unwrap_or(&(0, 0));
            dev = d;
            b
        }
        // In range, state unknown: usually free, maybe a user bucket of the test's.
        10 => g.sb + rng.below(g.buckets.saturating_sub(g.sb)),
        _ => 0,
    };
    BucketRef {
        dev,
        pad: 0,
        bucket,
    }
}

fn gen_free(rng: &mut Rng, ctx: &Ctx, uuid: Uuid) -> Vec<u8> {
    let n = match rng.below(10) {
        0..=5 => 1 + rng.below(MAX_REPLICAS as u64) as u32,
        6 => 0,
        7 => MAX_REPLICAS as u32 + 1,
        8 => rng.pick(&[u32::MAX, 0x8000_0000, 6, 255]),
        _ => rng.next_u32(),
    };
    let mut f = FreeArgs {
        uuid,
        n,
        ..Default::default()
    };
    for i in 0..MAX_REPLICAS {
        f.buckets[i] = if i > 0 && rng.one_in(5) {
            f.buckets[rng.index(i)]
        } else {
            gen_ref(rng, ctx)
        };
    }
    let mut b = encoded(&f);
    if rng.one_in(8) {
        put32(&mut b, 20, nonzero(rng));
    }
    if rng.one_in(8) {
        let at = 24 + 16 * rng.index(MAX_REPLICAS) + 4;
        put32(&mut b, at, nonzero(rng));
    }
    b
}

/// Keys of the run's inserts: from 2^63 up.
fn fuzz_key(rng: &mut Rng) -> u64 {
    rng.next_u64() | 1 << 63
}

fn gen_get(rng: &mut Rng, uuid: Uuid) -> Vec<u8> {
    let mut g = GetArgs {
        uuid,
        key: {
            let any = rng.next_u64();
            rng.pick(&[0, 1, 2, u64::MAX, any, any | 1 << 63])
        },
        found: rng.next_u32(),
        ..Default::default()
    };
    g.value.copy_from_slice(&rng.bytes(32));
    let mut b = encoded(&g);
    if rng.one_in(6) {
        put32(&mut b, 28, nonzero(rng));
    }
    b
}

fn gen_insert(rng: &mut Rng, uuid: Uuid) -> Vec<u8> {
    let mut a = InsertArgs {
        uuid,
        key: fuzz_key(rng),
        seq: rng.next_u64(),
        ..Default::default()
    };
    a.value.copy_from_slice(&rng.bytes(32));
    encoded(&a)
}

/// `uuid` followed by random bytes: random "out" fields of status and flush.
fn uuid_then_random(rng: &mut Rng, uuid: Uuid, size: usize) -> Vec<u8> {
    let mut b = rng.bytes(size);
    b[..16].copy_from_slice(&uuid);
    b
}

/// Arguments of `cmd` for the volume `uuid`, with fuzzed fields.
fn structured(rng: &mut Rng, ctx: &Ctx, cmd: u32, uuid: Uuid) -> Vec<u8> {
    match cmd {
        IOC_ALLOC => gen_alloc(rng, ctx, uuid),
        IOC_FREE => gen_free(rng, ctx, uuid),
        IOC_STATUS => uuid_then_random(rng, uuid, StatusArgs::SIZE),
        IOC_INSERT => gen_insert(rng, uuid),
        IOC_GET => gen_get(rng, uuid),
        IOC_VERSION => gen_version(rng),
        _ => uuid_then_random(rng, uuid, FlushArgs::SIZE),
    }
}

/// A version query: a known, unknown (0, the next) or random ABI version, reserved
/// fields mostly zero.
fn gen_version(rng: &mut Rng) -> Vec<u8> {
    let any = rng.next_u32();
    let v = VersionArgs {
        abi: rng.pick(&[1, 1, 0, 2, any]),
        pad: if rng.one_in(4) { rng.next_u32() } else { 0 },
        features: rng.next_u64(),
        reserved: if rng.one_in(4) {
            [rng.next_u64(), 0]
        } else {
            [0; 2]
        },
    };
    let mut b = vec![0u8; VersionArgs::SIZE];
    v.encode(&mut b);
    b
}

/// A command for structured cases: allocs and frees mostly; inserts and flushes, which
/// write to disk, seldom.
fn structured_cmd(rng: &mut Rng) -> u32 {
    match rng.below(15) {
        0..=4 => IOC_ALLOC,
        5..=9 => IOC_FREE,
        10 => IOC_STATUS,
        11 | 12 => IOC_GET,
        13 => IOC_INSERT,
        14 if rng.one_in(2) => IOC_VERSION,
        _ => IOC_FLUSH,
    }
}

/// `cmd` with its size, direction, type or number changed: never a known command nor
/// one of the VFS's.
fn mutate_cmd(rng: &mut Rng, cmd: u32) -> u32 {
    let size = ioc_size(cmd) as u32;
    loop {
        let c = match rng.below(4) {
            0 => {
                let any = rng.below(0x4000) as u32;
                let s = rng.pick(&[0, 1, size - 1, size + 1, size + 8, size * 2, 0x3fff, any]);
                (cmd & !(0x3fff << 16)) | ((s & 0x3fff) << 16)
            }
            1 => (cmd & !(3 << 30)) | ((rng.below(3) as u32) << 30),
            2 => {
                let any = rng.next_u32() as u8;
                let t = rng.pick(&[b'b', b'C', b'A', 0xc2, any]);
                (cmd & !0xff00) | (u32::from(t) << 8)
            }
            _ => {
                let any = 7 + rng.below(249) as u32;
                (cmd & !0xff) | rng.pick(&[0, 7, 8, 0x41, 0xff, any])
            }
        };
        if c != cmd && is_fuzzable_cmd(c) {
            return c;
        }
    }
}

/// One random ioctl case, with its expected outcome; never one that would block, and no
/// valid alloc, insert or flush once the volume runs low.
pub fn gen_ioctl(rng: &mut Rng, ctx: &Ctx) -> IoctlCase {
    let (cmd, arg, label) = match rng.below(20) {
        0..=2 => {
            let (cmd, _, size) = rng.pick(&KNOWN);
            (cmd, rng.bytes(size), "random bytes".to_string())
        }
        3 | 4 => {
            let cmd = structured_cmd(rng);
            let size = KNOWN.iter().find(|k| k.0 == cmd).map_or(0, |k| k.2);
            let mut arg = uuid_then_random(rng, ctx.uuid, size);
            if cmd == IOC_INSERT {
                arg[23] |= 0x80; // a key from 2^63 up
            }
            (cmd, arg, "the volume's uuid, then random bytes".to_string())
        }
        5..=11 => {
            let cmd = structured_cmd(rng);
            let arg = structured(rng, ctx, cmd, ctx.uuid);
            (cmd, arg, "the volume's uuid, fuzzed fields".to_string())
        }
        12..=14 => {
            let cmd = structured_cmd(rng);
            let uuid = unknown_uuid(rng, &ctx.uuid);
            let arg = structured(rng, ctx, cmd, uuid);
            (cmd, arg, "unknown uuid, fuzzed fields".to_string())
        }
        15..=17 => {
            let (known, name, size) = rng.pick(&KNOWN);
            let arg = if rng.one_in(2) {
                structured(rng, ctx, known, ctx.uuid)
            } else {
                rng.bytes(size)
            };
            let cmd = mutate_cmd(rng, known);
            (cmd, arg, format!("{name}'s number changed"))
        }
        _ => {
            let cmd = loop {
                let mut c = rng.next_u32();
                if rng.one_in(2) {
                    c = (c & !0xff00) | (IOCTL_TYPE << 8);
                }
                if is_fuzzable_cmd(c) {
                    break c;
                }
            };
            let n = ioc_size(cmd).min(256);
            (cmd, rng.bytes(n), "random number".to_string())
        }
    };
    let mut case = IoctlCase {
        cmd,
        arg,
        label,
        expect: Expect::Query,
    };
    loop {
        case.expect = expect_ioctl(case.cmd, &case.arg, ctx);
        let costly = matches!(case.expect, Expect::Alloc { .. } | Expect::Write);
        if case.expect != Expect::WouldBlock && !(costly && ctx.low_on_space()) {
            return case;
        }
        // Only the volume's own uuid gets that far: one bit off makes it unknown.
        case.arg[rng.index(16)] ^= 1 << rng.below(8);
        case.label.push_str(", a bit of the uuid flipped");
    }
}

// ---------------------------------------------------------------------------------------
// Judging an outcome.

/// Whether a sysfs write did what `exp` says; `after` is the snapshot after it.
pub fn judge_write(
    exp: &WriteExpect,
    outcome: Outcome,
    changes: &[Change],
    after: &Snapshot,
) -> bool {
    match *exp {
        WriteExpect::Nothing => outcome == Outcome::Ok(0) && changes.is_empty(),
        WriteExpect::Fail(e) => outcome == Outcome::Err(e) && changes.is_empty(),
        WriteExpect::Accept { len, set: None } => {
            outcome == Outcome::Ok(len as i64) && changes.is_empty()
        }
        WriteExpect::Accept {
            len,
            set: Some((id, v)),
        } => {
            let name = id.desc().name;
            let shows = format!("{}\n", id.desc().display(v));
            outcome == Outcome::Ok(len as i64)
                && after.option(name) == Some(shows.as_str())
                && changes.iter().all(|c| match c {
                    Change::OptsGen(a, b) => *b == a + 1,
                    Change::Option { name: n, .. } => n == name,
                    _ => false,
                })
                && changes.iter().any(|c| matches!(c, Change::OptsGen(..)))
        }
    }
}

/// Whether an ioctl did what `exp` says; `note` is set when a valid alloc's grant was
/// wrong or could not be freed.
pub fn judge_ioctl(exp: &Expect, outcome: Outcome, changes: &[Change], note: bool) -> bool {
    match exp {
        Expect::Fail(errs) => {
            matches!(outcome, Outcome::Err(e) if errs.contains(&e)) && changes.is_empty()
        }
        Expect::Query => outcome == Outcome::Ok(0) && changes.is_empty(),
        Expect::Alloc { .. } | Expect::Write => {
            outcome == Outcome::Ok(0)
                && !note
                && !changes.iter().any(|c| c.is_user() || c.is_setup())
        }
        Expect::MaybeFree(refs) => match outcome {
            Outcome::Err(libc::EINVAL) => changes.is_empty(),
            Outcome::Ok(0) => {
                let mut per_dev = std::collections::BTreeMap::<usize, u64>::new();
                for &(d, _) in refs {
                    *per_dev.entry(d as usize).or_default() += 1;
                }
                !changes.iter().any(Change::is_setup)
                    && per_dev.iter().all(|(&dev, &k)| {
                        changes.iter().any(|c| {
                            matches!(c, Change::Count { dev: d, what: "user", old, new }
                                if *d == dev && old.checked_sub(k) == Some(*new))
                        })
                    })
                    && changes.iter().filter(|c| c.is_user()).all(
                        |c| matches!(c, Change::Count { dev, .. } if per_dev.contains_key(dev)),
                    )
            }
            _ => false,
        },
        Expect::WouldBlock => false,
    }
}

// ---------------------------------------------------------------------------------------
// Memory behind bad pointers.

/// A mapping of this process, unmapped when dropped.
struct Mapping {
    addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    /// `len` bytes of fresh anonymous memory with protection `prot`.
    fn anon(len: usize, prot: libc::c_int) -> io::Result<Mapping> {
        // SAFETY: a new private anonymous mapping at an address the kernel picks: it
        // replaces nothing and nothing else refers to it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr, len })
    }

    /// `contents` (zero-padded to whole pages) in a private mapping of an unlinked
    /// temporary file, with protection `prot`: memory holding those bytes that this
    /// process never writes through a pointer.
    fn of_bytes(contents: &[u8], page: usize, prot: libc::c_int) -> io::Result<Mapping> {
        let len = contents.len().div_ceil(page).max(1) * page;
        let path = std::env::temp_dir().join(format!("bkalloc-fuzz-{}", std::process::id()));
        let _ = fs::remove_file(&path);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        fs::remove_file(&path)?;
        f.write_all(contents)?;
        f.set_len(len as u64)?;
        // SAFETY: a new private mapping of our own file at an address the kernel picks:
        // it replaces nothing, and writes to it (there are none) would not reach the file.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr, len })
    }

    /// Unmaps the page at `offset`; returns its address, now unmapped.
    fn unmap_page(&mut self, offset: usize, page: usize) -> io::Result<*mut libc::c_void> {
        let at = self.addr.wrapping_byte_add(offset);
        // SAFETY: `at..at + page` lies inside this mapping, which no reference points
        // into; the rest of the mapping stays (and `drop` unmaps the whole range, which
        // may contain holes).
        if unsafe { libc::munmap(at, page) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(at)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range is this mapping's (parts may be unmapped already, which
        // munmap allows); no reference into it outlives the mapping.
        unsafe {
            libc::munmap(self.addr, self.len);
        }
    }
}

/// Where a bad-pointer case puts its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadArg {
    /// NULL.
    Null,
    /// A page that was just unmapped (between two `PROT_NONE` pages).
    Unmapped,
    /// A mapped `PROT_NONE` page.
    ProtNone,
    /// The top page of the address space (the kernel's).
    TopPage,
    /// 2^63: not canonical on x86-64, outside user space everywhere.
    NonCanonical,
    /// Valid arguments whose second half lies in an unmapped page.
    Straddle,
    /// A read-only page holding valid arguments: the module can read them but not write
    /// its result back.
    ReadOnly,
}

impl BadArg {
    /// Every kind that must fail before the module reads anything.
    pub const UNREADABLE: [BadArg; 6] = [
        BadArg::Null,
        BadArg::Unmapped,
        BadArg::ProtNone,
        BadArg::TopPage,
        BadArg::NonCanonical,
        BadArg::Straddle,
    ];

    fn describe(self) -> &'static str {
        match self {
            BadArg::Null => "NULL",
            BadArg::Unmapped => "an unmapped page",
            BadArg::ProtNone => "a PROT_NONE page",
            BadArg::TopPage => "the top page of the address space",
            BadArg::NonCanonical => "a non-canonical address (2^63)",
            BadArg::Straddle => "arguments running into an unmapped page",
            BadArg::ReadOnly => "a read-only page holding the arguments",
        }
    }
}

/// Issues `cmd` with `args` behind a pointer of kind `bad`.
fn ioctl_bad(ctl: &File, cmd: u32, args: &[u8], bad: BadArg, page: usize) -> io::Result<Outcome> {
    let mut keep: Vec<Mapping> = Vec::with_capacity(1);
    let ptr: *mut libc::c_void = match bad {
        BadArg::Null => std::ptr::null_mut(),
        BadArg::Unmapped => {
            let mut m = Mapping::anon(3 * page, libc::PROT_NONE)?;
            let p = m.unmap_page(page, page)?;
            keep.push(m);
            p
        }
        BadArg::ProtNone => {
            let m = Mapping::anon(page, libc::PROT_NONE)?;
            let p = m.addr;
            keep.push(m);
            p
        }
        BadArg::TopPage => std::ptr::without_provenance_mut(usize::MAX & !(page - 1)),
        BadArg::NonCanonical => std::ptr::without_provenance_mut(1 << (usize::BITS - 1)),
        BadArg::Straddle => {
            let at = page - args.len() / 2;
            let mut contents = vec![0u8; 2 * page];
            contents[at..at + args.len()].copy_from_slice(args);
            let mut m = Mapping::of_bytes(&contents, page, libc::PROT_READ | libc::PROT_WRITE)?;
            m.unmap_page(page, page)?;
            let p = m.addr.wrapping_byte_add(at);
            keep.push(m);
            p
        }
        BadArg::ReadOnly => {
            let m = Mapping::of_bytes(args, page, libc::PROT_READ)?;
            let p = m.addr;
            keep.push(m);
            p
        }
    };
    // SAFETY: `ptr` is null, unmapped (nothing in this single-threaded process maps
    // memory between the munmap and this call), PROT_NONE, outside user space or
    // read-only, so the kernel refuses to write there; or (straddle) inside a private
    // mapping that `keep` holds and no reference points into.
    let r = unsafe { ctl::ioctl_raw(ctl, cmd, ptr) };
    drop(keep);
    Ok(r.into())
}

// ---------------------------------------------------------------------------------------
// The run.

/// Counts for the summary.
#[derive(Debug, Default)]
struct Stats {
    sysfs: u64,
    ioctls: u64,
    accepted_writes: u64,
    allocs: u64,
    frees: u64,
    inserts_flushes: u64,
    queries: u64,
    unexpected: u64,
}

struct Fuzzer {
    rng: Rng,
    ctl: File,
    dir: PathBuf,
    page: usize,
    ctx: Ctx,
    /// What the volume must look like now.
    expected: Snapshot,
    initial: Snapshot,
    option_files: Vec<String>,
    stats: Stats,
    case_no: u64,
}

fn read_usage(dir: &Path, i: usize) -> crate::Result<Geometry> {
    let path = dir.join(format!("dev-{i}/usage"));
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let get = |name: &str| -> crate::Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .ok_or_else(|| format!("{}: no '{name}'", path.display()))
    };
    Ok(Geometry {
        buckets: get("buckets")?,
        sb: get("sb")?,
        btree_reserve: get("reserve_btree")? as u32,
    })
}

/// The writable files of the volume's directory, `unregister` excepted (sorted).
fn writable_files(dir: &Path) -> crate::Result<Vec<Target>> {
    let mut found: Vec<String> = Vec::new();
    let list = |sub: &str, found: &mut Vec<String>| -> crate::Result<()> {
        let d = if sub.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(sub)
        };
        for e in fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let e = e.map_err(|e| format!("{}: {e}", d.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e
                .metadata()
                .map_err(|err| format!("{}/{name}: {err}", d.display()))?;
            let rel = if sub.is_empty() {
                name
            } else {
                format!("{sub}/{name}")
            };
            if meta.is_file() && meta.permissions().mode() & 0o222 != 0 {
                found.push(rel);
            }
        }
        Ok(())
    };
    list("", &mut found)?;
    list("options", &mut found)?;
    found.sort();
    let mut targets = Vec::new();
    for rel in found {
        if rel == "unregister" {
            continue;
        }
        let t = if rel == "abort_waiting" {
            Some(Target::AbortWaiting)
        } else {
            rel.strip_prefix("options/")
                .and_then(OptId::from_name)
                .map(Target::Option)
        };
        match t {
            Some(t) => targets.push(t),
            None => println!("fuzz: note: writable file {rel} has no classifier; not fuzzed"),
        }
    }
    Ok(targets)
}

impl Fuzzer {
    fn open(args: &FuzzArgs) -> crate::Result<Fuzzer> {
        let uuid = uuid::parse(&args.volume)
            .ok_or_else(|| format!("'{}' is not a volume uuid", args.volume))?;
        let dir = Path::new(SYSFS).join(Hyphenated(&uuid).to_string());
        let replay = fs::read_to_string(dir.join("replay"))
            .map_err(|e| format!("{}: {e} (is the volume registered?)", dir.display()))?;
        if !replay.starts_with("state=done") {
            return Err(format!(
                "the volume is not up yet: replay {}",
                replay.trim()
            ));
        }
        let ctl = ctl::open_ctl().map_err(|e| format!("{CTL_PATH}: {e}"))?;
        let page = page_size();
        let mut option_files: Vec<String> = fs::read_dir(dir.join("options"))
            .map_err(|e| format!("{}/options: {e}", dir.display()))?
            .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
            .collect();
        option_files.sort();
        let mut f = Fuzzer {
            rng: Rng::new(args.seed),
            ctl,
            dir,
            page,
            ctx: Ctx {
                uuid,
                geometry: Vec::new(),
                counts: Vec::new(),
                options: Options::defaults(),
                own_freed: BTreeSet::new(),
            },
            expected: Snapshot {
                opts_gen: 0,
                waiters: 0,
                devs: Vec::new(),
                options: Vec::new(),
            },
            initial: Snapshot {
                opts_gen: 0,
                waiters: 0,
                devs: Vec::new(),
                options: Vec::new(),
            },
            option_files,
            stats: Stats::default(),
            case_no: 0,
        };
        let s = f.snapshot()?;
        if s.waiters != 0 {
            return Err(format!(
                "{} requests are blocked on the volume; fuzz needs an idle volume",
                s.waiters
            ));
        }
        f.ctx.geometry = (0..s.devs.len())
            .map(|i| read_usage(&f.dir, i))
            .collect::<crate::Result<_>>()?;
        f.initial = s.clone();
        f.adopt(s)?;
        Ok(f)
    }

    fn snapshot(&self) -> crate::Result<Snapshot> {
        let args = StatusArgs {
            uuid: self.ctx.uuid,
            ..Default::default()
        };
        let s = ctl::ioctl_on(&self.ctl, IOC_STATUS, &args).map_err(|e| format!("status: {e}"))?;
        let mut options = Vec::with_capacity(self.option_files.len());
        for name in &self.option_files {
            let path = self.dir.join("options").join(name);
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            options.push((name.clone(), text));
        }
        Ok(Snapshot {
            opts_gen: s.opts_gen,
            waiters: s.waiters,
            devs: s.devs.iter().take(s.members as usize).copied().collect(),
            options,
        })
    }

    /// Takes `s` as what the volume must look like from now on.
    fn adopt(&mut self, s: Snapshot) -> crate::Result<()> {
        self.ctx.options = s.parsed_options()?;
        self.ctx.counts = s.devs.clone();
        self.expected = s;
        Ok(())
    }

    fn unexpected(&mut self, what: &str, outcome: Outcome, changes: &[Change], expected: &str) {
        self.stats.unexpected += 1;
        let changed = if changes.is_empty() {
            String::new()
        } else {
            format!(", changed: {}", describe(changes))
        };
        println!(
            "fuzz: UNEXPECTED: #{} {what} -> {outcome}{changed}, expected {expected}",
            self.case_no
        );
    }

    fn sysfs_case(&mut self, target: Target) -> crate::Result<()> {
        self.case_no += 1;
        self.stats.sysfs += 1;
        let members = self.ctx.members();
        let (input, exp) = pick_input(&mut self.rng, target, self.page, &self.ctx.options, members);
        let rel = target.rel_path();
        let outcome = write_once(&self.dir.join(&rel), &input)?;
        let after = self.snapshot()?;
        let ch = changes(&self.expected, &after);
        if judge_write(&exp, outcome, &ch, &after) {
            if let WriteExpect::Accept { set: Some(_), .. } = exp {
                self.stats.accepted_writes += 1;
            }
        } else {
            let what = format!("write {rel} [{}] {}", input.len(), escape(&input));
            self.unexpected(&what, outcome, &ch, &exp.to_string());
        }
        self.adopt(after)
    }

    /// Issues `cmd` with `arg` at the start of a buffer larger than any size an ioctl
    /// number encodes (`arg` is never longer); returns the outcome and the buffer (what
    /// the module wrote back).
    fn send(&self, cmd: u32, arg: &[u8]) -> (Outcome, Vec<u8>) {
        let mut buf = vec![0u8; IOC_BUF];
        buf[..arg.len()].copy_from_slice(arg);
        // SAFETY: `buf` is IOC_BUF bytes, more than any size an ioctl number encodes, owned
        // here and not otherwise used during the call.
        let outcome = unsafe { ctl::ioctl_raw(&self.ctl, cmd, buf.as_mut_ptr().cast()) }.into();
        (outcome, buf)
    }

    fn ioctl_case(&mut self) -> crate::Result<()> {
        self.case_no += 1;
        self.stats.ioctls += 1;
        let case = gen_ioctl(&mut self.rng, &self.ctx);
        let (outcome, buf) = self.send(case.cmd, &case.arg);
        let mut note = String::new();
        if case.cmd == IOC_ALLOC && outcome == Outcome::Ok(0) {
            note = self.give_back(&buf, &case.expect);
        }
        let after = self.snapshot()?;
        let ch = changes(&self.expected, &after);
        if judge_ioctl(&case.expect, outcome, &ch, !note.is_empty()) {
            match (&case.expect, outcome) {
                (Expect::Alloc { .. }, _) => self.stats.allocs += 1,
                (Expect::Write, _) => self.stats.inserts_flushes += 1,
                (Expect::Query, _) => self.stats.queries += 1,
                (Expect::MaybeFree(refs), Outcome::Ok(_)) => {
                    self.stats.frees += 1;
                    self.ctx.own_freed.extend(refs.iter().copied());
                }
                _ => {}
            }
        } else {
            let outcome_note = if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            };
            let what = case.describe();
            self.unexpected(
                &what,
                outcome,
                &ch,
                &format!("{}{outcome_note}", case.expect),
            );
        }
        self.adopt(after)
    }

    /// Frees what a successful alloc granted (its result is in `buf`); returns what was
    /// wrong, if anything, with the grant (checked when `exp` said the alloc was valid)
    /// or the free.
    fn give_back(&mut self, buf: &[u8], exp: &Expect) -> String {
        let Some(a) = AllocArgs::decode(buf) else {
            return "short result".to_string();
        };
        let n = (a.n as usize).min(MAX_REPLICAS);
        let grant = &a.buckets[..n];
        let mut problems = Vec::new();
        if let Expect::Alloc { replicas } = *exp {
            if a.n != replicas {
                problems.push(format!("granted {} buckets, not {replicas}", a.n));
            }
            let devs: BTreeSet<u32> = grant.iter().map(|r| r.dev).collect();
            if devs.len() != n {
                problems.push("two buckets on one member".to_string());
            }
            for r in grant {
                match self.ctx.geometry.get(r.dev as usize) {
                    Some(g) if (g.sb..g.buckets).contains(&r.bucket) => {}
                    _ => problems.push(format!("granted {}:{} is out of range", r.dev, r.bucket)),
                }
            }
        }
        if n > 0 {
            let mut f = FreeArgs {
                uuid: self.ctx.uuid,
                n: n as u32,
                ..Default::default()
            };
            f.buckets[..n].copy_from_slice(grant);
            for r in f.buckets.iter_mut() {
                r.pad = 0;
            }
            match ctl::ioctl_on(&self.ctl, IOC_FREE, &f) {
                Ok(_) => self
                    .ctx
                    .own_freed
                    .extend(grant.iter().map(|r| (r.dev, r.bucket))),
                Err(e) => problems.push(format!("freeing the grant failed: {e}")),
            }
        }
        problems.join("; ")
    }

    /// Valid arguments of every command for the volume, for the bad-pointer cases.
    fn valid_args(&self) -> Vec<(u32, &'static str, Vec<u8>)> {
        let uuid = self.ctx.uuid;
        let alloc = AllocArgs {
            uuid,
            kind: Kind::User as u32,
            replicas: FROM_OPTIONS,
            watermark: FROM_OPTIONS,
            deadline_secs: FROM_OPTIONS,
            ..Default::default()
        };
        let mut free = FreeArgs {
            uuid,
            n: 1,
            ..Default::default()
        };
        free.buckets[0] = BucketRef::default(); // bucket 0: sb, if it is ever read
        vec![
            (IOC_ALLOC, "ALLOC", encoded(&alloc)),
            (IOC_FREE, "FREE", encoded(&free)),
            (
                IOC_STATUS,
                "STATUS",
                encoded(&StatusArgs {
                    uuid,
                    ..Default::default()
                }),
            ),
            (
                IOC_GET,
                "GET",
                encoded(&GetArgs {
                    uuid,
                    ..Default::default()
                }),
            ),
            (
                IOC_INSERT,
                "INSERT",
                encoded(&InsertArgs {
                    uuid,
                    key: 1 << 63,
                    ..Default::default()
                }),
            ),
            (
                IOC_FLUSH,
                "FLUSH",
                encoded(&FlushArgs {
                    uuid,
                    ..Default::default()
                }),
            ),
        ]
    }

    /// One bad-pointer case: must fail with EFAULT and change nothing. Returns the
    /// snapshots before and after.
    fn bad_pointer_case(
        &mut self,
        cmd: u32,
        name: &str,
        args: &[u8],
        bad: BadArg,
        give_back_ok: bool,
    ) -> crate::Result<(Snapshot, Snapshot)> {
        self.case_no += 1;
        self.stats.ioctls += 1;
        let before = self.expected.clone();
        let outcome = ioctl_bad(&self.ctl, cmd, args, bad, self.page)
            .map_err(|e| format!("setting up {}: {e}", bad.describe()))?;
        let after = self.snapshot()?;
        let ch = changes(&before, &after);
        // An alloc that got its buckets before finding it could not return them may give
        // them back: free -> need_discard on the members it took, nothing else.
        let gave_back = give_back_ok && gave_back_only(&before, &after);
        let ok = outcome == Outcome::Err(libc::EFAULT) && (ch.is_empty() || gave_back);
        if !ok {
            let what = format!(
                "ioctl {cmd:#010x} ({name}) arg={} holding {}",
                bad.describe(),
                hex(args)
            );
            let expected = if give_back_ok {
                "EFAULT, nothing changed (or the granted buckets given back: need_discard, not user)"
            } else {
                "EFAULT, nothing changed"
            };
            self.unexpected(&what, outcome, &ch, expected);
        }
        self.adopt(after.clone())?;
        Ok((before, after))
    }

    fn bad_pointers(&mut self) -> crate::Result<()> {
        for (cmd, name, args) in self.valid_args() {
            for bad in BadArg::UNREADABLE {
                self.bad_pointer_case(cmd, name, &args, bad, false)?;
            }
        }
        // Valid arguments the module can read, a result it cannot write back.
        let valid = self.valid_args();
        let (_, _, alloc) = &valid[0];
        match expect_ioctl(IOC_ALLOC, alloc, &self.ctx) {
            Expect::Alloc { .. } => {
                let (before, after) =
                    self.bad_pointer_case(IOC_ALLOC, "ALLOC", alloc, BadArg::ReadOnly, true)?;
                println!(
                    "fuzz: efault alloc: user {}->{}, need_discard {}->{}",
                    before.total(USER),
                    after.total(USER),
                    before.total(NEED_DISCARD),
                    after.total(NEED_DISCARD)
                );
            }
            other => println!(
                "fuzz: efault alloc: skipped (the volume cannot serve an alloc now: {other})"
            ),
        }
        for (cmd, name, args) in &valid {
            if matches!(*cmd, IOC_STATUS | IOC_GET) {
                self.bad_pointer_case(*cmd, name, args, BadArg::ReadOnly, false)?;
            }
        }
        Ok(())
    }

    /// The ABI's named refusals, once each: a valid request with one field broken (a
    /// reserved field set, a count out of range, a version the module does not speak)
    /// must get EINVAL, as the classifier says too, and change nothing.
    fn abi_refusals(&mut self) -> crate::Result<()> {
        let valid = self.valid_args();
        let arg = |cmd: u32| {
            valid
                .iter()
                .find(|(c, _, _)| *c == cmd)
                .map(|(_, _, a)| a.clone())
                .unwrap_or_default()
        };
        let with = |mut a: Vec<u8>, off: usize, v: u32| {
            put32(&mut a, off, v);
            a
        };
        let version = |abi: u32, reserved: u64| {
            encoded(&VersionArgs {
                abi,
                reserved: [0, reserved],
                ..Default::default()
            })
        };
        let too_many = u32::try_from(MAX_REPLICAS + 1).unwrap_or(u32::MAX);
        let cases: [(&str, u32, Vec<u8>); 9] = [
            (
                "alloc, reserved field nonzero",
                IOC_ALLOC,
                with(arg(IOC_ALLOC), 36, 1),
            ),
            (
                "get, reserved field nonzero",
                IOC_GET,
                with(arg(IOC_GET), 28, 1),
            ),
            (
                "free, reserved field nonzero",
                IOC_FREE,
                with(arg(IOC_FREE), 20, 1),
            ),
            (
                "free, bucket reserved field nonzero",
                IOC_FREE,
                with(arg(IOC_FREE), 24 + 4, 1),
            ),
            (
                "free, count over the maximum",
                IOC_FREE,
                with(arg(IOC_FREE), 16, too_many),
            ),
            ("free, count zero", IOC_FREE, with(arg(IOC_FREE), 16, 0)),
            (
                "version, unknown version",
                IOC_VERSION,
                version(ABI_VERSION + 1, 0),
            ),
            ("version, version zero", IOC_VERSION, version(0, 0)),
            (
                "version, reserved field nonzero",
                IOC_VERSION,
                version(ABI_VERSION, 1),
            ),
        ];
        for (name, cmd, args) in cases {
            self.case_no += 1;
            self.stats.ioctls += 1;
            let expect = expect_ioctl(cmd, &args, &self.ctx);
            let (outcome, _) = self.send(cmd, &args);
            let after = self.snapshot()?;
            let ch = changes(&self.expected, &after);
            println!("fuzz: abi: {name}: {outcome}");
            let einval = Outcome::Err(libc::EINVAL);
            if outcome != einval || !judge_ioctl(&expect, outcome, &ch, false) {
                self.unexpected(
                    &format!("abi: {name}"),
                    outcome,
                    &ch,
                    &format!("EINVAL ({expect})"),
                );
            }
            self.adopt(after)?;
        }
        Ok(())
    }

    /// Writes back every option the run changed, and checks it reads as before.
    fn restore(&mut self) -> crate::Result<()> {
        for (name, old) in self.initial.options.clone() {
            if self.expected.option(&name) == Some(old.as_str()) {
                continue;
            }
            let rel = format!("options/{name}");
            let outcome = write_once(&self.dir.join(&rel), old.as_bytes())?;
            let after = self.snapshot()?;
            if outcome != Outcome::Ok(old.len() as i64) || after.option(&name) != Some(old.as_str())
            {
                let ch = changes(&self.expected, &after);
                let what = format!("restoring {rel} with {}", escape(old.as_bytes()));
                self.unexpected(&what, outcome, &ch, "ok, the file reads as before the run");
            }
            self.adopt(after)?;
        }
        Ok(())
    }

    /// Checks nothing moved since the last case and prints the summary.
    fn finish(&mut self) -> crate::Result<bool> {
        let end = self.snapshot()?;
        let ch = changes(&self.expected, &end);
        if !ch.is_empty() {
            self.unexpected(
                "(after the last case)",
                Outcome::Ok(0),
                &ch,
                "nothing changed",
            );
        }
        let (a, b) = (&self.initial, &end);
        println!(
            "fuzz: volume: user {}->{}, need_discard {}->{}, btree {}->{}, free {}->{}, opts_gen {}->{}",
            a.total(USER),
            b.total(USER),
            a.total(NEED_DISCARD),
            b.total(NEED_DISCARD),
            a.total(BTREE),
            b.total(BTREE),
            a.total(FREE),
            b.total(FREE),
            a.opts_gen,
            b.opts_gen
        );
        let s = &self.stats;
        println!(
            "fuzz: valid: {} option writes, {} allocs, {} frees, {} inserts and flushes, {} queries",
            s.accepted_writes, s.allocs, s.frees, s.inserts_flushes, s.queries
        );
        println!(
            "fuzz: {} cases ({} sysfs writes, {} ioctls), {} unexpected",
            s.sysfs + s.ioctls,
            s.sysfs,
            s.ioctls,
            s.unexpected
        );
        Ok(s.unexpected == 0)
    }
}

/// Whether `before` -> `after` is only free buckets turned need_discard (an alloc given
/// back), per member.
fn gave_back_only(before: &Snapshot, after: &Snapshot) -> bool {
    before.opts_gen == after.opts_gen
        && before.waiters == after.waiters
        && before.options == after.options
        && before.devs.len() == after.devs.len()
        && before.devs.iter().zip(&after.devs).all(|(b, a)| {
            let taken = b.free.checked_sub(a.free);
            a.user == b.user
                && a.btree == b.btree
                && a.open == b.open
                && taken.is_some()
                && Some(a.need_discard) == taken.and_then(|t| b.need_discard.checked_add(t))
        })
}

/// The system's page size: what sysfs hands a store at most, and the unit of mappings.
fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

/// Writes `input` to `path` with one write(2) on a fresh `O_WRONLY` descriptor.
fn write_once(path: &Path, input: &[u8]) -> crate::Result<Outcome> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(match f.write(input) {
        Ok(n) => Outcome::Ok(n as i64),
        Err(e) => Outcome::Err(e.raw_os_error().unwrap_or(0)),
    })
}

/// `bkalloc fuzz`: `Ok(true)` if every case behaved.
pub fn run(args: &FuzzArgs) -> crate::Result<bool> {
    let mut f = Fuzzer::open(args)?;
    let targets = if args.ioctl_only {
        Vec::new()
    } else {
        writable_files(&f.dir)?
    };
    println!(
        "fuzz: volume {}, {} members, seed {}, {} rounds{}",
        Hyphenated(&f.ctx.uuid),
        f.ctx.members(),
        args.seed,
        args.rounds,
        if args.sysfs_only {
            " (sysfs only)"
        } else if args.ioctl_only {
            " (ioctls only)"
        } else {
            ""
        }
    );
    for _ in 0..args.rounds {
        for &t in &targets {
            f.sysfs_case(t)?;
        }
        if !args.sysfs_only {
            for _ in 0..IOCTLS_PER_ROUND {
                f.ioctl_case()?;
            }
        }
    }
    if !args.sysfs_only {
        f.bad_pointers()?;
        f.abi_refusals()?;
    }
    f.restore()?;
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn two_members() -> Ctx {
        let g = Geometry {
            buckets: 1024,
            sb: 18,
            btree_reserve: 2,
        };
        let c = DevStatus {
            free: 1000,
            open: 0,
            need_discard: 0,
            btree: 3,
            user: 3,
        };
        Ctx {
            uuid: [7; 16],
            geometry: vec![g, g],
            counts: vec![c, c],
            options: Options::defaults(),
            own_freed: BTreeSet::new(),
        }
    }

    fn opt(name: &str) -> Target {
        Target::Option(OptId::from_name(name).unwrap())
    }

    fn w(target: Target, input: &[u8]) -> WriteExpect {
        expect_write(target, input, PAGE, &Options::defaults(), 2)
    }

    #[test]
    fn rng_is_splitmix64() {
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
        let mut r = Rng::new(1);
        assert_eq!(r.next_u64(), 0x910a_2dec_8902_5cc1);
    }

    #[test]
    fn rng_is_deterministic_and_seeds_differ() {
        let a: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..100).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..100).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::new(43);
            (0..100).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = Rng::new(5);
        for n in [1u64, 2, 3, 10, 1000] {
            for _ in 0..100 {
                assert!(r.below(n) < n);
            }
        }
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn cases_are_deterministic_from_the_seed() {
        let ctx = two_members();
        let run = |seed| {
            let mut r = Rng::new(seed);
            let inputs: Vec<Vec<u8>> = (0..300)
                .map(|_| gen_input_for(&mut r, Target::AbortWaiting))
                .collect();
            let cases: Vec<IoctlCase> = (0..300).map(|_| gen_ioctl(&mut r, &ctx)).collect();
            (inputs, cases)
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn inputs_cover_the_mixes() {
        let mut r = Rng::new(3);
        let inputs: Vec<Vec<u8>> = (0..5000).map(|_| gen_input(&mut r)).collect();
        assert!(inputs.iter().any(|i| i.is_empty()));
        assert!(inputs.iter().any(|i| i.len() > PAGE));
        assert!(inputs.iter().all(|i| i.len() <= PAGE + 16 + 8));
        assert!(inputs.iter().any(|i| i.contains(&0)));
        assert!(inputs.iter().any(|i| std::str::from_utf8(i).is_err()));
        assert!(inputs.iter().any(|i| i.ends_with(b"\n")));
        // Every file gets some inputs it accepts and many it refuses.
        for t in [
            opt("alloc_deadline"),
            opt("alloc_wait_policy"),
            Target::AbortWaiting,
        ] {
            let acc = inputs
                .iter()
                .filter(|i| matches!(w(t, i), WriteExpect::Accept { .. }))
                .count();
            assert!(acc > 5 && acc < 2500, "{t:?}: {acc} accepted");
            // Inputs of the file's own kind make accepted writes common enough.
            let acc = (0..3000)
                .filter(|_| matches!(w(t, &gen_input_for(&mut r, t)), WriteExpect::Accept { .. }))
                .count();
            assert!(acc > 150 && acc < 1000, "{t:?}: {acc} of 3000 accepted");
        }
    }

    #[test]
    fn protected_options_only_get_refused_inputs() {
        let mut r = Rng::new(9);
        for &t in &[
            opt("discard"),
            opt("replay_discard_priority"),
            opt("metadata_replicas"),
            opt("data_replicas"),
        ] {
            assert!(t.protected());
            let mut accepted = 0;
            for _ in 0..2000 {
                accepted += usize::from(matches!(
                    w(t, &gen_input_for(&mut r, t)),
                    WriteExpect::Accept { .. }
                ));
                let (input, exp) = pick_input(&mut r, t, PAGE, &Options::defaults(), 2);
                assert_eq!(exp, w(t, &input));
                assert!(
                    matches!(exp, WriteExpect::Fail(_) | WriteExpect::Nothing),
                    "{t:?} {}",
                    escape(&input)
                );
            }
            // There was something to regenerate.
            assert!(accepted > 0, "{t:?}");
        }
        assert!(!opt("alloc_deadline").protected());
        assert!(!Target::AbortWaiting.protected());
    }

    #[test]
    fn option_writes_follow_the_option_table() {
        let dl = opt("alloc_deadline");
        let set = |v| Some((OptId::AllocDeadline, v));
        assert_eq!(w(dl, b""), WriteExpect::Nothing);
        assert_eq!(
            w(dl, b"12\n"),
            WriteExpect::Accept {
                len: 3,
                set: set(12)
            }
        );
        assert_eq!(
            w(dl, b" 0 \t\n"),
            WriteExpect::Accept {
                len: 5,
                set: set(0)
            }
        );
        assert_eq!(
            w(dl, "7\u{a0}".as_bytes()),
            WriteExpect::Accept {
                len: 3,
                set: set(7)
            }
        );
        for bad in [
            &b"x"[..],
            b"\n",
            b"   ",
            b"-1",
            b"+1",
            b"1\0",
            b"\x001",
            b"1 1",
            b"86401",
            b"4294967296",
            b"00000000001",
            b"0x10",
            b"\xff",
            b"1\xc3",
        ] {
            assert_eq!(
                w(dl, bad),
                WriteExpect::Fail(libc::EINVAL),
                "{}",
                escape(bad)
            );
        }
        // Zero-width space and BOM are not whitespace.
        assert_eq!(
            w(dl, "1\u{200b}".as_bytes()),
            WriteExpect::Fail(libc::EINVAL)
        );
        assert_eq!(
            w(dl, "\u{feff}1".as_bytes()),
            WriteExpect::Fail(libc::EINVAL)
        );
        let p = opt("alloc_wait_policy");
        assert_eq!(
            w(p, b"degrade\n"),
            WriteExpect::Accept {
                len: 8,
                set: Some((OptId::AllocWaitPolicy, 2))
            }
        );
        for bad in [&b"Wait"[..], b"wai", b"2", b"wait\0", b"wa it"] {
            assert_eq!(w(p, bad), WriteExpect::Fail(libc::EINVAL));
        }
        let d = opt("discard");
        assert!(matches!(w(d, b"1"), WriteExpect::Accept { .. }));
        assert_eq!(w(d, b"2"), WriteExpect::Fail(libc::EINVAL));
        assert_eq!(w(d, b"01"), WriteExpect::Fail(libc::EINVAL));
    }

    #[test]
    fn replica_writes_are_checked_against_the_members() {
        let m = opt("metadata_replicas");
        let o = Options::defaults();
        assert!(matches!(
            expect_write(m, b"2", PAGE, &o, 2),
            WriteExpect::Accept { .. }
        ));
        assert_eq!(
            expect_write(m, b"3", PAGE, &o, 2),
            WriteExpect::Fail(libc::EINVAL)
        );
        assert!(matches!(
            expect_write(m, b"3", PAGE, &o, 3),
            WriteExpect::Accept { .. }
        ));
        assert_eq!(
            expect_write(m, b"5", PAGE, &o, 9),
            WriteExpect::Fail(libc::EINVAL)
        );
        assert_eq!(
            expect_write(m, b"0", PAGE, &o, 2),
            WriteExpect::Fail(libc::EINVAL)
        );
        // metadata_replicas=1 on one member is fine, data_replicas=2 is not.
        let d = opt("data_replicas");
        assert_eq!(
            expect_write(d, b"2", PAGE, &o, 1),
            WriteExpect::Fail(libc::EINVAL)
        );
    }

    #[test]
    fn sysfs_sees_one_page_at_most() {
        let dl = opt("alloc_deadline");
        // "5" and a page of spaces: the store sees the first page, which is valid.
        let mut v = b"5".to_vec();
        v.resize(PAGE + 16, b' ');
        assert_eq!(
            w(dl, &v),
            WriteExpect::Accept {
                len: PAGE,
                set: Some((OptId::AllocDeadline, 5))
            }
        );
        // Junk past the page is never seen.
        let mut v = vec![b' '; PAGE - 1];
        v.extend_from_slice(b"5x");
        assert!(matches!(w(dl, &v), WriteExpect::Accept { len: PAGE, .. }));
        // A character cut by the page boundary is not UTF-8.
        let mut v = vec![b' '; PAGE - 1];
        v.extend_from_slice("é".as_bytes());
        assert_eq!(w(dl, &v), WriteExpect::Fail(libc::EINVAL));
        // A page of digits is too long a number.
        let mut v = vec![b'0'; PAGE];
        v.push(b'1');
        assert_eq!(w(dl, &v), WriteExpect::Fail(libc::EINVAL));
    }

    #[test]
    fn abort_waiting_takes_all_or_a_waiter_id() {
        let a = Target::AbortWaiting;
        assert_eq!(w(a, b"all\n"), WriteExpect::Accept { len: 4, set: None });
        assert_eq!(w(a, b" all "), WriteExpect::Accept { len: 5, set: None });
        for id in [&b"7"[..], b"0", b"+7", b"18446744073709551615\n"] {
            assert_eq!(w(a, id), WriteExpect::Fail(libc::ENOENT), "{}", escape(id));
        }
        for bad in [
            &b"ALL"[..],
            b"al",
            b"all all",
            b"-1",
            b"18446744073709551616",
            b"+",
            b"all\0",
            b"\n",
        ] {
            assert_eq!(
                w(a, bad),
                WriteExpect::Fail(libc::EINVAL),
                "{}",
                escape(bad)
            );
        }
        assert_eq!(w(a, b""), WriteExpect::Nothing);
    }

    fn alloc_arg(ctx: &Ctx, f: impl FnOnce(&mut AllocArgs)) -> Vec<u8> {
        let mut a = AllocArgs {
            uuid: ctx.uuid,
            kind: Kind::User as u32,
            replicas: FROM_OPTIONS,
            watermark: FROM_OPTIONS,
            deadline_secs: FROM_OPTIONS,
            ..Default::default()
        };
        f(&mut a);
        encoded(&a)
    }

    fn free_arg(ctx: &Ctx, n: u32, refs: &[(u32, u64)]) -> Vec<u8> {
        let mut f = FreeArgs {
            uuid: ctx.uuid,
            n,
            ..Default::default()
        };
        for (slot, &(dev, bucket)) in f.buckets.iter_mut().zip(refs) {
            *slot = BucketRef {
                dev,
                pad: 0,
                bucket,
            };
        }
        encoded(&f)
    }

    fn fail(errs: &[i32]) -> Expect {
        Expect::Fail(errs.to_vec())
    }

    #[test]
    fn allocs_are_checked_in_the_modules_order() {
        let ctx = two_members();
        let e = |arg: Vec<u8>| expect_ioctl(IOC_ALLOC, &arg, &ctx);
        assert_eq!(e(alloc_arg(&ctx, |_| {})), Expect::Alloc { replicas: 1 });
        // kind btree from a user: metadata_replicas (2) buckets.
        assert_eq!(
            e(alloc_arg(&ctx, |a| a.kind = 0)),
            Expect::Alloc { replicas: 2 }
        );
        assert_eq!(e(alloc_arg(&ctx, |a| a.kind = 2)), fail(&[libc::EINVAL]));
        assert_eq!(
            e(alloc_arg(&ctx, |a| a.watermark = 3)),
            fail(&[libc::EINVAL])
        );
        assert_eq!(
            e(alloc_arg(&ctx, |a| a.replicas = 0)),
            fail(&[libc::EINVAL])
        );
        assert_eq!(
            e(alloc_arg(&ctx, |a| a.replicas = 5)),
            fail(&[libc::EINVAL])
        );
        assert_eq!(
            e(alloc_arg(&ctx, |a| a.replicas = 3)),
            fail(&[libc::ENOSPC])
        );
        assert_eq!(
            e(alloc_arg(&ctx, |a| {
                a.replicas = 2;
                a.watermark = 2;
                a.deadline_secs = 0;
            })),
            Expect::Alloc { replicas: 2 }
        );
        // The uuid first: a bad kind of another volume is ENOENT.
        assert_eq!(
            e(alloc_arg(&ctx, |a| {
                a.uuid = [1; 16];
                a.kind = 9;
            })),
            fail(&[libc::ENOENT])
        );
        // Out fields are ignored; the reserved one must be zero.
        assert_eq!(
            e(alloc_arg(&ctx, |a| {
                a.n = 77;
                a.buckets[2].bucket = 5;
            })),
            Expect::Alloc { replicas: 1 }
        );
        let mut padded = alloc_arg(&ctx, |_| {});
        put32(&mut padded, 36, 1);
        assert_eq!(e(padded), fail(&[libc::EINVAL]));
        // A member at its reserve: the request would wait, or can never be served.
        // (reserve_normal = 2 + 1024 / 64 = 18)
        let mut full = two_members();
        full.counts[1].free = 18;
        let arg = alloc_arg(&full, |a| a.replicas = 2);
        assert_eq!(expect_ioctl(IOC_ALLOC, &arg, &full), fail(&[libc::ENOSPC]));
        full.counts[1].need_discard = 100;
        assert_eq!(expect_ioctl(IOC_ALLOC, &arg, &full), Expect::WouldBlock);
        // At watermark reclaim (no reserve) it can be served now.
        let arg = alloc_arg(&full, |a| {
            a.replicas = 2;
            a.watermark = Watermark::Reclaim as u32;
        });
        assert_eq!(
            expect_ioctl(IOC_ALLOC, &arg, &full),
            Expect::Alloc { replicas: 2 }
        );
    }

    #[test]
    fn frees_name_only_user_buckets() {
        let mut ctx = two_members();
        let e = |ctx: &Ctx, arg: Vec<u8>| expect_ioctl(IOC_FREE, &arg, ctx);
        let inval = fail(&[libc::EINVAL]);
        for n in [0, 5, u32::MAX] {
            assert_eq!(e(&ctx, free_arg(&ctx, n, &[(0, 100); 4])), inval, "n = {n}");
        }
        assert_eq!(e(&ctx, free_arg(&ctx, 2, &[(0, 100), (0, 100)])), inval);
        assert_eq!(e(&ctx, free_arg(&ctx, 1, &[(2, 100)])), inval);
        assert_eq!(e(&ctx, free_arg(&ctx, 1, &[(0, 0)])), inval);
        assert_eq!(e(&ctx, free_arg(&ctx, 1, &[(0, 17)])), inval);
        assert_eq!(e(&ctx, free_arg(&ctx, 1, &[(0, 1024)])), inval);
        assert_eq!(e(&ctx, free_arg(&ctx, 1, &[(1, u64::MAX)])), inval);
        // One bad bucket refuses the whole free.
        assert_eq!(e(&ctx, free_arg(&ctx, 2, &[(0, 100), (0, 0)])), inval);
        // In range, state unknown.
        assert_eq!(
            e(&ctx, free_arg(&ctx, 2, &[(0, 100), (1, 100)])),
            Expect::MaybeFree(vec![(0, 100), (1, 100)])
        );
        // Past n nothing counts.
        assert_eq!(
            e(&ctx, free_arg(&ctx, 1, &[(0, 100), (0, 0), (9, 9)])),
            Expect::MaybeFree(vec![(0, 100)])
        );
        // Reserved fields.
        let mut arg = free_arg(&ctx, 1, &[(0, 100)]);
        put32(&mut arg, 20, 1);
        assert_eq!(e(&ctx, arg), inval);
        let mut arg = free_arg(&ctx, 1, &[(0, 100)]);
        put32(&mut arg, 28, 1);
        assert_eq!(e(&ctx, arg), inval);
        // Unknown volume, after the structural checks.
        let mut other = free_arg(&ctx, 1, &[(0, 100)]);
        other[0] ^= 1;
        assert_eq!(e(&ctx, other.clone()), fail(&[libc::ENOENT]));
        put32(&mut other, 16, 0);
        assert_eq!(e(&ctx, other), inval);
        // Buckets this run freed, and members without user buckets.
        ctx.own_freed.insert((0, 100));
        assert_eq!(e(&ctx, free_arg(&ctx, 1, &[(0, 100)])), inval);
        ctx.counts[1].user = 0;
        assert_eq!(e(&ctx, free_arg(&ctx, 1, &[(1, 200)])), inval);
    }

    #[test]
    fn other_commands() {
        let ctx = two_members();
        let with = |uuid: Uuid, size| {
            let mut b = vec![0u8; size];
            b[..16].copy_from_slice(&uuid);
            b
        };
        let enoent = fail(&[libc::ENOENT]);
        assert_eq!(
            expect_ioctl(IOC_STATUS, &with(ctx.uuid, StatusArgs::SIZE), &ctx),
            Expect::Query
        );
        assert_eq!(
            expect_ioctl(IOC_STATUS, &with([0; 16], StatusArgs::SIZE), &ctx),
            enoent
        );
        assert_eq!(
            expect_ioctl(IOC_GET, &with(ctx.uuid, GetArgs::SIZE), &ctx),
            Expect::Query
        );
        let mut padded = with(ctx.uuid, GetArgs::SIZE);
        padded[31] = 0x80;
        assert_eq!(expect_ioctl(IOC_GET, &padded, &ctx), fail(&[libc::EINVAL]));
        padded[0] ^= 1;
        assert_eq!(expect_ioctl(IOC_GET, &padded, &ctx), enoent);
        assert_eq!(
            expect_ioctl(IOC_INSERT, &with(ctx.uuid, 64), &ctx),
            Expect::Write
        );
        assert_eq!(
            expect_ioctl(IOC_FLUSH, &with(ctx.uuid, 32), &ctx),
            Expect::Write
        );
        assert_eq!(expect_ioctl(IOC_FLUSH, &with([9; 16], 32), &ctx), enoent);
        // The known numbers with another size, and random ones.
        let notty = fail(&[libc::ENOTTY]);
        assert_eq!(
            expect_ioctl(IOC_STATUS + (1 << 16), &[0; 2000], &ctx),
            notty
        );
        assert_eq!(expect_ioctl(0, &[], &ctx), notty);
        assert_eq!(expect_ioctl(IOC_FREE & !(1 << 30), &[0; 100], &ctx), notty);
    }

    #[test]
    fn generated_ioctls_never_block_or_reach_the_vfs() {
        let mut ctx = two_members();
        let mut r = Rng::new(11);
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..3000 {
            let c = gen_ioctl(&mut r, &ctx);
            assert_ne!(c.expect, Expect::WouldBlock);
            assert!(
                known_name(c.cmd).is_some() || is_fuzzable_cmd(c.cmd),
                "{:#x}",
                c.cmd
            );
            assert_eq!(c.expect, expect_ioctl(c.cmd, &c.arg, &ctx));
            let k = match &c.expect {
                Expect::Fail(e) => errno_list(e),
                other => format!("{other:?}").chars().take(8).collect(),
            };
            *kinds.entry(k).or_default() += 1;
        }
        for k in [
            "ENOTTY", "EINVAL", "ENOENT", "ENOSPC", "Query", "Alloc { ", "Write",
        ] {
            assert!(kinds.get(k).copied().unwrap_or(0) > 10, "{k}: {kinds:?}");
        }
        // Low on space: no valid alloc, insert or flush.
        ctx.counts[0].free = 40;
        for _ in 0..2000 {
            let c = gen_ioctl(&mut r, &ctx);
            assert!(!matches!(
                c.expect,
                Expect::Alloc { .. } | Expect::Write | Expect::WouldBlock
            ));
        }
        // Random numbers avoid the VFS's own types.
        for cmd in [0x5451, 0x5421, 0xc004_5877, 0x8008_6601, 0x4004_9409, 2] {
            assert!(!is_fuzzable_cmd(cmd), "{cmd:#x}");
        }
        assert!(!is_fuzzable_cmd(IOC_ALLOC));
        assert!(is_fuzzable_cmd(IOC_ALLOC + 1));
    }

    fn snap(user: u64, nd: u64, free: u64, gen: u64, deadline: &str) -> Snapshot {
        Snapshot {
            opts_gen: gen,
            waiters: 0,
            devs: vec![DevStatus {
                free,
                open: 0,
                need_discard: nd,
                btree: 3,
                user,
            }],
            options: vec![
                ("alloc_deadline".into(), deadline.into()),
                ("discard".into(), "0\n".into()),
            ],
        }
    }

    #[test]
    fn changes_and_discards() {
        let a = snap(3, 10, 500, 1, "0\n");
        assert!(changes(&a, &a).is_empty());
        // The discard thread's work (a discard or a release) is not a change.
        let b = snap(3, 4, 506, 1, "0\n");
        assert!(changes(&a, &b).is_empty());
        // need_discard buckets never come back from free on their own.
        assert_eq!(changes(&b, &a).len(), 2);
        let c = snap(4, 10, 499, 2, "5\n");
        let ch = changes(&a, &c);
        assert_eq!(
            describe(&ch),
            "opts_gen 1->2, dev-0 free 500->499, dev-0 user 3->4, options/alloc_deadline \"0\\x0a\"->\"5\\x0a\""
        );
    }

    #[test]
    fn judging() {
        let a = snap(3, 10, 500, 1, "0\n");
        let inval = Outcome::Err(libc::EINVAL);
        let exp = WriteExpect::Fail(libc::EINVAL);
        assert!(judge_write(&exp, inval, &[], &a));
        assert!(!judge_write(&exp, Outcome::Ok(2), &[], &a));
        let moved = changes(&a, &snap(3, 10, 500, 2, "0\n"));
        assert!(!judge_write(&exp, inval, &moved, &a));
        // An accepted option write: the value, opts_gen + 1, nothing else.
        let exp = WriteExpect::Accept {
            len: 2,
            set: Some((OptId::AllocDeadline, 5)),
        };
        let b = snap(3, 10, 500, 2, "5\n");
        assert!(judge_write(&exp, Outcome::Ok(2), &changes(&a, &b), &b));
        assert!(!judge_write(&exp, Outcome::Ok(3), &changes(&a, &b), &b));
        let c = snap(3, 10, 500, 3, "5\n");
        assert!(!judge_write(&exp, Outcome::Ok(2), &changes(&a, &c), &c));
        // The same value again: only opts_gen moves.
        let same = WriteExpect::Accept {
            len: 2,
            set: Some((OptId::AllocDeadline, 0)),
        };
        let d = snap(3, 10, 500, 2, "0\n");
        assert!(judge_write(&same, Outcome::Ok(2), &changes(&a, &d), &d));
        assert!(!judge_write(&same, Outcome::Ok(2), &[], &a));

        // ioctls.
        let ok = Outcome::Ok(0);
        assert!(judge_ioctl(
            &fail(&[libc::ENOENT, libc::EINVAL]),
            inval,
            &[],
            false
        ));
        assert!(!judge_ioctl(&fail(&[libc::ENOENT]), inval, &[], false));
        assert!(!judge_ioctl(&fail(&[libc::EINVAL]), ok, &[], false));
        assert!(judge_ioctl(&Expect::Query, ok, &[], false));
        let alloc_freed = changes(&a, &snap(3, 11, 499, 1, "0\n"));
        assert!(judge_ioctl(
            &Expect::Alloc { replicas: 1 },
            ok,
            &alloc_freed,
            false
        ));
        assert!(!judge_ioctl(
            &Expect::Alloc { replicas: 1 },
            ok,
            &alloc_freed,
            true
        ));
        let leaked = changes(&a, &snap(4, 10, 499, 1, "0\n"));
        assert!(!judge_ioctl(
            &Expect::Alloc { replicas: 1 },
            ok,
            &leaked,
            false
        ));
        assert!(!judge_ioctl(&Expect::Write, ok, &leaked, false));
        let freed = changes(&a, &snap(2, 11, 500, 1, "0\n"));
        let maybe = Expect::MaybeFree(vec![(0, 100)]);
        assert!(judge_ioctl(&maybe, ok, &freed, false));
        assert!(judge_ioctl(&maybe, inval, &[], false));
        assert!(!judge_ioctl(&maybe, inval, &freed, false));
        assert!(!judge_ioctl(
            &Expect::MaybeFree(vec![(0, 1), (0, 2)]),
            ok,
            &freed,
            false
        ));
        // The give-back of an alloc whose result could not be returned.
        assert!(gave_back_only(&a, &snap(3, 11, 499, 1, "0\n")));
        assert!(gave_back_only(&a, &a));
        assert!(!gave_back_only(&a, &snap(4, 10, 499, 1, "0\n")));
        assert!(!gave_back_only(&a, &snap(4, 11, 498, 1, "0\n")));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape(b"12\n"), "\"12\\x0a\"");
        assert_eq!(escape(b"a\"\\{\0\xff"), "\"a\\x22\\x5c\\x7b\\x00\\xff\"");
        let mut v = b"5".to_vec();
        v.resize(4000, b' ');
        assert_eq!(escape(&v), "\"5{3999 x  }\"");
        assert_eq!(escape(&[b'\n'; 9]), "\"{9 x \\x0a}\"");
        assert_eq!(hex(&[1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]), "0102{8 x 00}ff");
        assert_eq!(errno_name(libc::ENOTTY), "ENOTTY");
        assert_eq!(errno_name(4095), "errno 4095");
    }

    #[test]
    fn bad_pointers_fault_and_good_memory_does_not() {
        // A pipe's FIONREAD writes an int through its argument: the memory behind every
        // bad pointer is set up as for the module, and only the straddling arguments
        // (whose first half is mapped and writable) take the int.
        let (reader, _writer) = io::pipe().unwrap();
        let pipe = File::from(std::os::fd::OwnedFd::from(reader));
        let args = [0u8; AllocArgs::SIZE];
        for bad in BadArg::UNREADABLE.into_iter().chain([BadArg::ReadOnly]) {
            let want = if bad == BadArg::Straddle {
                Outcome::Ok(0)
            } else {
                Outcome::Err(libc::EFAULT)
            };
            let got = ioctl_bad(&pipe, libc::FIONREAD as u32, &args, bad, page_size()).unwrap();
            assert_eq!(got, want, "{bad:?}");
        }
    }

    #[test]
    fn writable_files_are_the_options_and_abort_waiting() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        fs::create_dir(dir.join("options")).unwrap();
        fs::create_dir(dir.join("dev-0")).unwrap();
        for (name, mode) in [
            ("options/discard", 0o644),
            ("options/alloc_deadline", 0o644),
            ("unregister", 0o200),
            ("abort_waiting", 0o200),
            ("replay", 0o444),
            ("counters", 0o444),
            ("dev-0/usage", 0o444),
        ] {
            let p = dir.join(name);
            fs::write(&p, "").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
        assert_eq!(
            writable_files(dir).unwrap(),
            [
                Target::AbortWaiting,
                Target::Option(OptId::AllocDeadline),
                Target::Option(OptId::Discard)
            ]
        );
    }
}
