// SPDX-License-Identifier: GPL-2.0

//! Device choice for a request: which distinct devices, or why not now, or why never.
//!
//! The allocator takes a [`DevSnapshot`] of every member (under its lock) and asks
//! [`choose`] for a [`Request`] ("`replicas` buckets on `replicas` distinct devices at
//! watermark `w`", or `per_dev` buckets on each). The answer is one of three
//! [`Verdict`]s:
//!
//! - [`Verdict::Ok`]: at least `replicas` devices can serve **now** (usable ≥ `per_dev`
//!   at the watermark, see [`DevSnapshot::usable`]); the [`Choice`] names them, most
//!   usable first, ties to the lower index. All or nothing: never fewer.
//! - [`Verdict::Blocked`]: not now, but at least `replicas` devices **could serve
//!   later** without anyone freeing data: the waiter sleeps.
//! - [`Verdict::Infeasible`]: fewer than `replicas` devices could serve later (or more
//!   replicas than [`MAX_REPLICAS`]): sleeping cannot help, the caller fails at once
//!   (-ENOSPC) with [`super::stuck::InfeasibleMsg`].
//!
//! **"Could serve later", precisely.** An online device could serve later when
//! `free + need_discard - reserve(w) >= per_dev` ([`DevSnapshot::potential`]): that is
//! what it would offer once every discard in the pipeline has completed and every open
//! bucket has been released. `open` is not added because open buckets are already
//! counted in `free` (see [`super::watermark`]). Buckets holding btree nodes or user data
//! are not counted: they come back only through an explicit free, which nothing
//! promises, so a device full of data is `ENOSPC`, as in any filesystem, not a reason to
//! sleep forever. `sb` buckets never come back. An offline device serves nothing;
//! bringing one back is a device change, and the request is retried then.
//!
//! **Duplicates.** A device is never used twice: if the slice holds the same `index`
//! twice, the first snapshot counts and the later one is ignored
//! ([`Reason::Duplicate`]).
//!
//! Everything is `O(devices × replicas)` with no allocation; the result types are fixed
//! size.

use super::member_state::MemberState;
use super::watermark::{self, Watermark};
use core::fmt;

pub use super::format::MAX_REPLICAS;

/// What the buckets are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Kind {
    /// A btree node (replicas from `metadata_replicas`, watermark `btree`).
    Btree = 0,
    /// User data (replicas from `data_replicas`, watermark `normal`).
    User = 1,
}

impl Kind {
    /// Both kinds (the discriminant is the ABI value).
    pub const ALL: [Kind; 2] = [Kind::Btree, Kind::User];

    /// The kind with ABI value `v`.
    pub const fn from_u32(v: u32) -> Option<Kind> {
        match v {
            0 => Some(Kind::Btree),
            1 => Some(Kind::User),
            _ => None,
        }
    }

    /// The name used in reports and the tool.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Btree => "btree",
            Kind::User => "user",
        }
    }

    /// The kind called `name` (exactly).
    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a request asks of the devices (the part of [`super::request::RequestSpec`] that
/// placement needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// What the buckets are for (reports and hints only).
    pub kind: Kind,
    /// Number of distinct devices.
    pub replicas: u32,
    /// How deep into each device's reserve the request may dig.
    pub watermark: Watermark,
    /// Buckets needed on each chosen device (a btree split of k nodes asks k); 0 is
    /// read as 1.
    pub per_dev: u32,
}

impl Request {
    /// One bucket on each of `replicas` devices.
    pub const fn new(kind: Kind, replicas: u32, watermark: Watermark) -> Request {
        Request {
            kind,
            replicas,
            watermark,
            per_dev: 1,
        }
    }

    /// Buckets needed on each chosen device (`per_dev`, at least 1).
    pub const fn need(&self) -> u64 {
        if self.per_dev == 0 {
            1
        } else {
            self.per_dev as u64
        }
    }
}

