// SPDX-License-Identifier: GPL-2.0

//! What a device already holds: the signatures blkid looks for, so that `format` and
//! `scenario` do not overwrite a file system, a partition table or a volume by mistake.

use bkcore::format::{superblock::SB_MAGIC, BLOCK_SIZE};

use crate::dev::Device;

/// Bytes read from the start of a device: enough for every signature below (btrfs's
/// superblock is at 64 KiB).
const PROBE: usize = 17 * BLOCK_SIZE;

/// One signature: its name, and where and what its magic is.
struct Magic {
    name: &'static str,
    offset: usize,
    bytes: &'static [u8],
}

/// bcachefs's superblock magics (the uuids of `BCACHE_MAGIC` and `BCHFS_MAGIC`, as stored),
/// at 4 KiB + 24.
const BCACHE_MAGIC: [u8; 16] = [
    0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81,
];
const BCACHE_MAGIC_OLD: [u8; 16] = [
    0xc6, 0x85, 0x73, 0xf6, 0x66, 0xce, 0x90, 0xa9, 0xd9, 0x6a, 0x60, 0xcf, 0x80, 0x3d, 0xf7, 0xef,
];

/// In the order they are tried: a bkalloc superblock first (its block 0 may hold anything
/// at 510), then partition tables, then file systems and the rest.
const MAGICS: &[Magic] = &[
    Magic {
        name: "bkalloc",
        offset: 0,
        bytes: &SB_MAGIC,
    },
    Magic {
        name: "bkalloc (second superblock copy)",
        offset: BLOCK_SIZE,
        bytes: &SB_MAGIC,
    },
    Magic {
        name: "GPT partition table",
        offset: 512,
        bytes: b"EFI PART",
    },
    Magic {
        name: "LVM2 physical volume",
        offset: 512 + 24,
        bytes: b"LVM2 001",
    },
    Magic {
        name: "xfs",
        offset: 0,
        bytes: b"XFSB",
    },
    Magic {
        name: "ext2/3/4",
        offset: 1024 + 56,
        bytes: &[0x53, 0xef],
    },
    Magic {
        name: "bcachefs",
        offset: 4096 + 24,
        bytes: &BCACHE_MAGIC,
    },
    Magic {
        name: "bcachefs",
        offset: 4096 + 24,
        bytes: &BCACHE_MAGIC_OLD,
    },
    Magic {
        name: "swap",
        offset: 4096 - 10,
        bytes: b"SWAPSPACE2",
    },
    Magic {
        name: "swap",
        offset: 4096 - 10,
        bytes: b"SWAP-SPACE",
    },
    Magic {
        name: "btrfs",
        offset: 65536 + 64,
        bytes: b"_BHRfS_M",
    },
];

/// The name of the first signature `head` (a device's first bytes) holds.
pub fn identify(head: &[u8]) -> Option<&'static str> {
    for m in MAGICS {
        if head.get(m.offset..m.offset + m.bytes.len()) == Some(m.bytes) {
            return Some(m.name);
        }
    }
    // An MBR: the boot signature and at least one partition entry in use. (The boot
    // signature alone is also on FAT boot sectors, which blkid calls "vfat".)
    if head.get(510..512) == Some(&[0x55, 0xaa][..]) {
        let used = (0..4).any(|i| {
            let e = 446 + 16 * i;
            head.get(e + 4).is_some_and(|&t| t != 0)
        });
        return Some(if used {
            "MBR partition table"
        } else {
            "boot sector"
        });
    }
    None
}

/// What `dev` holds, if anything.
pub fn probe(dev: &Device) -> crate::Result<Option<&'static str>> {
    let n = (dev.size.min(PROBE as u64) as usize) / BLOCK_SIZE * BLOCK_SIZE;
    if n == 0 {
        return Ok(None);
    }
    Ok(identify(&dev.read_vec(0, n)?))
}

/// Refuses, unless `force`, each device that holds a signature: writing over it loses
/// what it held.
pub fn refuse_overwrite(devs: &[Device], force: bool) -> crate::Result<()> {
    if force {
        return Ok(());
    }
    for d in devs {
        if let Some(name) = probe(d)? {
            return Err(format!(
                "{}: holds a {name} signature; --force writes over it",
                d.path.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; PROBE];
        v[offset..offset + bytes.len()].copy_from_slice(bytes);
        v
    }

    #[test]
    fn every_signature_is_found() {
        assert_eq!(identify(&vec![0u8; PROBE]), None);
        assert_eq!(identify(&with(0, b"bkalloc\0")), Some("bkalloc"));
        assert_eq!(
            identify(&with(512, b"EFI PART")),
            Some("GPT partition table")
        );
        assert_eq!(
            identify(&with(536, b"LVM2 001")),
            Some("LVM2 physical volume")
        );
        assert_eq!(identify(&with(0, b"XFSB")), Some("xfs"));
        assert_eq!(identify(&with(1080, &[0x53, 0xef])), Some("ext2/3/4"));
        assert_eq!(identify(&with(4120, &BCACHE_MAGIC)), Some("bcachefs"));
        assert_eq!(identify(&with(4086, b"SWAPSPACE2")), Some("swap"));
        assert_eq!(identify(&with(65600, b"_BHRfS_M")), Some("btrfs"));
        let mut mbr = with(510, &[0x55, 0xaa]);
        assert_eq!(identify(&mbr), Some("boot sector"));
        mbr[446 + 4] = 0x83;
        assert_eq!(identify(&mbr), Some("MBR partition table"));
        // A short device: what fits is looked at, nothing past it.
        assert_eq!(identify(&with(0, b"XFSB")[..BLOCK_SIZE]), Some("xfs"));
        assert_eq!(identify(&[]), None);
    }
}
