// SPDX-License-Identifier: GPL-2.0

//! Helpers to write small volumes and damage them in precise ways.

#![allow(dead_code)]

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bkalloc::build::write_volume;
use bkalloc::cmd::scenario;
use bkalloc::dev::Device;
use bkalloc::volume::{load, Severity};
use bkcore::buckets::{BucketCounts, BucketState};
use bkcore::crc32c::crc32c;
use bkcore::format::layout::SB_COPIES;
use bkcore::format::superblock::pick_copy;
use bkcore::format::{
    alloc_table, decode_node, BtreePtr, Checkpoint, FormatError, Layout, NodeHeader, NodeWriter,
    Superblock, Value, BLOCK_SIZE,
};

/// A small two-device volume: depth-3 btree of 20 keys in nodes of 4, three journal
/// entries of two inserts each, and some need_discard and user buckets.
pub const SMALL: &str = r#"
journal_blocks = 16
node_max_entries = 4
[options]
metadata_replicas = 2
[btree]
keys = 20
[journal]
keys = 6
checkpoint_seq = 10
records_per_entry = 2
[[device]]
free = 20
need_discard = 5
user = 3
[[device]]
free = 20
need_discard = 5
user = 3
"#;

/// A temporary directory, on tmpfs when there is one: deleting sparse images with
/// thousands of extents on a filesystem mounted with `discard` takes tens of seconds.
pub fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new()
            .prefix("bkalloc-test")
            .tempdir_in(shm)
        {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

pub fn write_scenario(dir: &Path, name: &str, text: &str) -> Vec<PathBuf> {
    let s = scenario::parse(text).unwrap();
    let plan = scenario::plan(&s).unwrap();
    let paths: Vec<PathBuf> = (0..plan.devices.len())
        .map(|i| dir.join(format!("{name}{i}.img")))
        .collect();
    let devs: Vec<Device> = paths
        .iter()
        .zip(&plan.devices)
        .map(|(p, d)| Device::open_sized(p, d.bucket_count * plan.bucket_size as u64).unwrap())
        .collect();
    write_volume(&plan, &devs).unwrap();
    paths
}

pub fn small(dir: &Path) -> Vec<PathBuf> {
    write_scenario(dir, "small", SMALL)
}

/// (severity, class) of every finding.
pub fn findings(paths: &[PathBuf]) -> Vec<(Severity, &'static str, String)> {
    load(paths)
        .unwrap()
        .findings
        .into_iter()
        .map(|f| (f.severity, f.class, f.message))
        .collect()
}

pub fn has_error(paths: &[PathBuf], class: &str) -> bool {
    let f = findings(paths);
    let found = f
        .iter()
        .any(|(s, c, _)| *s == Severity::Error && *c == class);
    if !found {
        eprintln!("no error[{class}] in {f:#?}");
    }
    found
}

pub fn read(path: &Path, off: u64, len: usize) -> Vec<u8> {
    let f = OpenOptions::new().read(true).open(path).unwrap();
    let mut v = vec![0u8; len];
    f.read_exact_at(&mut v, off).unwrap();
    v
}

pub fn write(path: &Path, off: u64, data: &[u8]) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(data, off).unwrap();
}

pub fn flip(path: &Path, off: u64) {
    let mut b = read(path, off, 1);
    b[0] ^= 0x5a;
    write(path, off, &b);
}

/// Superblock copy `copy` as it decodes.
pub fn sb_copy(path: &Path, copy: usize) -> Result<Superblock, FormatError> {
    Superblock::decode(&read(path, Layout::sb_offset(copy), BLOCK_SIZE))
}

/// The superblock the member uses (the valid copy with the higher seq).
pub fn sb(path: &Path) -> Superblock {
    pick_copy(sb_copy(path, 0), sb_copy(path, 1)).unwrap()
}

pub fn layout(path: &Path) -> Layout {
    sb(path).layout().unwrap()
}

/// A whole superblock write: both copies.
pub fn write_sb(path: &Path, sb: &Superblock) {
    for copy in 0..SB_COPIES {
        write_sb_copy(path, copy, sb);
    }
}

/// One superblock copy (a write cut short after it).
pub fn write_sb_copy(path: &Path, copy: usize, sb: &Superblock) {
    let mut b = vec![0u8; BLOCK_SIZE];
    sb.encode(&mut b).unwrap();
    write(path, Layout::sb_offset(copy), &b);
}

/// Recomputes a superblock copy's checksum in place (after a raw edit).
pub fn reseal_sb(path: &Path, copy: usize) {
    let off = Layout::sb_offset(copy);
    let body = read(path, off, BLOCK_SIZE);
    write(path, off + 8, &crc32c(&body[12..]).to_le_bytes());
}

/// The member's current checkpoint and its slot.
pub fn checkpoint(path: &Path) -> Checkpoint {
    let sb = sb(path);
    let l = layout(path);
    (0..2)
        .filter_map(|s| {
            Checkpoint::decode(
                &read(path, l.checkpoint_offset(s), BLOCK_SIZE),
                &sb.volume_uuid,
            )
            .ok()
        })
        .max_by_key(|c| c.generation)
        .unwrap()
}

