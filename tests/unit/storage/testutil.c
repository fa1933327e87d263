/* Helpers shared by the storage tests; see testutil.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"

char *tu_tempdir(const char *tag)
{
	const char *base = getenv("CAIRN_TEST_TMP");
	char tmpl[4096];
	char *dir;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(tmpl, sizeof tmpl, "%s/cairn-%s-XXXXXX", base, tag);
	dir = mkdtemp(tmpl);
	assert_non_null(dir);
	dir = strdup(dir);
	assert_non_null(dir);
	return dir;
}

void tu_rmdir(char *dir)
{
	char cmd[4200];

	if (dir == NULL)
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

void tu_open(struct store *s, const char *dir)
{
	int rv = store_open(s, dir, NULL);

	if (rv != 0)
		fail_msg("store_open(%s): %s", dir, s->errmsg);
}

struct tu_txn *tu_txn_make(const char *const *streams,
			   struct store_expect expect, uint32_t n,
			   uint32_t data_len, uint64_t seed)
{
	struct tu_txn *t = calloc(1, sizeof *t);
	uint32_t n_parts = 0;
	uint32_t i;
	uint32_t k;

	assert_non_null(t);
	while (streams[n_parts] != NULL) {
		assert_true(n_parts < 8);
		n_parts++;
	}
	t->events = calloc((size_t)n_parts * n + 1, sizeof *t->events);
	t->data = malloc((size_t)data_len + 1);
	assert_non_null(t->events);
	assert_non_null(t->data);
	for (i = 0; i < data_len; i++)
		t->data[i] = (uint8_t)(seed * 31 + i);
	for (i = 0; i < n_parts; i++) {
		snprintf(t->streams[i], sizeof t->streams[i], "%s", streams[i]);
		for (k = 0; k < n; k++) {
			struct store_event *e = &t->events[i * n + k];
			uint64_t v = seed * 1000003u + i * 1009u + k;

			memcpy(e->id, &v, sizeof v);
			memcpy(e->id + 8, &seed, sizeof seed);
			e->type = "T";
			e->type_len = 1;
			e->data = t->data;
			e->data_len = data_len;
		}
		t->parts[i].stream = t->streams[i];
		t->parts[i].stream_len = (uint32_t)strlen(t->streams[i]);
		t->parts[i].expect = expect;
		t->parts[i].n_events = n;
		t->parts[i].events = &t->events[i * n];
	}
	t->txn.commit_time_us = 1700000000000000ull + seed;
	t->txn.n_parts = n_parts;
	t->txn.parts = t->parts;
	return t;
}

void tu_txn_client(struct tu_txn *t, uint8_t client_byte, uint64_t seq)
{
	t->txn.has_client = true;
	memset(t->txn.client_id, client_byte, sizeof t->txn.client_id);
	t->txn.client_seq = seq;
}

void tu_txn_free(struct tu_txn *t)
{
	if (t == NULL)
		return;
	free(t->events);
	free(t->data);
	free(t);
}

void tu_apply(struct store *s, uint64_t index, struct store_results *r,
	      struct tu_txn *const *txns, size_t n)
{
	struct store_entry_builder b;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *buf;
	size_t len;
	size_t i;
	int rv;

	store_entry_builder_init(&b);
	for (i = 0; i < n; i++) {
		rv = store_entry_add(&b, &txns[i]->txn, errmsg);
		if (rv != 0)
			fail_msg("store_entry_add: %s", errmsg);
	}
	assert_int_equal(store_entry_finish(&b, &buf, &len), 0);
	rv = store_apply(s, index, buf, len, r);
	if (rv != 0)
		fail_msg("store_apply(%llu): %s", (unsigned long long)index,
			 s->errmsg);
	store_entry_builder_close(&b);
}

struct store_expect tu_any(void)
{
	struct store_expect e = { STORE_EXPECT_ANY, 0 };
	return e;
}

struct store_expect tu_no_stream(void)
{
	struct store_expect e = { STORE_EXPECT_NO_STREAM, 0 };
	return e;
}

struct store_expect tu_exists(void)
{
	struct store_expect e = { STORE_EXPECT_EXISTS, 0 };
	return e;
}

struct store_expect tu_exact(uint64_t v)
{
	struct store_expect e = { STORE_EXPECT_EXACT, v };
	return e;
}
