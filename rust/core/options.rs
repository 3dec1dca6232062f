// SPDX-License-Identifier: GPL-2.0

//! The option table: every volume option, defined once.
//!
//! [`OPTIONS`] gives each option's name, type and range, default, when it may be set
//! (format, register, runtime), whether it is persistent, and a one-line doc. sysfs
//! `options/<name>`, the `register` string, the superblock and the `bkalloc` tool all go
//! through it.
//!
//! Values are `u32` whatever the type: a bool is 0/1, an enum is the index of its name.
//!
//! **Persistence.** Every option is persistent: the superblock stores a value slot per
//! option id and a bitmap of the options that were explicitly set (at format, register or
//! runtime). An option that was never set takes its default, which for
//! `allocator_stuck_timeout` is the module parameter (see [`Options::set_default`]), so a
//! later change of the module parameter still reaches volumes that never chose a value.
//!
//! **Ids are on-disk.** An option's [`OptId`] is its slot in the superblock: append new
//! options at the end, never reorder or reuse ids.

use core::fmt;

/// Identifies an option; the discriminant is its on-disk slot and its index in [`OPTIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OptId {
    /// Copies of each btree node, on distinct devices.
    MetadataReplicas = 0,
    /// Copies of each user bucket.
    DataReplicas = 1,
    /// Seconds before a waiter gets a stuck report.
    AllocatorStuckTimeout = 2,
    /// What a waiter does at its deadline.
    AllocWaitPolicy = 3,
    /// Per-request deadline in seconds.
    AllocDeadline = 4,
    /// Issue discards for need_discard buckets.
    Discard = 5,
    /// Prioritise discards during replay.
    ReplayDiscardPriority = 6,
    /// Memory bound of the btree node cache, in MiB.
    BtreeCacheSize = 7,
}

/// Number of options (and of used superblock option slots).
pub const NR_OPTS: usize = 8;

impl OptId {
    /// Every option, in id order.
    pub const ALL: [OptId; NR_OPTS] = [
        OptId::MetadataReplicas,
        OptId::DataReplicas,
        OptId::AllocatorStuckTimeout,
        OptId::AllocWaitPolicy,
        OptId::AllocDeadline,
        OptId::Discard,
        OptId::ReplayDiscardPriority,
        OptId::BtreeCacheSize,
    ];

    /// The option with id `i`.
    pub fn from_index(i: usize) -> Option<OptId> {
        Self::ALL.get(i).copied()
    }

    /// The option called `name`.
    pub fn from_name(name: &str) -> Option<OptId> {
        Self::ALL.into_iter().find(|id| id.desc().name == name)
    }

    /// Index in [`OPTIONS`] and on-disk slot.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The table entry.
    pub fn desc(self) -> &'static OptDesc {
        &OPTIONS[self.index()]
    }
}

/// The type and range of an option's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptType {
    /// An unsigned decimal integer in `min..=max`.
    Uint {
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// `0` or `1`.
    Bool,
    /// One of these names; the value is the name's index.
    Enum(&'static [&'static str]),
}

/// A set of moments at which an option may be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When(u8);

impl When {
    /// `bkalloc format`.
    pub const FORMAT: When = When(1);
    /// The `register` string.
    pub const REGISTER: When = When(2);
    /// A write to sysfs `options/<name>` on a live volume.
    pub const RUNTIME: When = When(4);
    /// Any moment (used when crafting test states).
    pub const ANY: When = When(7);

    /// Both sets.
    pub const fn union(self, o: When) -> When {
        When(self.0 | o.0)
    }

    /// Whether `self` and `o` share a moment (`settable.intersects(When::RUNTIME)`: may
    /// be set at runtime; anything intersects [`When::ANY`]).
    pub const fn intersects(self, o: When) -> bool {
        self.0 & o.0 != 0
    }
}

