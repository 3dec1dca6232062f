// SPDX-License-Identifier: GPL-2.0

//! What a blocked request tells the user: the stuck report, the `waiters` line, and the
//! message of a request that can never be satisfied.
//!
//! Everything formats into any [`core::fmt::Write`] (or through [`fmt::Display`]) without
//! allocating, and copes with a writer that refuses more text by returning
//! [`fmt::Error`], never by panicking.
//!
//! **The stuck report** ([`StuckReport`], sysfs `alloc_stuck` and the kernel log) is
//! lines ending in `\n`, each shorter than [`MAX_LINE`] bytes whatever the numbers, and
//! at most [`MAX_REPORT`] bytes in all whatever the number of devices (devices past
//! [`REPORT_DEVS`] are summed up in one line), so it fits a sysfs page and the kernel log
//! can take it line by line:
//!
//! ```text
//! allocator stuck: waiter id=7 kind=btree replicas=2 per_dev=1 watermark=btree gen=0 age_ms=30012
//! wait: policy=wait deadline_s=0 stuck_timeout_s=30
//! needs 2 buckets on 2 distinct devices at watermark btree: 1 device can serve now, 2 could once discards complete and opens are released
//! dev0: free=1 open=0 need_discard=9416 reserve=2 usable=0 status=below_reserve
//! dev1: free=5109 open=0 need_discard=41681 reserve=2 usable=5107 status=ok
//! discard: enabled=0 replay_priority=0 in_flight=0 discarded=0
//! waiters: 1
//! hint: dev0 has 9416 need_discard buckets waiting for release: options/replay_discard_priority=1 runs it first
//! hint: or lower options/metadata_replicas to 1 (1 device can serve now)
//! hint: or options/alloc_wait_policy=degrade with options/alloc_deadline > 0 proceeds on fewer devices
//! hint: or write 7 or all to abort_waiting (fails the request with -ECANCELED)
//! ```
//!
//! `status=` is [`Reason::name`] (or `ok`); the hints are derived from the numbers,
//! best first.

use super::options::{OptId, WaitPolicy, WAIT_POLICY_NAMES};
use super::placement::{self, DevSnapshot, Reason, Request, Verdict, MAX_REPLICAS};
use super::request::{replicas_option, RequestSpec};
use core::fmt::{self, Write};

/// Every line of a stuck report is shorter than this (bytes, newline included).
pub const MAX_LINE: usize = 200;
/// A stuck report is shorter than this (bytes), whatever its input.
pub const MAX_REPORT: usize = 3500;
/// Devices listed one per line in a stuck report; the rest are summed up in one line.
pub const REPORT_DEVS: usize = 8;
/// Devices that get a hint line in a stuck report, and that an [`InfeasibleMsg`] lists.
pub const HINT_DEVS: usize = 4;

/// The discard thread's state, as the stuck report shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiscardState {
    /// `options/discard`: need_discard buckets are discarded (else released without a
    /// discard).
    pub enabled: bool,
    /// `options/replay_discard_priority`.
    pub replay_priority: bool,
    /// Discards issued and not yet completed.
    pub in_flight: u32,
    /// Buckets discarded since the volume was registered.
    pub discarded: u64,
    /// Devices whose last discard failed (bit `i` for `dev{i}`, as
    /// [`placement::dev_bit`]): their need_discard buckets wait for a retry.
    pub failing: u64,
}

/// Why a waiter was last woken (`last_wake=` in `waiters`).
///
/// The discriminant is stable (`to_u8`/`from_u8`), so the kernel can keep it in an
/// atomic byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WakeReason {
    /// Never woken.
    #[default]
    None = 0,
    /// An option write (the options generation changed).
    Options = 1,
    /// Buckets were freed (they are need_discard until discarded).
    BucketsFreed = 2,
    /// A discard completed: need_discard buckets became free.
    Discard = 3,
    /// A device changed (online, offline, resized).
    Device = 4,
    /// `abort_waiting` named this waiter (or all).
    Abort = 5,
    /// A timer: the stuck timeout or the deadline.
    Timeout = 6,
    /// A fatal signal.
    Signal = 7,
}

impl WakeReason {
    /// Every reason, in discriminant order.
    pub const ALL: [WakeReason; 8] = [
        WakeReason::None,
        WakeReason::Options,
        WakeReason::BucketsFreed,
        WakeReason::Discard,
        WakeReason::Device,
        WakeReason::Abort,
        WakeReason::Timeout,
        WakeReason::Signal,
    ];

