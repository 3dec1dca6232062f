// SPDX-License-Identifier: GPL-2.0

//! The volume's btree in memory: u64 keys to 32-byte values, read at
//! register from the checkpoint's root, written back copy-on-write by a
//! checkpoint (`checkpoint.rs`).
//!
//! **Node cache.** Every node's header (level, range, location) and every
//! interior node stay in memory: a few hundred bytes per thousand keys.
//! Leaves' keys and values are a cache bounded by `btree_cache_size`: a
//! clean leaf past the bound is evicted (second-chance clock) and read
//! again from its replicas, checked as at register, when a lookup or an
//! insert needs it. A dirty leaf stays until a checkpoint has written it;
//! when dirty leaves alone pass the bound, [`Tree::wants_writeback`] asks
//! the inserting caller for that checkpoint. An insert's leaf is pinned from
//! [`Tree::prepare_insert`] to [`Tree::apply_insert`], which must not fail.
//!
//! An insert that overflows a leaf splits it, and a split that overflows
//! the parent splits that too, up to a new root. Every node a split creates
//! needs `metadata_replicas` buckets on distinct devices *before* the tree
//! changes: [`Tree::nodes_needed`] says how many, the caller allocates them
//! through the allocator at watermark btree (where it may block, restart,
//! time out or be aborted, as in bcachefs #1108), then [`Tree::insert`]
//! applies the change, which cannot fail half-way.
//!
//! Node state: `loc` is where the node lives on disk. A node read at
//! register, or written by a checkpoint, is clean; modifying it makes it
//! dirty, and the next checkpoint writes it to new buckets and retires the
//! old ones. A node a split creates is `fresh`: its buckets were allocated
//! for it and hold nothing yet, so the checkpoint writes it in place.

use crate::bkcore::{
    format::{
        decode_node, BtreePtr, Checkpoint, ChildSpec, NodeHeader, NodeWriter, ParentMismatch,
        Replica, Value,
    },
    placement::dev_bit,
    uuid::{Hyphenated, Uuid},
};
use crate::fmt::Core;
use crate::member::Disk;
use kernel::prelude::*;

/// Resident-leaf accounting: bytes of one leaf's keys and values.
const fn leaf_bytes(cap: usize) -> u64 {
    ((cap + 1) * (size_of::<u64>() + size_of::<Value>())) as u64
}

/// One node in memory.
pub(crate) struct Node {
    level: u8,
    min: u64,
    max: u64,
    keys: KVec<u64>,
    /// Leaf values, parallel to `keys`.
    vals: KVec<Value>,
    /// Interior children (indices into [`Tree::nodes`]), parallel to `keys`.
    kids: KVec<usize>,
    /// `keys` and `vals` are in memory (always, for an interior node).
    resident: bool,
    /// Used since the clock hand last passed.
    referenced: bool,
    /// Where the node is (or, if `fresh`, will be) on disk.
    pub(crate) loc: BtreePtr,
    /// `loc` was allocated since the last checkpoint and holds nothing yet.
    pub(crate) fresh: bool,
    /// Changed since the last checkpoint.
    pub(crate) dirty: bool,
}

impl Node {
    fn new(level: u8, min: u64, max: u64, loc: BtreePtr, cap: usize) -> Result<Self> {
        let leaf = level == 0;
        Ok(Self {
            level,
            min,
            max,
            keys: KVec::with_capacity(cap + 1, GFP_KERNEL)?,
            vals: KVec::with_capacity(if leaf { cap + 1 } else { 0 }, GFP_KERNEL)?,
            kids: KVec::with_capacity(if leaf { 0 } else { cap + 1 }, GFP_KERNEL)?,
            resident: true,
            referenced: true,
            loc,
            fresh: false,
            dirty: false,
        })
    }

    /// 0 for a leaf.
    pub(crate) fn level(&self) -> u8 {
        self.level
    }