/// One entry of the option table.
#[derive(Debug)]
pub struct OptDesc {
    /// The option's id.
    pub id: OptId,
    /// Its name in sysfs, `register` strings and the tool.
    pub name: &'static str,
    /// Value type and range.
    pub ty: OptType,
    /// Value when not set (for `allocator_stuck_timeout`, overridden by the module
    /// parameter).
    pub default: u32,
    /// When it may be set.
    pub settable: When,
    /// Whether the superblock stores it.
    pub persistent: bool,
    /// Unit of a [`OptType::Uint`], empty if none.
    pub unit: &'static str,
    /// One line for `bkalloc show`, docs and help texts.
    pub doc: &'static str,
}

/// Names of [`OptId::AllocWaitPolicy`]'s values, indexed by [`WaitPolicy`].
pub const WAIT_POLICY_NAMES: &[&str] = &["wait", "fail", "degrade"];

const ALWAYS: When = When::FORMAT.union(When::REGISTER).union(When::RUNTIME);
const LIVE: When = When::REGISTER.union(When::RUNTIME);
const ONE_DAY: u32 = 86_400;

/// The option table, indexed by [`OptId::index`].
pub static OPTIONS: [OptDesc; NR_OPTS] = [
    OptDesc {
        id: OptId::MetadataReplicas,
        name: "metadata_replicas",
        ty: OptType::Uint { min: 1, max: 4 },
        default: 2,
        settable: ALWAYS,
        persistent: true,
        unit: "",
        doc: "copies of each btree node, on distinct devices",
    },
    OptDesc {
        id: OptId::DataReplicas,
        name: "data_replicas",
        ty: OptType::Uint { min: 1, max: 4 },
        default: 1,
        settable: ALWAYS,
        persistent: true,
        unit: "",
        doc: "copies of each user bucket, on distinct devices",
    },
    OptDesc {
        id: OptId::AllocatorStuckTimeout,
        name: "allocator_stuck_timeout",
        ty: OptType::Uint {
            min: 0,
            max: ONE_DAY,
        },
        default: 30,
        settable: LIVE,
        persistent: true,
        unit: "seconds",
        doc: "a waiter older than this gets a stuck report (0 = never)",
    },
    OptDesc {
        id: OptId::AllocWaitPolicy,
        name: "alloc_wait_policy",
        ty: OptType::Enum(WAIT_POLICY_NAMES),
        default: WaitPolicy::Wait as u32,
        settable: LIVE,
        persistent: true,
        unit: "",
        doc: "what a waiter does at its deadline: wait, fail or degrade",
    },
    OptDesc {
        id: OptId::AllocDeadline,
        name: "alloc_deadline",
        ty: OptType::Uint {
            min: 0,
            max: ONE_DAY,
        },
        default: 0,
        settable: LIVE,
        persistent: true,
        unit: "seconds",
        doc: "per-request deadline for alloc_wait_policy (0 = none)",
    },
    OptDesc {
        id: OptId::Discard,
        name: "discard",
        ty: OptType::Bool,
        default: 1,
        settable: LIVE,
        persistent: true,
        unit: "",
        doc: "issue discards for need_discard buckets",
    },
    OptDesc {
        id: OptId::ReplayDiscardPriority,
        name: "replay_discard_priority",
        ty: OptType::Bool,
        default: 1,
        settable: LIVE,
        persistent: true,
        unit: "",
        doc: "run discards ahead of replay and wake starved waiters first",
    },
    OptDesc {
        id: OptId::BtreeCacheSize,
        name: "btree_cache_size",
        ty: OptType::Uint {
            min: 1,
            max: 1 << 20,
        },
        default: 64,
        settable: LIVE,
        persistent: true,
        unit: "MiB",
        doc: "memory for clean btree leaves; the rest are read again when needed",
    },
];

/// Values of `alloc_wait_policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum WaitPolicy {
    /// Keep waiting past the deadline.
    Wait = 0,
    /// Fail the request at its deadline.
    Fail = 1,
    /// Retry with fewer replicas at its deadline.
    Degrade = 2,
}