    /// The stored byte.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// The reason for a stored byte (`None` for an unknown byte: never woken is the
    /// harmless reading).
    pub const fn from_u8(v: u8) -> WakeReason {
        match v {
            1 => WakeReason::Options,
            2 => WakeReason::BucketsFreed,
            3 => WakeReason::Discard,
            4 => WakeReason::Device,
            5 => WakeReason::Abort,
            6 => WakeReason::Timeout,
            7 => WakeReason::Signal,
            _ => WakeReason::None,
        }
    }

    /// The reason a waiter woken for `self`, and not yet looking, is woken
    /// for when `new` arrives. An abort is a verdict, every other reason a
    /// hint to look again: an abort not yet seen is never replaced (an
    /// option write landing right after `abort_waiting` must not turn it
    /// into a restart).
    pub const fn then(self, new: WakeReason) -> WakeReason {
        match self {
            WakeReason::Abort => WakeReason::Abort,
            _ => new,
        }
    }

    /// The name in `waiters` and logs.
    pub const fn name(self) -> &'static str {
        match self {
            WakeReason::None => "none",
            WakeReason::Options => "options",
            WakeReason::BucketsFreed => "buckets_freed",
            WakeReason::Discard => "discard",
            WakeReason::Device => "device",
            WakeReason::Abort => "abort",
            WakeReason::Timeout => "timeout",
            WakeReason::Signal => "signal",
        }
    }
}

impl fmt::Display for WakeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `"s"` unless `n` is 1.
const fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// "needs 2 buckets on 2 distinct devices at watermark btree" (or "3 buckets on each of
/// 2 distinct devices").
struct Needs<'r>(&'r Request);

impl fmt::Display for Needs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let n = u64::from(r.replicas);
        let distinct = if n == 1 { "" } else { "distinct " };
        if r.need() == 1 {
            write!(
                f,
                "needs {n} bucket{} on {n} {distinct}device{}",
                plural(n),
                plural(n)
            )?;
        } else {
            let k = r.need();
            write!(
                f,
                "needs {k} buckets on each of {n} {distinct}device{}",
                plural(n)
            )?;
        }
        write!(f, " at watermark {}", r.watermark)
    }
}

/// The option name for a replicas hint.
fn option_name(id: OptId) -> &'static str {
    id.desc().name
}

/// A stuck report (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct StuckReport<'a> {
    /// The waiter's id (what `abort_waiting` takes).
    pub id: u64,
    /// The request as last built.
    pub spec: &'a RequestSpec,
    /// Milliseconds since the first attempt.
    pub age_ms: u64,
    /// Every member, as [`placement::choose`] saw them.
    pub devs: &'a [DevSnapshot],
    /// The discard thread.
    pub discard: DiscardState,
    /// Blocked requests on the volume, this one included.
    pub waiters: u64,
}

