/* A small chained hash map from byte keys to a pointer and two counters,
 * used by the leader's write path (pipeline.c) for the streams that have
 * proposals in flight and for the (client id, sequence) pairs in flight.
 * Its size is bounded by the requests in flight; it grows by doubling and
 * never shrinks below what it reached. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "consensus_int.h"

/* FNV-1a, 64 bits: keys are stream names and client ids, not adversarial
 * in a way a leader cares about (a collision costs a compare). */
uint64_t consensus_hash_bytes(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t k;

	for (k = 0; k < len; k++) {
		h ^= p[k];
		h *= 0x100000001b3ull;
	}
	return h;
}

void cmap_init(struct cmap *m)
{
	memset(m, 0, sizeof *m);
}

void cmap_close(struct cmap *m)
{
	uint32_t b;

	for (b = 0; b < m->n_buckets; b++) {
		struct cmap_node *n = m->buckets[b];

		while (n != NULL) {
			struct cmap_node *next = n->next;

			free(n);
			n = next;
		}
	}
	free(m->buckets);
	memset(m, 0, sizeof *m);
}

struct cmap_node *cmap_get(const struct cmap *m, const void *key, size_t len)
{
	uint64_t h;
	struct cmap_node *n;

	if (m->n_buckets == 0)
		return NULL;
	h = consensus_hash_bytes(key, len);
	for (n = m->buckets[h & (m->n_buckets - 1)]; n != NULL; n = n->next)
		if (n->hash == h && n->key_len == len &&
		    memcmp(n->key, key, len) == 0)
			return n;
	return NULL;
}

/* Doubles the bucket array (or makes the first one). */
static int grow(struct cmap *m)
{
	uint32_t cap = m->n_buckets > 0 ? m->n_buckets * 2 : 64;
	struct cmap_node **b = calloc(cap, sizeof *b);
	uint32_t k;

	if (b == NULL)
		return -1;
	for (k = 0; k < m->n_buckets; k++) {
		struct cmap_node *n = m->buckets[k];

		while (n != NULL) {
			struct cmap_node *next = n->next;
			uint32_t slot = (uint32_t)(n->hash & (cap - 1));

			n->next = b[slot];
			b[slot] = n;
			n = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = cap;
	return 0;
}

struct cmap_node *cmap_insert(struct cmap *m, const void *key, size_t len)
{
	struct cmap_node *n;
	uint32_t slot;

	assert(cmap_get(m, key, len) == NULL);
	if (m->n >= m->n_buckets && grow(m) != 0)
		return NULL;
	n = calloc(1, sizeof *n + len);
	if (n == NULL)
		return NULL;
	n->hash = consensus_hash_bytes(key, len);
	n->key_len = (uint32_t)len;
	memcpy(n->key, key, len);
	slot = (uint32_t)(n->hash & (m->n_buckets - 1));
	n->next = m->buckets[slot];
	m->buckets[slot] = n;
	m->n++;
	return n;
}

void cmap_remove(struct cmap *m, struct cmap_node *node)
{
	struct cmap_node **p = &m->buckets[node->hash & (m->n_buckets - 1)];

	while (*p != node)
		p = &(*p)->next;
	*p = node->next;
	m->n--;
	free(node);
}