pub fn write_checkpoint(path: &Path, cp: &Checkpoint) {
    let sb = sb(path);
    let mut b = vec![0u8; BLOCK_SIZE];
    cp.encode(&mut b, &sb.volume_uuid).unwrap();
    write(path, layout(path).checkpoint_offset(cp.slot()), &b);
}

/// The alloc table block id of `block` on this member for checkpoint `generation`.
fn alloc_id(sb: &Superblock, block: u32, generation: u64) -> alloc_table::BlockId<'_> {
    alloc_table::BlockId {
        volume: &sb.volume_uuid,
        member: sb.member_index,
        block,
        generation,
    }
}

/// The alloc table copy of checkpoint `generation` (copy `generation % 2`).
pub fn alloc_states(path: &Path, generation: u64) -> Vec<BucketState> {
    let sb = sb(path);
    let l = layout(path);
    let copy = (generation % 2) as usize;
    let mut v = Vec::new();
    for b in 0..l.alloc_blocks {
        let blk = read(path, l.alloc_block_offset(copy, b), BLOCK_SIZE);
        let ab = alloc_table::decode_block(&blk, &l, alloc_id(&sb, b, generation)).unwrap();
        v.extend(ab.iter());
    }
    v
}

/// Writes `s` as the alloc table copy of checkpoint `generation`.
pub fn write_states(path: &Path, generation: u64, s: &[BucketState]) {
    let sb = sb(path);
    let l = layout(path);
    let copy = (generation % 2) as usize;
    let mut blk = vec![0u8; BLOCK_SIZE];
    for b in 0..l.alloc_blocks {
        let first = b as usize * alloc_table::STATES_PER_BLOCK;
        alloc_table::encode_block(
            &mut blk,
            &l,
            alloc_id(&sb, b, generation),
            s[first..].iter().copied(),
        )
        .unwrap();
        write(path, l.alloc_block_offset(copy, b), &blk);
    }
}

/// The alloc table copy of the member's current checkpoint.
pub fn states(path: &Path) -> Vec<BucketState> {
    alloc_states(path, checkpoint(path).generation)
}

/// Rewrites the current alloc table copy; with `fix_counts`, the checkpoint's counts
/// follow.
pub fn rewrite_states(path: &Path, f: impl FnOnce(&mut Vec<BucketState>), fix_counts: bool) {
    let mut cp = checkpoint(path);
    let mut s = states(path);
    f(&mut s);
    write_states(path, cp.generation, &s);
    if fix_counts {
        let mut c = BucketCounts::new();
        s.iter().for_each(|x| c.add(*x));
        cp.counts = c;
        write_checkpoint(path, &cp);
    }
}

/// A node as plain data.
#[derive(Clone, Debug)]
pub struct NodeData {
    pub hdr: NodeHeader,
    pub leaves: Vec<(u64, Value)>,
    pub children: Vec<(u64, BtreePtr)>,
}

pub fn node_at(path: &Path, bucket: u64) -> NodeData {
    let sb = sb(path);
    let l = layout(path);
    let buf = read(path, l.bucket_offset(bucket).unwrap(), l.node_size as usize);
    let n = decode_node(&buf, &sb.volume_uuid, l.node_max_entries).unwrap();
    NodeData {
        hdr: n.header(),
        leaves: n.leaves().map(|(k, v)| (k, *v)).collect(),
        children: n.children().collect(),
    }
}

pub fn write_node(paths: &[PathBuf], ptr: &BtreePtr, n: &NodeData) {
    let sb = sb(&paths[0]);
    let l = layout(&paths[0]);
    let mut buf = vec![0u8; l.node_size as usize];
    let mut w = NodeWriter::new(&mut buf, n.hdr, l.node_max_entries).unwrap();
    for (k, v) in &n.leaves {
        w.push_leaf(*k, v).unwrap();
    }
    for (k, p) in &n.children {
        w.push_child(*k, p).unwrap();
    }
    w.finish(&sb.volume_uuid).unwrap();
    for r in ptr.replicas() {
        let p = &paths[r.dev as usize];
        write(p, layout(p).bucket_offset(r.bucket).unwrap(), &buf);
    }
}

/// Recomputes a node's checksum in place (after a raw edit).
pub fn reseal_node(path: &Path, bucket: u64) {
    let off = layout(path).bucket_offset(bucket).unwrap();
    let hdr = read(path, off, 64);
    let len = u32::from_le_bytes(hdr[48..52].try_into().unwrap()) as usize;
    let body = read(path, off, len);
    write(path, off + 4, &crc32c(&body[8..]).to_le_bytes());
}

/// Runs the binary; returns (exit code, stdout).
pub fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bkalloc"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    if out.status.code() == Some(2) {
        eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.code().unwrap_or(-1), stdout)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
