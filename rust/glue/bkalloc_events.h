/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bkalloc's tracepoints (events/bkalloc in tracefs). See bkalloc_events.c for
 * why they are defined in C.
 */

#undef TRACE_SYSTEM
#define TRACE_SYSTEM bkalloc
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE bkalloc_events
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .

#if !defined(_BKALLOC_TRACE_EVENTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _BKALLOC_TRACE_EVENTS_H

#include <linux/tracepoint.h>
#include <linux/types.h>

/* A request's end: granted (nr buckets) or failed (err), after ns. */
TRACE_EVENT(bkalloc_alloc,
	TP_PROTO(const u8 *uuid, u32 kind, u32 nr, int err, bool waited, u64 ns),
	TP_ARGS(uuid, kind, nr, err, waited, ns),
	TP_STRUCT__entry(
		__array(u8, uuid, 16)
		__field(u32, kind)
		__field(u32, nr)
		__field(int, err)
		__field(bool, waited)
		__field(u64, ns)
	),
	TP_fast_assign(
		memcpy(__entry->uuid, uuid, 16);
		__entry->kind = kind;
		__entry->nr = nr;
		__entry->err = err;
		__entry->waited = waited;
		__entry->ns = ns;
	),
	TP_printk("%pUb kind=%s nr=%u err=%d waited=%d ns=%llu", __entry->uuid,
		  __entry->kind ? "user" : "btree", __entry->nr, __entry->err,
		  __entry->waited, __entry->ns)
);

/*
 * A waiter's step: parked (mask of devices), woken (reason), restarted
 * (opts_gen) or left (err).
 */
DECLARE_EVENT_CLASS(bkalloc_waiter_class,
	TP_PROTO(const u8 *uuid, u64 id, u64 arg),
	TP_ARGS(uuid, id, arg),
	TP_STRUCT__entry(
		__array(u8, uuid, 16)
		__field(u64, id)
		__field(u64, arg)
	),
	TP_fast_assign(
		memcpy(__entry->uuid, uuid, 16);
		__entry->id = id;
		__entry->arg = arg;
	),
	TP_printk("%pUb id=%llu arg=%llu", __entry->uuid, __entry->id, __entry->arg)
);

DEFINE_EVENT(bkalloc_waiter_class, bkalloc_wait,
	TP_PROTO(const u8 *uuid, u64 id, u64 mask), TP_ARGS(uuid, id, mask));
DEFINE_EVENT(bkalloc_waiter_class, bkalloc_wake,
	TP_PROTO(const u8 *uuid, u64 id, u64 reason), TP_ARGS(uuid, id, reason));
DEFINE_EVENT(bkalloc_waiter_class, bkalloc_restart,
	TP_PROTO(const u8 *uuid, u64 id, u64 opts_gen), TP_ARGS(uuid, id, opts_gen));
DEFINE_EVENT(bkalloc_waiter_class, bkalloc_leave,
	TP_PROTO(const u8 *uuid, u64 id, u64 err), TP_ARGS(uuid, id, err));

/* One discard batch on member dev: buckets, and how it ended. */
TRACE_EVENT(bkalloc_discard,
	TP_PROTO(const u8 *uuid, u32 dev, u64 first, u64 buckets, int err),
	TP_ARGS(uuid, dev, first, buckets, err),
	TP_STRUCT__entry(
		__array(u8, uuid, 16)
		__field(u32, dev)
		__field(u64, first)
		__field(u64, buckets)
		__field(int, err)
	),
	TP_fast_assign(
		memcpy(__entry->uuid, uuid, 16);
		__entry->dev = dev;
		__entry->first = first;
		__entry->buckets = buckets;
		__entry->err = err;
	),
	TP_printk("%pUb dev=%u first=%llu buckets=%llu err=%d", __entry->uuid,
		  __entry->dev, __entry->first, __entry->buckets, __entry->err)
);

/* A journal entry made durable: its sequence number and records. */
TRACE_EVENT(bkalloc_journal_append,
	TP_PROTO(const u8 *uuid, u64 seq, u32 records, u32 blocks),
	TP_ARGS(uuid, seq, records, blocks),
	TP_STRUCT__entry(
		__array(u8, uuid, 16)
		__field(u64, seq)
		__field(u32, records)
		__field(u32, blocks)
	),
	TP_fast_assign(
		memcpy(__entry->uuid, uuid, 16);
		__entry->seq = seq;
		__entry->records = records;
		__entry->blocks = blocks;
	),
	TP_printk("%pUb seq=%llu records=%u blocks=%u", __entry->uuid,
		  __entry->seq, __entry->records, __entry->blocks)
);

/* A checkpoint written (or failed): generation and journal_seq covered. */
TRACE_EVENT(bkalloc_checkpoint,
	TP_PROTO(const u8 *uuid, u64 generation, u64 journal_seq, int err),
	TP_ARGS(uuid, generation, journal_seq, err),
	TP_STRUCT__entry(
		__array(u8, uuid, 16)
		__field(u64, generation)
		__field(u64, journal_seq)
		__field(int, err)
	),
	TP_fast_assign(
		memcpy(__entry->uuid, uuid, 16);
		__entry->generation = generation;
		__entry->journal_seq = journal_seq;
		__entry->err = err;
	),
	TP_printk("%pUb generation=%llu journal_seq=%llu err=%d", __entry->uuid,
		  __entry->generation, __entry->journal_seq, __entry->err)
);

/* Replay's progress: keys re-inserted of total, and its phase. */
TRACE_EVENT(bkalloc_replay,
	TP_PROTO(const u8 *uuid, u64 replayed, u64 total, u32 phase),
	TP_ARGS(uuid, replayed, total, phase),
	TP_STRUCT__entry(
		__array(u8, uuid, 16)
		__field(u64, replayed)
		__field(u64, total)
		__field(u32, phase)
	),
	TP_fast_assign(
		memcpy(__entry->uuid, uuid, 16);
		__entry->replayed = replayed;
		__entry->total = total;
		__entry->phase = phase;
	),
	TP_printk("%pUb replayed=%llu total=%llu phase=%s", __entry->uuid,
		  __entry->replayed, __entry->total,
		  __print_symbolic(__entry->phase, { 0, "pending" }, { 1, "running" },
				   { 2, "done" }, { 3, "failed" }))
);

#endif /* _BKALLOC_TRACE_EVENTS_H */

/* This part must be outside protection. */
#include <trace/define_trace.h>
