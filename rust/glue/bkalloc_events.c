// SPDX-License-Identifier: GPL-2.0
/*
 * bkalloc's tracepoints, and one call wrapper per event for the Rust side
 * (rust/glue/trace.rs).
 *
 * Why C: a tracepoint is made by the TRACE_EVENT macros, which Rust cannot
 * expand, and the kernel crate's declare_trace! only reaches events whose
 * headers the kernel's own bindings include, which an out-of-tree module's
 * cannot be. So the events are defined here, as binder's are, and each is
 * called through a plain function.
 */

#define CREATE_TRACE_POINTS
#include "bkalloc_events.h"

/* The wrappers, declared for -Wmissing-prototypes; Rust declares them too. */
void bkalloc_trace_alloc(const u8 *uuid, u32 kind, u32 nr, int err, bool waited, u64 ns);
void bkalloc_trace_wait(const u8 *uuid, u64 id, u64 mask);
void bkalloc_trace_wake(const u8 *uuid, u64 id, u64 reason);
void bkalloc_trace_restart(const u8 *uuid, u64 id, u64 opts_gen);
void bkalloc_trace_leave(const u8 *uuid, u64 id, u64 err);
void bkalloc_trace_discard(const u8 *uuid, u32 dev, u64 first, u64 buckets, int err);
void bkalloc_trace_journal_append(const u8 *uuid, u64 seq, u32 records, u32 blocks);
void bkalloc_trace_checkpoint(const u8 *uuid, u64 generation, u64 journal_seq, int err);
void bkalloc_trace_replay(const u8 *uuid, u64 replayed, u64 total, u32 phase);

void bkalloc_trace_alloc(const u8 *uuid, u32 kind, u32 nr, int err, bool waited, u64 ns)
{
	trace_bkalloc_alloc(uuid, kind, nr, err, waited, ns);
}

void bkalloc_trace_wait(const u8 *uuid, u64 id, u64 mask)
{
	trace_bkalloc_wait(uuid, id, mask);
}

void bkalloc_trace_wake(const u8 *uuid, u64 id, u64 reason)
{
	trace_bkalloc_wake(uuid, id, reason);
}

void bkalloc_trace_restart(const u8 *uuid, u64 id, u64 opts_gen)
{
	trace_bkalloc_restart(uuid, id, opts_gen);
}

void bkalloc_trace_leave(const u8 *uuid, u64 id, u64 err)
{
	trace_bkalloc_leave(uuid, id, err);
}

void bkalloc_trace_discard(const u8 *uuid, u32 dev, u64 first, u64 buckets, int err)
{
	trace_bkalloc_discard(uuid, dev, first, buckets, err);
}

void bkalloc_trace_journal_append(const u8 *uuid, u64 seq, u32 records, u32 blocks)
{
	trace_bkalloc_journal_append(uuid, seq, records, blocks);
}

void bkalloc_trace_checkpoint(const u8 *uuid, u64 generation, u64 journal_seq, int err)
{
	trace_bkalloc_checkpoint(uuid, generation, journal_seq, err);
}

void bkalloc_trace_replay(const u8 *uuid, u64 replayed, u64 total, u32 phase)
{
	trace_bkalloc_replay(uuid, replayed, total, phase);
}
