/* The store: RocksDB with column families log, versions, dedup and default
 * (meta), and the deterministic apply of committed entries. Key and value
 * layouts are in docs/storage-format.md; the summary:
 *
 *   log       position (u64 BE)               -> event record (record.c)
 *   versions  'H' stream                      -> head: version, last position
 *             'V' len stream version (u64 BE) -> position
 *   dedup     client id (16)                  -> high-water sequence
 *             client id (16) seq (u64 BE)     -> original result
 *   default   "applied" (applied index, last position), "format",
 *             "m/" key                        -> replicated meta value
 *             "k/" name                       -> consumer checkpoint (u64)
 *             "s/" len stream version (u64 BE) -> aggregate snapshot
 *
 * One entry is one write batch that also records the applied index; an
 * overlay (overlay.c) lets later transactions of the same entry see the
 * heads and writer sequences that earlier ones changed. The head cache
 * (overlay.c) keeps committed heads and writer high-water marks in memory,
 * so that apply and the leader's pre-checks seldom look them up in
 * RocksDB: it is filled by reads and updated from the overlay once an
 * entry's batch is written. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "store_debug.h"
#include "store_int.h"

enum { CF_DEFAULT, CF_LOG, CF_VERSIONS, CF_DEDUP, CF_COUNT };

static const char *const cf_names[CF_COUNT] = { "default", "log", "versions",
						"dedup" };

/* u64 applied index, u64 last position: one key, so an entry's write batch
 * carries one meta key rather than two. */
#define KEY_APPLIED "applied"
#define KEY_FORMAT  "format"
/* Replicated meta keys (store_apply_meta) live under this prefix, which no
 * key of the store's own can start with. */
#define META_PREFIX       "m/"
#define CHECKPOINT_PREFIX "k/"
#define SNAPSHOT_PREFIX   "s/"
/* "s/" + length byte + stream + version. */
#define SNAPSHOT_KEY_MAX (2 + 1 + STORE_STREAM_NAME_MAX + 8)
#define META_PREFIX_LEN  2

/* 'H' + stream, a head, is VERSIONS_HEAD in store_int.h. */
#define VERSIONS_INDEX 'V'

/* WAL bytes kept before the column families are flushed; see
 * store_open(). */
#define STORE_WAL_BYTES_MAX (256u << 20)

/* Memtable of the two small column families (default: meta, checkpoints,
 * snapshots; dedup: one key per writer, overwritten): RocksDB's 64 MiB
 * default (up to two per family) would only hold memory. The log and
 * versions (a key per event) keep the default. */
#define STORE_SMALL_CF_MEMTABLE_BYTES (16u << 20)

/* All memtables together: past this RocksDB flushes the largest, so the
 * node's memory stays bounded whatever the mix of column families
 * (2 x (64 + 64 + 16 + 16) = 320 MiB otherwise). */
#define STORE_MEMTABLES_BYTES_MAX (256u << 20)

/* 'V' + name length + name + version. */
#define INDEX_KEY_MAX (2 + STORE_STREAM_NAME_MAX + 8)

struct store_int {
	rocksdb_t *db;
	rocksdb_column_family_handle_t *cf[CF_COUNT];
	rocksdb_options_t *db_opts;
	rocksdb_options_t *cf_opts[CF_COUNT];
	rocksdb_block_based_table_options_t *table_opts[CF_COUNT];
	rocksdb_filterpolicy_t *bloom[CF_COUNT];
	rocksdb_cache_t *cache;
	rocksdb_readoptions_t *ropts;
	rocksdb_writeoptions_t *wopts;
	rocksdb_writebatch_t *batch; /* the entry being applied */
	struct overlay overlay;      /* what the entry changed so far */
	struct head_cache heads;     /* committed heads and writers */
	struct store_txn_view view;  /* reused by every apply */
	uint8_t *scratch;            /* record encoding buffer, owned */
	size_t scratch_cap;
	uint64_t applied_index;
	uint64_t last_position;
};

/* Records a RocksDB error in s->errmsg, outside in, and frees it. */
static int rocks_error(struct store *s, char *err, const char *what)
{
	snprintf(s->errmsg, sizeof s->errmsg, "%s: rocksdb: %s", what,
		 err != NULL ? err : "unknown error");
	rocksdb_free(err);
	return STORE_EIO;
}