    /// Position of the child covering `key`.
    fn child_pos(&self, key: u64) -> usize {
        match self.keys.binary_search(&key) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// Moves the upper half into `right` (empty, with capacity); returns
    /// the first key of `right`.
    fn split_into(&mut self, right: &mut Node) -> Result<u64> {
        let mid = self.keys.len() / 2;
        let split = self.keys[mid];
        // Capacity was reserved: these do not allocate.
        right
            .keys
            .extend_from_slice(&self.keys[mid..], GFP_KERNEL)?;
        if self.level == 0 {
            right
                .vals
                .extend_from_slice(&self.vals[mid..], GFP_KERNEL)?;
            self.vals.truncate(mid);
        } else {
            right
                .kids
                .extend_from_slice(&self.kids[mid..], GFP_KERNEL)?;
            self.kids.truncate(mid);
        }
        self.keys.truncate(mid);
        right.min = split;
        right.max = self.max;
        self.max = split - 1;
        Ok(split)
    }
}

/// Inserts `v` at `i` of a vector with spare capacity.
fn insert_at<T>(v: &mut KVec<T>, i: usize, x: T) -> Result {
    v.insert_within_capacity(i, x).map_err(|_| ENOMEM)
}

/// The whole tree.
pub(crate) struct Tree {
    /// Every node; never shrinks (nodes do not merge).
    pub(crate) nodes: KVec<Node>,
    /// Index of the root.
    pub(crate) root: usize,
    /// Most entries per node (`node_max_entries`).
    cap: usize,
    /// Keys in the leaves.
    keys: u64,
    /// The newest checkpoint (read at register, written by each one).
    pub(crate) checkpoint: Option<Checkpoint>,
    /// Buckets of replaced nodes, still referenced by the checkpoint on
    /// disk: retired once the next one is durable.
    pub(crate) retiring: KVec<Replica>,
    /// Nodes found at register with a bad replica (dirty: the next
    /// checkpoint rewrites them).
    pub(crate) repaired: u64,
    /// Deepest root level a split may create: the format's
    /// [`MAX_LEVEL`](crate::bkcore::format::MAX_LEVEL) (lower in tests).
    max_level: u8,
    /// The members' devices, to read evicted leaves again; taken at
    /// teardown.
    disks: KVec<Disk>,
    /// The volume's uuid, which every node carries.
    uuid: Uuid,
    /// One node's worth of bytes, for reads.
    buf: KVec<u8>,
    /// Bound on the resident leaves' bytes (`btree_cache_size`).
    limit: u64,
    /// Leaves whose keys and values are in memory.
    resident_leaves: u64,
    /// Where the eviction clock stopped.
    hand: usize,
    /// The leaf of the insert between prepare and apply (one writer at a
    /// time): never evicted.
    pinned: Option<usize>,
    /// Dirty and pinned leaves alone are past the bound.
    writeback: bool,
    /// The last writeback checkpoint failed: not asked again before one
    /// succeeds.
    writeback_failed: bool,
    /// The last sweep found nothing to evict: none is tried again before
    /// a leaf may have become evictable (a read, a checkpoint, a new
    /// bound), so an insert does not pay a sweep while every leaf is dirty.
    stuck: bool,
    /// Leaves read again after an eviction.
    pub(crate) misses: u64,
    /// Leaves evicted.
    pub(crate) evictions: u64,
}

/// An insert's allocations, made before it is journaled: the path to the
/// leaf and the nodes its splits will fill.
pub(crate) struct PreparedInsert {
    path: KVec<usize>,
    spare: KVec<Node>,
}

/// Node loading work: where a node is and what its parent expects.
struct Load {
    ptr: BtreePtr,
    level: u8,
    min: u64,
    max: u64,
    /// (parent index, child position) to link, none for the root.
    parent: Option<(usize, usize)>,
}

impl Tree {
    /// An empty tree, filled by [`Tree::load`].
    pub(crate) fn new() -> Self {
        Self {
            nodes: KVec::new(),
            root: 0,
            cap: 0,
            keys: 0,
            checkpoint: None,
            retiring: KVec::new(),
            repaired: 0,
            max_level: crate::bkcore::format::MAX_LEVEL,
            disks: KVec::new(),
            uuid: Uuid::default(),
            buf: KVec::new(),
            limit: u64::MAX,
            resident_leaves: 0,
            hand: 0,
            pinned: None,
            writeback: false,
            writeback_failed: false,
            stuck: false,
            misses: 0,
            evictions: 0,
        }
    }

    /// Keeps `disks` to read evicted leaves from (after [`Tree::load`]).
    pub(crate) fn attach(&mut self, disks: KVec<Disk>) {
        self.disks = disks;
    }

    /// Gives the devices back (teardown): no leaf is read after this.
    pub(crate) fn detach(&mut self) -> KVec<Disk> {
        core::mem::take(&mut self.disks)
    }

    /// Bytes of the resident leaves' keys and values.
    pub(crate) fn cached_bytes(&self) -> u64 {
        self.resident_leaves * leaf_bytes(self.cap)
    }

    /// The cache bound, in bytes; evicts down to it.
    pub(crate) fn set_limit(&mut self, bytes: u64) {
        self.limit = bytes;
        self.stuck = false;
        self.shrink();
    }

    /// Whether dirty leaves alone are past the bound: only a checkpoint
    /// brings the cache back under it.
    pub(crate) fn wants_writeback(&self) -> bool {
        self.writeback && !self.writeback_failed
    }

    /// The writeback checkpoint failed: not asked for again until a
    /// checkpoint succeeds.
    pub(crate) fn writeback_failed(&mut self) {
        self.writeback_failed = true;
    }

    /// A checkpoint wrote every dirty node: they may be evicted now.
    pub(crate) fn checkpointed(&mut self) {
        self.writeback_failed = false;
        self.stuck = false;
        self.shrink();
    }

