/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * bkalloc's /dev/bkalloc ioctls, for C programs.
 *
 * The definitions are rust/core/ctl_abi.rs's; tools/bkalloc/tests/uapi.rs
 * compiles this header and checks every size, offset and ioctl number
 * against them. Every structure names a volume by its uuid (16 bytes, as
 * stored in the superblock). Fields marked "in" are read by the module,
 * "out" written by it; pad fields must be zero.
 */
#ifndef _UAPI_LINUX_BKALLOC_H
#define _UAPI_LINUX_BKALLOC_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define BKALLOC_MAX_REPLICAS	4
#define BKALLOC_MAX_MEMBERS	32
#define BKALLOC_VALUE_SIZE	32

/* "Take it from the volume's options" in bkalloc_alloc_args fields. */
#define BKALLOC_FROM_OPTIONS	0xffffffffU

/* bkalloc_alloc_args.kind */
#define BKALLOC_KIND_BTREE	0
#define BKALLOC_KIND_USER	1

/* A bucket of a member device. */
struct bkalloc_bucket_ref {
	__u32 dev;		/* member index */
	__u32 pad;		/* zero */
	__u64 bucket;		/* bucket number on that member */
};

struct bkalloc_alloc_args {
	__u8 uuid[16];		/* in */
	__u32 kind;		/* in: BKALLOC_KIND_* */
	__u32 replicas;		/* in: or BKALLOC_FROM_OPTIONS */
	__u32 watermark;	/* in: 0 normal, 1 btree, 2 reclaim, or BKALLOC_FROM_OPTIONS */
	__u32 deadline_secs;	/* in: or BKALLOC_FROM_OPTIONS */
	__u32 n;		/* out: buckets granted */
	__u32 pad;		/* zero */
	struct bkalloc_bucket_ref buckets[BKALLOC_MAX_REPLICAS];	/* out */
};

struct bkalloc_free_args {
	__u8 uuid[16];		/* in */
	__u32 n;		/* in: buckets to free */
	__u32 pad;		/* zero */
	struct bkalloc_bucket_ref buckets[BKALLOC_MAX_REPLICAS];	/* in */
};

struct bkalloc_dev_status {
	__u64 free;
	__u64 open;
	__u64 need_discard;
	__u64 btree;
	__u64 user;
};

struct bkalloc_status_args {
	__u8 uuid[16];		/* in */
	__u64 opts_gen;		/* out */
	__u32 waiters;		/* out */
	__u32 members;		/* out */
	struct bkalloc_dev_status devs[BKALLOC_MAX_MEMBERS];	/* out */
};

struct bkalloc_insert_args {
	__u8 uuid[16];		/* in */
	__u64 key;		/* in */
	__u8 value[BKALLOC_VALUE_SIZE];	/* in */
	__u64 seq;		/* out: the journal entry that made it durable */
};

struct bkalloc_get_args {
	__u8 uuid[16];		/* in */
	__u64 key;		/* in */
	__u32 found;		/* out */
	__u32 pad;		/* zero */
	__u8 value[BKALLOC_VALUE_SIZE];	/* out */
};

struct bkalloc_flush_args {
	__u8 uuid[16];		/* in */
	__u64 generation;	/* out: the checkpoint written */
	__u64 journal_seq;	/* out */
};

/*
 * The ABI version a caller speaks: it names it in bkalloc_version_args.abi,
 * and a module that does not know it answers EINVAL. features has one bit
 * per ioctl number the module serves (bit nr - 1).
 */
#define BKALLOC_ABI_VERSION	1

struct bkalloc_version_args {
	__u32 abi;		/* in: the caller's; out: the module's */
	__u32 pad;		/* zero */
	__u64 features;		/* out */
	__u64 reserved[2];	/* zero */
};

#define BKALLOC_IOC_ALLOC	_IOWR('B', 1, struct bkalloc_alloc_args)
#define BKALLOC_IOC_FREE	_IOWR('B', 2, struct bkalloc_free_args)
#define BKALLOC_IOC_STATUS	_IOWR('B', 3, struct bkalloc_status_args)
#define BKALLOC_IOC_INSERT	_IOWR('B', 4, struct bkalloc_insert_args)
#define BKALLOC_IOC_GET		_IOWR('B', 5, struct bkalloc_get_args)
#define BKALLOC_IOC_FLUSH	_IOWR('B', 6, struct bkalloc_flush_args)
#define BKALLOC_IOC_VERSION	_IOWR('B', 7, struct bkalloc_version_args)

#endif /* _UAPI_LINUX_BKALLOC_H */
