/* storage: Cairn's deterministic state machine on RocksDB.
 *
 * Every replica runs the same sequence of committed Raft entries through
 * store_apply(); each entry carries one or more append transactions encoded
 * as docs/storage-format.md specifies. Applying is deterministic: the same
 * entries give byte-identical `log` and `versions` column families on every
 * replica. Business outcomes (a version conflict, a duplicate retry) are
 * values in the results, never errors: only storage failures are errors.
 *
 * This module is the only code that includes <rocksdb/c.h>. It knows nothing
 * of Raft: the caller passes each entry's index.
 *
 * Threading: a store is used from one thread at a time (the node's loop).
 * Reads may run while no apply is in progress; they see a consistent view
 * (each read uses one RocksDB snapshot). store_head() and
 * store_dedup_lookup() fill the in-memory head cache, so they change the
 * store's memory like an apply does: no lock is taken anywhere. */
#ifndef CAIRN_STORAGE_STORE_H
#define CAIRN_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store_limits.h"

/* Error codes of this module: 0 is success, every other code comes from this
 * table, with its message beside it. */
#define STORE_ERRORS(X)                                                    \
	X(STORE_ENOMEM, 1, "out of memory")                                \
	X(STORE_EIO, 2, "storage error")                                   \
	X(STORE_ECORRUPT, 3, "data corruption")                            \
	X(STORE_EMALFORMED, 4, "malformed encoding")                       \
	X(STORE_EINVALID_STREAM, 5, "invalid stream name")                 \
	X(STORE_EINVALID_TYPE, 6, "invalid event type")                    \
	X(STORE_EDATA_TOO_LARGE, 7, "event data too large")                \
	X(STORE_EMETADATA_TOO_LARGE, 8, "event metadata too large")        \
	X(STORE_ETOO_MANY_EVENTS, 9, "too many events in one transaction") \
	X(STORE_ETXN_TOO_LARGE, 10, "transaction too large")               \
	X(STORE_EEMPTY, 11, "transaction or part without events")          \
	X(STORE_EDUPLICATE_STREAM, 12,                                     \
	  "stream appears twice in one transaction")                       \
	X(STORE_EINVALID_EXPECTED, 13, "invalid expected version")         \
	X(STORE_EENTRY_TOO_LARGE, 14, "entry too large")                   \
	X(STORE_EINVAL, 15, "invalid argument")                            \
	X(STORE_EINVALID_OP, 16, "invalid state operation")                \
	X(STORE_ESNAPSHOT_TOO_LARGE, 17, "snapshot too large")

enum store_error {
#define STORE_ERROR_ENUM(name, code, msg) name = code,
	STORE_ERRORS(STORE_ERROR_ENUM)
#undef STORE_ERROR_ENUM
};

/* The static message of an error code ("unknown error" for others). */
const char *store_strerror(int code);

/* Size of every errmsg buffer this module fills. */
#define STORE_ERRMSG_SIZE 256

/* ------------------------------------------------------------------------
 * Transactions (the decoded view of the bytes a Raft entry carries)
 * ------------------------------------------------------------------------ */

enum store_expect_kind {
	STORE_EXPECT_ANY = 0,       /* no check */
	STORE_EXPECT_NO_STREAM = 1, /* the stream has no events (version 0) */
	STORE_EXPECT_EXISTS = 2,    /* the stream has at least one event */
	STORE_EXPECT_EXACT = 3, /* the stream's version is exactly .version */
};

struct store_expect {
	uint8_t kind;     /* enum store_expect_kind */
	uint64_t version; /* for STORE_EXPECT_EXACT, 0..STORE_VERSION_MAX */
};

/* One event to append. Pointers are borrowed: they point into the caller's
 * memory (or into the encoded buffer for a decoded view). */
struct store_event {
	uint8_t id[16];          /* event id, a UUID */
	const char *type;        /* borrowed, 1..STORE_EVENT_TYPE_MAX bytes */
	uint32_t type_len;       /* bytes in type */
	uint16_t schema_version; /* 0 means none */
	int64_t event_time_us;   /* client clock, µs since epoch; 0 = none */
	const void *data;        /* borrowed, may be NULL when data_len is 0 */
	uint32_t data_len;       /* 0..STORE_EVENT_DATA_MAX */
	const void *metadata;    /* borrowed, may be NULL when empty */
	uint32_t metadata_len;   /* 0..STORE_EVENT_METADATA_MAX */
};