impl StuckReport<'_> {
    /// Writes the report into `out` (see the module docs for its shape and bounds).
    pub fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        let spec = self.spec;
        let req = spec.request();
        let verdict = placement::choose(self.devs, &req);
        let policy = WAIT_POLICY_NAMES
            .get(spec.policy as usize)
            .copied()
            .unwrap_or("?");
        writeln!(
            out,
            "allocator stuck: waiter id={} kind={} replicas={} per_dev={} watermark={} gen={} \
             age_ms={}",
            self.id,
            spec.kind,
            spec.replicas,
            req.need(),
            spec.watermark,
            spec.opts_gen,
            self.age_ms,
        )?;
        writeln!(
            out,
            "wait: policy={policy} deadline_s={} stuck_timeout_s={}",
            spec.deadline_secs, spec.stuck_timeout_secs
        )?;
        write!(out, "{}: ", Needs(&req))?;
        let (now, later) = placement::tally(self.devs, &req);
        let (now64, later64) = (u64::from(now), u64::from(later));
        match verdict {
            _ if spec.replicas as usize > MAX_REPLICAS => {
                writeln!(out, "more than {MAX_REPLICAS} replicas can never be placed")?
            }
            Verdict::Ok(_) => writeln!(
                out,
                "{now} device{} can serve now; the next wake retries",
                plural(now64)
            )?,
            Verdict::Blocked { .. } => writeln!(
                out,
                "{now} device{} can serve now, {later} could once discards complete and opens \
                 are released",
                plural(now64)
            )?,
            Verdict::Infeasible { .. } => writeln!(
                out,
                "only {later} device{} could ever serve; the next wake fails it",
                plural(later64)
            )?,
        }
        for (d, st) in placement::statuses(self.devs, &req).take(REPORT_DEVS) {
            write!(
                out,
                "dev{}: free={} open={} need_discard={} reserve={} usable={} status=",
                d.index,
                d.free,
                d.open,
                d.need_discard,
                d.reserve(req.watermark),
                d.usable(req.watermark),
            )?;
            match st {
                Ok(_) => out.write_str("ok\n")?,
                Err(r) => writeln!(out, "{}", r.name())?,
            }
        }
        if let Some(rest) = self.devs.get(REPORT_DEVS..).filter(|r| !r.is_empty()) {
            let starved = rest.iter().filter(|d| d.check(&req).is_err()).count();
            writeln!(
                out,
                "... {} more devices, {starved} of them not usable now (see dev-N/usage)",
                rest.len()
            )?;
        }
        let ds = self.discard;
        writeln!(
            out,
            "discard: enabled={} replay_priority={} in_flight={} discarded={}",
            u8::from(ds.enabled),
            u8::from(ds.replay_priority),
            ds.in_flight,
            ds.discarded
        )?;
        writeln!(out, "waiters: {}", self.waiters)?;
        self.write_hints(out, &req, verdict, now)
    }

    /// The "what would unstick it" lines.
    fn write_hints<W: Write + ?Sized>(
        &self,
        out: &mut W,
        req: &Request,
        verdict: Verdict,
        now: u32,
    ) -> fmt::Result {
        let mut first = true;
        let mut hint = |out: &mut W, args: fmt::Arguments<'_>| -> fmt::Result {
            let or = if first { "" } else { "or " };
            first = false;
            writeln!(out, "hint: {or}{args}")
        };
        let w = req.watermark;
        let blocked = matches!(verdict, Verdict::Blocked { .. });
        if matches!(verdict, Verdict::Ok(_)) {
            hint(
                out,
                format_args!("enough devices can serve now: the next wake takes them"),
            )?;
        }
        let starved = placement::statuses(self.devs, req)
            .filter(|(_, st)| !matches!(st, Ok(_) | Err(Reason::Duplicate)))
            .take(HINT_DEVS);
        for (d, _) in starved {
            let i = d.index;
            let nd = d.need_discard;
            let ds = self.discard;
            let what = if ds.enabled { "discard" } else { "release" };
            if !d.online {
                hint(out, format_args!("dev{i} is offline: bring it back"))?;
            } else if !d.state.allocates() {
                hint(
                    out,
                    format_args!(
                        "dev{i} is {}: nothing is allocated on it until rw is written to \
                         dev-{i}/state",
                        d.state
                    ),
                )?;
            } else if !d.could_serve(req) {
                hint(
                    out,
                    format_args!(
                        "dev{i} cannot serve watermark {w} even after discards (free {} + \
                         need_discard {nd}, reserve {}): free data on it",
                        d.free,
                        d.reserve(w)
                    ),
                )?;
            } else if nd > 0 && !ds.replay_priority {
                hint(
                    out,
                    format_args!(
                        "dev{i} has {nd} need_discard buckets waiting for {what}: \
                         options/replay_discard_priority=1 runs it first"
                    ),
                )?;
            } else if nd > 0 && ds.enabled && ds.failing & placement::dev_bit(i) != 0 {
                hint(
                    out,
                    format_args!(
                        "discards to dev{i} fail: its {nd} need_discard buckets wait for a \
                         retry; options/discard=0 releases them without a discard"
                    ),
                )?;
            } else if nd > 0 {
                hint(
                    out,
                    format_args!(
                        "dev{i} has {nd} need_discard buckets waiting for {what} \
                         (prioritised): wait, or see below"
                    ),
                )?;
            } else {
                hint(
                    out,
                    format_args!(
                        "dev{i} has {} open buckets: it serves again once they are committed \
                         or released",
                        d.open
                    ),
                )?;
            }
        }
        let spec = self.spec;
        if blocked && now > 0 {
            if spec.replicas_from_options() {
                hint(
                    out,
                    format_args!(
                        "lower options/{} to {now} ({now} device{} can serve now)",
                        option_name(replicas_option(spec.kind)),
                        plural(u64::from(now))
                    ),
                )?;
            }
            if spec.policy != WaitPolicy::Degrade {
                hint(
                    out,
                    format_args!(
                        "options/alloc_wait_policy=degrade with options/alloc_deadline > 0 \
                         proceeds on fewer devices"
                    ),
                )?;
            }
        }
        hint(
            out,
            format_args!(
                "write {} or all to abort_waiting (fails the request with -ECANCELED)",
                self.id
            ),
        )
    }
}