impl WaitPolicy {
    /// The policy for an option value (unknown values read as `Wait`, the safe default;
    /// stored values are range-checked, so that only happens on a table mismatch).
    pub const fn from_value(v: u32) -> WaitPolicy {
        match v {
            1 => WaitPolicy::Fail,
            2 => WaitPolicy::Degrade,
            _ => WaitPolicy::Wait,
        }
    }

    /// The policy's name, as `alloc_wait_policy` takes it.
    pub const fn name(self) -> &'static str {
        WAIT_POLICY_NAMES[self as usize]
    }
}

/// Why an option, a value or a list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptErrorKind {
    /// No option has that name.
    Unknown,
    /// `name` without `=value` in a list.
    MissingValue,
    /// Not a value of the option's type.
    BadValue,
    /// A number outside the option's range.
    OutOfRange {
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// Not settable at that moment (e.g. `discard` at format).
    NotSettable,
    /// More replicas than the volume has members.
    TooManyReplicas {
        /// Members of the volume.
        members: u32,
    },
}

/// An option error: the option (as written), the value text, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptError<'a> {
    /// The option's name as given.
    pub option: &'a str,
    /// The value as given (empty if none).
    pub value: &'a str,
    /// What is wrong.
    pub kind: OptErrorKind,
}

impl fmt::Display for OptError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (o, v) = (self.option, self.value);
        match self.kind {
            OptErrorKind::Unknown => write!(f, "unknown option '{o}'"),
            OptErrorKind::MissingValue => write!(f, "option '{o}' needs a value ({o}=VALUE)"),
            OptErrorKind::BadValue => {
                write!(f, "option '{o}': bad value '{v}'")?;
                if o == "degraded" {
                    f.write_str(" (expected 0 or 1)")?;
                }
                if let Some(id) = OptId::from_name(o) {
                    match id.desc().ty {
                        OptType::Uint { .. } => f.write_str(" (expected a decimal number)")?,
                        OptType::Bool => f.write_str(" (expected 0 or 1)")?,
                        OptType::Enum(names) => {
                            f.write_str(" (expected one of:")?;
                            for n in names {
                                write!(f, " {n}")?;
                            }
                            f.write_str(")")?;
                        }
                    }
                }
                Ok(())
            }
            OptErrorKind::OutOfRange { min, max } => {
                write!(f, "option '{o}': {v} is out of range {min}..={max}")
            }
            OptErrorKind::NotSettable => write!(f, "option '{o}' cannot be set here"),
            OptErrorKind::TooManyReplicas { members } => write!(
                f,
                "option '{o}': {v} replicas need {v} devices but the volume has {members}"
            ),
        }
    }
}

/// Parses an unsigned decimal without sign, spaces or leading `+`.
fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u32 = 0;
    for c in s.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(v)
}

impl OptDesc {
    /// Whether `v` is a valid value.
    pub fn check(&self, v: u32) -> Result<(), OptErrorKind> {
        let ok = match self.ty {
            OptType::Uint { min, max } => {
                if v < min || v > max {
                    return Err(OptErrorKind::OutOfRange { min, max });
                }
                true
            }
            OptType::Bool => v <= 1,
            OptType::Enum(names) => (v as usize) < names.len(),
        };
        if ok {
            Ok(())
        } else {
            Err(OptErrorKind::BadValue)
        }
    }

    /// Parses a value written by a person (surrounding whitespace, e.g. the newline of
    /// `echo`, is ignored).
    pub fn parse<'a>(&self, text: &'a str) -> Result<u32, OptError<'a>> {
        let t = text.trim();
        let err = |kind| OptError {
            option: self.name,
            value: t,
            kind,
        };
        let v = match self.ty {
            OptType::Uint { .. } => parse_u32(t).ok_or(err(OptErrorKind::BadValue))?,
            OptType::Bool => match t {
                "0" => 0,
                "1" => 1,
                _ => return Err(err(OptErrorKind::BadValue)),
            },
            OptType::Enum(names) => names
                .iter()
                .position(|n| *n == t)
                .ok_or(err(OptErrorKind::BadValue))? as u32,
        };
        self.check(v).map_err(err)?;
        Ok(v)
    }

    /// A displayable form of `v` that [`OptDesc::parse`] reads back.
    pub fn display(&self, v: u32) -> ValueDisplay<'_> {
        ValueDisplay { desc: self, v }
    }
}