/* The events appended to one stream within a transaction. */
struct store_part {
	const char *stream;               /* borrowed, a valid stream name */
	uint32_t stream_len;              /* bytes in stream */
	struct store_expect expect;       /* checked at apply */
	uint32_t n_events;                /* at least 1 */
	const struct store_event *events; /* borrowed, n_events of them */
};

/* State operations: replicated state that is not events and takes no
 * positions. A transaction may carry them beside its parts (or alone); they
 * commit with the parts or not at all. */
enum store_op_kind {
	/* Consumer checkpoint .name := .value. */
	STORE_OP_CHECKPOINT_SET = 1,
	/* Consumer checkpoint .name := .value if it is .expected now (0:
	 * the checkpoint does not exist); otherwise the transaction fails
	 * with STORE_WRONG_EXPECTED_VERSION and the actual value. */
	STORE_OP_CHECKPOINT_CAS = 2,
	/* Aggregate snapshot of stream .name at version .value (1..the
	 * stream's version after this transaction's own events): .data. A
	 * version past the head fails the transaction like a CAS. */
	STORE_OP_SNAPSHOT_PUT = 3,
};

struct store_op {
	uint8_t kind;      /* enum store_op_kind */
	const char *name;  /* borrowed: checkpoint name or stream name, by
			    * the stream name rules */
	uint32_t name_len; /* bytes in name */
	uint64_t expected; /* CHECKPOINT_CAS; 0 otherwise */
	uint64_t value;    /* checkpoint value or snapshot version */
	const void *data;  /* SNAPSHOT_PUT: borrowed snapshot bytes */
	uint32_t data_len; /* 0..STORE_SNAPSHOT_BYTES_MAX; 0 otherwise */
};

/* An append transaction: all parts commit or none does. */
struct store_txn {
	uint64_t commit_time_us;        /* assigned by the leader */
	bool has_client;                /* client_id/client_seq are set */
	uint8_t client_id[16];          /* the writer's id */
	uint64_t client_seq;            /* strictly increasing per writer */
	uint32_t n_parts;               /* at least 1 unless n_ops is */
	const struct store_part *parts; /* borrowed, n_parts of them */
	uint32_t n_ops;                 /* 0..STORE_TXN_OPS_MAX */
	const struct store_op *ops;     /* borrowed, n_ops of them */
};

/* Checks @t against every limit and rule of the data model without encoding
 * it. Returns 0, or the STORE_E* code of the first violation with a message
 * naming the part and event in @errmsg. */
int store_txn_validate(const struct store_txn *t, char *errmsg);

/* Bytes store_txn_encode() writes for a valid @t. */
size_t store_txn_encoded_size(const struct store_txn *t);

/* Encodes a transaction that store_txn_validate() accepted into @buf, which
 * has room for store_txn_encoded_size(t) bytes. Returns the bytes written. */
size_t store_txn_encode(const struct store_txn *t, void *buf);

/* A decoded transaction whose pointers point into the encoded buffer: valid
 * while that buffer lives and until the next decode into the same view. The
 * part and event arrays are owned by the view and reused between decodes. */
struct store_txn_view {
	struct store_txn txn;       /* the result; parts point into .parts */
	struct store_part *parts;   /* owned */
	struct store_event *events; /* owned */
	struct store_op *ops;       /* owned */
	uint32_t cap_parts;         /* allocated length of parts */
	uint32_t cap_events;        /* allocated length of events */
	uint32_t cap_ops;           /* allocated length of ops */
};

void store_txn_view_init(struct store_txn_view *v);
void store_txn_view_close(struct store_txn_view *v);

/* Decodes and validates one encoded transaction. Never reads outside
 * [buf, buf+len); every count is checked against the bytes that remain
 * before anything is allocated from it. Returns 0, STORE_ENOMEM, or the
 * STORE_E* code of the malformation or rule violation, with @errmsg. */
int store_txn_decode(const void *buf, size_t len, struct store_txn_view *v,
		     char *errmsg);

/* ------------------------------------------------------------------------
 * Entries: several transactions in one Raft entry, padded to 8 bytes.
 * ------------------------------------------------------------------------ */

