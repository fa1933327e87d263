/* Hash tables of byte keys to two u64 values, with open addressing and
 * linear probing; keys are copied into an arena. Two uses, both by store.c:
 *
 * - The entry overlay: what the transactions applied so far in the current
 *   entry changed (stream heads, writers' high-water marks, committed
 *   client sequences), so that later transactions of the same entry see it
 *   before the entry's write batch reaches RocksDB. Everything is dropped
 *   when the next entry starts.
 * - The head cache: committed stream heads and writers' high-water marks
 *   kept across entries in two generations of such tables, so that the
 *   lookups of store_apply() and the leader's pre-checks seldom reach
 *   RocksDB (see store_int.h and docs/design.md). */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* A table that grew past this many slots for one large entry is given
 * back afterwards, so one burst does not cost a large clear per entry. */
#define OVERLAY_KEEP_SLOTS 4096

void overlay_init(struct overlay *o)
{
	memset(o, 0, sizeof *o);
}

void overlay_close(struct overlay *o)
{
	free(o->slots);
	free(o->arena);
	memset(o, 0, sizeof *o);
}

void overlay_reset(struct overlay *o)
{
	if (o->cap > OVERLAY_KEEP_SLOTS) {
		free(o->slots);
		o->slots = NULL;
		o->cap = 0;
	} else if (o->n > 0) {
		memset(o->slots, 0, sizeof *o->slots * o->cap);
	}
	o->n = 0;
	o->arena_len = 0;
}

static uint64_t hash_bytes(const void *key, size_t len)
{
	return store_fnv(STORE_FNV_OFFSET, key, len);
}

static struct overlay_slot *find(const struct overlay *o, const void *key,
				 size_t len, uint64_t h)
{
	uint32_t mask = o->cap - 1;
	uint32_t k = (uint32_t)h & mask;

	for (;;) {
		struct overlay_slot *s = &o->slots[k];

		if (s->key_len == 0)
			return s;
		if (s->hash == h && s->key_len == len &&
		    memcmp(o->arena + s->key_off, key, len) == 0)
			return s;
		k = (k + 1) & mask;
	}
}

static int grow(struct overlay *o)
{
	struct overlay_slot *old = o->slots;
	uint32_t old_cap = o->cap;
	uint32_t cap = old_cap > 0 ? old_cap * 2 : 64;
	uint32_t k;

	o->slots = calloc(cap, sizeof *o->slots);
	if (o->slots == NULL) {
		o->slots = old;
		return STORE_ENOMEM;
	}
	o->cap = cap;
	for (k = 0; k < old_cap; k++) {
		struct overlay_slot *s;

		if (old[k].key_len == 0)
			continue;
		s = find(o, o->arena + old[k].key_off, old[k].key_len,
			 old[k].hash);
		*s = old[k];
	}
	free(old);
	return 0;
}

const uint64_t *overlay_get(const struct overlay *o, const void *key,
			    size_t len)
{
	const struct overlay_slot *s;

	if (o->n == 0)
		return NULL;
	s = find(o, key, len, hash_bytes(key, len));
	return s->key_len != 0 ? s->v : NULL;
}

int overlay_put(struct overlay *o, const void *key, size_t len, uint64_t v0,
		uint64_t v1)
{
	struct overlay_slot *s;
	uint64_t h = hash_bytes(key, len);

	assert(len > 0);
	/* Keep the table at most half full so probes stay short. */
	if ((o->n + 1) * 2 > o->cap && grow(o) != 0)
		return STORE_ENOMEM;
	s = find(o, key, len, h);
	if (s->key_len == 0) {
		if (o->arena_len + len > o->arena_cap) {
			size_t cap = o->arena_cap > 0 ? o->arena_cap : 4096;
			uint8_t *p;

			while (cap < o->arena_len + len)
				cap *= 2;
			p = realloc(o->arena, cap);
			if (p == NULL)
				return STORE_ENOMEM;
			o->arena = p;
			o->arena_cap = cap;
		}
		memcpy(o->arena + o->arena_len, key, len);
		s->hash = h;
		s->key_off = (uint32_t)o->arena_len;
		s->key_len = (uint32_t)len;
		o->arena_len += len;
		o->n++;
	}
	s->v[0] = v0;
	s->v[1] = v1;
	return 0;
}

/* ------------------------------------------------------------------------
 * The head cache
 * ------------------------------------------------------------------------ */

/* Largest head_cache_entries honoured: slot indexes and key offsets of a
 * generation stay within 32 bits (2^24 keys, 1 GiB of keys), 4 GiB in all. */
#define HEAD_CACHE_ENTRIES_MAX (1u << 25)

/* The overlay's first table and arena (see grow() and overlay_put()). */
#define OVERLAY_MIN_SLOTS 64u
#define OVERLAY_MIN_ARENA 4096u

static size_t pow2_at_least(size_t n)
{
	size_t p = 1;

	while (p < n)
		p *= 2;
	return p;
}

/* Slots a generation's table reaches with gen_max keys: overlay_put keeps
 * it at most half full. */
static size_t gen_slots_max(const struct head_cache *c)
{
	size_t slots = pow2_at_least((size_t)c->gen_max * 2);

	return slots > OVERLAY_MIN_SLOTS ? slots : OVERLAY_MIN_SLOTS;
}

