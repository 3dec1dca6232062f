// SPDX-License-Identifier: GPL-2.0

//! The C uapi header (tools/include/uapi/linux/bkalloc.h) against the Rust definitions
//! the module and the tool use (bkcore::ctl_abi): compiled with the host's C compiler,
//! every size, field offset, constant and ioctl number must agree.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use bkcore::ctl_abi::*;
use bkcore::format::{MAX_MEMBERS, MAX_REPLICAS, VALUE_SIZE};
use bkcore::placement::Kind;

/// (C name, value) for every size, offset and constant the header must match.
fn rust_side() -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: usize| {
        m.insert(k.to_string(), v as u64);
    };
    macro_rules! strukt {
        ($c:literal, $t:ty, [$($f:ident),*]) => {
            put(concat!("sizeof ", $c), size_of::<$t>());
            $(put(concat!($c, ".", stringify!($f)), offset_of!($t, $f));)*
        };
    }
    strukt!("bkalloc_bucket_ref", BucketRef, [dev, pad, bucket]);
    strukt!(
        "bkalloc_alloc_args",
        AllocArgs,
        [
            uuid,
            kind,
            replicas,
            watermark,
            deadline_secs,
            n,
            pad,
            buckets
        ]
    );
    strukt!("bkalloc_free_args", FreeArgs, [uuid, n, pad, buckets]);
    strukt!(
        "bkalloc_dev_status",
        DevStatus,
        [free, open, need_discard, btree, user]
    );
    strukt!(
        "bkalloc_status_args",
        StatusArgs,
        [uuid, opts_gen, waiters, members, devs]
    );
    strukt!("bkalloc_insert_args", InsertArgs, [uuid, key, value, seq]);
    strukt!("bkalloc_get_args", GetArgs, [uuid, key, found, pad, value]);
    strukt!(
        "bkalloc_flush_args",
        FlushArgs,
        [uuid, generation, journal_seq]
    );
    strukt!(
        "bkalloc_version_args",
        VersionArgs,
        [abi, pad, features, reserved]
    );
    let sizes = [
        ("bkalloc_alloc_args", AllocArgs::SIZE),
        ("bkalloc_free_args", FreeArgs::SIZE),
        ("bkalloc_status_args", StatusArgs::SIZE),
        ("bkalloc_insert_args", InsertArgs::SIZE),
        ("bkalloc_get_args", GetArgs::SIZE),
        ("bkalloc_flush_args", FlushArgs::SIZE),
        ("bkalloc_version_args", VersionArgs::SIZE),
    ];
    for (name, v) in [
        ("BKALLOC_IOC_ALLOC", IOC_ALLOC),
        ("BKALLOC_IOC_FREE", IOC_FREE),
        ("BKALLOC_IOC_STATUS", IOC_STATUS),
        ("BKALLOC_IOC_INSERT", IOC_INSERT),
        ("BKALLOC_IOC_GET", IOC_GET),
        ("BKALLOC_IOC_FLUSH", IOC_FLUSH),
        ("BKALLOC_IOC_VERSION", IOC_VERSION),
        ("BKALLOC_ABI_VERSION", ABI_VERSION),
        ("BKALLOC_FROM_OPTIONS", FROM_OPTIONS),
        ("BKALLOC_KIND_BTREE", Kind::Btree as u32),
        ("BKALLOC_KIND_USER", Kind::User as u32),
    ] {
        put(name, v as usize);
    }
    put("BKALLOC_MAX_REPLICAS", MAX_REPLICAS);
    put("BKALLOC_MAX_MEMBERS", MAX_MEMBERS);
    put("BKALLOC_VALUE_SIZE", VALUE_SIZE);
    // The encoded size is the C size.
    for (name, size) in sizes {
        let key = format!("sizeof {name}");
        assert_eq!(
            m.get(&key).copied(),
            Some(size as u64),
            "{key}: Encode::SIZE"
        );
    }
    m
}

/// A C program that prints the header's view of every key of `want`.
fn c_program(want: &BTreeMap<String, u64>) -> String {
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/bkalloc.h>\nint main(void)\n{\n",
    );
    for k in want.keys() {
        let expr = if let Some(s) = k.strip_prefix("sizeof ") {
            format!("sizeof(struct {s})")
        } else if let Some((s, f)) = k.split_once('.') {
            format!("offsetof(struct {s}, {f})")
        } else {
            k.clone()
        };
        c.push_str(&format!(
            "\tprintf(\"%s %llu\\n\", \"{k}\", (unsigned long long)({expr}));\n"
        ));
    }
    c.push_str("\treturn 0;\n}\n");
    c
}

#[test]
fn the_c_header_matches_the_rust_definitions() {
    let want = rust_side();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/uapi");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("uapi.c");
    let bin = dir.path().join("uapi");
    std::fs::write(&src, c_program(&want)).unwrap();
    let cc = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .output()
        .expect("the host's C compiler (cargo links with it)");
    assert!(
        cc.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let out = Command::new(&bin).output().unwrap();
    let got: BTreeMap<String, u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: Rust {v}, C {:?}", got.get(k)))
        .collect();
    assert!(wrong.is_empty(), "the header disagrees: {wrong:#?}");
}