impl fmt::Display for StuckReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

/// Writes the indexes set in a device mask as `0,1,5` (`none` if empty).
fn write_mask<W: Write + ?Sized>(out: &mut W, mask: u64) -> fmt::Result {
    if mask == 0 {
        return out.write_str("none");
    }
    let mut sep = "";
    for i in 0..64u32 {
        if mask & (1u64 << i) != 0 {
            write!(out, "{sep}{i}")?;
            sep = ",";
        }
    }
    Ok(())
}

/// One line of sysfs `waiters` (without the newline):
/// `id=I age_ms=A watermark=W replicas=R devs=0,1 gen=G woken=K last_wake=<reason>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaiterLine {
    /// The waiter's id.
    pub id: u64,
    /// Milliseconds since its first attempt.
    pub age_ms: u64,
    /// Its request's watermark.
    pub watermark: super::watermark::Watermark,
    /// Its request's replicas.
    pub replicas: u32,
    /// Devices it waits on, as a mask ([`placement::could_serve_mask`]).
    pub devs: u64,
    /// The options generation of its request.
    pub opts_gen: u64,
    /// Times it was woken.
    pub woken: u64,
    /// Why it was last woken.
    pub last_wake: WakeReason,
}

impl fmt::Display for WaiterLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "id={} age_ms={} watermark={} replicas={} devs=",
            self.id, self.age_ms, self.watermark, self.replicas
        )?;
        write_mask(f, self.devs)?;
        write!(
            f,
            " gen={} woken={} last_wake={}",
            self.opts_gen, self.woken, self.last_wake
        )
    }
}

/// The one-line message of a request that [`placement::choose`] found
/// [`Verdict::Infeasible`], for the -ENOSPC log line: what it needs, how many devices
/// could ever serve it, and why the others cannot (at most [`HINT_DEVS`] of them).
#[derive(Clone, Copy, Debug)]
pub struct InfeasibleMsg<'a> {
    /// The request.
    pub spec: &'a RequestSpec,
    /// Every member.
    pub devs: &'a [DevSnapshot],
}

impl fmt::Display for InfeasibleMsg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spec = self.spec;
        let req = spec.request();
        write!(f, "cannot allocate: {}", Needs(&req))?;
        if spec.replicas as usize > MAX_REPLICAS {
            return write!(f, ", but at most {MAX_REPLICAS} replicas are possible");
        }
        let (_, later) = placement::tally(self.devs, &req);
        write!(
            f,
            "; only {later} device{} could ever serve it",
            plural(u64::from(later))
        )?;
        let cannot = placement::statuses(self.devs, &req)
            .filter(|(d, st)| !matches!(st, Err(Reason::Duplicate)) && !d.could_serve(&req));
        let mut listed = 0usize;
        let mut more = 0usize;
        for (d, _) in cannot {
            if listed == HINT_DEVS {
                more = more.saturating_add(1);
                continue;
            }
            let sep = if listed == 0 { ": " } else { "; " };
            listed += 1;
            if d.online && !d.state.allocates() {
                write!(f, "{sep}dev{} {}", d.index, d.state)?;
            } else if d.online {
                write!(
                    f,
                    "{sep}dev{} free={} need_discard={} reserve={}",
                    d.index,
                    d.free,
                    d.need_discard,
                    d.reserve(req.watermark)
                )?;
            } else {
                write!(f, "{sep}dev{} offline", d.index)?;
            }
        }
        if more > 0 {
            write!(f, "; {more} more")?;
        }
        if spec.replicas_from_options() && later > 0 {
            write!(
                f,
                "; lower options/{} to {later}",
                option_name(replicas_option(spec.kind))
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unseen_abort_is_never_replaced() {
        for new in WakeReason::ALL {
            assert_eq!(WakeReason::Abort.then(new), WakeReason::Abort);
            for pending in WakeReason::ALL {
                if pending != WakeReason::Abort {
                    assert_eq!(pending.then(new), new);
                }
            }
        }
    }
}