/* Builds one entry in a growable buffer it owns. */
struct store_entry_builder {
	uint8_t *buf;   /* owned */
	size_t len;     /* bytes used, header included */
	size_t cap;     /* bytes allocated */
	uint32_t count; /* transactions added */
};

void store_entry_builder_init(struct store_entry_builder *b);
void store_entry_builder_close(struct store_entry_builder *b);
/* Forgets the transactions added so far, keeping the buffer. */
void store_entry_builder_reset(struct store_entry_builder *b);

/* Validates and appends @t. Returns 0, STORE_ENOMEM,
 * STORE_EENTRY_TOO_LARGE (nothing added: finish this entry, start another)
 * or a validation error with @errmsg; on error the builder is unchanged. */
int store_entry_add(struct store_entry_builder *b, const struct store_txn *t,
		    char *errmsg);

/* Appends a transaction that is already encoded, without decoding it again:
 * the caller validated it when it encoded or decoded it (a transaction that
 * is not valid anyway is rejected at apply, on every replica alike). Returns
 * 0, STORE_ENOMEM, STORE_EMALFORMED for an empty buffer,
 * STORE_ETXN_TOO_LARGE, or STORE_EENTRY_TOO_LARGE (nothing added). */
int store_entry_add_encoded(struct store_entry_builder *b, const void *txn,
			    size_t len, char *errmsg);

/* Completes the entry: writes the header, pads with zeros to a multiple of
 * 8 bytes, and points @buf and @len at it. The memory stays the builder's
 * until the next call on it. Fails with STORE_EEMPTY when nothing was
 * added. */
int store_entry_finish(struct store_entry_builder *b, const void **buf,
		       size_t *len);

/* Walks the transactions of an encoded entry. */
struct store_entry_iter {
	const uint8_t *p;   /* next transaction's length field (borrowed) */
	const uint8_t *end; /* end of the entry's body (borrowed) */
	uint32_t remaining; /* transactions not yet returned */
};

/* Checks the entry header and framing (magic, format version, lengths,
 * padding) of @buf. Returns 0 or STORE_EMALFORMED with @errmsg. */
int store_entry_open(const void *buf, size_t len, struct store_entry_iter *it,
		     char *errmsg);

/* Yields the next transaction's bytes. Returns true and sets @txn/@len, or
 * false when the entry has no more. store_entry_open() already checked that
 * every length fits. */
bool store_entry_next(struct store_entry_iter *it, const void **txn,
		      size_t *len);

/* Transactions in the entry store_entry_open() accepted. */
uint32_t store_entry_count(const void *buf);

/* ------------------------------------------------------------------------
 * The store
 * ------------------------------------------------------------------------ */

struct store_int; /* RocksDB handles, private to storage/ */

struct store {
	struct store_int *i;            /* owned */
	char errmsg[STORE_ERRMSG_SIZE]; /* the last error, outside in */
};

/* Stream heads and writer high-water marks the head cache holds by default:
 * half a million keys, far more than the streams and writers a node sees
 * again and again at the rates it reaches, in at most 64 MiB (128 bytes a
 * key: hash slots and key bytes, see docs/design.md, "Head and writer
 * cache"), the size of the default RocksDB block cache. */
#define STORE_HEAD_CACHE_ENTRIES_DEFAULT (1u << 19)

struct store_options {
	/* RocksDB block cache in bytes; 0 picks the default (64 MiB). */
	uint64_t block_cache_bytes;
	/* Sync the WAL on every applied entry. Off by default: the Raft log
	 * is the durable record and entries above the applied index are
	 * re-applied after a crash; store_sync() makes RocksDB durable when
	 * a snapshot needs it. */
	bool sync_every_apply;
	/* Stream heads and writer high-water marks (found or known absent)
	 * kept in memory so that store_apply(), store_head() and
	 * store_dedup_lookup() need not look them up in RocksDB: at most
	 * this many, rounded up to an even number; 0 picks
	 * STORE_HEAD_CACHE_ENTRIES_DEFAULT. Results never depend on it. */
	uint32_t head_cache_entries;
	/* Turns the head cache off: every lookup reads RocksDB. */
	bool head_cache_off;
};

