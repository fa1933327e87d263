/* Helpers shared by the storage tests: scratch directories and a compact
 * way to build transactions and entries. */
#ifndef CAIRN_TESTS_STORAGE_TESTUTIL_H
#define CAIRN_TESTS_STORAGE_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* A fresh empty directory under $CAIRN_TEST_TMP (or /tmp), named after
 * @tag; the returned string is malloc'd. Aborts the test on failure. */
char *tu_tempdir(const char *tag);

/* rm -rf @dir, then free(@dir). */
void tu_rmdir(char *dir);

/* Opens a store in @dir, failing the test on error. */
void tu_open(struct store *s, const char *dir);

/* A single-part transaction of @n events of type "T" with @data_len bytes
 * of data each, all built from @seed. The returned object owns everything;
 * tu_txn_free() releases it. */
struct tu_txn {
	struct store_txn txn;
	struct store_part parts[8];
	struct store_event *events; /* owned */
	uint8_t *data;              /* owned */
	char streams[8][STORE_STREAM_NAME_MAX + 1];
};

/* Makes a transaction with one part per stream in @streams (NULL
 * terminated, at most 8), @n events per part, every part with @expect. No
 * client id unless tu_txn_client() is called. */
struct tu_txn *tu_txn_make(const char *const *streams,
			   struct store_expect expect, uint32_t n,
			   uint32_t data_len, uint64_t seed);
void tu_txn_client(struct tu_txn *t, uint8_t client_byte, uint64_t seq);
void tu_txn_free(struct tu_txn *t);

/* Builds an entry of the given transactions and applies it at @index,
 * failing the test on a storage error. Results stay in @r. */
void tu_apply(struct store *s, uint64_t index, struct store_results *r,
	      struct tu_txn *const *txns, size_t n);

/* Expectation shorthands. */
struct store_expect tu_any(void);
struct store_expect tu_no_stream(void);
struct store_expect tu_exists(void);
struct store_expect tu_exact(uint64_t v);

#endif