/// One member device as the allocator sees it at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevSnapshot {
    /// Member index (the `N` of `dev-N`).
    pub index: u32,
    /// All buckets of the device, `sb` included.
    pub nbuckets: u64,
    /// Buckets in state `free`, open ones included.
    pub free: u64,
    /// Open buckets (handed out, not yet committed); a subset of `free`.
    pub open: u64,
    /// Buckets in state `need_discard`.
    pub need_discard: u64,
    /// The device's btree reserve (set at format).
    pub btree_reserve: u32,
    /// Whether the device takes allocations at all.
    pub online: bool,
    /// Its state ([`MemberState`]): only an `rw` member is allocated on.
    pub state: MemberState,
}

impl DevSnapshot {
    /// The reserve this device keeps from requests at `w`.
    pub const fn reserve(&self, w: Watermark) -> u64 {
        watermark::reserve(w, self.btree_reserve, self.nbuckets)
    }

    /// Whether buckets may be allocated on it: online and `rw`.
    pub const fn allocates(&self) -> bool {
        self.online && self.state.allocates()
    }

    /// Buckets a request at `w` may take now (0 when offline or not `rw`).
    pub const fn usable(&self, w: Watermark) -> u64 {
        if !self.allocates() {
            return 0;
        }
        watermark::usable(self.free, self.open, self.reserve(w))
    }

    /// What [`DevSnapshot::usable`] would become once every need_discard bucket is
    /// discarded and every open bucket released: `free + need_discard - reserve(w)`,
    /// saturating (0 when offline or not `rw`). See the module docs.
    pub const fn potential(&self, w: Watermark) -> u64 {
        if !self.allocates() {
            return 0;
        }
        self.free
            .saturating_add(self.need_discard)
            .saturating_sub(self.reserve(w))
    }

    /// `Ok(usable)` if the device can serve `req` now, else why not. Ignores duplicates
    /// (see [`statuses`] for that).
    pub const fn check(&self, req: &Request) -> Result<u64, Reason> {
        let w = req.watermark;
        if !self.online {
            return Err(Reason::Offline);
        }
        if !self.state.allocates() {
            return Err(Reason::State(self.state));
        }
        let usable = self.usable(w);
        let need = req.need();
        if usable >= need {
            return Ok(usable);
        }
        if usable > 0 {
            return Err(Reason::TooFew {
                usable,
                needed: need,
            });
        }
        let reserve = self.reserve(w);
        if self.free == 0 {
            if self.need_discard == 0 {
                Err(Reason::NoFreeBuckets)
            } else {
                Err(Reason::AllNeedDiscard {
                    need_discard: self.need_discard,
                })
            }
        } else if self.free <= reserve {
            Err(Reason::BelowReserve {
                usable_before_reserve: self.free.saturating_sub(self.open),
                reserve,
            })
        } else {
            Err(Reason::AllOpen { open: self.open })
        }
    }

    /// Whether the device could serve `req` once discards complete and open buckets are
    /// released (see the module docs).
    pub const fn could_serve(&self, req: &Request) -> bool {
        self.allocates() && self.potential(req.watermark) >= req.need()
    }
}

/// Why a device cannot serve a request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The device is offline.
    Offline,
    /// The member is not `rw` (ro, failed or spare): nothing is allocated on it.
    State(MemberState),
    /// Another snapshot with the same index came first; a device is used once.
    Duplicate,
    /// Not a single free or need_discard bucket: only a free of data can help.
    NoFreeBuckets,
    /// No free bucket; every reusable bucket waits for a discard.
    AllNeedDiscard {
        /// Buckets waiting for a discard.
        need_discard: u64,
    },
    /// There are free buckets beyond the reserve, but all of them are open (handed out,
    /// not yet committed or released).
    AllOpen {
        /// Open buckets.
        open: u64,
    },
    /// The free buckets nobody holds do not exceed the watermark's reserve.
    BelowReserve {
        /// `free - open`: what a request could take if there were no reserve.
        usable_before_reserve: u64,
        /// The reserve at the request's watermark.
        reserve: u64,
    },
    /// Some buckets are usable, but fewer than the request needs on one device.
    TooFew {
        /// Usable buckets.
        usable: u64,
        /// Buckets needed on the device (`per_dev`).
        needed: u64,
    },
}