/* Opens (creating if missing) the store in directory @dir with the column
 * families log, versions, dedup and default. @opts may be NULL. Returns 0,
 * or a STORE_E* code with s->errmsg set; on error nothing needs closing. */
int store_open(struct store *s, const char *dir,
	       const struct store_options *opts);

/* Closes the store. Everything applied before stays (the WAL is flushed,
 * without fsync unless sync_every_apply). */
void store_close(struct store *s);

enum store_outcome {
	STORE_COMMITTED = 0,      /* appended */
	STORE_DUPLICATE = 1,      /* committed before: original result */
	STORE_STALE_SEQUENCE = 2, /* below the writer's high-water mark
				   * and never committed: rejected */
	STORE_WRONG_EXPECTED_VERSION = 3, /* a part's check failed: nothing
					   * written */
	STORE_REJECTED = 4,               /* the transaction's bytes are invalid
					   * (code in .reject_code): nothing
					   * written */
};

/* Where one part's events landed. Versions and positions are contiguous
 * within a part. */
struct store_part_result {
	uint64_t first_version;
	uint64_t last_version; /* the stream's version after the append */
	uint64_t first_position;
	uint64_t last_position;
};

struct store_txn_result {
	uint8_t outcome;                 /* enum store_outcome */
	uint32_t n_parts;                /* part results (COMMITTED,
					  * DUPLICATE) */
	struct store_part_result *parts; /* borrowed from the results */
	uint32_t first_part;             /* index of parts[0] in the
					  * results' parts array */
	uint32_t conflict_part;          /* WRONG_EXPECTED_VERSION: which */
	uint64_t actual_version;         /* WRONG_EXPECTED_VERSION: its version
					  * (0 when the stream is empty);
					  * STALE_SEQUENCE: the high-water
					  * mark */
	int reject_code;                 /* REJECTED: the STORE_E* code */
};

/* The outcome of applying one entry. Owned arrays are reused across
 * store_apply() calls. */
struct store_results {
	bool skipped;    /* index at or below the applied index: nothing
			  * changed, no results */
	int entry_error; /* non-zero when the entry's framing was
			  * malformed: no transaction applied, but the
			  * applied index advanced */
	uint32_t n;      /* transactions */
	struct store_txn_result *txns;   /* owned, n of them */
	struct store_part_result *parts; /* owned; txns[k].parts point here */
	uint32_t n_parts_used;           /* entries of parts in use */
	uint32_t cap_txns;
	uint32_t cap_parts;
};

void store_results_init(struct store_results *r);
void store_results_close(struct store_results *r);

/* Applies the entry at Raft index @index. If @index is at or below the
 * stored applied index, nothing changes and r->skipped is set. Otherwise
 * each transaction is checked in order (dedup first, then every part's
 * expected version, seeing the effects of earlier transactions of the same
 * entry) and the effects of all of them plus the new applied index go into
 * one RocksDB write batch. Returns 0 (whatever the outcomes) or a storage
 * error (STORE_EIO, STORE_ENOMEM, STORE_ECORRUPT) with s->errmsg, in which
 * case nothing was written and the store must be closed. */
int store_apply(struct store *s, uint64_t index, const void *entry, size_t len,
		struct store_results *r);

/* The applied index: 0 for a new store. */
uint64_t store_applied_index(const struct store *s);

/* The last global position assigned: 0 for a new store. */
uint64_t store_last_position(const struct store *s);

/* A stream's head. */
struct store_head {
	uint64_t version;       /* events in the stream; 0 when none */
	uint64_t last_position; /* position of its last event; 0 when none */
};

/* Reads a stream's head; an unknown stream has version 0. Returns 0,
 * STORE_EINVALID_STREAM for an invalid name, or a storage error. */
int store_head(struct store *s, const char *stream, size_t stream_len,
	       struct store_head *h);

/* Looks up a committed (client id, sequence) in committed state: when it
 * committed, sets @found and leaves its original result in r->txns[0]
 * (outcome STORE_DUPLICATE, r->n == 1); otherwise r->n == 0. Sets @hwm to
 * the writer's high-water mark (0 when unknown). Returns 0 or a storage
 * error. Used by the leader to answer retries without a proposal. */
int store_dedup_lookup(struct store *s, const uint8_t client_id[16],
		       uint64_t seq, bool *found, uint64_t *hwm,
		       struct store_results *r);