/// Prints an option value the way [`OptDesc::parse`] reads it.
#[derive(Clone, Copy, Debug)]
pub struct ValueDisplay<'d> {
    desc: &'d OptDesc,
    v: u32,
}

impl fmt::Display for ValueDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.desc.ty {
            OptType::Enum(names) => match names.get(self.v as usize) {
                Some(n) => f.write_str(n),
                None => write!(f, "?{}", self.v),
            },
            OptType::Uint { .. } | OptType::Bool => write!(f, "{}", self.v),
        }
    }
}

/// Iterator over `name=value` items of a comma-separated list; see [`parse_list`].
#[derive(Clone, Debug)]
pub struct OptList<'a> {
    rest: core::str::Split<'a, char>,
}

impl<'a> Iterator for OptList<'a> {
    type Item = Result<(OptId, u32), OptError<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let item = self.rest.next()?.trim();
            if item.is_empty() {
                continue;
            }
            let Some((name, value)) = item.split_once('=') else {
                let kind = match OptId::from_name(item) {
                    Some(_) => OptErrorKind::MissingValue,
                    None => OptErrorKind::Unknown,
                };
                return Some(Err(OptError {
                    option: item,
                    value: "",
                    kind,
                }));
            };
            let name = name.trim();
            let Some(id) = OptId::from_name(name) else {
                return Some(Err(OptError {
                    option: name,
                    value: value.trim(),
                    kind: OptErrorKind::Unknown,
                }));
            };
            return Some(id.desc().parse(value).map(|v| (id, v)));
        }
    }
}

/// Parses `opt=val[,opt=val...]`; empty items (`a=1,,b=2`, a trailing comma) are skipped.
pub fn parse_list(list: &str) -> OptList<'_> {
    OptList {
        rest: list.split(','),
    }
}

/// What a `register` string asks for besides options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegisterFlags {
    /// `degraded=1`: register with members missing (see [`super::degraded`]).
    pub degraded: bool,
}