impl Reason {
    /// A short code without numbers (`status=` in the stuck report).
    pub const fn name(&self) -> &'static str {
        match self {
            Reason::Offline => "offline",
            Reason::State(s) => s.name(),
            Reason::Duplicate => "duplicate",
            Reason::NoFreeBuckets => "no_free_buckets",
            Reason::AllNeedDiscard { .. } => "all_need_discard",
            Reason::AllOpen { .. } => "all_open",
            Reason::BelowReserve { .. } => "below_reserve",
            Reason::TooFew { .. } => "too_few",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::Offline => f.write_str("offline"),
            Reason::State(s) => write!(f, "member is {s}, not rw: nothing is allocated on it"),
            Reason::Duplicate => f.write_str("listed twice, counted once"),
            Reason::NoFreeBuckets => f.write_str("no free or need_discard buckets"),
            Reason::AllNeedDiscard { need_discard } => {
                write!(f, "no free buckets, {need_discard} need_discard")
            }
            Reason::AllOpen { open } => {
                write!(
                    f,
                    "every free bucket above the reserve is open ({open} open)"
                )
            }
            Reason::BelowReserve {
                usable_before_reserve,
                reserve,
            } => write!(
                f,
                "{usable_before_reserve} free not open, not above the reserve of {reserve}"
            ),
            Reason::TooFew { usable, needed } => write!(f, "{usable} usable, {needed} needed"),
        }
    }
}

/// Up to [`MAX_REPLICAS`] distinct device indexes, in choice order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    devs: [u32; MAX_REPLICAS],
    n: usize,
}

impl Default for Choice {
    fn default() -> Self {
        Self::new()
    }
}

impl Choice {
    /// No device.
    pub const fn new() -> Choice {
        Choice {
            devs: [0; MAX_REPLICAS],
            n: 0,
        }
    }

    /// The chosen device indexes, best first.
    pub fn devs(&self) -> &[u32] {
        self.devs.get(..self.n).unwrap_or(&[])
    }

    /// Number of devices.
    pub const fn len(&self) -> usize {
        self.n
    }

    /// Whether no device is chosen.
    pub const fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether `dev` is chosen.
    pub fn contains(&self, dev: u32) -> bool {
        self.devs().contains(&dev)
    }

    /// Appends `dev`; `false` (and no change) if it is already there or the choice is
    /// full.
    pub fn push(&mut self, dev: u32) -> bool {
        if self.contains(dev) {
            return false;
        }
        match self.devs.get_mut(self.n) {
            Some(slot) => {
                *slot = dev;
                self.n += 1;
                true
            }
            None => false,
        }
    }

    /// Device mask (see [`could_serve_mask`]) of the chosen devices.
    pub fn mask(&self) -> u64 {
        self.devs().iter().fold(0, |m, &d| m | dev_bit(d))
    }
}

/// The outcome of [`choose`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Enough devices can serve now: take these.
    Ok(Choice),
    /// Not enough devices can serve now, but enough could later: sleep.
    Blocked {
        /// Devices that can serve now (fewer than asked).
        now: u32,
        /// Devices that could serve later (at least as many as asked).
        later: u32,
    },
    /// Fewer devices could ever serve (without frees or new devices) than asked, or more
    /// replicas than [`MAX_REPLICAS`]: fail at once.
    Infeasible {
        /// Devices that could serve later.
        later: u32,
    },
}

impl Verdict {
    /// The verdict's name for logs: `ok`, `blocked` or `infeasible`.
    pub const fn name(&self) -> &'static str {
        match self {
            Verdict::Ok(_) => "ok",
            Verdict::Blocked { .. } => "blocked",
            Verdict::Infeasible { .. } => "infeasible",
        }
    }
}

/// Whether `devs[pos]` is the first snapshot with its index.
fn first_occurrence(devs: &[DevSnapshot], pos: usize) -> bool {
    let Some(d) = devs.get(pos) else {
        return false;
    };
    !devs
        .get(..pos)
        .unwrap_or(&[])
        .iter()
        .any(|e| e.index == d.index)
}