    /// No insert is between prepare and apply any more (it failed).
    pub(crate) fn unpin(&mut self) {
        self.pinned = None;
    }

    /// Evicts clean leaves, oldest use first (second chance), until the
    /// resident leaves fit the bound or none is left to evict.
    fn shrink(&mut self) {
        self.shrink_keeping(None);
    }

    /// [`Tree::shrink`], never evicting `keep`.
    fn shrink_keeping(&mut self, keep: Option<usize>) {
        if self.cached_bytes() <= self.limit {
            self.writeback = false;
            return;
        }
        if self.stuck {
            return;
        }
        let n = self.nodes.len();
        // Two turns: the first clears `referenced`, the second evicts.
        let mut steps = 2 * n;
        while self.cached_bytes() > self.limit && steps > 0 {
            steps -= 1;
            self.hand = if self.hand + 1 < n { self.hand + 1 } else { 0 };
            let i = self.hand;
            if self.pinned == Some(i) || keep == Some(i) {
                continue;
            }
            let node = &mut self.nodes[i];
            if node.level != 0 || !node.resident || node.dirty {
                continue;
            }
            if node.referenced {
                node.referenced = false;
                continue;
            }
            self.evict(i);
        }
        self.writeback = self.cached_bytes() > self.limit;
        self.stuck = self.writeback;
    }

    /// Drops leaf `i`'s keys and values (it is clean: its replicas hold
    /// them).
    fn evict(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.keys = KVec::new();
        node.vals = KVec::new();
        node.resident = false;
        self.resident_leaves -= 1;
        self.evictions += 1;
    }

    /// Makes node `i` resident, reading it from its replicas if it was
    /// evicted; a bad replica is skipped (and the node rewritten by the
    /// next checkpoint, as at register).
    fn ensure(&mut self, i: usize) -> Result {
        let n = self.nodes.get_mut(i).ok_or(EINVAL)?;
        n.referenced = true;
        if n.resident {
            return Ok(());
        }
        let w = Load {
            ptr: n.loc,
            level: n.level,
            min: n.min,
            max: n.max,
            parent: None,
        };
        if self.disks.is_empty() {
            return Err(ENODEV);
        }
        let mut read = None;
        let mut bad = false;
        for r in w.ptr.replicas() {
            if self
                .disks
                .get(r.dev as usize)
                .is_some_and(|d| d.dev.is_none())
            {
                continue;
            }
            match Self::read_replica(&self.disks, r, &self.uuid, self.cap, &mut self.buf, &w) {
                Ok((node, _)) => {
                    read = Some(node);
                    break;
                }
                Err(why) => {
                    bad = true;
                    pr_warn!(
                        "volume {}: btree leaf [{}..={}] replica {}:{}: {}\n",
                        Core(Hyphenated(&self.uuid)),
                        w.min,
                        w.max,
                        r.dev,
                        r.bucket,
                        why
                    );
                }
            }
        }
        let Some(read) = read else {
            pr_err!(
                "volume {}: btree leaf [{}..={}]: no readable replica\n",
                Core(Hyphenated(&self.uuid)),
                w.min,
                w.max
            );
            return Err(EIO);
        };
        if bad {
            // Its parent's pointer changes with it, up to the root.
            for p in self.path(w.min)? {
                self.nodes[p].dirty = true;
            }
            self.repaired += 1;
        }
        let n = &mut self.nodes[i];
        n.keys = read.keys;
        n.vals = read.vals;
        n.resident = true;
        self.resident_leaves += 1;
        self.misses += 1;
        // A clean leaf now: there is something to evict, but never the node
        // just read, which is the one wanted.
        self.stuck = false;
        self.shrink_keeping(Some(i));
        Ok(())
    }

    /// Keys in the tree.
    pub(crate) fn len(&self) -> u64 {
        self.keys
    }

    /// Bytes the tree's allocations hold (capacities, not lengths): the node
    /// array and each node's key, value and child arrays.
    pub(crate) fn memory_bytes(&self) -> u64 {
        let nodes = self.nodes.iter().map(|n| {
            n.keys.capacity() * size_of::<u64>()
                + n.vals.capacity() * size_of::<Value>()
                + n.kids.capacity() * size_of::<usize>()
        });
        (self.nodes.capacity() * size_of::<Node>()
            + nodes.sum::<usize>()
            + self.retiring.capacity() * size_of::<Replica>()
            + self.buf.capacity()) as u64
    }

