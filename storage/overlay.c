/* The entry overlay: what the transactions applied so far in the current
 * entry changed (stream heads, writers' high-water marks, committed client
 * sequences), so that later transactions of the same entry see it before the
 * entry's write batch reaches RocksDB. A hash table with open addressing
 * and linear probing; keys are copied into an arena; everything is dropped
 * when the next entry starts. Only store.c uses it. */
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