/// Every snapshot with whether it can serve `req` now (`Ok(usable)`) or why not, in
/// slice order; a repeated index is [`Reason::Duplicate`].
pub fn statuses<'a>(
    devs: &'a [DevSnapshot],
    req: &'a Request,
) -> impl Iterator<Item = (&'a DevSnapshot, Result<u64, Reason>)> + 'a {
    devs.iter().enumerate().map(move |(pos, d)| {
        if first_occurrence(devs, pos) {
            (d, d.check(req))
        } else {
            (d, Err(Reason::Duplicate))
        }
    })
}

/// Distinct devices that can serve `req` now, and that could serve it later.
pub fn tally(devs: &[DevSnapshot], req: &Request) -> (u32, u32) {
    let mut now = 0u32;
    let mut later = 0u32;
    for (pos, d) in devs.iter().enumerate() {
        if !first_occurrence(devs, pos) {
            continue;
        }
        if d.check(req).is_ok() {
            now = now.saturating_add(1);
        }
        if d.could_serve(req) {
            later = later.saturating_add(1);
        }
    }
    (now, later)
}

/// The bit of device `index` in a device mask (0 for indexes ≥ 64, which no volume
/// has: members are fewer than 32).
pub const fn dev_bit(index: u32) -> u64 {
    if index < 64 {
        1 << index
    } else {
        0
    }
}

/// Mask (bit `i` = member `i`) of the devices that could serve `req` now or later: the
/// devices whose wake lists a blocked request parks on, and `devs=` in `waiters`. As
/// everywhere, only the first snapshot of an index counts.
pub fn could_serve_mask(devs: &[DevSnapshot], req: &Request) -> u64 {
    devs.iter()
        .enumerate()
        .filter(|&(pos, d)| first_occurrence(devs, pos) && d.could_serve(req))
        .fold(0, |m, (_, d)| m | dev_bit(d.index))
}

/// The best `k` (at most [`MAX_REPLICAS`]) distinct devices that can serve now: most
/// usable first, ties to the lower index. Fewer if fewer can.
fn pick(devs: &[DevSnapshot], req: &Request, k: u32) -> Choice {
    let mut choice = Choice::new();
    for _ in 0..k.min(MAX_REPLICAS as u32) {
        let mut best: Option<(u64, u32)> = None;
        for (d, st) in statuses(devs, req) {
            let Ok(usable) = st else { continue };
            if choice.contains(d.index) {
                continue;
            }
            let better = match best {
                None => true,
                Some((bu, bi)) => usable > bu || (usable == bu && d.index < bi),
            };
            if better {
                best = Some((usable, d.index));
            }
        }
        match best {
            Some((_, index)) => {
                choice.push(index);
            }
            None => break,
        }
    }
    choice
}

/// Chooses `req.replicas` distinct devices for `req`, or says why not (see the module
/// docs). `replicas == 0` is trivially `Ok` with an empty choice.
///
/// One pass over `devs` (this is every allocation's path): each first snapshot of an
/// index is counted and, if it can serve now, placed in a best-first list of at most
/// `replicas` devices; the same answer as [`tally`] and [`pick`] give.
pub fn choose(devs: &[DevSnapshot], req: &Request) -> Verdict {
    let k = (req.replicas as usize).min(MAX_REPLICAS);
    let need = req.need();
    let (mut now, mut later) = (0u32, 0u32);
    // Indexes below 64 seen so far; above, the slow check.
    let mut seen = 0u64;
    // The best `k` so far as (usable, index), most usable first, ties to the lower index.
    let mut best = [(0u64, 0u32); MAX_REPLICAS];
    let mut n = 0;
    for (pos, d) in devs.iter().enumerate() {
        let bit = dev_bit(d.index);
        let first = if bit != 0 {
            seen & bit == 0
        } else {
            first_occurrence(devs, pos)
        };
        if !first {
            continue;
        }
        seen |= bit;
        if d.could_serve(req) {
            later = later.saturating_add(1);
        }
        let usable = d.usable(req.watermark);
        if !d.online || usable < need {
            continue;
        }
        now = now.saturating_add(1);
        // Insert into `best` at its rank; the last one falls off when full.
        let Some(slot) = best.get_mut(..k) else {
            continue;
        };
        let rank = slot
            .get(..n)
            .unwrap_or(&[])
            .iter()
            .position(|&(u, i)| usable > u || (usable == u && d.index < i))
            .unwrap_or(n);
        if rank < k {
            n = (n + 1).min(k);
            slot.copy_within(rank..n - 1, rank + 1);
            slot[rank] = (usable, d.index);
        }
    }
    if req.replicas as usize > MAX_REPLICAS || later < req.replicas {
        return Verdict::Infeasible { later };
    }
    if now < req.replicas {
        return Verdict::Blocked { now, later };
    }
    let mut choice = Choice::new();
    for &(_, index) in best.get(..k).unwrap_or(&[]) {
        choice.push(index);
    }
    Verdict::Ok(choice)
}

/// For the `degrade` policy: when `req` is [`Verdict::Blocked`] and at least one device
/// can serve now, the best choice of those (1 ≤ len < `replicas`); `None` otherwise
/// (`Ok`: take the full choice; `Infeasible`: fail; nothing can serve now: keep waiting
/// or fail).
pub fn degrade(devs: &[DevSnapshot], req: &Request) -> Option<Choice> {
    match choose(devs, req) {
        Verdict::Blocked { now, .. } if now > 0 => Some(pick(devs, req, now)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(index: u32, free: u64, open: u64, need_discard: u64) -> DevSnapshot {
        DevSnapshot {
            index,
            nbuckets: 1000,
            free,
            open,
            need_discard,
            btree_reserve: 2,
            online: true,
            state: MemberState::Rw,
        }
    }

    #[test]
    fn reasons() {
        let r = Request::new(Kind::Btree, 1, Watermark::Btree);
        assert_eq!(dev(0, 0, 0, 0).check(&r), Err(Reason::NoFreeBuckets));
        assert_eq!(
            dev(0, 0, 0, 5).check(&r),
            Err(Reason::AllNeedDiscard { need_discard: 5 })
        );
        assert_eq!(
            dev(0, 2, 1, 5).check(&r),
            Err(Reason::BelowReserve {
                usable_before_reserve: 1,
                reserve: 2
            })
        );
        assert_eq!(dev(0, 4, 2, 0).check(&r), Err(Reason::AllOpen { open: 2 }));
        assert_eq!(dev(0, 4, 1, 0).check(&r), Ok(1));
        let r3 = Request { per_dev: 3, ..r };
        assert_eq!(
            dev(0, 4, 1, 0).check(&r3),
            Err(Reason::TooFew {
                usable: 1,
                needed: 3
            })
        );
        let off = DevSnapshot {
            online: false,
            state: MemberState::Rw,
            ..dev(0, 100, 0, 0)
        };
        assert_eq!(off.check(&r), Err(Reason::Offline));
        assert!(!off.could_serve(&r));
        // Only rw is allocated on, however many buckets are free.
        for state in [MemberState::Ro, MemberState::Failed, MemberState::Spare] {
            let d = DevSnapshot {
                state,
                ..dev(0, 100, 0, 50)
            };
            assert_eq!(d.check(&r), Err(Reason::State(state)));
            assert_eq!(Reason::State(state).name(), state.name());
            assert_eq!((d.usable(r.watermark), d.potential(r.watermark)), (0, 0));
            assert!(!d.could_serve(&r));
            // A 2-replica request on it and one rw device: infeasible, not blocked.
            let two = Request { replicas: 2, ..r };
            assert_eq!(
                choose(&[d, dev(1, 100, 0, 0)], &two),
                Verdict::Infeasible { later: 1 }
            );
            // With a second rw device, that pair is chosen.
            let c = choose(&[d, dev(1, 100, 0, 0), dev(2, 100, 0, 0)], &two);
            assert!(matches!(c, Verdict::Ok(c) if c.devs() == [1, 2]), "{c:?}");
        }
    }

    #[test]
    fn choice_push() {
        let mut c = Choice::new();
        assert!(c.push(3) && !c.push(3));
        assert!(c.push(1) && c.push(2) && c.push(0) && !c.push(9));
        assert_eq!(c.devs(), &[3, 1, 2, 0]);
        assert_eq!(c.mask(), 0b1111);
        assert_eq!(dev_bit(64), 0);
    }
}