    /// Reads every node reachable from `cp`'s root, checking each against
    /// what its parent says. A replica that cannot be read or decoded is
    /// skipped for the next one; a node with no good replica fails.
    ///
    /// Leaves past `limit` bytes (`btree_cache_size`) are checked, counted
    /// and evicted at once.
    pub(crate) fn load(
        &mut self,
        cp: Checkpoint,
        uuid: Uuid,
        disks: &[Disk],
        limit: u64,
    ) -> Result {
        let d0 = disks.first().ok_or(EINVAL)?;
        self.cap = d0.layout.node_max_entries as usize;
        self.uuid = uuid;
        self.limit = limit;
        let mut buf = KVec::new();
        buf.resize(d0.layout.node_size as usize, 0, GFP_KERNEL)?;
        let mut stack = KVec::new();
        stack.push(
            Load {
                ptr: cp.root,
                level: cp.root_level,
                min: 0,
                max: u64::MAX,
                parent: None,
            },
            GFP_KERNEL,
        )?;
        // Each loaded node's parent, to mark the path of a repaired node.
        let mut parents: KVec<Option<usize>> = KVec::new();
        while let Some(w) = stack.pop() {
            if !w.ptr.has_distinct_devs() {
                // Decoding lets it through so fsck can name it; one device
                // lost would take both "replicas".
                pr_err!(
                    "volume {}: btree level {} node [{}..={}]: two replicas on the same device\n",
                    Core(Hyphenated(&uuid)),
                    w.level,
                    w.min,
                    w.max
                );
                return Err(EINVAL);
            }
            let mut node = None;
            let mut bad = false;
            // Every replica is read: a bad one is rewritten (the node goes
            // dirty, so the next checkpoint copies it to new buckets), not
            // left for the day the good one fails too.
            for r in w.ptr.replicas() {
                if disks.get(r.dev as usize).is_some_and(|d| d.dev.is_none()) {
                    // On a missing member: not bad, just not here. Nodes
                    // short of replicas on present members are the
                    // re-replication pass's.
                    continue;
                }
                match Self::read_replica(disks, r, &uuid, self.cap, &mut buf, &w) {
                    Ok(n) => {
                        if node.is_none() {
                            node = Some(n);
                        }
                    }
                    Err(why) => {
                        bad = true;
                        pr_warn!(
                            "volume {}: btree level {} node [{}..={}] replica {}:{}: {}\n",
                            Core(Hyphenated(&uuid)),
                            w.level,
                            w.min,
                            w.max,
                            r.dev,
                            r.bucket,
                            why
                        )
                    }
                }
            }
            let Some((mut node, children)) = node else {
                pr_err!(
                    "volume {}: btree level {} node [{}..={}]: no readable replica on the present members\n",
                    Core(Hyphenated(&uuid)),
                    w.level,
                    w.min,
                    w.max
                );
                return Err(EINVAL);
            };
            node.loc = w.ptr;
            let idx = self.nodes.len();
            parents.push(w.parent.map(|(p, _)| p), GFP_KERNEL)?;
            if bad {
                self.repaired += 1;
                // Its parent's pointer changes with it, up to the root.
                node.dirty = true;
                let mut up = w.parent.map(|(p, _)| p);
                while let Some(p) = up {
                    self.nodes[p].dirty = true;
                    up = parents.get(p).copied().flatten();
                }
            }
            for (pos, (min, max, ptr)) in children.iter().enumerate() {
                stack.push(
                    Load {
                        ptr: *ptr,
                        level: w.level - 1,
                        min: *min,
                        max: *max,
                        parent: Some((idx, pos)),
                    },
                    GFP_KERNEL,
                )?;
            }
            self.keys += if node.level == 0 {
                node.keys.len() as u64
            } else {
                0
            };
            let leaf = node.level == 0;
            let dirty = node.dirty;
            self.nodes.push(node, GFP_KERNEL)?;
            match w.parent {
                Some((p, pos)) => self.nodes[p].kids[pos] = idx,
                None => self.root = idx,
            }
            if leaf {
                self.resident_leaves += 1;
                if !dirty && self.cached_bytes() > self.limit {
                    self.evict(idx);
                }
            }
        }
        self.buf = buf;
        self.checkpoint = Some(cp);
        Ok(())
    }

    /// Reads and decodes one replica of the node `w` describes; returns the
    /// node and its children's ranges and pointers.
    #[expect(clippy::type_complexity)]
    fn read_replica(
        disks: &[Disk],
        r: &Replica,
        uuid: &Uuid,
        cap: usize,
        buf: &mut KVec<u8>,
        w: &Load,
    ) -> core::result::Result<(Node, KVec<(u64, u64, BtreePtr)>), &'static str> {
        let m = disks.get(r.dev as usize).ok_or("no such member")?;
        if m.layout.is_sb_bucket(r.bucket) {
            return Err("in the metadata region");
        }
        let off = m
            .layout
            .bucket_offset(r.bucket)
            .ok_or("past the device end")?;
        m.dev
            .as_ref()
            .ok_or("member missing")?
            .read(off, buf)
            .map_err(|_| "read error")?;
        let n = decode_node(buf, uuid, cap as u32).map_err(|_| "does not decode")?;
        let spec = ChildSpec {
            level: w.level,
            min: w.min,
            max: w.max,
        };
        n.check_parent(&spec).map_err(|e| match e {
            ParentMismatch::Level { .. } => "level differs from its parent's",
            ParentMismatch::Range { .. } => "key range differs from its parent's",
        })?;
        let h = n.header();
        let mut node = Node::new(h.level, h.min_key, h.max_key, BtreePtr::default(), cap)
            .map_err(|_| "out of memory")?;
        let mut kids = KVec::new();
        let oom = |_| "out of memory";
        if n.is_leaf() {
            for (k, v) in n.leaves() {
                node.keys.push(k, GFP_KERNEL).map_err(oom)?;
                node.vals.push(*v, GFP_KERNEL).map_err(oom)?;
            }
        } else {
            for (i, (k, ptr)) in n.children().enumerate() {
                let c = n.child_spec(i).ok_or("bad child")?;
                node.keys.push(k, GFP_KERNEL).map_err(oom)?;
                node.kids.push(usize::MAX, GFP_KERNEL).map_err(oom)?;
                kids.push((c.min, c.max, ptr), GFP_KERNEL).map_err(oom)?;
            }
        }
        Ok((node, kids))
    }