static int set_error(struct store *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_error(struct store *s, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

/* RocksDB counts every key comparison in thread-local perf counters unless
 * told not to, which cost a third of apply throughput. The level is per
 * thread, so every entry point that does many lookups sets it on the
 * calling thread (a thread-local store, nearly free). */
static void no_perf_counters(void)
{
	rocksdb_set_perf_level(rocksdb_disable);
}

/* Reads the value under @key in column family @cf, which must be exactly
 * @want bytes, into @out, and sets @found; @what names it in errors. */
static int get_fixed(struct store *s, int cf, const void *key, size_t klen,
		     void *out, size_t want, bool *found, const char *what)
{
	struct store_int *i = s->i;
	rocksdb_pinnableslice_t *slice;
	const char *val;
	char *err = NULL;
	size_t vlen;

	*found = false;
	slice = rocksdb_get_pinned_cf(i->db, i->ropts, i->cf[cf], key, klen,
				      &err);
	if (err != NULL)
		return rocks_error(s, err, what);
	if (slice == NULL)
		return 0;
	val = rocksdb_pinnableslice_value(slice, &vlen);
	if (vlen != want) {
		rocksdb_pinnableslice_destroy(slice);
		return set_error(s, STORE_ECORRUPT,
				 "%s: value of %zu bytes, expected %zu", what,
				 vlen, want);
	}
	memcpy(out, val, want);
	rocksdb_pinnableslice_destroy(slice);
	*found = true;
	return 0;
}

/* Reads a u64 meta value; sets *v to 0 when absent. */
static int meta_get_u64(struct store *s, const char *key, uint64_t *v)
{
	uint8_t b[8];
	bool found;
	int rv;

	rv = get_fixed(s, CF_DEFAULT, key, strlen(key), b, sizeof b, &found,
		       "read meta");
	*v = rv == 0 && found ? get_u64(b) : 0;
	return rv;
}

static void destroy_handles(struct store_int *i)
{
	int k;

	if (i->batch != NULL)
		rocksdb_writebatch_destroy(i->batch);
	overlay_close(&i->overlay);
	head_cache_close(&i->heads);
	if (i->ropts != NULL)
		rocksdb_readoptions_destroy(i->ropts);
	if (i->wopts != NULL)
		rocksdb_writeoptions_destroy(i->wopts);
	for (k = 0; k < CF_COUNT; k++) {
		if (i->cf_opts[k] != NULL)
			rocksdb_options_destroy(i->cf_opts[k]);
		if (i->table_opts[k] != NULL)
			rocksdb_block_based_options_destroy(i->table_opts[k]);
		/* The table options own the filter policy once set. */
	}
	if (i->db_opts != NULL)
		rocksdb_options_destroy(i->db_opts);
	if (i->cache != NULL)
		rocksdb_cache_destroy(i->cache);
	store_txn_view_close(&i->view);
	free(i->scratch);
	free(i);
}

/* Options per column family: the log is append-only by position and read
 * by ranges, so it needs no bloom filter; versions and dedup are read by
 * point lookups of keys that are often absent (a new stream, a new
 * writer), where a bloom filter saves a disk read. */
static void make_cf_options(struct store_int *i, int k)
{
	rocksdb_options_t *o = rocksdb_options_create_copy(i->db_opts);
	rocksdb_block_based_table_options_t *t =
		rocksdb_block_based_options_create();

	rocksdb_block_based_options_set_block_cache(t, i->cache);
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
	if (k != CF_LOG) {
		i->bloom[k] = rocksdb_filterpolicy_create_bloom_full(10);
		rocksdb_block_based_options_set_filter_policy(t, i->bloom[k]);
	}
	rocksdb_options_set_block_based_table_factory(o, t);
	rocksdb_options_set_compression(o, rocksdb_lz4_compression);
	/* What reached the last level is cold (an append-mostly store
	 * rarely rewrites it): zstd there, LZ4 above. */
	rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
	if (k == CF_DEFAULT || k == CF_DEDUP)
		rocksdb_options_set_write_buffer_size(
			o, STORE_SMALL_CF_MEMTABLE_BYTES);
	i->cf_opts[k] = o;
	i->table_opts[k] = t;
}

int store_open(struct store *s, const char *dir,
	       const struct store_options *opts)
{
	const rocksdb_options_t *cf_opts[CF_COUNT];
	struct store_int *i;
	uint64_t cache_bytes = 64u << 20;
	uint64_t format = 0;
	char *err = NULL;
	int rv;
	int k;

	memset(s, 0, sizeof *s);
	if (opts != NULL && opts->block_cache_bytes > 0)
		cache_bytes = opts->block_cache_bytes;
	i = calloc(1, sizeof *i);
	if (i == NULL)
		return set_error(s, STORE_ENOMEM, "open store: out of memory");
	store_txn_view_init(&i->view);
	i->db_opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(i->db_opts, 1);
	rocksdb_options_set_create_missing_column_families(i->db_opts, 1);
	rocksdb_options_increase_parallelism(i->db_opts, 2);
	rocksdb_options_set_max_background_jobs(i->db_opts, 2);
	/* Refuse to run on a store whose files are damaged rather than
	 * silently dropping what they held. */
	rocksdb_options_set_paranoid_checks(i->db_opts, 1);
	/* The small column families (versions, dedup, meta) fill their
	 * memtables far more slowly than the log, and the WAL is kept until
	 * every column family with data in it has flushed. Bounding the WAL
	 * makes RocksDB flush them too, so the store's disk footprint stays
	 * near its data instead of growing by the default 4x memtable
	 * budget (2 GiB). */
	rocksdb_options_set_max_total_wal_size(i->db_opts, STORE_WAL_BYTES_MAX);
	rocksdb_options_set_db_write_buffer_size(i->db_opts,
						 STORE_MEMTABLES_BYTES_MAX);
	i->cache = rocksdb_cache_create_lru((size_t)cache_bytes);
	for (k = 0; k < CF_COUNT; k++) {
		make_cf_options(i, k);
		cf_opts[k] = i->cf_opts[k];
	}
	i->ropts = rocksdb_readoptions_create();
	i->wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(i->wopts,
				      opts != NULL && opts->sync_every_apply);
	i->batch = rocksdb_writebatch_create();
	overlay_init(&i->overlay);
	/* Empty at every open: it only ever holds what this process read or
	 * wrote. */
	head_cache_init(&i->heads, opts != NULL ? opts->head_cache_entries : 0,
			opts != NULL && opts->head_cache_off);

	i->db = rocksdb_open_column_families(i->db_opts, dir, CF_COUNT,
					     cf_names, cf_opts, i->cf, &err);
	if (err != NULL) {
		s->i = i;
		rv = rocks_error(s, err, "open store");
		s->i = NULL;
		goto err_after_alloc;
	}
	s->i = i;

	rv = meta_get_u64(s, KEY_FORMAT, &format);
	if (rv != 0)
		goto err_after_db_open;
	if (format == 0) {
		uint8_t v[8];

		put_u64(v, STORE_LAYOUT_FORMAT);
		rocksdb_put_cf(i->db, i->wopts, i->cf[CF_DEFAULT], KEY_FORMAT,
			       strlen(KEY_FORMAT), (const char *)v, sizeof v,
			       &err);
		if (err != NULL) {
			rv = rocks_error(s, err, "open store: write format");
			goto err_after_db_open;
		}
	} else if (format != STORE_LAYOUT_FORMAT) {
		rv = set_error(s, STORE_ECORRUPT,
			       "open store: layout format %llu, this build "
			       "reads %d",
			       (unsigned long long)format, STORE_LAYOUT_FORMAT);
		goto err_after_db_open;
	}
	{
		uint8_t b[16];
		bool found;

		rv = get_fixed(s, CF_DEFAULT, KEY_APPLIED, strlen(KEY_APPLIED),
			       b, sizeof b, &found, "open store: read meta");
		if (rv != 0)
			goto err_after_db_open;
		i->applied_index = found ? get_u64(b) : 0;
		i->last_position = found ? get_u64(b + 8) : 0;
	}

	/* The log's last key must be the last position the meta records:
	 * both are written by the same batch. */
	{
		rocksdb_iterator_t *it = rocksdb_create_iterator_cf(
			i->db, i->ropts, i->cf[CF_LOG]);
		uint64_t last = 0;
		size_t klen;
		const char *key;

		rocksdb_iter_seek_to_last(it);
		if (rocksdb_iter_valid(it)) {
			key = rocksdb_iter_key(it, &klen);
			last = klen == 8 ? get_be64((const uint8_t *)key)
					 : UINT64_MAX;
		}
		rocksdb_iter_get_error(it, &err);
		rocksdb_iter_destroy(it);
		if (err != NULL) {
			rv = rocks_error(s, err, "open store: read log");
			goto err_after_db_open;
		}
		if (last != i->last_position) {
			rv = set_error(s, STORE_ECORRUPT,
				       "open store: log ends at position "
				       "%llu but meta says %llu",
				       (unsigned long long)last,
				       (unsigned long long)i->last_position);
			goto err_after_db_open;
		}
	}
	return 0;

err_after_db_open:
	for (k = 0; k < CF_COUNT; k++)
		rocksdb_column_family_handle_destroy(i->cf[k]);
	rocksdb_close(i->db);
err_after_alloc:
	destroy_handles(i);
	s->i = NULL;
	return rv;
}

void store_close(struct store *s)
{
	struct store_int *i = s->i;
	int k;

	if (i == NULL)
		return;
	for (k = 0; k < CF_COUNT; k++)
		rocksdb_column_family_handle_destroy(i->cf[k]);
	rocksdb_close(i->db);
	destroy_handles(i);
	s->i = NULL;
}

uint64_t store_applied_index(const struct store *s)
{
	return s->i->applied_index;
}

uint64_t store_last_position(const struct store *s)
{
	return s->i->last_position;
}

void store_results_init(struct store_results *r)
{
	memset(r, 0, sizeof *r);
}

void store_results_close(struct store_results *r)
{
	free(r->txns);
	free(r->parts);
	memset(r, 0, sizeof *r);
}

static int results_reserve(struct store_results *r, uint32_t txns,
			   uint32_t parts)
{
	void *p;

	if (txns > r->cap_txns) {
		p = realloc(r->txns, sizeof *r->txns * txns);
		if (p == NULL)
			return STORE_ENOMEM;
		r->txns = p;
		r->cap_txns = txns;
	}
	if (parts > r->cap_parts) {
		uint32_t cap = r->cap_parts > 0 ? r->cap_parts : 64;

		while (cap < parts)
			cap *= 2;
		p = realloc(r->parts, sizeof *r->parts * cap);
		if (p == NULL)
			return STORE_ENOMEM;
		r->parts = p;
		r->cap_parts = cap;
	}
	return 0;
}

/* Points every result at its parts once the parts array stops moving. */
static void results_link(struct store_results *r)
{
	uint32_t k;

	for (k = 0; k < r->n; k++)
		r->txns[k].parts = r->txns[k].n_parts > 0
					   ? &r->parts[r->txns[k].first_part]
					   : NULL;
}

static size_t head_key(uint8_t *key, const char *stream, size_t len)
{
	key[0] = VERSIONS_HEAD;
	if (len > 0) /* listings start from an empty name, maybe NULL */
		memcpy(key + 1, stream, len);
	return 1 + len;
}

static size_t index_key(uint8_t *key, const char *stream, size_t len,
			uint64_t version)
{
	key[0] = VERSIONS_INDEX;
	key[1] = (uint8_t)len;
	memcpy(key + 2, stream, len);
	put_be64(key + 2 + len, version);
	return 2 + len + 8;
}

/* Reads a stream's head; with @in_entry, as the current entry's earlier
 * transactions left it. Committed heads come from the head cache when it
 * has them, else from RocksDB, and then go into the cache (a stream
 * without events too). */
static int read_head(struct store *s, bool in_entry, const char *stream,
		     size_t len, struct store_head *h)
{
	struct store_int *i = s->i;
	uint8_t key[1 + STORE_STREAM_NAME_MAX];
	size_t klen = head_key(key, stream, len);
	uint64_t cached[2];
	uint8_t b[16];
	bool found;
	int rv;

	if (in_entry) {
		const uint64_t *v = overlay_get(&i->overlay, key, klen);

		if (v != NULL) {
			h->version = v[0];
			h->last_position = v[1];
			return 0;
		}
	}
	if (head_cache_get(&i->heads, key, klen, cached)) {
		h->version = cached[0];
		h->last_position = cached[1];
		return 0;
	}
	rv = get_fixed(s, CF_VERSIONS, key, klen, b, sizeof b, &found,
		       "read stream head");
	h->version = rv == 0 && found ? get_u64(b) : 0;
	h->last_position = rv == 0 && found ? get_u64(b + 8) : 0;
	if (rv == 0)
		head_cache_put(&i->heads, key, klen, h->version,
			       h->last_position);
	return rv;
}

int store_head(struct store *s, const char *stream, size_t stream_len,
	       struct store_head *h)
{
	if (!store_stream_name_valid(stream, stream_len))
		return set_error(s, STORE_EINVALID_STREAM,
				 "read head: invalid stream name");
	return read_head(s, false, stream, stream_len, h);
}

/* Dedup result value: format byte, first position, part count, then per
 * part the last version and the event count. */
#define DEDUP_RESULT_FORMAT 1
#define DEDUP_RESULT_FIXED  13
#define DEDUP_RESULT_PART   12

static void dedup_key(uint8_t *key, const uint8_t client_id[16], uint64_t seq)
{
	memcpy(key, client_id, 16);
	put_be64(key + 16, seq);
}

/* Decodes a stored result into @res, parts appended to @r's array. */
static int dedup_decode(struct store *s, const uint8_t *val, size_t vlen,
			struct store_results *r, struct store_txn_result *res)
{
	uint64_t position;
	uint32_t n;
	uint32_t k;

	if (vlen < DEDUP_RESULT_FIXED || val[0] != DEDUP_RESULT_FORMAT)
		goto corrupt;
	position = get_u64(val + 1);
	n = get_u32(val + 9);
	/* n may be 0: a transaction of state operations only. */
	if ((vlen - DEDUP_RESULT_FIXED) / DEDUP_RESULT_PART != n ||
	    (vlen - DEDUP_RESULT_FIXED) % DEDUP_RESULT_PART != 0)
		goto corrupt;
	if (results_reserve(r, r->n + 1, r->n_parts_used + n) != 0)
		return set_error(s, STORE_ENOMEM, "dedup: out of memory");
	memset(res, 0, sizeof *res);
	res->outcome = STORE_DUPLICATE;
	res->n_parts = n;
	res->first_part = r->n_parts_used;
	for (k = 0; k < n; k++) {
		const uint8_t *q = val + DEDUP_RESULT_FIXED +
				   (size_t)k * DEDUP_RESULT_PART;
		uint64_t last_version = get_u64(q);
		uint32_t events = get_u32(q + 8);
		struct store_part_result *p = &r->parts[res->first_part + k];

		if (events == 0 || last_version < events)
			goto corrupt;
		p->first_version = last_version - events + 1;
		p->last_version = last_version;
		p->first_position = position;
		p->last_position = position + events - 1;
		position += events;
	}
	r->n_parts_used += n;
	return 0;

corrupt:
	return set_error(s, STORE_ECORRUPT,
			 "dedup result of %zu bytes is "
			 "malformed",
			 vlen);
}

/* Copies the result of the entry's transaction @k (a duplicate's original,
 * committed earlier in the same entry) into @res. */
static int copy_result(struct store *s, struct store_results *r, uint32_t k,
		       struct store_txn_result *res)
{
	uint32_t n = r->txns[k].n_parts;
	uint32_t from = r->txns[k].first_part;

	if (results_reserve(r, r->n + 1, r->n_parts_used + n) != 0)
		return set_error(s, STORE_ENOMEM, "dedup: out of memory");
	memset(res, 0, sizeof *res);
	res->outcome = STORE_DUPLICATE;
	res->n_parts = n;
	res->first_part = r->n_parts_used;
	memcpy(&r->parts[res->first_part], &r->parts[from],
	       sizeof *r->parts * n);
	r->n_parts_used += n;
	return 0;
}

/* Looks up (client, seq): sets @found and fills @res when it committed;
 * sets @hwm to the writer's high-water mark and @known when the writer has
 * committed anything. With @in_entry, sees the current entry's earlier
 * transactions too. The committed high-water mark comes from the head
 * cache when it has it (a writer never seen too); the result of a
 * sequence at or below it (a retry, rare) always from RocksDB. */
static int dedup_check(struct store *s, bool in_entry,
		       const uint8_t client_id[16], uint64_t seq, bool *found,
		       bool *known, uint64_t *hwm, struct store_results *r,
		       struct store_txn_result *res)
{
	struct store_int *i = s->i;
	uint8_t okey[1 + 24];
	const uint64_t *ov = NULL;
	char *err = NULL;
	size_t vlen = 0;
	char *val;
	int rv;

	*found = false;
	*known = false;
	*hwm = 0;
	okey[0] = OVERLAY_WRITER;
	memcpy(okey + 1, client_id, 16);
	if (in_entry)
		ov = overlay_get(&i->overlay, okey, 17);
	if (ov != NULL) {
		*hwm = ov[0];
	} else {
		uint64_t cached[2];
		uint8_t b[8];
		bool stored;

		if (head_cache_get(&i->heads, okey, 17, cached)) {
			stored = cached[1] == HEAD_CACHE_WRITER_KNOWN;
			*hwm = stored ? cached[0] : 0;
		} else {
			rv = get_fixed(s, CF_DEDUP, client_id, 16, b, sizeof b,
				       &stored, "dedup: read high-water mark");
			if (rv != 0)
				return rv;
			*hwm = stored ? get_u64(b) : 0;
			head_cache_put(&i->heads, okey, 17, *hwm,
				       stored ? HEAD_CACHE_WRITER_KNOWN : 0);
		}
		if (!stored)
			return 0;
	}
	*known = true;
	if (seq > *hwm)
		return 0;

	okey[0] = OVERLAY_COMMITTED;
	dedup_key(okey + 1, client_id, seq);
	if (in_entry) {
		ov = overlay_get(&i->overlay, okey, sizeof okey);
		if (ov != NULL) {
			rv = copy_result(s, r, (uint32_t)ov[0], res);
			if (rv != 0)
				return rv;
			*found = true;
			return 0;
		}
	}
	val = rocksdb_get_cf(i->db, i->ropts, i->cf[CF_DEDUP],
			     (const char *)okey + 1, 24, &vlen, &err);
	if (err != NULL)
		return rocks_error(s, err, "dedup: read");
	if (val == NULL)
		return 0;
	rv = dedup_decode(s, (const uint8_t *)val, vlen, r, res);
	rocksdb_free(val);
	if (rv != 0)
		return rv;
	*found = true;
	return 0;
}

int store_dedup_lookup(struct store *s, const uint8_t client_id[16],
		       uint64_t seq, bool *found, uint64_t *hwm,
		       struct store_results *r)
{
	bool known;
	int rv;

	r->skipped = false;
	r->entry_error = 0;
	r->n = 0;
	r->n_parts_used = 0;
	if (results_reserve(r, 1, 0) != 0)
		return set_error(s, STORE_ENOMEM, "dedup: out of memory");
	rv = dedup_check(s, false, client_id, seq, found, &known, hwm, r,
			 &r->txns[0]);
	if (rv == 0 && *found) {
		r->n = 1;
		results_link(r);
	}
	return rv;
}

void store_cf_sizes(struct store *s, struct store_cf_size out[STORE_CF_COUNT])
{
	static const char *const props[3] = {
		"rocksdb.live-sst-files-size",
		"rocksdb.cur-size-all-mem-tables",
		"rocksdb.estimate-num-keys",
	};
	struct store_int *i = s->i;
	unsigned k;

	_Static_assert(STORE_CF_COUNT == CF_COUNT, "one entry per family");
	for (k = 0; k < CF_COUNT; k++) {
		uint64_t v[3] = { 0, 0, 0 };

		for (unsigned p = 0; p < 3; p++) {
			if (rocksdb_property_int_cf(i->db, i->cf[k], props[p],
						    &v[p]) != 0)
				v[p] = 0;
		}
		out[k].name = cf_names[k];
		out[k].sst_bytes = v[0];
		out[k].memtable_bytes = v[1];
		out[k].keys_estimate = v[2];
	}
}

void store_head_cache_stats(const struct store *s,
			    struct store_head_cache_stats *st)
{
	head_cache_stats(&s->i->heads, st);
}

static int scratch_reserve(struct store *s, size_t n)
{
	struct store_int *i = s->i;
	uint8_t *p;
	size_t cap;

	if (n <= i->scratch_cap)
		return 0;
	cap = i->scratch_cap > 0 ? i->scratch_cap : 4096;
	while (cap < n)
		cap *= 2;
	p = realloc(i->scratch, cap);
	if (p == NULL)
		return set_error(s, STORE_ENOMEM, "apply: out of memory");
	i->scratch = p;
	i->scratch_cap = cap;
	return 0;
}

static void batch_put(struct store_int *i, int cf, const void *key, size_t klen,
		      const void *val, size_t vlen)
{
	rocksdb_writebatch_put_cf(i->batch, i->cf[cf], key, klen, val, vlen);
}

/* Checks every part's expected version against the heads as the batch
 * sees them. Fills @heads (one per part). */
static int check_versions(struct store *s, const struct store_txn *t,
			  struct store_head *heads,
			  struct store_txn_result *res, bool *ok)
{
	uint32_t k;
	int rv;

	*ok = true;
	for (k = 0; k < t->n_parts; k++) {
		const struct store_part *p = &t->parts[k];
		uint64_t v;
		bool pass;

		rv = read_head(s, true, p->stream, p->stream_len, &heads[k]);
		if (rv != 0)
			return rv;
		v = heads[k].version;
		switch (p->expect.kind) {
		case STORE_EXPECT_ANY:
			pass = true;
			break;
		case STORE_EXPECT_NO_STREAM:
			pass = v == 0;
			break;
		case STORE_EXPECT_EXISTS:
			pass = v > 0;
			break;
		default:
			pass = v == p->expect.version;
			break;
		}
		/* A stream can never pass STORE_VERSION_MAX events. */
		if (pass && p->n_events > STORE_VERSION_MAX - v)
			pass = false;
		if (!pass) {
			res->outcome = STORE_WRONG_EXPECTED_VERSION;
			res->conflict_part = k;
			res->actual_version = v;
			*ok = false;
			return 0;
		}
	}
	return 0;
}

/* Writes a transaction that passed every check into the batch and fills
 * its result. */
static int write_txn(struct store *s, const struct store_txn *t,
		     const struct store_head *heads, struct store_results *r,
		     struct store_txn_result *res)
{
	struct store_int *i = s->i;
	uint8_t key[INDEX_KEY_MAX];
	uint8_t pos_key[8];
	uint8_t val[16];
	uint64_t position = i->last_position;
	size_t klen;
	uint32_t k;
	uint32_t e;
	int rv;

	if (results_reserve(r, r->n + 1, r->n_parts_used + t->n_parts) != 0)
		return set_error(s, STORE_ENOMEM, "apply: out of memory");
	res->outcome = STORE_COMMITTED;
	res->n_parts = t->n_parts;
	res->first_part = r->n_parts_used;
	r->n_parts_used += t->n_parts;

	for (k = 0; k < t->n_parts; k++) {
		const struct store_part *p = &t->parts[k];
		struct store_part_result *pr = &r->parts[res->first_part + k];
		uint64_t version = heads[k].version;

		pr->first_version = version + 1;
		pr->first_position = position + 1;
		for (e = 0; e < p->n_events; e++) {
			const struct store_event *ev = &p->events[e];
			size_t len = store_record_size(p->stream_len, ev);

			position++;
			version++;
			rv = scratch_reserve(s, len);
			if (rv != 0)
				return rv;
			store_record_encode(i->scratch, position, version,
					    p->stream, p->stream_len, ev, t);
			put_be64(pos_key, position);
			batch_put(i, CF_LOG, pos_key, 8, i->scratch, len);
			put_u64(val, position);
			batch_put(i, CF_VERSIONS, key,
				  index_key(key, p->stream, p->stream_len,
					    version),
				  val, 8);
		}
		pr->last_version = version;
		pr->last_position = position;
		put_u64(val, version);
		put_u64(val + 8, position);
		klen = head_key(key, p->stream, p->stream_len);
		if (overlay_put(&i->overlay, key, klen, version, position) != 0)
			goto nomem;
	}

	if (t->has_client) {
		size_t len = DEDUP_RESULT_FIXED +
			     (size_t)t->n_parts * DEDUP_RESULT_PART;
		uint8_t *q;

		rv = scratch_reserve(s, len);
		if (rv != 0)
			return rv;
		q = i->scratch;
		q[0] = DEDUP_RESULT_FORMAT;
		put_u64(q + 1, i->last_position + 1);
		put_u32(q + 9, t->n_parts);
		for (k = 0; k < t->n_parts; k++) {
			put_u64(q + DEDUP_RESULT_FIXED +
					(size_t)k * DEDUP_RESULT_PART,
				r->parts[res->first_part + k].last_version);
			put_u32(q + DEDUP_RESULT_FIXED +
					(size_t)k * DEDUP_RESULT_PART + 8,
				t->parts[k].n_events);
		}
		key[0] = OVERLAY_COMMITTED;
		dedup_key(key + 1, t->client_id, t->client_seq);
		batch_put(i, CF_DEDUP, key + 1, 24, q, len);
		if (overlay_put(&i->overlay, key, 25, r->n, 0) != 0)
			goto nomem;
		key[0] = OVERLAY_WRITER;
		if (overlay_put(&i->overlay, key, 17, t->client_seq, 0) != 0)
			goto nomem;
	}
	i->last_position = position;
	return 0;

nomem:
	return set_error(s, STORE_ENOMEM, "apply: out of memory");
}

static size_t snapshot_key(uint8_t *key, const char *stream, size_t len,
			   uint64_t version)
{
	memcpy(key, SNAPSHOT_PREFIX, 2);
	key[2] = (uint8_t)len;
	memcpy(key + 3, stream, len);
	put_be64(key + 3 + len, version);
	return 3 + len + 8;
}

/* A checkpoint's value as the entry sees it (0 when it does not exist). */
static int read_checkpoint(struct store *s, bool in_entry, const char *name,
			   size_t len, uint64_t *value, bool *found)
{
	struct store_int *i = s->i;
	uint8_t key[2 + STORE_STREAM_NAME_MAX];
	uint8_t b[8];
	int rv;

	if (in_entry) {
		const uint64_t *v;

		key[0] = OVERLAY_CHECKPOINT;
		memcpy(key + 1, name, len);
		v = overlay_get(&i->overlay, key, 1 + len);
		if (v != NULL) {
			*value = v[0];
			*found = true;
			return 0;
		}
	}
	memcpy(key, CHECKPOINT_PREFIX, 2);
	memcpy(key + 2, name, len);
	rv = get_fixed(s, CF_DEFAULT, key, 2 + len, b, sizeof b, found,
		       "read checkpoint");
	*value = rv == 0 && *found ? get_u64(b) : 0;
	return rv;
}

/* Checks every state operation of @t against the state the entry sees:
 * a CAS's expected value, a snapshot's version against its stream's head
 * after this transaction's own events (@heads: the parts' heads before). */
static int check_ops(struct store *s, const struct store_txn *t,
		     const struct store_head *heads,
		     struct store_txn_result *res, bool *ok)
{
	uint32_t k;
	int rv;

	*ok = true;
	for (k = 0; k < t->n_ops; k++) {
		const struct store_op *op = &t->ops[k];
		uint64_t actual = 0;
		bool pass = true;
		bool found;

		if (op->kind == STORE_OP_CHECKPOINT_CAS) {
			rv = read_checkpoint(s, true, op->name, op->name_len,
					     &actual, &found);
			if (rv != 0)
				return rv;
			pass = found ? actual == op->expected
				     : op->expected == 0;
		} else if (op->kind == STORE_OP_SNAPSHOT_PUT) {
			struct store_head h;
			uint32_t p;

			rv = read_head(s, true, op->name, op->name_len, &h);
			if (rv != 0)
				return rv;
			actual = h.version;
			for (p = 0; p < t->n_parts; p++) {
				if (t->parts[p].stream_len == op->name_len &&
				    memcmp(t->parts[p].stream, op->name,
					   op->name_len) == 0)
					actual = heads[p].version +
						 t->parts[p].n_events;
			}
			pass = op->value <= actual;
		}
		if (!pass) {
			res->outcome = STORE_WRONG_EXPECTED_VERSION;
			res->conflict_part = t->n_parts + k;
			res->actual_version = actual;
			*ok = false;
			return 0;
		}
	}
	return 0;
}

/* Writes the state operations of a transaction that committed. Checkpoint
 * values go through the overlay (later transactions of the entry see them;
 * batch_put_final writes each once); snapshots go straight to the batch. */
static int write_ops(struct store *s, const struct store_txn *t)
{
	struct store_int *i = s->i;
	uint8_t key[SNAPSHOT_KEY_MAX];
	uint32_t k;

	for (k = 0; k < t->n_ops; k++) {
		const struct store_op *op = &t->ops[k];

		if (op->kind == STORE_OP_SNAPSHOT_PUT) {
			batch_put(i, CF_DEFAULT, key,
				  snapshot_key(key, op->name, op->name_len,
					       op->value),
				  op->data, op->data_len);
			continue;
		}
		key[0] = OVERLAY_CHECKPOINT;
		memcpy(key + 1, op->name, op->name_len);
		if (overlay_put(&i->overlay, key, 1 + op->name_len, op->value,
				0) != 0)
			return set_error(s, STORE_ENOMEM,
					 "apply: out of memory");
	}
	return 0;
}

/* Applies one transaction's bytes into the batch; the outcome goes into
 * @res. Returns only storage errors. */
static int apply_txn(struct store *s, const void *buf, size_t len,
		     struct store_results *r, struct store_txn_result *res)
{
	struct store_int *i = s->i;
	const struct store_txn *t = &i->view.txn;
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_head heads_small[8];
	struct store_head *heads = heads_small;
	bool found;
	bool known;
	bool ok;
	uint64_t hwm;
	int rv;

	memset(res, 0, sizeof *res);
	rv = store_txn_decode(buf, len, &i->view, errmsg);
	if (rv == STORE_ENOMEM)
		return set_error(s, rv, "apply: %s", errmsg);
	if (rv != 0) {
		res->outcome = STORE_REJECTED;
		res->reject_code = rv;
		return 0;
	}
	if (t->has_client) {
		rv = dedup_check(s, true, t->client_id, t->client_seq, &found,
				 &known, &hwm, r, res);
		if (rv != 0)
			return rv;
		if (found)
			return 0;
		if (known && t->client_seq <= hwm) {
			res->outcome = STORE_STALE_SEQUENCE;
			res->actual_version = hwm;
			return 0;
		}
	}
	if (t->n_parts > 8) {
		heads = malloc(sizeof *heads * t->n_parts);
		if (heads == NULL)
			return set_error(s, STORE_ENOMEM,
					 "apply: out of memory");
	}
	rv = check_versions(s, t, heads, res, &ok);
	if (rv == 0 && ok && t->n_ops > 0)
		rv = check_ops(s, t, heads, res, &ok);
	if (rv == 0 && ok)
		rv = write_txn(s, t, heads, r, res);
	if (rv == 0 && ok && t->n_ops > 0)
		rv = write_ops(s, t);
	if (heads != heads_small)
		free(heads);
	return rv;
}

/* Puts every stream head and writer high-water mark the entry changed, once
 * each, with its final value from the overlay: a stream or writer that comes
 * back in several transactions of one entry costs one Put, not one per
 * transaction. The keys are distinct, so the state is the same whatever the
 * overlay's slot order. */
static void batch_put_final(struct store_int *i)
{
	uint8_t val[16];
	uint32_t k;

	for (k = 0; k < i->overlay.cap; k++) {
		const struct overlay_slot *sl = &i->overlay.slots[k];
		const uint8_t *key = i->overlay.arena + sl->key_off;

		if (sl->key_len == 0)
			continue;
		if (key[0] == VERSIONS_HEAD) {
			put_u64(val, sl->v[0]);
			put_u64(val + 8, sl->v[1]);
			batch_put(i, CF_VERSIONS, key, sl->key_len, val, 16);
		} else if (key[0] == OVERLAY_WRITER) {
			put_u64(val, sl->v[0]);
			batch_put(i, CF_DEDUP, key + 1, 16, val, 8);
		} else if (key[0] == OVERLAY_CHECKPOINT) {
			uint8_t ck[2 + STORE_STREAM_NAME_MAX];

			memcpy(ck, CHECKPOINT_PREFIX, 2);
			memcpy(ck + 2, key + 1, sl->key_len - 1u);
			put_u64(val, sl->v[0]);
			batch_put(i, CF_DEFAULT, ck, 1u + sl->key_len, val, 8);
		}
	}
}

int store_apply(struct store *s, uint64_t index, const void *entry, size_t len,
		struct store_results *r)
{
	struct store_int *i = s->i;
	struct store_entry_iter it;
	char errmsg[STORE_ERRMSG_SIZE];
	uint64_t saved_position = i->last_position;
	const void *txn;
	size_t txn_len;
	uint8_t val[16];
	char *err = NULL;
	int rv;

	r->skipped = false;
	r->entry_error = 0;
	r->n = 0;
	r->n_parts_used = 0;
	no_perf_counters();
	if (index <= i->applied_index) {
		r->skipped = true;
		return 0;
	}
	rocksdb_writebatch_clear(i->batch);
	overlay_reset(&i->overlay);
	rv = store_entry_open(entry, len, &it, errmsg);
	if (rv != 0) {
		/* Every replica sees the same bytes and reaches the same
		 * verdict: the entry applies as nothing. */
		r->entry_error = rv;
	} else {
		uint32_t count = store_entry_count(entry);

		if (results_reserve(r, count, 0) != 0)
			return set_error(s, STORE_ENOMEM,
					 "apply: out of memory");
		while (store_entry_next(&it, &txn, &txn_len)) {
			rv = apply_txn(s, txn, txn_len, r, &r->txns[r->n]);
			if (rv != 0)
				goto err_after_batch;
			r->n++;
		}
	}
	batch_put_final(i);
	put_u64(val, index);
	put_u64(val + 8, i->last_position);
	batch_put(i, CF_DEFAULT, KEY_APPLIED, strlen(KEY_APPLIED), val, 16);
	rocksdb_write(i->db, i->wopts, i->batch, &err);
	if (err != NULL) {
		rv = rocks_error(s, err, "apply: write batch");
		/* The store must be closed now; forget what it cached rather
		 * than reason about a write that failed. */
		head_cache_clear(&i->heads);
		goto err_after_batch;
	}
	rocksdb_writebatch_clear(i->batch);
	i->applied_index = index;
	/* Written: the heads and writers the entry changed are committed. */
	head_cache_update(&i->heads, &i->overlay);
	results_link(r);
	return 0;

err_after_batch:
	rocksdb_writebatch_clear(i->batch);
	i->last_position = saved_position;
	r->n = 0;
	return rv;
}

/* A read's view: one RocksDB snapshot so every lookup of a read sees the
 * same state. */
struct read_view {
	const rocksdb_snapshot_t *snap;
	rocksdb_readoptions_t *ro;
};

static void view_open(struct store_int *i, struct read_view *v)
{
	no_perf_counters();
	v->snap = rocksdb_create_snapshot(i->db);
	v->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_snapshot(v->ro, v->snap);
}

static void view_close(struct store_int *i, struct read_view *v)
{
	rocksdb_readoptions_destroy(v->ro);
	rocksdb_release_snapshot(i->db, v->snap);
}

/* Fetches and verifies the record at @position; *found is false when the
 * log has no such position. */
static int fetch_record(struct store *s, struct read_view *v, uint64_t position,
			rocksdb_pinnableslice_t **slice,
			struct store_record *rec)
{
	struct store_int *i = s->i;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t key[8];
	const char *val;
	char *err = NULL;
	size_t vlen;
	int rv;

	put_be64(key, position);
	*slice = rocksdb_get_pinned_cf(i->db, v->ro, i->cf[CF_LOG],
				       (const char *)key, 8, &err);
	if (err != NULL)
		return rocks_error(s, err, "read log");
	if (*slice == NULL)
		return set_error(s, STORE_ECORRUPT,
				 "read log: position %llu is indexed but "
				 "missing",
				 (unsigned long long)position);
	val = rocksdb_pinnableslice_value(*slice, &vlen);
	rv = store_record_decode(position, val, vlen, rec, errmsg);
	if (rv != 0) {
		rocksdb_pinnableslice_destroy(*slice);
		*slice = NULL;
		return set_error(s, STORE_ECORRUPT, "read log: %s", errmsg);
	}
	return 0;
}

int store_read_stream(struct store *s, const char *stream, size_t stream_len,
		      uint64_t from_version, bool backward, uint32_t max_count,
		      store_visit_cb cb, void *arg,
		      struct store_read_info *info)
{
	struct store_int *i = s->i;
	uint8_t key[INDEX_KEY_MAX];
	size_t prefix_len = 2 + stream_len;
	struct read_view v;
	rocksdb_iterator_t *it;
	uint64_t version = 0;
	char *err = NULL;
	bool stop = false;
	int rv = 0;

	memset(info, 0, sizeof *info);
	if (!store_stream_name_valid(stream, stream_len))
		return set_error(s, STORE_EINVALID_STREAM,
				 "read stream: invalid stream name");
	if (!backward && from_version == 0)
		from_version = 1;
	info->next = from_version;
	view_open(i, &v);
	it = rocksdb_create_iterator_cf(i->db, v.ro, i->cf[CF_VERSIONS]);
	index_key(key, stream, stream_len, from_version);
	if (backward)
		rocksdb_iter_seek_for_prev(it, (const char *)key,
					   prefix_len + 8);
	else
		rocksdb_iter_seek(it, (const char *)key, prefix_len + 8);

	for (;;) {
		rocksdb_pinnableslice_t *slice;
		struct store_record rec;
		const char *k;
		const char *val;
		size_t klen;
		size_t vlen;

		if (!rocksdb_iter_valid(it)) {
			info->end = true;
			break;
		}
		k = rocksdb_iter_key(it, &klen);
		if (klen != prefix_len + 8 || memcmp(k, key, prefix_len) != 0) {
			info->end = true;
			break;
		}
		if (info->count == max_count || stop)
			break;
		version = get_be64((const uint8_t *)k + prefix_len);
		val = rocksdb_iter_value(it, &vlen);
		if (vlen != 8) {
			rv = set_error(s, STORE_ECORRUPT,
				       "read stream: index entry of %zu bytes",
				       vlen);
			break;
		}
		rv = fetch_record(s, &v, get_u64((const uint8_t *)val), &slice,
				  &rec);
		if (rv != 0)
			break;
		if (rec.version != version || rec.stream_len != stream_len ||
		    memcmp(rec.stream, stream, stream_len) != 0) {
			rocksdb_pinnableslice_destroy(slice);
			rv = set_error(s, STORE_ECORRUPT,
				       "read stream: index of version %llu "
				       "points at another event",
				       (unsigned long long)version);
			break;
		}
		info->count++;
		info->next = backward ? version - 1 : version + 1;
		stop = !cb(arg, &rec);
		rocksdb_pinnableslice_destroy(slice);
		if (backward)
			rocksdb_iter_prev(it);
		else
			rocksdb_iter_next(it);
	}
	if (rv == 0) {
		rocksdb_iter_get_error(it, &err);
		if (err != NULL)
			rv = rocks_error(s, err, "read stream");
	}
	if (backward && info->end)
		info->next = 0;
	rocksdb_iter_destroy(it);
	view_close(i, &v);
	return rv;
}

static bool filter_match(const struct store_filter *f,
			 const struct store_record *r)
{
	if (f == NULL)
		return true;
	if (f->stream_prefix_len > 0 &&
	    (r->stream_len < f->stream_prefix_len ||
	     memcmp(r->stream, f->stream_prefix, f->stream_prefix_len) != 0))
		return false;
	if (f->category_len > 0) {
		size_t len;

		store_stream_category(r->stream, r->stream_len, &len);
		if (len != f->category_len ||
		    memcmp(r->stream, f->category, len) != 0)
			return false;
	}
	if (f->type_len > 0 && (r->type_len != f->type_len ||
				memcmp(r->type, f->type, f->type_len) != 0))
		return false;
	return true;
}

int store_read_all(struct store *s, uint64_t from_position, uint32_t max_count,
		   uint64_t max_scan, const struct store_filter *f,
		   store_visit_cb cb, void *arg, struct store_read_info *info)
{
	struct store_int *i = s->i;
	char errmsg[STORE_ERRMSG_SIZE];
	struct read_view v;
	rocksdb_iterator_t *it;
	uint64_t scanned = 0;
	uint8_t key[8];
	char *err = NULL;
	bool stop = false;
	int rv = 0;

	memset(info, 0, sizeof *info);
	if (from_position == 0)
		from_position = 1;
	info->next = from_position;
	view_open(i, &v);
	it = rocksdb_create_iterator_cf(i->db, v.ro, i->cf[CF_LOG]);
	put_be64(key, from_position);
	rocksdb_iter_seek(it, (const char *)key, 8);
	for (;;) {
		struct store_record rec;
		uint64_t position;
		const char *k;
		const char *val;
		size_t klen;
		size_t vlen;

		if (!rocksdb_iter_valid(it)) {
			info->end = true;
			break;
		}
		if (info->count == max_count || stop ||
		    (max_scan > 0 && scanned == max_scan))
			break;
		k = rocksdb_iter_key(it, &klen);
		if (klen != 8) {
			rv = set_error(s, STORE_ECORRUPT,
				       "read log: key of %zu bytes", klen);
			break;
		}
		position = get_be64((const uint8_t *)k);
		val = rocksdb_iter_value(it, &vlen);
		rv = store_record_decode(position, val, vlen, &rec, errmsg);
		if (rv != 0) {
			rv = set_error(s, STORE_ECORRUPT, "read log: %s",
				       errmsg);
			break;
		}
		scanned++;
		info->next = position + 1;
		if (filter_match(f, &rec)) {
			info->count++;
			stop = !cb(arg, &rec);
		}
		rocksdb_iter_next(it);
	}
	if (rv == 0) {
		rocksdb_iter_get_error(it, &err);
		if (err != NULL)
			rv = rocks_error(s, err, "read log");
	}
	rocksdb_iter_destroy(it);
	view_close(i, &v);
	return rv;
}

/* Builds "m/" + @key into @out (META_PREFIX_LEN + STORE_META_KEY_MAX bytes);
 * returns its length, or 0 when @key is empty or too long. */
static size_t meta_key(char *out, const char *key)
{
	size_t len = key != NULL ? strnlen(key, STORE_META_KEY_MAX + 1) : 0;

	if (len == 0 || len > STORE_META_KEY_MAX)
		return 0;
	memcpy(out, META_PREFIX, META_PREFIX_LEN);
	memcpy(out + META_PREFIX_LEN, key, len);
	return META_PREFIX_LEN + len;
}

int store_apply_meta(struct store *s, uint64_t index,
		     const struct store_meta_op *ops, uint32_t n, bool *skipped)
{
	struct store_int *i = s->i;
	char key[META_PREFIX_LEN + STORE_META_KEY_MAX];
	uint8_t val[16];
	char *err = NULL;
	uint32_t k;

	*skipped = false;
	if (index <= i->applied_index) {
		*skipped = true;
		return 0;
	}
	for (k = 0; k < n; k++) {
		if (meta_key(key, ops[k].key) == 0)
			return set_error(s, STORE_EINVAL,
					 "apply meta: key %u is empty or "
					 "longer than %d bytes",
					 k, STORE_META_KEY_MAX);
		if (ops[k].value != NULL &&
		    ops[k].value_len > STORE_META_VALUE_MAX)
			return set_error(s, STORE_EINVAL,
					 "apply meta: value of %zu bytes, "
					 "limit %u",
					 ops[k].value_len,
					 STORE_META_VALUE_MAX);
	}
	rocksdb_writebatch_clear(i->batch);
	for (k = 0; k < n; k++) {
		size_t klen = meta_key(key, ops[k].key);

		if (ops[k].value != NULL)
			batch_put(i, CF_DEFAULT, key, klen, ops[k].value,
				  ops[k].value_len);
		else
			rocksdb_writebatch_delete_cf(
				i->batch, i->cf[CF_DEFAULT], key, klen);
	}
	put_u64(val, index);
	put_u64(val + 8, i->last_position);
	batch_put(i, CF_DEFAULT, KEY_APPLIED, strlen(KEY_APPLIED), val, 16);
	rocksdb_write(i->db, i->wopts, i->batch, &err);
	rocksdb_writebatch_clear(i->batch);
	if (err != NULL)
		return rocks_error(s, err, "apply meta: write batch");
	i->applied_index = index;
	return 0;
}

int store_meta_get(struct store *s, const char *key, void *buf, size_t cap,
		   size_t *len, bool *found)
{
	struct store_int *i = s->i;
	char k[META_PREFIX_LEN + STORE_META_KEY_MAX];
	size_t klen = meta_key(k, key);
	rocksdb_pinnableslice_t *slice;
	const char *val;
	char *err = NULL;
	size_t vlen;

	*found = false;
	*len = 0;
	if (klen == 0)
		return set_error(s, STORE_EINVAL,
				 "read meta: key is empty or longer than %d "
				 "bytes",
				 STORE_META_KEY_MAX);
	slice = rocksdb_get_pinned_cf(i->db, i->ropts, i->cf[CF_DEFAULT], k,
				      klen, &err);
	if (err != NULL)
		return rocks_error(s, err, "read meta");
	if (slice == NULL)
		return 0;
	val = rocksdb_pinnableslice_value(slice, &vlen);
	*found = true;
	*len = vlen;
	if (vlen > cap) {
		rocksdb_pinnableslice_destroy(slice);
		return set_error(s, STORE_EINVAL,
				 "read meta: value of %zu bytes does not fit "
				 "%zu",
				 vlen, cap);
	}
	if (vlen > 0)
		memcpy(buf, val, vlen);
	rocksdb_pinnableslice_destroy(slice);
	return 0;
}

int store_meta_list(struct store *s, const char *prefix, store_meta_visit_cb cb,
		    void *arg)
{
	struct store_int *i = s->i;
	char start[META_PREFIX_LEN + STORE_META_KEY_MAX];
	size_t plen =
		prefix != NULL ? strnlen(prefix, STORE_META_KEY_MAX + 1) : 0;
	struct read_view v;
	rocksdb_iterator_t *it;
	char *err = NULL;

	if (plen > STORE_META_KEY_MAX)
		return set_error(s, STORE_EINVAL,
				 "list meta: prefix longer than %d bytes",
				 STORE_META_KEY_MAX);
	memcpy(start, META_PREFIX, META_PREFIX_LEN);
	if (plen > 0)
		memcpy(start + META_PREFIX_LEN, prefix, plen);
	plen += META_PREFIX_LEN;
	view_open(i, &v);
	it = rocksdb_create_iterator_cf(i->db, v.ro, i->cf[CF_DEFAULT]);
	for (rocksdb_iter_seek(it, start, plen); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen;
		size_t vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *val;

		if (klen < plen || memcmp(k, start, plen) != 0)
			break;
		val = rocksdb_iter_value(it, &vlen);
		if (!cb(arg, k + META_PREFIX_LEN, klen - META_PREFIX_LEN, val,
			vlen))
			break;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	view_close(i, &v);
	if (err != NULL)
		return rocks_error(s, err, "list meta");
	return 0;
}

int store_list_streams(struct store *s, const char *prefix, size_t prefix_len,
		       const char *after, size_t after_len, uint32_t limit,
		       store_stream_visit_cb cb, void *arg, bool *more)
{
	struct store_int *i = s->i;
	uint8_t start[2 + STORE_STREAM_NAME_MAX];
	size_t slen;
	struct read_view v;
	rocksdb_iterator_t *it;
	uint32_t n = 0;
	char *err = NULL;

	*more = false;
	if (prefix_len > STORE_STREAM_NAME_MAX ||
	    after_len > STORE_STREAM_NAME_MAX)
		return set_error(s, STORE_EINVAL,
				 "list streams: name longer than %d bytes",
				 STORE_STREAM_NAME_MAX);
	/* Start at the later of the prefix and just after @after. */
	slen = head_key(start, prefix, prefix_len);
	if (after_len > 0) {
		uint8_t next[2 + STORE_STREAM_NAME_MAX];
		size_t nlen = head_key(next, after, after_len);
		size_t common;
		int cmp;

		next[nlen++] = 0; /* the smallest key after @after */
		common = nlen < slen ? nlen : slen;
		cmp = memcmp(next, start, common);
		if (cmp > 0 || (cmp == 0 && nlen > slen)) {
			memcpy(start, next, nlen);
			slen = nlen;
		}
	}
	view_open(i, &v);
	it = rocksdb_create_iterator_cf(i->db, v.ro, i->cf[CF_VERSIONS]);
	for (rocksdb_iter_seek(it, (const char *)start, slen);
	     rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
		size_t klen;
		size_t vlen;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *val;
		struct store_head h;

		if (klen < 1 + prefix_len || (uint8_t)k[0] != VERSIONS_HEAD ||
		    memcmp(k + 1, prefix, prefix_len) != 0)
			break;
		if (n == limit) {
			*more = true;
			break;
		}
		val = rocksdb_iter_value(it, &vlen);
		if (vlen != 16) {
			rocksdb_iter_destroy(it);
			view_close(i, &v);
			return set_error(s, STORE_ECORRUPT,
					 "list streams: a head of %zu bytes",
					 vlen);
		}
		h.version = get_u64((const uint8_t *)val);
		h.last_position = get_u64((const uint8_t *)val + 8);
		n++;
		if (!cb(arg, k + 1, klen - 1, &h))
			break;
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	view_close(i, &v);
	if (err != NULL)
		return rocks_error(s, err, "list streams");
	return 0;
}

int store_list_categories(struct store *s, const char *after, size_t after_len,
			  uint32_t limit, store_category_visit_cb cb, void *arg,
			  bool *more)
{
	struct store_int *i = s->i;
	uint8_t key[2 + STORE_STREAM_NAME_MAX];
	size_t klen;
	struct read_view v;
	rocksdb_iterator_t *it;
	uint32_t n = 0;
	char *err = NULL;

	*more = false;
	if (after_len > STORE_STREAM_NAME_MAX)
		return set_error(s, STORE_EINVAL,
				 "list categories: name longer than %d bytes",
				 STORE_STREAM_NAME_MAX);
	/* Every stream of category C sorts at or after "C-"; the first key
	 * past them all is "C." ('.' follows '-'). */
	klen = head_key(key, after, after_len);
	if (after_len > 0)
		key[klen++] = '.';
	view_open(i, &v);
	it = rocksdb_create_iterator_cf(i->db, v.ro, i->cf[CF_VERSIONS]);
	rocksdb_iter_seek(it, (const char *)key, klen);
	while (rocksdb_iter_valid(it)) {
		size_t len;
		const char *k = rocksdb_iter_key(it, &len);
		const char *dash;
		size_t clen;

		if (len < 2 || (uint8_t)k[0] != VERSIONS_HEAD)
			break;
		dash = memchr(k + 1, '-', len - 1);
		if (dash == NULL) {
			rocksdb_iter_next(it); /* no category */
			continue;
		}
		clen = (size_t)(dash - (k + 1));
		if (clen == 0) {
			rocksdb_iter_next(it);
			continue;
		}
		if (n == limit) {
			*more = true;
			break;
		}
		n++;
		klen = head_key(key, k + 1, clen);
		key[klen++] = '.';
		if (!cb(arg, (const char *)key + 1, clen))
			break;
		rocksdb_iter_seek(it, (const char *)key, klen);
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	view_close(i, &v);
	if (err != NULL)
		return rocks_error(s, err, "list categories");
	return 0;
}

int store_checkpoint_get(struct store *s, const char *name, size_t len,
			 uint64_t *value, bool *found)
{
	if (!store_stream_name_valid(name, len))
		return set_error(s, STORE_EINVALID_STREAM,
				 "read checkpoint: invalid name");
	return read_checkpoint(s, false, name, len, value, found);
}

int store_snapshot_get(struct store *s, const char *stream, size_t len,
		       uint64_t max_version, uint64_t *version, void **data,
		       size_t *data_len)
{
	struct store_int *i = s->i;
	uint8_t key[SNAPSHOT_KEY_MAX];
	size_t plen;
	size_t klen;
	struct read_view v;
	rocksdb_iterator_t *it;
	char *err = NULL;
	int rv = 0;

	*version = 0;
	*data = NULL;
	*data_len = 0;
	if (!store_stream_name_valid(stream, len))
		return set_error(s, STORE_EINVALID_STREAM,
				 "read snapshot: invalid stream name");
	if (max_version > STORE_VERSION_MAX)
		max_version = STORE_VERSION_MAX;
	klen = snapshot_key(key, stream, len, max_version);
	plen = klen - 8;
	view_open(i, &v);
	it = rocksdb_create_iterator_cf(i->db, v.ro, i->cf[CF_DEFAULT]);
	rocksdb_iter_seek_for_prev(it, (const char *)key, klen);
	if (rocksdb_iter_valid(it)) {
		size_t kl;
		size_t vl;
		const char *k = rocksdb_iter_key(it, &kl);
		const char *val;

		if (kl == klen && memcmp(k, key, plen) == 0) {
			val = rocksdb_iter_value(it, &vl);
			*data = malloc(vl > 0 ? vl : 1);
			if (*data == NULL) {
				rv = set_error(s, STORE_ENOMEM,
					       "read snapshot: out of memory");
			} else {
				memcpy(*data, val, vl);
				*data_len = vl;
				*version = get_be64((const uint8_t *)k + plen);
			}
		}
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	view_close(i, &v);
	if (err != NULL) {
		free(*data);
		*data = NULL;
		*version = 0;
		return rocks_error(s, err, "read snapshot");
	}
	return rv;
}

int store_sync(struct store *s)
{
	char *err = NULL;

	rocksdb_flush_wal(s->i->db, 1, &err);
	if (err != NULL)
		return rocks_error(s, err, "sync store");
	return 0;
}

int store_checkpoint(struct store *s, const char *dir)
{
	rocksdb_checkpoint_t *cp;
	char *err = NULL;

	cp = rocksdb_checkpoint_object_create(s->i->db, &err);
	if (err != NULL)
		return rocks_error(s, err, "checkpoint");
	/* A log size of 0 makes RocksDB flush the memtables, so the
	 * checkpoint holds no WAL to replay. */
	rocksdb_checkpoint_create(cp, dir, 0, &err);
	rocksdb_checkpoint_object_destroy(cp);
	if (err != NULL)
		return rocks_error(s, err, "checkpoint");
	return 0;
}

/* ------------------------------------------------------------------------
 * Copies: listing a checkpoint, preparing a restored store
 * ------------------------------------------------------------------------ */

static int copy_file_cmp(const void *a, const void *b)
{
	const struct store_copy_file *x = a;
	const struct store_copy_file *y = b;

	return strcmp(x->name, y->name);
}

/* Reads the IDENTITY file of @dir into @out (without the trailing
 * newline); "" when there is none. */
static int read_identity(const char *dir, char *out, char *errmsg)
{
	char path[4096];
	size_t n;
	FILE *f;

	out[0] = '\0';
	if (snprintf(path, sizeof path, "%s/IDENTITY", dir) >=
	    (int)sizeof path) {
		snprintf(errmsg, STORE_ERRMSG_SIZE, "path too long");
		return STORE_EINVAL;
	}
	f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(errmsg, STORE_ERRMSG_SIZE, "open %.200s: %s", path,
			 strerror(errno));
		return STORE_EIO;
	}
	n = fread(out, 1, STORE_COPY_IDENTITY_MAX, f);
	fclose(f);
	out[n] = '\0';
	while (n > 0 &&
	       (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
		out[--n] = '\0';
	return 0;
}

/* Reads the applied index and last position of the store in @dir without
 * changing anything there. */
static int read_applied_readonly(const char *dir, uint64_t *applied,
				 uint64_t *last, char *errmsg)
{
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	const char *val;
	char *err = NULL;
	size_t vlen = 0;
	rocksdb_t *db;
	int rv = 0;

	/* The default column family alone: a read-only open may leave the
	 * others closed. */
	db = rocksdb_open_for_read_only(o, dir, 0, &err);
	if (err != NULL) {
		snprintf(errmsg, STORE_ERRMSG_SIZE,
			 "open read-only: rocksdb: %.200s", err);
		rocksdb_free(err);
		rv = STORE_EIO;
		goto out;
	}
	val = rocksdb_get(db, ro, KEY_APPLIED, strlen(KEY_APPLIED), &vlen,
			  &err);
	if (err != NULL) {
		snprintf(errmsg, STORE_ERRMSG_SIZE,
			 "read meta: rocksdb: %.200s", err);
		rocksdb_free(err);
		rv = STORE_EIO;
	} else if (val == NULL) {
		*applied = 0;
		*last = 0;
	} else if (vlen != 16) {
		snprintf(errmsg, STORE_ERRMSG_SIZE,
			 "read meta: applied record of %zu bytes", vlen);
		rv = STORE_ECORRUPT;
	} else {
		*applied = get_u64((const uint8_t *)val);
		*last = get_u64((const uint8_t *)val + 8);
	}
	rocksdb_free((void *)val);
	rocksdb_close(db);
out:
	rocksdb_readoptions_destroy(ro);
	rocksdb_options_destroy(o);
	return rv;
}

int store_copy_info(const char *dir, const char *source_dir,
		    struct store_copy_info *info, char *errmsg)
{
	char path[4096];
	struct dirent *de;
	uint32_t cap = 0;
	struct stat st;
	DIR *d;
	int rv;

	memset(info, 0, sizeof *info);
	d = opendir(dir);
	if (d == NULL) {
		snprintf(errmsg, STORE_ERRMSG_SIZE, "list %.200s: %s", dir,
			 strerror(errno));
		return STORE_EIO;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    strncmp(de->d_name, "LOG", 3) == 0)
			continue;
		if (len > STORE_COPY_NAME_MAX ||
		    snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >=
			    (int)sizeof path) {
			snprintf(errmsg, STORE_ERRMSG_SIZE,
				 "list %.200s: name too long", dir);
			rv = STORE_EINVAL;
			goto err_after_opendir;
		}
		if (stat(path, &st) != 0) {
			snprintf(errmsg, STORE_ERRMSG_SIZE, "stat %.200s: %s",
				 path, strerror(errno));
			rv = STORE_EIO;
			goto err_after_opendir;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (info->n_files == cap) {
			uint32_t ncap = cap == 0 ? 64 : cap * 2;
			void *p;

			if (cap >= STORE_COPY_FILES_MAX) {
				snprintf(errmsg, STORE_ERRMSG_SIZE,
					 "list %.200s: more than %d files", dir,
					 STORE_COPY_FILES_MAX);
				rv = STORE_EINVAL;
				goto err_after_opendir;
			}
			p = realloc(info->files, ncap * sizeof *info->files);
			if (p == NULL) {
				snprintf(errmsg, STORE_ERRMSG_SIZE,
					 "list %.200s: out of memory", dir);
				rv = STORE_ENOMEM;
				goto err_after_opendir;
			}
			info->files = p;
			cap = ncap;
		}
		memcpy(info->files[info->n_files].name, de->d_name, len + 1);
		info->files[info->n_files].size = (uint64_t)st.st_size;
		info->n_files++;
	}
	closedir(d);
	if (info->n_files > 0)
		qsort(info->files, info->n_files, sizeof *info->files,
		      copy_file_cmp);
	rv = read_identity(source_dir != NULL ? source_dir : dir,
			   info->identity, errmsg);
	if (rv == 0)
		rv = read_applied_readonly(dir, &info->applied_index,
					   &info->last_position, errmsg);
	if (rv != 0)
		store_copy_info_close(info);
	return rv;

err_after_opendir:
	closedir(d);
	store_copy_info_close(info);
	return rv;
}

void store_copy_info_close(struct store_copy_info *info)
{
	free(info->files);
	info->files = NULL;
	info->n_files = 0;
}

int store_restore_prepare(const char *dir, uint64_t *last_position,
			  char *errmsg)
{
	static const char meta_end[] = "m0"; /* '0' follows '/' */
	struct store s;
	uint8_t val[16];
	char *err = NULL;
	int rv;

	rv = store_open(&s, dir, NULL);
	if (rv != 0) {
		snprintf(errmsg, STORE_ERRMSG_SIZE, "%.255s", s.errmsg);
		return rv;
	}
	rocksdb_writebatch_clear(s.i->batch);
	/* Every replicated meta key ("m/" up to "m0"): the member table of
	 * the old cluster. */
	rocksdb_writebatch_delete_range_cf(s.i->batch, s.i->cf[CF_DEFAULT],
					   META_PREFIX, META_PREFIX_LEN,
					   meta_end, sizeof meta_end - 1);
	put_u64(val, 0);
	put_u64(val + 8, s.i->last_position);
	batch_put(s.i, CF_DEFAULT, KEY_APPLIED, strlen(KEY_APPLIED), val, 16);
	rocksdb_writeoptions_set_sync(s.i->wopts, 1);
	rocksdb_write(s.i->db, s.i->wopts, s.i->batch, &err);
	rocksdb_writebatch_clear(s.i->batch);
	if (err != NULL) {
		rv = rocks_error(&s, err, "restore: write");
		snprintf(errmsg, STORE_ERRMSG_SIZE, "%.255s", s.errmsg);
		store_close(&s);
		return rv;
	}
	s.i->applied_index = 0;
	if (last_position != NULL)
		*last_position = s.i->last_position;
	store_close(&s);
	return 0;
}

static uint64_t fnv_len(uint64_t h, uint64_t len)
{
	uint8_t b[8];

	put_u64(b, len);
	return store_fnv(h, b, 8);
}

int store_digest(struct store *s, unsigned cfs, uint64_t *digest)
{
	static const struct {
		unsigned bit;
		int cf;
	} order[] = { { STORE_CF_LOG, CF_LOG },
		      { STORE_CF_VERSIONS, CF_VERSIONS },
		      { STORE_CF_DEDUP, CF_DEDUP },
		      { STORE_CF_META, CF_DEFAULT } };
	struct store_int *i = s->i;
	uint64_t h = STORE_FNV_OFFSET;
	struct read_view v;
	size_t n;

	view_open(i, &v);
	for (n = 0; n < sizeof order / sizeof order[0]; n++) {
		rocksdb_iterator_t *it;
		char *err = NULL;

		if ((cfs & order[n].bit) == 0)
			continue;
		h = fnv_len(h, order[n].bit);
		it = rocksdb_create_iterator_cf(i->db, v.ro,
						i->cf[order[n].cf]);
		for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
		     rocksdb_iter_next(it)) {
			size_t klen;
			size_t vlen;
			const char *k = rocksdb_iter_key(it, &klen);
			const char *val = rocksdb_iter_value(it, &vlen);

			h = fnv_len(h, klen);
			h = store_fnv(h, k, klen);
			h = fnv_len(h, vlen);
			h = store_fnv(h, val, vlen);
		}
		rocksdb_iter_get_error(it, &err);
		rocksdb_iter_destroy(it);
		if (err != NULL) {
			view_close(i, &v);
			return rocks_error(s, err, "digest");
		}
	}
	view_close(i, &v);
	*digest = h;
	return 0;
}

/* The column family named by one STORE_CF_* bit, or -1. */
static int cf_of(unsigned bit)
{
	switch (bit) {
	case STORE_CF_LOG:
		return CF_LOG;
	case STORE_CF_VERSIONS:
		return CF_VERSIONS;
	case STORE_CF_DEDUP:
		return CF_DEDUP;
	case STORE_CF_META:
		return CF_DEFAULT;
	default:
		return -1;
	}
}

int store_debug_put(struct store *s, unsigned cf, const void *key,
		    size_t key_len, const void *val, size_t val_len)
{
	int k = cf_of(cf);
	char *err = NULL;

	if (k < 0)
		return set_error(s, STORE_EINVAL, "debug put: bad cf %u", cf);
	/* A raw write may change any head or writer: the cache must not
	 * answer for the old values. */
	head_cache_clear(&s->i->heads);
	rocksdb_put_cf(s->i->db, s->i->wopts, s->i->cf[k], key, key_len, val,
		       val_len, &err);
	if (err != NULL)
		return rocks_error(s, err, "debug put");
	return 0;
}

int store_debug_get(struct store *s, unsigned cf, const void *key,
		    size_t key_len, void **val, size_t *val_len)
{
	int k = cf_of(cf);
	char *err = NULL;
	char *v;

	*val = NULL;
	*val_len = 0;
	if (k < 0)
		return set_error(s, STORE_EINVAL, "debug get: bad cf %u", cf);
	v = rocksdb_get_cf(s->i->db, s->i->ropts, s->i->cf[k], key, key_len,
			   val_len, &err);
	if (err != NULL)
		return rocks_error(s, err, "debug get");
	if (v == NULL)
		return 0;
	*val = malloc(*val_len > 0 ? *val_len : 1);
	if (*val == NULL) {
		rocksdb_free(v);
		return set_error(s, STORE_ENOMEM, "debug get: out of memory");
	}
	memcpy(*val, v, *val_len);
	rocksdb_free(v);
	return 0;
}

int store_debug_delete(struct store *s, unsigned cf, const void *key,
		       size_t key_len)
{
	int k = cf_of(cf);
	char *err = NULL;

	if (k < 0)
		return set_error(s, STORE_EINVAL, "debug delete: bad cf %u",
				 cf);
	head_cache_clear(&s->i->heads);
	rocksdb_delete_cf(s->i->db, s->i->wopts, s->i->cf[k], key, key_len,
			  &err);
	if (err != NULL)
		return rocks_error(s, err, "debug delete");
	return 0;
}