/* What the head cache holds and how well it serves (for metrics and
 * tests). Counters start at 0 when the store opens. */
struct store_head_cache_stats {
	uint64_t hits;        /* committed heads and high-water marks
			       * the cache answered */
	uint64_t misses;      /* those it did not: RocksDB was read */
	uint64_t dropped;     /* keys evicted to stay within the bound,
			       * or forgotten when the cache was cleared
			       * (raw writes, a failed write, no memory) */
	uint64_t entries;     /* keys held now */
	uint64_t bytes;       /* memory held now: hash slots and keys */
	uint64_t max_entries; /* the bound on entries (0 when off) */
	uint64_t max_bytes;   /* the bound on bytes (0 when off) */
};

/* Fills @st; never fails. */
void store_head_cache_stats(const struct store *s,
			    struct store_head_cache_stats *st);

/* Sizes RocksDB reports for one column family. */
struct store_cf_size {
	const char *name;        /* "default", "log", "versions", "dedup" */
	uint64_t sst_bytes;      /* live SST files on disk */
	uint64_t memtable_bytes; /* memtables in memory */
	uint64_t keys_estimate;  /* RocksDB's estimate of live keys */
};

/* Column families store_cf_sizes reports. */
#define STORE_CF_COUNT 4

/* Fills @out[0..STORE_CF_COUNT) from RocksDB's properties (0 where one is
 * not available); never fails. For /metrics. */
void store_cf_sizes(struct store *s, struct store_cf_size out[STORE_CF_COUNT]);

/* An event as stored, with its assigned version and position. Pointers are
 * borrowed from the read's buffers: valid only inside the visit callback. */
struct store_record {
	uint64_t position;
	uint64_t version;
	const char *stream;
	uint32_t stream_len;
	uint8_t id[16];
	const char *type;
	uint32_t type_len;
	uint16_t schema_version; /* 0 when none */
	int64_t event_time_us;   /* 0 when none */
	uint64_t commit_time_us;
	bool has_client;
	uint8_t client_id[16];
	uint64_t client_seq;
	const void *data;
	uint32_t data_len;
	const void *metadata;
	uint32_t metadata_len;
};

/* Decodes a `log` value stored at @position, verifying its checksum (which
 * covers the position too). Returns 0, STORE_ECORRUPT on a checksum
 * mismatch, or STORE_EMALFORMED, with @errmsg. Never reads outside
 * [buf, buf+len). */
int store_record_decode(uint64_t position, const void *buf, size_t len,
			struct store_record *r, char *errmsg);

/* Called once per record a read returns; return false to stop early. */
typedef bool (*store_visit_cb)(void *arg, const struct store_record *r);

/* Where a read stopped. */
struct store_read_info {
	uint32_t count; /* records passed to the callback */
	uint64_t next;  /* version (stream reads) or position (global reads)
			 * to continue from; 0 when a backward read reached
			 * the start */
	bool end;       /* nothing more to read now */
};

/* Start a backward read at the stream's head. */
#define STORE_VERSION_HEAD UINT64_MAX

/* Reads up to @max_count events of a stream, forward from @from_version
 * (1 and 0 both mean the start) or backward from it (STORE_VERSION_HEAD
 * for the head). An unknown stream reads as empty. Returns 0,
 * STORE_EINVALID_STREAM for an invalid name, or STORE_ECORRUPT / STORE_EIO,
 * with s->errmsg. */
int store_read_stream(struct store *s, const char *stream, size_t stream_len,
		      uint64_t from_version, bool backward, uint32_t max_count,
		      store_visit_cb cb, void *arg,
		      struct store_read_info *info);

/* Filters of a global read; NULL or zero-length fields match everything. */
struct store_filter {
	const char *stream_prefix; /* stream names starting with this */
	size_t stream_prefix_len;
	const char *category; /* the part of the name before the first
			       * '-'; a name without '-' has none */
	size_t category_len;
	const char *type; /* exact event type */
	size_t type_len;
};

/* Reads the global log forward from @from_position (0 and 1 both mean the
 * start), passing up to @max_count matching records to @cb and examining at
 * most @max_scan records (0: no bound) so a sparse filter cannot hold the
 * caller for long; info->next says where to continue. @f may be NULL.
 * Returns 0, or STORE_ECORRUPT / STORE_EIO with s->errmsg. */