    /// The value of `key`; reading its leaf may fail.
    pub(crate) fn get(&mut self, key: u64) -> Result<Option<Value>> {
        let leaf = self.leaf_of(key)?;
        self.ensure(leaf)?;
        let n = &self.nodes[leaf];
        Ok(n.keys
            .binary_search(&key)
            .ok()
            .and_then(|i| n.vals.get(i).copied()))
    }

    /// The leaf covering `key` (interior nodes are always resident).
    fn leaf_of(&self, key: u64) -> Result<usize> {
        let mut i = self.root;
        loop {
            let n = self.nodes.get(i).ok_or(EINVAL)?;
            if n.level == 0 {
                return Ok(i);
            }
            i = *n.kids.get(n.child_pos(key)).ok_or(EINVAL)?;
        }
    }

    /// Node indices from the root to the leaf covering `key`.
    fn path(&self, key: u64) -> Result<KVec<usize>> {
        let mut path = KVec::new();
        let mut i = self.root;
        loop {
            path.push(i, GFP_KERNEL)?;
            let n = self.nodes.get(i).ok_or(EINVAL)?;
            if n.level == 0 {
                return Ok(path);
            }
            i = *n.kids.get(n.child_pos(key)).ok_or(EINVAL)?;
        }
    }

    fn is_full(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.keys.len() >= self.cap)
    }

    /// New nodes an insert of `key` needs: 0 if the key exists or its leaf
    /// has room, else one per full node from the leaf up, plus a new root
    /// if the root is full too.
    pub(crate) fn nodes_needed(&mut self, key: u64) -> Result<usize> {
        let path = self.path(key)?;
        let leaf = *path.last().ok_or(EINVAL)?;
        self.ensure(leaf)?;
        let leaf = self.nodes.get(leaf).ok_or(EINVAL)?;
        if leaf.keys.binary_search(&key).is_ok() {
            return Ok(0);
        }
        let full = path.iter().rev().take_while(|&&i| self.is_full(i)).count();
        if full < path.len() {
            return Ok(full);
        }
        // A new root: one level more than the format can encode would make
        // a tree no register could load.
        let root = self.nodes.get(self.root).ok_or(EINVAL)?;
        if root.level >= self.max_level {
            return Err(ENOSPC);
        }
        Ok(full + 1)
    }

    /// Inserts or overwrites `key`, splitting with the new nodes' buckets
    /// in `locs` (exactly [`Tree::nodes_needed`] of them). Marks the path
    /// dirty. Returns whether the key is new.
    pub(crate) fn insert(&mut self, key: u64, value: Value, locs: &[BtreePtr]) -> Result<bool> {
        let prepared = self.prepare_insert(key, locs)?;
        self.apply_insert(key, value, prepared)
    }

    /// Everything an insert of `key` could fail to allocate, done first
    /// (see [`Tree::insert`]), so that [`Tree::apply_insert`] cannot fail
    /// once the insert is journaled. Only a checkpoint may run in between,
    /// which moves nodes but leaves the tree's shape alone.
    pub(crate) fn prepare_insert(&mut self, key: u64, locs: &[BtreePtr]) -> Result<PreparedInsert> {
        let path = self.path(key)?;
        let need = self.nodes_needed(key)?;
        if locs.len() != need {
            return Err(EINVAL);
        }
        // Resident (`nodes_needed` read it) and kept so until applied.
        self.pinned = path.last().copied();
        self.nodes.reserve(need, GFP_KERNEL)?;
        let mut spare = KVec::with_capacity(need, GFP_KERNEL)?;
        for (k, loc) in locs.iter().enumerate() {
            // The k-th split is of the k-th node from the leaf up; one
            // more is a new root.
            let level = match path.len().checked_sub(k + 1) {
                Some(d) => self.nodes[path[d]].level,
                None => self.nodes[self.root].level + 1,
            };
            let mut n = Node::new(level, 0, 0, *loc, self.cap)?;
            n.fresh = true;
            n.dirty = true;
            spare.push(n, GFP_KERNEL)?;
        }
        Ok(PreparedInsert { path, spare })
    }

    /// The change [`Tree::prepare_insert`] prepared.
    pub(crate) fn apply_insert(
        &mut self,
        key: u64,
        value: Value,
        prepared: PreparedInsert,
    ) -> Result<bool> {
        let PreparedInsert { path, mut spare } = prepared;
        let leaf = *path.last().ok_or(EINVAL)?;
        // Pinned since prepare: a leaf gone now is a bug, not an I/O error.
        if self.pinned != Some(leaf) || !self.nodes[leaf].resident {
            return Err(EINVAL);
        }
        self.pinned = None;
        for &i in path.iter() {
            self.nodes[i].dirty = true;
        }

        let n = &mut self.nodes[leaf];
        if let Ok(i) = n.keys.binary_search(&key) {
            n.vals[i] = value;
            return Ok(false);
        }
        let mut spare = spare.drain_all();
        // Carried up: (first key of the new right node, its index).
        let mut carry: Option<(u64, usize)> = None;
        for depth in (0..path.len()).rev() {
            let i = path[depth];
            let full = self.nodes[i].keys.len() >= self.cap;
            let mut target = i;
            if full {
                let mut right = spare.next().ok_or(EINVAL)?;
                let split = self.nodes[i].split_into(&mut right)?;
                let r = self.nodes.len();
                if right.level == 0 {
                    self.resident_leaves += 1;
                }
                self.nodes.push(right, GFP_KERNEL)?;
                let k = carry.map_or(key, |c| c.0);
                if k >= split {
                    target = r;
                }
                Self::add_entry(&mut self.nodes[target], key, value, carry)?;
                carry = Some((split, r));
                // The parent takes the new node.
                continue;
            }
            Self::add_entry(&mut self.nodes[target], key, value, carry)?;
            carry = None;
            break;
        }
        if let Some((split, r)) = carry {
            // The root split: a new root above the two halves.
            let mut root = spare.next().ok_or(EINVAL)?;
            let old = self.root;
            root.min = self.nodes[old].min;
            root.max = self.nodes[r].max;
            root.keys.push(root.min, GFP_KERNEL)?;
            root.kids.push(old, GFP_KERNEL)?;
            root.keys.push(split, GFP_KERNEL)?;
            root.kids.push(r, GFP_KERNEL)?;
            self.root = self.nodes.len();
            self.nodes.push(root, GFP_KERNEL)?;
        }
        self.keys += 1;
        self.shrink();
        Ok(true)
    }

    /// Adds the leaf entry (`carry` is none) or the child entry `carry` to
    /// node `n`, which has room.
    fn add_entry(n: &mut Node, key: u64, value: Value, carry: Option<(u64, usize)>) -> Result {
        match carry {
            None => {
                let i = n.keys.binary_search(&key).unwrap_or_else(|i| i);
                insert_at(&mut n.keys, i, key)?;
                insert_at(&mut n.vals, i, value)
            }
            Some((k, child)) => {
                let i = n.keys.binary_search(&k).unwrap_or_else(|i| i);
                insert_at(&mut n.keys, i, k)?;
                insert_at(&mut n.kids, i, child)
            }
        }
    }

    /// Dirty nodes, children before parents (the order a checkpoint writes
    /// them in).
    pub(crate) fn dirty_postorder(&self) -> Result<KVec<usize>> {
        let mut out = KVec::new();
        let mut stack = KVec::new();
        stack.push((self.root, false), GFP_KERNEL)?;
        while let Some((i, expanded)) = stack.pop() {
            let n = self.nodes.get(i).ok_or(EINVAL)?;
            if !n.dirty {
                continue; // a clean node has no dirty descendant
            }
            if expanded || n.level == 0 {
                out.push(i, GFP_KERNEL)?;
                continue;
            }
            stack.push((i, true), GFP_KERNEL)?;
            for &k in n.kids.iter() {
                stack.push((k, false), GFP_KERNEL)?;
            }
        }
        Ok(out)
    }

    /// Encodes node `i` into `buf` (its children's `loc`s must be final).
    pub(crate) fn encode(&self, i: usize, seq: u64, uuid: &Uuid, buf: &mut [u8]) -> Result {
        let n = self.nodes.get(i).ok_or(EINVAL)?;
        // Only dirty nodes are written, and they are never evicted.
        if !n.resident {
            return Err(EINVAL);
        }
        let hdr = NodeHeader {
            level: n.level,
            seq,
            min_key: n.min,
            max_key: n.max,
        };
        let bad = |e| {
            pr_err!("btree node encoding: {}\n", Core(e));
            EINVAL
        };
        let mut w = NodeWriter::new(buf, hdr, self.cap as u32).map_err(bad)?;
        if n.level == 0 {
            for (k, v) in n.keys.iter().zip(n.vals.iter()) {
                w.push_leaf(*k, v).map_err(bad)?;
            }
        } else {
            for (k, c) in n.keys.iter().zip(n.kids.iter()) {
                let child = self.nodes.get(*c).ok_or(EINVAL)?;
                w.push_child(*k, &child.loc).map_err(bad)?;
            }
        }
        w.finish(uuid).map_err(bad)?;
        Ok(())
    }

    /// Whether node `n` has fewer than `want` replicas on the members in
    /// `readable` (a bit per member index).
    fn is_short(n: &Node, want: u32, readable: u64) -> bool {
        let ok = n
            .loc
            .replicas()
            .iter()
            .filter(|r| readable & dev_bit(r.dev.into()) != 0)
            .count();
        ok < want as usize
    }

    /// Whether the next checkpoint writes node `n` to new buckets.
    fn moves(n: &Node) -> bool {
        n.dirty && !n.fresh
    }

    /// Nodes with fewer than `want` replicas on the `readable` members:
    /// `(markable, all)`. A node the next checkpoint moves anyway (dirty,
    /// not fresh) is not markable; it gets `metadata_replicas` then.
    pub(crate) fn under_replicated(&self, want: u32, readable: u64) -> (u64, u64) {
        let mut markable = 0;
        let mut all = 0;
        for n in self
            .nodes
            .iter()
            .filter(|n| Self::is_short(n, want, readable))
        {
            all += 1;
            if !Self::moves(n) {
                markable += 1;
            }
        }
        (markable, all)
    }

    /// Node indices from the root to node `i`.
    fn path_to(&self, i: usize) -> Result<KVec<usize>> {
        let target = self.nodes.get(i).ok_or(EINVAL)?;
        let (key, level) = (target.min, target.level);
        let mut path = KVec::new();
        let mut j = self.root;
        loop {
            path.push(j, GFP_KERNEL)?;
            if j == i {
                return Ok(path);
            }
            let n = self.nodes.get(j).ok_or(EINVAL)?;
            if n.level <= level {
                return Err(EINVAL);
            }
            j = *n.kids.get(n.child_pos(key)).ok_or(EINVAL)?;
        }
    }

    /// The first `max` markable short nodes (see
    /// [`Tree::under_replicated`]), and how many nodes the next checkpoint
    /// would move once they are marked: those it moves already, the short
    /// nodes, and every clean node on their paths (a parent's pointer
    /// changes with its child).
    fn rewrite_plan(&self, max: usize, want: u32, readable: u64) -> Result<(KVec<usize>, usize)> {
        let mut moved = KVec::new();
        moved.resize(self.nodes.len(), false, GFP_KERNEL)?;
        for (m, n) in moved.iter_mut().zip(self.nodes.iter()) {
            *m = Self::moves(n);
        }
        let mut picked = KVec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if picked.len() >= max {
                break;
            }
            if Self::moves(n) || !Self::is_short(n, want, readable) {
                continue;
            }
            picked.push(i, GFP_KERNEL)?;
            moved[i] = true;
            for p in self.path_to(i)? {
                // A fresh ancestor is written in place, whatever its children.
                if !self.nodes[p].dirty {
                    moved[p] = true;
                }
            }
        }
        let cost = moved.iter().filter(|&&m| m).count();
        Ok((picked, cost))
    }

    /// How many nodes the next checkpoint would move after
    /// [`Tree::mark_rewrite`] with the same arguments: what its buckets
    /// must fit.
    pub(crate) fn rewrite_cost(&self, max: usize, want: u32, readable: u64) -> Result<usize> {
        Ok(self.rewrite_plan(max, want, readable)?.1)
    }

    /// Marks up to `max` short nodes for the next checkpoint to move to new
    /// buckets (with the replicas then in effect), and every clean node on
    /// their paths; an evicted leaf is read back first (only a resident
    /// node is written). A short fresh node is moved too: its buckets were
    /// allocated with fewer replicas and hold nothing yet. Returns how many
    /// short nodes were marked.
    pub(crate) fn mark_rewrite(&mut self, max: usize, want: u32, readable: u64) -> Result<u64> {
        let (picked, _) = self.rewrite_plan(max, want, readable)?;
        let mut marked = 0;
        for &i in picked.iter() {
            self.ensure(i)?;
            for p in self.path_to(i)? {
                self.nodes[p].dirty = true;
            }
            // Dirty now: never evicted before the checkpoint writes it.
            self.nodes[i].fresh = false;
            marked += 1;
        }
        Ok(marked)
    }

    /// Every bucket the tree uses (all replicas of every node), for the
    /// register-time reconcile.
    pub(crate) fn replicas(&self) -> impl Iterator<Item = Replica> + '_ {
        self.nodes
            .iter()
            .flat_map(|n| n.loc.replicas().iter().copied())
    }
}

