/* Limits of the data model: every size a client or peer can make Cairn hold
 * in memory or write to disk has a named constant here, with its reason.
 * Used by the transaction codec (storage/txn.c), which rejects anything past
 * them with its own error code, and by every later layer that checks sizes
 * before it allocates. */
#ifndef CAIRN_STORAGE_STORE_LIMITS_H
#define CAIRN_STORAGE_STORE_LIMITS_H

/* Stream names are keys in two column families and appear in every event
 * record; 255 bytes fits a one-byte length and any sensible naming scheme
 * (category, dash, UUID). */
#define STORE_STREAM_NAME_MAX 255

/* Event types are stored in every record and compared by filters; same
 * reasoning and the same one-byte length as stream names. */
#define STORE_EVENT_TYPE_MAX 255

/* One event's data. Events are facts, not blobs: 1 MiB keeps one record
 * well inside a RocksDB block cache entry and a Raft entry. */
#define STORE_EVENT_DATA_MAX (1u << 20)

/* One event's metadata (correlation and causation ids, headers). */
#define STORE_EVENT_METADATA_MAX (64u << 10)

/* Events in one transaction. A transaction is one RocksDB write batch built
 * in memory on every replica; 10,000 bounds the work one apply can do. */
#define STORE_TXN_EVENTS_MAX 10000

/* Encoded size of one transaction. Bounds the memory of one write batch and
 * keeps a Raft entry (which carries whole transactions) below 16 MiB plus
 * framing, so a follower never has to buffer more than that for one entry. */
#define STORE_TXN_BYTES_MAX (16u << 20)

/* Transactions in one entry. The leader coalesces client requests into one
 * entry; this bounds the result array every replica builds for it. */
#define STORE_ENTRY_TXNS_MAX 65536

/* Encoded size of one entry: one maximal transaction plus framing, or many
 * small ones. */
#define STORE_ENTRY_BYTES_MAX (STORE_TXN_BYTES_MAX + (1u << 16))

/* Exact expected versions are below 2^63, so a version always fits a signed
 * 64-bit integer in any client language. */
#define STORE_VERSION_MAX ((uint64_t)INT64_MAX)

/* State operations (consumer checkpoints, aggregate snapshots) in one
 * transaction: a consumer saves one checkpoint at a time and an aggregate
 * one snapshot, so a handful is plenty; 64 bounds the lookups one apply
 * does for them. */
#define STORE_TXN_OPS_MAX 64

/* One aggregate snapshot's bytes. A snapshot replaces replaying a stream,
 * so it is larger than one event may be; 8 MiB keeps it, with its framing,
 * well inside one transaction. */
#define STORE_SNAPSHOT_BYTES_MAX (8u << 20)

#endif /* CAIRN_STORAGE_STORE_LIMITS_H */
