// SPDX-License-Identifier: GPL-2.0

//! Writes a whole volume: superblocks, alloc tables, checkpoint, btree, journal and (for
//! scenarios) data blocks. `format` is the special case of an empty btree and journal
//! with every remaining bucket free.

use std::io::Read;

use bkcore::buckets::{BucketCounts, BucketState};
use bkcore::format::layout::SB_COPIES;
use bkcore::format::{
    alloc_table, journal, BtreePtr, Checkpoint, EntryWriter, Layout, NodeHeader, NodeWriter,
    Record, Replica, Superblock, Value, BLOCK_SIZE, MAX_MEMBERS,
};
use bkcore::options::Options;
use bkcore::uuid::{Uuid, NIL};

use crate::dev::Device;
use crate::progress::Progress;

/// One device of the plan: how many buckets, and how many in each non-free state besides
/// `sb` and `btree` (which follow from the layout and the btree). The rest is free.
#[derive(Clone, Debug)]
pub struct DevicePlan {
    /// Buckets on the device.
    pub bucket_count: u64,
    /// The device's btree reserve.
    pub btree_reserve: u32,
    /// Buckets to leave in need_discard (each gets a data block).
    pub need_discard: u64,
    /// Buckets to leave in user (each gets a data block).
    pub user: u64,
}

/// Everything needed to write a volume.
#[derive(Clone, Debug)]
pub struct VolumePlan {
    /// Bytes per bucket.
    pub bucket_size: u32,
    /// Btree node cap.
    pub node_max_entries: u32,
    /// Journal blocks per member.
    pub journal_blocks: u32,
    /// Options to store.
    pub options: Options,
    /// Devices, in member index order.
    pub devices: Vec<DevicePlan>,
    /// Keys already in the btree (keys 0, 2, 4, ...).
    pub btree_keys: u64,
    /// Percent of `node_max_entries` each node is filled to.
    pub fill_percent: u32,
    /// Keys left in the journal after the checkpoint (keys 1, 3, 5, ...).
    pub journal_keys: u64,
    /// The checkpoint's journal sequence; journal entries follow it.
    pub checkpoint_seq: u64,
    /// Inserts per journal entry (1..=journal::MAX_RECORDS).
    pub records_per_entry: u32,
}

/// A node of the planned btree.
#[derive(Clone, Debug)]
pub struct PlannedNode {
    /// 0 = leaf.
    pub level: u8,
    /// Smallest key covered.
    pub min_key: u64,
    /// Largest key covered.
    pub max_key: u64,
    /// Leaf: the keys. Interior: the children's min keys.
    pub keys: Vec<u64>,
    /// Interior: indices of the children in the level below.
    pub children: Vec<usize>,
    /// Where its replicas go.
    pub ptr: BtreePtr,
}

/// The value stored for `key` by scenarios (and checkable by tests).
pub fn value_for(key: u64) -> Value {
    let mut v = [0u8; 32];
    for c in v.chunks_mut(8) {
        c.copy_from_slice(&key.to_le_bytes());
    }
    v
}