#[kunit_tests(bkalloc_btree)]
mod tests {
    use super::*;
    use crate::bkcore::format::Replica;

    /// An in-memory tree of one empty leaf, `cap` keys a node, whose root
    /// may reach `max_level`.
    fn small_tree(cap: usize, max_level: u8) -> Result<Tree> {
        let mut t = Tree::new();
        t.cap = cap;
        t.max_level = max_level;
        t.nodes
            .push(Node::new(0, 0, u64::MAX, ptr(0)?, cap)?, GFP_KERNEL)?;
        t.resident_leaves = 1;
        Ok(t)
    }

    fn ptr(bucket: u64) -> Result<BtreePtr> {
        BtreePtr::new(&[Replica { dev: 0, bucket }]).ok_or(EINVAL)
    }

    /// Inserts `key` with as many (made-up) node locations as it needs.
    fn put(t: &mut Tree, key: u64) -> Result {
        let need = t.nodes_needed(key)?;
        let mut locs = KVec::new();
        for i in 0..need {
            locs.push(ptr(key * 8 + i as u64 + 1)?, GFP_KERNEL)?;
        }
        t.insert(key, [0; 32], &locs).map(|_| ())
    }

    #[test]
    fn the_root_stops_at_the_deepest_encodable_level() -> Result {
        // Four keys a node, at most level 2: the tree grows to three levels,
        // then the insert that would need a fourth is refused.
        let mut t = small_tree(4, 2)?;
        let mut refused = None;
        for key in 0..10_000u64 {
            match put(&mut t, key) {
                Ok(()) => {}
                Err(e) => {
                    refused = Some((key, e));
                    break;
                }
            }
        }
        let (key, e) = refused.ok_or(EINVAL)?;
        assert_eq!(e, ENOSPC);
        assert_eq!(t.nodes[t.root].level(), 2);
        assert_eq!(t.len(), key);
        // Nothing changed by the refusal: every earlier key is there, and a
        // key whose leaf has room still goes in.
        for k in 0..key {
            assert!(t.get(k)?.is_some());
        }
        put(&mut t, 0)?;
        Ok(())
    }