/// A volume's option values, and which of them were explicitly set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    values: [u32; NR_OPTS],
    set: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Options {
    /// Every option at its table default, none set.
    pub const fn defaults() -> Options {
        let mut values = [0u32; NR_OPTS];
        let mut i = 0;
        while i < NR_OPTS {
            values[i] = OPTIONS[i].default;
            i += 1;
        }
        Options { values, set: 0 }
    }

    /// Rebuilds options from the superblock's slots: `set` is the bitmap of set options,
    /// `values[i]` the value of option `i` when set (ignored otherwise). Fails on a set
    /// bit that names no option or a value out of its range.
    pub fn from_raw(set: u32, values: &[u32; NR_OPTS]) -> Result<Options, (OptId, OptErrorKind)> {
        let mut o = Options::defaults();
        for id in OptId::ALL {
            if set & (1 << id.index()) != 0 {
                o.set(id, values[id.index()]).map_err(|k| (id, k))?;
            }
        }
        Ok(o)
    }

    /// The bitmap of explicitly set options (bit = id).
    pub const fn set_mask(&self) -> u32 {
        self.set
    }

    /// The current value of `id`.
    pub const fn get(&self, id: OptId) -> u32 {
        self.values[id.index()]
    }

    /// Whether `id` was explicitly set (and is therefore stored in the superblock).
    pub const fn is_set(&self, id: OptId) -> bool {
        self.set & (1 << id.index()) != 0
    }

    /// Sets `id` to `v` (range-checked) and marks it set.
    pub fn set(&mut self, id: OptId, v: u32) -> Result<(), OptErrorKind> {
        id.desc().check(v)?;
        self.values[id.index()] = v;
        self.set |= 1 << id.index();
        Ok(())
    }

    /// Changes the value `id` takes while it is not set (the module parameter
    /// `stuck_timeout_secs` does this for `allocator_stuck_timeout`); a set value is kept.
    pub fn set_default(&mut self, id: OptId, v: u32) -> Result<(), OptErrorKind> {
        id.desc().check(v)?;
        if !self.is_set(id) {
            self.values[id.index()] = v;
        }
        Ok(())
    }

    /// Returns `id` to its table default and marks it not set.
    pub fn unset(&mut self, id: OptId) {
        self.values[id.index()] = id.desc().default;
        self.set &= !(1 << id.index());
    }

    /// Applies a `register`-style list, all or nothing: the first bad item leaves `self`
    /// unchanged. `at` is the moment (an option not settable then is refused). Later items
    /// win over earlier ones. Checks that need the member count are
    /// [`Options::check_members`]'s job.
    pub fn apply_list<'a>(&mut self, list: &'a str, at: When) -> Result<(), OptError<'a>> {
        let mut next = *self;
        for item in parse_list(list) {
            let (id, v) = item?;
            if !id.desc().settable.intersects(at) {
                return Err(OptError {
                    option: id.desc().name,
                    value: "",
                    kind: OptErrorKind::NotSettable,
                });
            }
            // Values from parse_list are already range-checked.
            next.set(id, v).map_err(|kind| OptError {
                option: id.desc().name,
                value: "",
                kind,
            })?;
        }
        *self = next;
        Ok(())
    }

    /// [`Options::apply_list`] at [`When::REGISTER`] for a `register` string's list,
    /// which may also hold `degraded=0|1`: not an option (nothing stores it), it asks to go
    /// on with members missing. Nothing changes on error.
    pub fn apply_register_list<'a>(
        &mut self,
        list: &'a str,
    ) -> Result<RegisterFlags, OptError<'a>> {
        let mut next = *self;
        let mut flags = RegisterFlags::default();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some(("degraded", v)) => {
                    flags.degraded = match v.trim() {
                        "0" => false,
                        "1" => true,
                        _ => {
                            return Err(OptError {
                                option: "degraded",
                                value: v,
                                kind: OptErrorKind::BadValue,
                            })
                        }
                    }
                }
                _ => next.apply_list(item, When::REGISTER)?,
            }
        }
        *self = next;
        Ok(flags)
    }

    /// Checks what needs the volume: no more replicas than members.
    pub fn check_members(&self, members: u32) -> Result<(), OptError<'static>> {
        for id in [OptId::MetadataReplicas, OptId::DataReplicas] {
            if self.get(id) > members {
                return Err(OptError {
                    option: id.desc().name,
                    value: digits(self.get(id)),
                    kind: OptErrorKind::TooManyReplicas { members },
                });
            }
        }
        Ok(())
    }

    /// `metadata_replicas`.
    pub const fn metadata_replicas(&self) -> u32 {
        self.get(OptId::MetadataReplicas)
    }

    /// `data_replicas`.
    pub const fn data_replicas(&self) -> u32 {
        self.get(OptId::DataReplicas)
    }

    /// `allocator_stuck_timeout`, seconds (0 = never).
    pub const fn allocator_stuck_timeout(&self) -> u32 {
        self.get(OptId::AllocatorStuckTimeout)
    }

    /// `alloc_wait_policy`.
    pub const fn alloc_wait_policy(&self) -> WaitPolicy {
        WaitPolicy::from_value(self.get(OptId::AllocWaitPolicy))
    }

    /// `alloc_deadline`, seconds (0 = none).
    pub const fn alloc_deadline(&self) -> u32 {
        self.get(OptId::AllocDeadline)
    }

    /// `discard`.
    pub const fn discard(&self) -> bool {
        self.get(OptId::Discard) != 0
    }

    /// `replay_discard_priority`.
    pub const fn replay_discard_priority(&self) -> bool {
        self.get(OptId::ReplayDiscardPriority) != 0
    }

    /// `btree_cache_size`, in bytes.
    pub const fn btree_cache_bytes(&self) -> u64 {
        (self.get(OptId::BtreeCacheSize) as u64) << 20
    }

    /// Displays every option as `name=value,...` (readable back by
    /// [`Options::apply_list`] with [`When::ANY`]).
    pub fn display(&self) -> OptionsDisplay<'_> {
        OptionsDisplay(self)
    }
}