int store_read_all(struct store *s, uint64_t from_position, uint32_t max_count,
		   uint64_t max_scan, const struct store_filter *f,
		   store_visit_cb cb, void *arg, struct store_read_info *info);

/* Called once per listed stream (name borrowed for the call), with its
 * head; return false to stop. */
typedef bool (*store_stream_visit_cb)(void *arg, const char *stream, size_t len,
				      const struct store_head *h);

/* Lists streams in name order: those whose name starts with @prefix (may
 * be empty), strictly after @after (may be empty: from the first), at
 * most @limit of them. *more tells whether another one follows. Returns 0
 * or a storage error with s->errmsg. */
int store_list_streams(struct store *s, const char *prefix, size_t prefix_len,
		       const char *after, size_t after_len, uint32_t limit,
		       store_stream_visit_cb cb, void *arg, bool *more);

/* Called once per listed category (name borrowed); return false to stop. */
typedef bool (*store_category_visit_cb)(void *arg, const char *category,
					size_t len);

/* Lists the categories (the part of stream names before the first '-';
 * streams without '-' have none) in name order, strictly after @after, at
 * most @limit. One seek per category: the work grows with @limit and the
 * streams that have no category, not with the streams of each category.
 * Returns as store_list_streams. */
int store_list_categories(struct store *s, const char *after, size_t after_len,
			  uint32_t limit, store_category_visit_cb cb, void *arg,
			  bool *more);

/* Reads consumer checkpoint @name: *found and its value. Returns 0,
 * STORE_EINVALID_STREAM for an invalid name, or a storage error. */
int store_checkpoint_get(struct store *s, const char *name, size_t len,
			 uint64_t *value, bool *found);

/* Reads the newest aggregate snapshot of @stream at or below @max_version
 * (STORE_VERSION_HEAD: any): *version (0 when there is none) and its bytes
 * in *data (malloc'ed, the caller frees; NULL when none), *data_len.
 * Returns 0, STORE_EINVALID_STREAM, STORE_ENOMEM or a storage error. */
int store_snapshot_get(struct store *s, const char *stream, size_t len,
		       uint64_t max_version, uint64_t *version, void **data,
		       size_t *data_len);

/* Makes everything applied so far durable (WAL flush with fsync). */
int store_sync(struct store *s);

/* Creates a consistent RocksDB checkpoint of the store in @dir, which must
 * not exist. */
int store_checkpoint(struct store *s, const char *dir);

/* ------------------------------------------------------------------------
 * Copies of a store (state transfer, backups): what a checkpoint holds, and
 * turning a copy into the store of a new cluster.
 * ------------------------------------------------------------------------ */

/* Bytes of a file name in a copy, and of a store identity (RocksDB's
 * IDENTITY file, a UUID text). */
#define STORE_COPY_NAME_MAX     255
#define STORE_COPY_IDENTITY_MAX 128

/* Files a copy may hold: a store of terabytes has tens of thousands of SST
 * files; a directory with more is not a checkpoint. */
#define STORE_COPY_FILES_MAX 100000

/* One file of a checkpoint. */
struct store_copy_file {
	char name[STORE_COPY_NAME_MAX + 1]; /* plain name, no '/' */
	uint64_t size;                      /* bytes */
};

/* What a checkpoint directory holds. */
struct store_copy_info {
	char identity[STORE_COPY_IDENTITY_MAX + 1]; /* of the source store;
						     * "" when unknown */
	uint64_t applied_index;        /* read from the checkpoint */
	uint64_t last_position;        /* read from the checkpoint */
	uint32_t n_files;              /* entries in files */
	struct store_copy_file *files; /* owned, in name order */
};

/* Lists checkpoint directory @dir (made by store_checkpoint): its regular
 * files with their sizes in name order (RocksDB's LOG files excluded: they
 * are the checkpoint's own diagnostics), the identity in the IDENTITY file
 * of @source_dir (the store the checkpoint was taken from: a checkpoint
 * has none of its own; NULL: @dir's), and the applied index and last position,
 * read by opening the checkpoint read-only. On success @info owns its files
 * array (store_copy_info_close); on error there is nothing to release. Returns
 * 0, STORE_ENOMEM, STORE_EIO or STORE_ECORRUPT with @errmsg (STORE_ERRMSG_SIZE
 * bytes). Blocks on disk: not for a loop thread with a large checkpoint. */