/// A random version-4 uuid: from /dev/urandom, or, where /dev is not mounted (a bare
/// initramfs), from std's hasher keys, which the getrandom(2) syscall seeds.
pub fn random_uuid() -> crate::Result<Uuid> {
    let mut u = NIL;
    let urandom = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut u));
    if urandom.is_err() {
        use std::hash::{BuildHasher, Hasher};
        for half in u.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    if u == NIL {
        return Err("cannot get random bytes for a uuid".into());
    }
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

fn per_node(cap: u32, fill: u32, min: usize) -> usize {
    ((cap as u64 * fill as u64 / 100) as usize).clamp(min, cap as usize)
}

/// Plans the btree: `levels[0]` are the leaves, the last level holds the root alone.
pub fn plan_tree(keys: u64, fill: u32, cap: u32) -> Vec<Vec<PlannedNode>> {
    let per_leaf = per_node(cap, fill, 1) as u64;
    let mut leaves = Vec::new();
    let mut k = 0u64;
    loop {
        let n = per_leaf.min(keys - k);
        leaves.push(PlannedNode {
            level: 0,
            min_key: if k == 0 { 0 } else { 2 * k },
            max_key: u64::MAX,
            keys: (k..k + n).map(|i| 2 * i).collect(),
            children: vec![],
            ptr: BtreePtr::default(),
        });
        k += n;
        if k >= keys {
            break;
        }
    }
    fix_max_keys(&mut leaves);
    let mut levels = vec![leaves];
    let per_interior = per_node(cap, fill, 2);
    while levels.last().map_or(0, Vec::len) > 1 {
        let below = levels.last().unwrap();
        let level = below[0].level + 1;
        let mut up: Vec<PlannedNode> = (0..below.len())
            .step_by(per_interior)
            .map(|first| {
                let children: Vec<usize> = (first..below.len().min(first + per_interior)).collect();
                PlannedNode {
                    level,
                    min_key: below[first].min_key,
                    max_key: u64::MAX,
                    keys: children.iter().map(|&c| below[c].min_key).collect(),
                    children,
                    ptr: BtreePtr::default(),
                }
            })
            .collect();
        fix_max_keys(&mut up);
        levels.push(up);
    }
    levels
}

fn fix_max_keys(level: &mut [PlannedNode]) {
    for i in 1..level.len() {
        level[i - 1].max_key = level[i].min_key - 1;
    }
}

/// Leaves that replaying `journal_keys` odd keys into the planned tree overflows.
pub fn leaves_that_split(levels: &[Vec<PlannedNode>], journal_keys: u64, cap: u32) -> usize {
    levels[0]
        .iter()
        .filter(|leaf| {
            // Odd keys 2i+1 < 2*journal_keys within [min, max].
            let lo = leaf.min_key;
            let hi = leaf.max_key.min((2 * journal_keys).saturating_sub(1));
            let new = if journal_keys == 0 || hi < lo {
                0
            } else {
                (hi / 2 + 1) - lo / 2 - u64::from(hi % 2 == 0)
            };
            leaf.keys.len() as u64 + new > cap as u64
        })
        .count()
}

/// Assigns replicas: node k (counting all levels, leaves first) goes to devices
/// `(k + r) % n` for `r < replicas`. Returns the btree buckets used per device.
fn place(levels: &mut [Vec<PlannedNode>], first_free: &[u64], replicas: usize) -> Vec<Vec<u64>> {
    let n = first_free.len();
    let mut used: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut k = 0usize;
    for level in levels.iter_mut() {
        for node in level.iter_mut() {
            for r in 0..replicas {
                let d = (k + r) % n;
                let b = first_free[d] + used[d].len() as u64;
                used[d].push(b);
                node.ptr.push(Replica {
                    dev: d as u8,
                    bucket: b,
                });
            }
            k += 1;
        }
    }
    used
}

/// Btree buckets each device would get (for checking a scenario's `btree` counts).
pub fn btree_buckets_per_device(nodes: usize, devices: usize, replicas: usize) -> Vec<u64> {
    let mut v = vec![0u64; devices];
    for k in 0..nodes {
        for r in 0..replicas {
            v[(k + r) % devices] += 1;
        }
    }
    v
}

/// What was written.
#[derive(Debug)]
pub struct BuildReport {
    /// The new volume's uuid.
    pub volume_uuid: Uuid,
    /// Per device: layout and bucket counts.
    pub devices: Vec<(Layout, BucketCounts)>,
    /// Btree depth (levels).
    pub depth: usize,
    /// Btree nodes.
    pub nodes: usize,
    /// Journal entries written.
    pub journal_entries: u64,
    /// Leaves that replay will have to split.
    pub leaves_that_split: usize,
}

/// Writes the plan to `devs` (one per planned device, opened for writing and large
/// enough).
pub fn write_volume(plan: &VolumePlan, devs: &[Device]) -> crate::Result<BuildReport> {
    let n = plan.devices.len();
    if n == 0 || n > MAX_MEMBERS || devs.len() != n {
        return Err(format!(
            "need 1..={MAX_MEMBERS} devices, one per plan entry"
        ));
    }
    let replicas = plan.options.metadata_replicas() as usize;
    plan.options
        .check_members(n as u32)
        .map_err(|e| e.to_string())?;
    let layouts = plan
        .devices
        .iter()
        .map(|d| {
            Layout::new(
                plan.bucket_size,
                d.bucket_count,
                plan.journal_blocks,
                plan.node_max_entries,
            )
            .map_err(|e| e.to_string())
        })
        .collect::<crate::Result<Vec<_>>>()?;

    let mut levels = plan_tree(plan.btree_keys, plan.fill_percent, plan.node_max_entries);
    let first_free: Vec<u64> = layouts.iter().map(|l| l.sb_buckets as u64).collect();
    let btree_used = place(&mut levels, &first_free, replicas);
    let nodes: usize = levels.iter().map(Vec::len).sum();

    // States: sb | btree | user | need_discard | free.
    let mut all_states = Vec::with_capacity(n);
    for (i, (d, l)) in plan.devices.iter().zip(&layouts).enumerate() {
        let sb = l.sb_buckets as u64;
        let bt = btree_used[i].len() as u64;
        let need = sb + bt + d.user + d.need_discard;
        if need > d.bucket_count {
            return Err(format!(
                "device {i}: {} buckets, but sb {sb} + btree {bt} + user {} + need_discard {} = {need}",
                d.bucket_count, d.user, d.need_discard
            ));
        }
        let mut s = Vec::with_capacity(d.bucket_count as usize);
        s.resize(sb as usize, BucketState::Sb);
        s.resize((sb + bt) as usize, BucketState::Btree);
        s.resize((sb + bt + d.user) as usize, BucketState::User);
        s.resize(need as usize, BucketState::NeedDiscard);
        s.resize(d.bucket_count as usize, BucketState::Free);
        if d.btree_reserve as u64 > l.data_buckets() {
            return Err(format!(
                "device {i}: btree_reserve {} too large",
                d.btree_reserve
            ));
        }
        all_states.push(s);
    }

    let volume = random_uuid()?;
    let mut members = [NIL; MAX_MEMBERS];
    for m in members.iter_mut().take(n) {
        *m = random_uuid()?;
    }

    // Data blocks first, metadata after, the superblock last: an interrupted run leaves
    // no valid-looking volume behind.
    let data_total: u64 = plan.devices.iter().map(|d| d.user + d.need_discard).sum();
    if data_total > 0 {
        let mut p = Progress::new("writing data blocks", data_total);
        let mut block = vec![0u8; BLOCK_SIZE];
        for (i, (dev, states)) in devs.iter().zip(&all_states).enumerate() {
            for (b, s) in states.iter().enumerate() {
                if matches!(s, BucketState::User | BucketState::NeedDiscard) {
                    fill_data_block(&mut block, i, b as u64, *s);
                    dev.write_at(b as u64 * plan.bucket_size as u64, &block)?;
                    p.add(1);
                }
            }
        }
    }

    // Btree nodes, on every replica.
    let seq = plan.checkpoint_seq.max(1);
    let mut buf = vec![0u8; layouts[0].node_size as usize];
    for li in 0..levels.len() {
        for node in &levels[li] {
            let hdr = NodeHeader {
                level: node.level,
                seq,
                min_key: node.min_key,
                max_key: node.max_key,
            };
            let mut w =
                NodeWriter::new(&mut buf, hdr, plan.node_max_entries).map_err(|e| e.to_string())?;
            if node.level == 0 {
                for &k in &node.keys {
                    w.push_leaf(k, &value_for(k)).map_err(|e| e.to_string())?;
                }
            } else {
                for (&k, &c) in node.keys.iter().zip(&node.children) {
                    w.push_child(k, &levels[li - 1][c].ptr)
                        .map_err(|e| e.to_string())?;
                }
            }
            w.finish(&volume).map_err(|e| e.to_string())?;
            for r in node.ptr.replicas() {
                let d = r.dev as usize;
                devs[d].write_at(layouts[d].bucket_offset(r.bucket).unwrap(), &buf)?;
            }
        }
    }
    let root = levels.last().unwrap()[0].clone();

    // The journal, mirrored: every entry at the same journal block on every member.
    if !(1..=journal::MAX_RECORDS as u32).contains(&plan.records_per_entry) {
        return Err(format!(
            "records per journal entry must be 1..={}",
            journal::MAX_RECORDS
        ));
    }
    let mut entries = 0u64;
    let mut jblock = 0u64;
    let mut key = 0u64;
    let mut ebuf = vec![0u8; journal::MAX_ENTRY_SIZE];
    while key < plan.journal_keys {
        let mut w = EntryWriter::new(&mut ebuf).map_err(|e| e.to_string())?;
        while key < plan.journal_keys && w.len() < plan.records_per_entry {
            let k = 2 * key + 1;
            w.push(&Record::Insert {
                key: k,
                value: value_for(k),
            })
            .map_err(|e| e.to_string())?;
            key += 1;
        }
        let len = w
            .finish(&volume, plan.checkpoint_seq + 1 + entries)
            .map_err(|e| e.to_string())?;
        let blocks = (len / BLOCK_SIZE) as u64;
        if jblock + blocks > plan.journal_blocks as u64 {
            return Err(format!(
                "{} journal keys need more than the {} journal blocks",
                plan.journal_keys, plan.journal_blocks
            ));
        }
        for (dev, l) in devs.iter().zip(&layouts) {
            dev.write_at(l.journal_block_offset(jblock as u32), &ebuf[..len])?;
        }
        entries += 1;
        jblock += blocks;
    }

    let mut counts_out = Vec::with_capacity(n);
    for (i, ((dev, l), states)) in devs.iter().zip(&layouts).zip(&all_states).enumerate() {
        let mut counts = BucketCounts::new();
        states.iter().for_each(|s| counts.add(*s));
        // Checkpoint generation 1, in slot 1 with alloc table copy 1.
        let cp = Checkpoint {
            generation: 1,
            journal_seq: plan.checkpoint_seq,
            member_index: i as u32,
            root_level: root.level,
            root: root.ptr,
            counts,
            missing: [0; MAX_MEMBERS],
        };
        // Alloc table: the checkpoint's copy, naming its generation; the other copy and
        // the other slot cleared of anything older, so they never decode.
        let zero = vec![0u8; BLOCK_SIZE];
        let mut blk = vec![0u8; BLOCK_SIZE];
        for b in 0..l.alloc_blocks {
            let first = b as usize * alloc_table::STATES_PER_BLOCK;
            let id = alloc_table::BlockId {
                volume: &volume,
                member: i as u32,
                block: b,
                generation: cp.generation,
            };
            alloc_table::encode_block(&mut blk, l, id, states[first..].iter().copied())
                .map_err(|e| e.to_string())?;
            dev.write_at(l.alloc_block_offset(cp.slot(), b), &blk)?;
            dev.write_at(l.alloc_block_offset(1 - cp.slot(), b), &zero)?;
        }
        cp.encode(&mut blk, &volume).map_err(|e| e.to_string())?;
        dev.write_at(l.checkpoint_offset(cp.slot()), &blk)?;
        dev.write_at(l.checkpoint_offset(1 - cp.slot()), &zero)?;
        dev.sync()?;
        // Superblock: copy 0, then copy 1, each flushed (as the kernel writes it).
        let sb = Superblock {
            volume_uuid: volume,
            member_uuid: members[i],
            seq: 1,
            member_index: i as u32,
            member_count: n as u32,
            members,
            bucket_size: plan.bucket_size,
            btree_reserve: plan.devices[i].btree_reserve,
            bucket_count: l.bucket_count,
            node_max_entries: plan.node_max_entries,
            journal_blocks: plan.journal_blocks,
            options: plan.options,
            // Every member is rw at format.
            member_states: Default::default(),
        };
        sb.encode(&mut blk).map_err(|e| e.to_string())?;
        for copy in 0..SB_COPIES {
            dev.write_at(Layout::sb_offset(copy), &blk)?;
            dev.sync()?;
        }
        counts_out.push((*l, counts));
    }
    Ok(BuildReport {
        volume_uuid: volume,
        devices: counts_out,
        depth: levels.len(),
        nodes,
        journal_entries: entries,
        leaves_that_split: leaves_that_split(&levels, plan.journal_keys, plan.node_max_entries),
    })
}

/// A recognisable, non-zero block: shows up in an image's allocated size until discarded.
fn fill_data_block(block: &mut [u8], dev: usize, bucket: u64, state: BucketState) {
    block.fill(0xa5);
    let tag = format!("bkalloc data: dev {dev} bucket {bucket} state {state}\n");
    block[..tag.len()].copy_from_slice(tag.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_plans() {
        let t = plan_tree(0, 100, 8);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0][0].min_key, t[0][0].max_key), (0, u64::MAX));
        let t = plan_tree(16, 100, 8);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].len(), 2);
        assert_eq!((t[0][0].max_key, t[0][1].min_key), (15, 16));
        assert_eq!(t[1][0].keys, vec![0, 16]);
        let t = plan_tree(100, 50, 8); // 4 per node
        assert_eq!(t[0].len(), 25);
        assert_eq!(
            t.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![25, 7, 2, 1]
        );
        // Leaf 0 holds 0,2,4,6 (range 0..=7): 4 odd keys fit, a fifth splits it.
        assert_eq!(leaves_that_split(&t, 4, 8), 0);
        let full = plan_tree(16, 100, 8);
        assert_eq!(leaves_that_split(&full, 1, 8), 1);
        assert_eq!(leaves_that_split(&full, 9, 8), 2);
        assert_eq!(leaves_that_split(&full, 0, 8), 0);
    }

    #[test]
    fn placement_counts() {
        assert_eq!(btree_buckets_per_device(3, 2, 2), vec![3, 3]);
        assert_eq!(btree_buckets_per_device(3, 3, 2), vec![2, 2, 2]);
        assert_eq!(btree_buckets_per_device(1, 3, 1), vec![1, 0, 0]);
    }
}
