/* What storage/'s own files share and nobody else may use: byte order
 * helpers, key layouts and the RocksDB handles behind struct store. */
#ifndef CAIRN_STORAGE_STORE_INT_H
#define CAIRN_STORAGE_STORE_INT_H

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

/* Format versions: the first byte of every entry body, transaction and
 * record. A decoder rejects any other value. */
#define STORE_ENTRY_FORMAT  1
#define STORE_TXN_FORMAT    1
#define STORE_RECORD_FORMAT 1
/* The layout of keys and values in the column families (meta "format"). */
#define STORE_LAYOUT_FORMAT 1

/* "CRNE" */
#define STORE_ENTRY_MAGIC  0x454e5243u
#define STORE_ENTRY_HEADER 16

/* Transaction header: format, flags, reserved u16, n_parts, commit time. */
#define STORE_TXN_HEADER 16
/* Optional client block: id and sequence. */
#define STORE_TXN_CLIENT      24
#define STORE_TXN_FLAG_CLIENT 0x01u
/* State operations follow the parts: u32 count, then each op. */
#define STORE_TXN_FLAG_OPS 0x02u
/* An op without its name and data: kind, name length, expected, value,
 * data length. */
#define STORE_OP_FIXED 22
/* Part header without the name: name length, expect kind, version, count. */
#define STORE_PART_FIXED 14
/* Event without type, data and metadata: id, type length, schema, event
 * time, data length, metadata length. */
#define STORE_EVENT_FIXED 35

/* Record layout (see docs/storage-format.md). */
#define STORE_RECORD_HEADER      80
#define STORE_RECORD_TRAILER     4
#define STORE_RECORD_FLAG_CLIENT 0x01u

static inline void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)v);
	put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/* Keys are big-endian so that RocksDB's bytewise order is numeric order. */
static inline void put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* FNV-1a, 64 bits: the digest of column families and the overlay's hash.
 * Not cryptographic; it tells apart stores that differ by accident. */
#define STORE_FNV_OFFSET 0xcbf29ce484222325ull

static inline uint64_t store_fnv(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t k;

	for (k = 0; k < len; k++) {
		h ^= p[k];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Formats into @errmsg (STORE_ERRMSG_SIZE bytes); NULL is allowed. */
void store_errorf(char *errmsg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Bytes of the record for @e at the given coordinates. */
size_t store_record_size(uint32_t stream_len, const struct store_event *e);

/* Encodes one record into @buf (store_record_size() bytes), checksum
 * included. */
void store_record_encode(uint8_t *buf, uint64_t position, uint64_t version,
			 const char *stream, uint32_t stream_len,
			 const struct store_event *e,
			 const struct store_txn *t);

/* Kinds of overlay and head cache keys: the first byte, then the RocksDB
 * key of the same thing. A head's is the `versions` key itself. */
#define VERSIONS_HEAD      'H' /* + stream: version, last position */
#define OVERLAY_WRITER     'W' /* + client id: high-water mark */
#define OVERLAY_COMMITTED  'C' /* + client id + seq: result index */
#define OVERLAY_CHECKPOINT 'K' /* + checkpoint name: value */

/* The entry overlay (overlay.c): byte keys to two u64 values. */
struct overlay_slot {
	uint64_t hash;
	uint32_t key_off; /* in the arena */
	uint32_t key_len; /* 0 marks an empty slot */
	uint64_t v[2];
};

struct overlay {
	struct overlay_slot *slots; /* owned, cap of them */
	uint32_t cap;               /* a power of two, or 0 */
	uint32_t n;                 /* slots in use */
	uint8_t *arena;             /* owned: the keys */
	size_t arena_len;
	size_t arena_cap;
};

void overlay_init(struct overlay *o);
void overlay_close(struct overlay *o);
/* Forgets every key (the next entry starts). */
void overlay_reset(struct overlay *o);
/* The two values stored under @key, or NULL. */
const uint64_t *overlay_get(const struct overlay *o, const void *key,
			    size_t len);
/* Inserts or replaces. Returns 0 or STORE_ENOMEM. */
int overlay_put(struct overlay *o, const void *key, size_t len, uint64_t v0,
		uint64_t v1);

/* The head cache (overlay.c): committed stream heads and writer high-water
 * marks, under the same keys as the overlay's ('H' + stream, 'W' + client
 * id), so that lookups need not reach RocksDB. A value is always what
 * RocksDB holds for that key: filled from a RocksDB read, updated from an
 * entry's overlay only once its batch is written, cleared by raw writes.
 *
 * Bound: two generations, each an overlay of at most gen_max keys and
 * key_bytes_max key bytes. Keys go into the young one; when it is full the
 * old one is dropped whole and the young one becomes old (O(1) amortised).
 * A key found only in the old generation is copied into the young one, so
 * keys in use survive; a key in both has its current value in the young
 * one, which lookups consult first. */

/* Key bytes per cached key that the bound allows on average: a stream name
 * of 63 bytes; longer names make a generation fill before gen_max keys. */
#define HEAD_CACHE_KEY_BYTES 64

/* A writer's value: v[0] its high-water mark, v[1] 1 when it has committed
 * anything (a writer key is in RocksDB), 0 when known absent. A stream's
 * value: v[0] version and v[1] last position, 0 and 0 for a stream without
 * events, which is what a missing head key means. */
#define HEAD_CACHE_WRITER_KNOWN 1

struct head_cache {
	struct overlay gen[2]; /* owned: the generations */
	unsigned young;        /* index in gen of the young generation */
	bool off;              /* disabled: every lookup misses */
	uint32_t gen_max;      /* keys per generation */
	size_t key_bytes_max;  /* key bytes per generation */
	uint64_t hits;         /* see struct store_head_cache_stats */
	uint64_t misses;
	uint64_t dropped;
};

/* Sets up an empty cache of about @entries keys (0: the default), or a
 * disabled one. Allocates nothing until the first insert. */
void head_cache_init(struct head_cache *c, uint32_t entries, bool off);
void head_cache_close(struct head_cache *c);
/* Forgets every key and gives the memory back. */
void head_cache_clear(struct head_cache *c);
/* Copies the values cached under @key into @v and returns true, or returns
 * false (a miss, counted). */
bool head_cache_get(struct head_cache *c, const void *key, size_t len,
		    uint64_t v[2]);
/* Inserts or replaces @key's values. Never fails: when memory runs out the
 * whole cache is cleared, which only costs lookups. */
void head_cache_put(struct head_cache *c, const void *key, size_t len,
		    uint64_t v0, uint64_t v1);
/* Takes over the heads and writers of an entry whose batch was written:
 * every 'H' and 'W' key of @o, as committed. */
void head_cache_update(struct head_cache *c, const struct overlay *o);
/* Fills in the cache's part of @st. */
void head_cache_stats(const struct head_cache *c,
		      struct store_head_cache_stats *st);

#endif /* CAIRN_STORAGE_STORE_INT_H */