void head_cache_init(struct head_cache *c, uint32_t entries, bool off)
{
	size_t keys;

	memset(c, 0, sizeof *c);
	overlay_init(&c->gen[0]);
	overlay_init(&c->gen[1]);
	c->off = off;
	if (entries == 0)
		entries = STORE_HEAD_CACHE_ENTRIES_DEFAULT;
	if (entries > HEAD_CACHE_ENTRIES_MAX)
		entries = HEAD_CACHE_ENTRIES_MAX;
	c->gen_max = entries / 2 + entries % 2;
	/* A power of two from the arena's first size on, so the arena's
	 * doublings end exactly at the bound. */
	keys = pow2_at_least(c->gen_max) * HEAD_CACHE_KEY_BYTES;
	c->key_bytes_max = keys > OVERLAY_MIN_ARENA ? keys : OVERLAY_MIN_ARENA;
}

void head_cache_close(struct head_cache *c)
{
	overlay_close(&c->gen[0]);
	overlay_close(&c->gen[1]);
}

void head_cache_clear(struct head_cache *c)
{
	c->dropped += c->gen[0].n + c->gen[1].n;
	overlay_close(&c->gen[0]);
	overlay_close(&c->gen[1]);
}

/* Forgets every key of @o but keeps its memory: a generation refills to
 * the same size. */
static void overlay_clear(struct overlay *o)
{
	if (o->n > 0)
		memset(o->slots, 0, sizeof *o->slots * o->cap);
	o->n = 0;
	o->arena_len = 0;
}

/* Drops the old generation; the young one becomes old. */
static void rotate(struct head_cache *c)
{
	struct overlay *old = &c->gen[c->young ^ 1u];

	c->dropped += old->n;
	overlay_clear(old);
	c->young ^= 1u;
}

/* The values under @key in generation @o, writable, or NULL. */
static uint64_t *gen_find(struct overlay *o, const void *key, size_t len)
{
	struct overlay_slot *s;

	if (o->n == 0)
		return NULL;
	s = find(o, key, len, hash_bytes(key, len));
	return s->key_len != 0 ? s->v : NULL;
}

void head_cache_put(struct head_cache *c, const void *key, size_t len,
		    uint64_t v0, uint64_t v1)
{
	struct overlay *young = &c->gen[c->young];
	uint64_t *v;

	if (c->off)
		return;
	assert(len > 0);
	/* Fits an empty generation's key bytes: a rotation makes room. */
	assert(len <= OVERLAY_MIN_ARENA);
	v = gen_find(young, key, len);
	if (v != NULL) {
		v[0] = v0;
		v[1] = v1;
		return;
	}
	if (young->n >= c->gen_max ||
	    young->arena_len + len > c->key_bytes_max) {
		rotate(c);
		young = &c->gen[c->young];
	}
	/* A failed insert must not leave an older value of @key visible in
	 * the old generation. */
	if (overlay_put(young, key, len, v0, v1) != 0)
		head_cache_clear(c);
}

bool head_cache_get(struct head_cache *c, const void *key, size_t len,
		    uint64_t v[2])
{
	const uint64_t *found;

	if (c->off) {
		c->misses++;
		return false;
	}
	found = gen_find(&c->gen[c->young], key, len);
	if (found != NULL) {
		v[0] = found[0];
		v[1] = found[1];
		c->hits++;
		return true;
	}
	found = gen_find(&c->gen[c->young ^ 1u], key, len);
	if (found == NULL) {
		c->misses++;
		return false;
	}
	v[0] = found[0];
	v[1] = found[1];
	c->hits++;
	/* In use: keep it when the old generation goes. */
	head_cache_put(c, key, len, v[0], v[1]);
	return true;
}

void head_cache_update(struct head_cache *c, const struct overlay *o)
{
	uint32_t k;

	if (c->off || o->n == 0)
		return;
	for (k = 0; k < o->cap; k++) {
		const struct overlay_slot *s = &o->slots[k];
		const uint8_t *key = o->arena + s->key_off;

		if (s->key_len == 0)
			continue;
		if (key[0] == VERSIONS_HEAD)
			head_cache_put(c, key, s->key_len, s->v[0], s->v[1]);
		else if (key[0] == OVERLAY_WRITER)
			head_cache_put(c, key, s->key_len, s->v[0],
				       HEAD_CACHE_WRITER_KNOWN);
	}
}

void head_cache_stats(const struct head_cache *c,
		      struct store_head_cache_stats *st)
{
	int g;

	memset(st, 0, sizeof *st);
	st->hits = c->hits;
	st->misses = c->misses;
	st->dropped = c->dropped;
	for (g = 0; g < 2; g++) {
		st->entries += c->gen[g].n;
		st->bytes +=
			(uint64_t)c->gen[g].cap * sizeof(struct overlay_slot) +
			c->gen[g].arena_cap;
	}
	if (!c->off) {
		st->max_entries = 2 * (uint64_t)c->gen_max;
		st->max_bytes = 2 * ((uint64_t)gen_slots_max(c) *
					     sizeof(struct overlay_slot) +
				     c->key_bytes_max);
	}
}