/// See [`Options::display`].
#[derive(Clone, Copy, Debug)]
pub struct OptionsDisplay<'o>(&'o Options);

impl fmt::Display for OptionsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in OPTIONS.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", d.name, d.display(self.0.get(d.id)))?;
        }
        Ok(())
    }
}

/// Static text for small replica counts, so errors need no buffer.
fn digits(v: u32) -> &'static str {
    const D: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    D.get(v as usize).copied().unwrap_or("many")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_id_and_defaults_are_valid() {
        for (i, d) in OPTIONS.iter().enumerate() {
            assert_eq!(d.id.index(), i);
            assert_eq!(OptId::from_name(d.name), Some(d.id));
            assert_eq!(d.check(d.default), Ok(()), "{}", d.name);
            assert!(!d.doc.is_empty());
        }
    }

    #[test]
    fn wait_policy_names_are_the_option_values() {
        for (v, name) in WAIT_POLICY_NAMES.iter().enumerate() {
            assert_eq!(WaitPolicy::from_value(v as u32).name(), *name);
        }
    }

    #[test]
    fn apply_list_is_all_or_nothing() {
        let mut o = Options::defaults();
        let e = o
            .apply_list("discard=0,metadata_replicas=9", When::RUNTIME)
            .unwrap_err();
        assert_eq!(e.kind, OptErrorKind::OutOfRange { min: 1, max: 4 });
        assert_eq!(o, Options::defaults());
        o.apply_list(" discard=0 , alloc_wait_policy=fail,", When::REGISTER)
            .unwrap();
        assert!(!o.discard());
        assert_eq!(o.alloc_wait_policy(), WaitPolicy::Fail);
        assert!(o.is_set(OptId::Discard) && !o.is_set(OptId::DataReplicas));
        let e = o.apply_list("discard=1", When::FORMAT).unwrap_err();
        assert_eq!(e.kind, OptErrorKind::NotSettable);
    }

    #[test]
    fn set_default_only_touches_unset() {
        let mut o = Options::defaults();
        o.set_default(OptId::AllocatorStuckTimeout, 5).unwrap();
        assert_eq!(o.allocator_stuck_timeout(), 5);
        o.set(OptId::AllocatorStuckTimeout, 7).unwrap();
        o.set_default(OptId::AllocatorStuckTimeout, 9).unwrap();
        assert_eq!(o.allocator_stuck_timeout(), 7);
        o.unset(OptId::AllocatorStuckTimeout);
        assert_eq!(o.allocator_stuck_timeout(), 30);
    }

    #[test]
    fn member_check() {
        let mut o = Options::defaults();
        assert!(o.check_members(2).is_ok());
        let e = o.check_members(1).unwrap_err();
        assert_eq!(e.option, "metadata_replicas");
        assert_eq!(e.kind, OptErrorKind::TooManyReplicas { members: 1 });
        o.set(OptId::MetadataReplicas, 1).unwrap();
        assert!(o.check_members(1).is_ok());
        assert!(format!("{e}").contains("has 1"));
    }

    #[test]
    fn from_raw() {
        let mut vals = [0u32; NR_OPTS];
        vals[0] = 3;
        let o = Options::from_raw(1, &vals).unwrap();
        assert_eq!(o.metadata_replicas(), 3);
        assert_eq!(o.data_replicas(), 1);
        vals[0] = 0;
        assert!(Options::from_raw(1, &vals).is_err());
        // Unset slots are ignored.
        assert!(Options::from_raw(0, &vals).is_ok());
    }
}