    #[test]
    fn clean_leaves_past_the_bound_are_evicted() -> Result {
        let mut t = small_tree(4, 8)?;
        for key in 0..64u64 {
            put(&mut t, key)?;
        }
        let leaves = t.nodes.iter().filter(|n| n.level == 0).count() as u64;
        assert!(leaves > 4);
        assert_eq!(t.cached_bytes(), leaves * leaf_bytes(4));
        // Dirty leaves stay, whatever the bound: writeback is asked for.
        t.set_limit(2 * leaf_bytes(4));
        assert_eq!(t.evictions, 0);
        assert!(t.wants_writeback());
        // As after a checkpoint: now they go, down to the bound.
        for n in t.nodes.iter_mut() {
            n.dirty = false;
        }
        t.checkpointed();
        assert!(!t.wants_writeback());
        assert_eq!(t.cached_bytes(), 2 * leaf_bytes(4));
        assert_eq!(t.evictions, leaves - 2);
        // An evicted leaf is read again from the devices (none here).
        let evicted = (0..64u64).find(|&k| t.leaf_of(k).is_ok_and(|i| !t.nodes[i].resident));
        assert_eq!(t.get(evicted.ok_or(EINVAL)?), Err(ENODEV));
        Ok(())
    }

    #[test]
    fn short_nodes_are_marked_with_their_paths() -> Result {
        let mut t = small_tree(4, 8)?;
        for key in 0..64u64 {
            put(&mut t, key)?;
        }
        // As after a checkpoint: every node clean, one replica on dev 0.
        for n in t.nodes.iter_mut() {
            n.dirty = false;
            n.fresh = false;
        }
        let nodes = t.nodes.len() as u64;
        assert_eq!(t.under_replicated(1, 0b11), (0, 0));
        assert_eq!(t.under_replicated(2, 0b11), (nodes, nodes));
        // Dev 0 unreadable: even one replica is short.
        assert_eq!(t.under_replicated(1, 0b10), (nodes, nodes));
        // One node, the first leaf: it and its path to the root.
        let cost = t.rewrite_cost(1, 2, 0b11)?;
        assert!(cost >= 1);
        assert_eq!(t.mark_rewrite(1, 2, 0b11)?, 1);
        assert_eq!(t.nodes.iter().filter(|n| n.dirty).count(), cost);
        assert!(t.nodes[t.root].dirty);
        // Marked nodes are moved by the next checkpoint: no longer markable.
        let (markable, all) = t.under_replicated(2, 0b11);
        assert_eq!(all, nodes);
        assert_eq!(markable, nodes - cost as u64);
        Ok(())
    }

    #[test]
    fn the_format_limit_is_the_default() {
        assert_eq!(Tree::new().max_level, crate::bkcore::format::MAX_LEVEL);
    }
}