int store_copy_info(const char *dir, const char *source_dir,
		    struct store_copy_info *info, char *errmsg);
void store_copy_info_close(struct store_copy_info *info);

/* Prepares the copy in @dir (a whole store: a checkpoint or a backup) to be
 * the store of a new cluster: its applied Raft index becomes 0, so that the
 * new cluster's log applies from its index 1, and every replicated meta
 * key (the old cluster's member table) is deleted; events, versions, dedup
 * records, consumer checkpoints, aggregate snapshots and the last position
 * stay. The change is synced before this returns. Sets *last_position (may
 * be NULL) to the position the store ends at. Returns 0 or a STORE_E* code
 * with @errmsg (STORE_ERRMSG_SIZE bytes). */
int store_restore_prepare(const char *dir, uint64_t *last_position,
			  char *errmsg);

/* ------------------------------------------------------------------------
 * Replicated metadata: small keyed records that committed entries other
 * than append entries carry (consensus/ keeps its member table here). They
 * live in the `default` column family under the prefix "m/", apart from
 * the store's own "applied" and "format" keys.
 * ------------------------------------------------------------------------ */

/* Bytes of a meta key (without the "m/" prefix): names, not data. */
#define STORE_META_KEY_MAX 128

/* Bytes of a meta value: a member record is a few hundred bytes; 64 KiB
 * leaves room without letting one key grow a write batch much. */
#define STORE_META_VALUE_MAX (64u << 10)

/* One change to a meta key. */
struct store_meta_op {
	const char *key;   /* borrowed: NUL-terminated, 1..STORE_META_KEY_MAX
			    * bytes */
	const void *value; /* borrowed: the new value, or NULL to delete */
	size_t value_len;  /* bytes in value, 0..STORE_META_VALUE_MAX */
};

/* Applies the meta changes in @ops (@n of them, 0 allowed) committed at Raft
 * index @index, in one write batch with the new applied index, like
 * store_apply(). If @index is at or below the applied index nothing changes
 * and *skipped is set. Returns 0, STORE_EINVAL for a key or value outside
 * the limits (nothing written), or a storage error with s->errmsg. */
int store_apply_meta(struct store *s, uint64_t index,
		     const struct store_meta_op *ops, uint32_t n,
		     bool *skipped);

/* Reads meta key @key into @buf (@cap bytes). Sets *found; when found,
 * *len is the value's length, and STORE_EINVAL is returned (nothing
 * copied) if it exceeds @cap. Returns 0 or a storage error. */
int store_meta_get(struct store *s, const char *key, void *buf, size_t cap,
		   size_t *len, bool *found);

/* Called for each meta key of a listing, in key order; @key (without the
 * "m/" prefix, not NUL-terminated) and @value are valid only during the
 * call. Return false to stop. */
typedef bool (*store_meta_visit_cb)(void *arg, const char *key, size_t key_len,
				    const void *value, size_t value_len);

/* Visits every meta key that starts with @prefix ("" for all), from one
 * consistent view. Returns 0 or a storage error with s->errmsg. */
int store_meta_list(struct store *s, const char *prefix, store_meta_visit_cb cb,
		    void *arg);

/* Column families a digest can cover. */
enum {
	STORE_CF_LOG = 1u << 0,
	STORE_CF_VERSIONS = 1u << 1,
	STORE_CF_DEDUP = 1u << 2,
	STORE_CF_META = 1u << 3,
};

/* A 64-bit digest (FNV-1a over length-prefixed keys and values, in key
 * order) of the column families in @cfs. Two replicas that applied the same
 * entries have equal digests of log, versions and dedup. */
int store_digest(struct store *s, unsigned cfs, uint64_t *digest);

/* Valid stream name: 1..255 bytes of UTF-8 without control characters. */
bool store_stream_name_valid(const char *name, size_t len);

/* The category of a stream name (the part before the first '-'); sets
 * @len to 0 when the name has no '-'. */
const char *store_stream_category(const char *name, size_t name_len,
				  size_t *len);

#endif /* CAIRN_STORAGE_STORE_H */
