/* Unit tests of the HTTP gateway's JSON codec (node/http_json.c), the
 * contract of docs/http-api.md between request bodies and store
 * transactions, and between event records and the JSON reads return. They
 * pin:
 *
 *   append    POST /streams/{stream} bodies: events as an array or one
 *             object, data and metadata of every JSON kind kept as compact
 *             text, ids kept or made, and every refusal with its code;
 *   sync      POST /sync bodies: the client id, the seqs, the shape of
 *             batches and streams, the limits, the keys of the batches;
 *   headers   http_parse_expected and http_parse_u64;
 *   render    http_event_json: embedded JSON, base64, what is left out;
 *   memory    the tree budget (a pathological body is refused with
 *             too_large while the codec's memory stays bounded) and the
 *             out-of-memory paths.
 *
 * malloc, calloc, realloc and free are wrapped (GNU ld --wrap, see
 * CMakeLists.txt) for the codec and jansson's allocations through it, so
 * the tests can measure the peak of live bytes and make allocations fail.
 *
 *   http_json_tests [append|sync|headers|render|memory]   (no argument:
 *   every group) */
#include <inttypes.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_json.h"
#include "store.h"
#include "uuid.h"

/* ------------------------------------------------------------------------
 * Allocation accounting and failure injection (GNU ld --wrap)
 * ------------------------------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static bool counting;      /* count (and maybe fail) allocations */
static unsigned allocs;    /* allocations seen while counting */
static int allocs_to_pass; /* allocations that succeed before every later
			    * one fails; -1: none fails */
static bool fail_one;      /* only the first allocation after those
			    * fails; the later ones succeed again */
static long long live;     /* bytes allocated minus bytes freed while
			    * counting */
static long long peak;     /* the highest live seen while counting */

static bool alloc_fails(void)
{
	if (!counting)
		return false;
	allocs++;
	if (allocs_to_pass < 0)
		return false;
	if (allocs_to_pass == 0) {
		if (fail_one)
			allocs_to_pass = -1;
		return true;
	}
	allocs_to_pass--;
	return false;
}

static void *counted(void *p)
{
	if (counting && p != NULL) {
		live += (long long)malloc_usable_size(p);
		if (live > peak)
			peak = live;
	}
	return p;
}

void *__wrap_malloc(size_t n)
{
	return alloc_fails() ? NULL : counted(__real_malloc(n));
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : counted(__real_calloc(n, size));
}

void *__wrap_realloc(void *p, size_t n)
{
	void *q;

	if (alloc_fails())
		return NULL;
	if (counting && p != NULL)
		live -= (long long)malloc_usable_size(p);
	q = __real_realloc(p, n);
	if (q == NULL && p != NULL && counting)
		live += (long long)malloc_usable_size(p);
	return counted(q);
}

void __wrap_free(void *p)
{
	if (counting && p != NULL)
		live -= (long long)malloc_usable_size(p);
	__real_free(p);
}

/* Starts counting; with @pass >= 0, allocations after the first @pass
 * fail. */
static void count_allocs(int pass)
{
	allocs = 0;
	allocs_to_pass = pass;
	fail_one = false;
	live = 0;
	peak = 0;
	counting = true;
}

/* Counts, and makes only the allocation after the first @pass fail. */
static void fail_one_alloc(int pass)
{
	count_allocs(pass);
	fail_one = true;
}

/* Stops counting and returns the allocations seen. */
static unsigned stop_counting(void)
{
	counting = false;
	allocs_to_pass = -1;
	return allocs;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static struct http_body body; /* the last parse's result */
static char err[512];         /* the last parse's message */

static int append_to(const char *stream, const char *json)
{
	return http_parse_append(json, strlen(json), stream, strlen(stream),
				 &body, err, sizeof err);
}

static int append(const char *json)
{
	return append_to("order-1", json);
}

static int sync_body(const char *json)
{
	return http_parse_sync(json, strlen(json), &body, err, sizeof err);
}

/* A failed parse: @want, a message, and nothing left in the body. */
static void assert_refused(int rv, int want)
{
	static const struct http_body empty;

	if (rv != want)
		fail_msg("got %d (%s), want %d (%s): %s", rv,
			 http_json_code(rv), want, http_json_code(want), err);
	assert_true(err[0] != '\0');
	assert_memory_equal(&body, &empty, sizeof body);
}

static void assert_ok(int rv)
{
	if (rv != 0)
		fail_msg("refused with %s: %s", http_json_code(rv), err);
}

/* The only event of the last append. */
static const struct store_event *only_event(void)
{
	assert_int_equal(body.n_batches, 1);
	assert_int_equal(body.batches[0].txn.n_parts, 1);
	assert_int_equal(body.batches[0].txn.parts[0].n_events, 1);
	return &body.batches[0].txn.parts[0].events[0];
}

static void assert_text(const void *p, uint32_t len, const char *want)
{
	if (len != strlen(want) || memcmp(p, want, len) != 0)
		fail_msg("got '%.*s', want '%s'", (int)len, (const char *)p,
			 want);
}

/* A body of @n events {"type":"t"} as one array, in a new string. */
static char *events_array(size_t n)
{
	static const char ev[] = "{\"type\":\"t\"},";
	char *s = malloc(n * (sizeof ev - 1) + 3);
	size_t len = 0;
	size_t i;

	assert_non_null(s);
	s[len++] = '[';
	for (i = 0; i < n; i++) {
		memcpy(s + len, ev, sizeof ev - 1);
		len += sizeof ev - 1;
	}
	s[len - 1] = ']';
	s[len] = '\0';
	return s;
}

/* ------------------------------------------------------------------------
 * append
 * ------------------------------------------------------------------------ */

static void test_append_array_gives_one_unkeyed_part_of_every_event(
	void **state)
{
	const struct store_txn *t;
	const struct store_part *p;
	char msg[STORE_ERRMSG_SIZE];

	(void)state;
	assert_ok(
		append("[{\"type\":\"A\"},{\"type\":\"B\",\"data\":1},"
		       "{\"type\":\"C\"}]"));
	assert_int_equal(body.n_batches, 1);
	assert_int_equal(body.n_events, 3);
	t = &body.batches[0].txn;
	assert_false(t->has_client);
	assert_int_equal(body.batches[0].seq, 0);
	assert_int_equal(t->n_parts, 1);
	p = &t->parts[0];
	assert_text(p->stream, p->stream_len, "order-1");
	assert_int_equal(p->expect.kind, STORE_EXPECT_ANY);
	assert_int_equal(p->n_events, 3);
	assert_text(p->events[0].type, p->events[0].type_len, "A");
	assert_text(p->events[1].type, p->events[1].type_len, "B");
	assert_text(p->events[2].type, p->events[2].type_len, "C");
	assert_int_equal(p->events[0].data_len, 0);
	assert_null(p->events[0].data);
	assert_text(p->events[1].data, p->events[1].data_len, "1");
	assert_int_equal(store_txn_validate(t, msg), 0);
	http_body_free(&body);
}

static void test_append_single_object_is_one_event(void **state)
{
	const struct store_event *e;

	(void)state;
	assert_ok(
		append("{\"type\":\"ItemAdded\",\"data\":{\"sku\":\"A1\"},"
		       "\"schema_version\":3,\"event_time_us\":-5}"));
	e = only_event();
	assert_text(e->type, e->type_len, "ItemAdded");
	assert_text(e->data, e->data_len, "{\"sku\":\"A1\"}");
	assert_int_equal(e->schema_version, 3);
	assert_int_equal(e->event_time_us, -5);
	assert_int_equal(e->metadata_len, 0);
	http_body_free(&body);
}

static void test_append_data_of_every_json_kind_kept_as_compact_text(
	void **state)
{
	static const struct {
		const char *in;
		const char *kept;
	} cases[] = {
		{ "{ \"sku\" : \"A1\", \"qty\" : 2 }",
		  "{\"sku\":\"A1\",\"qty\":2}" },
		{ "[ 1 , [ ] , { } ]", "[1,[],{}]" },
		{ "\"caf\\u00e9 \\\"q\\\"\"", "\"caf\xc3\xa9 \\\"q\\\"\"" },
		{ "-42", "-42" },
		{ "1.5", "1.5" },
		{ "true", "true" },
		{ "false", "false" },
		{ "null", "null" },
	};
	char json[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct store_event *e;

		snprintf(json, sizeof json, "[{\"type\":\"t\",\"data\":%s}]",
			 cases[i].in);
		assert_ok(append(json));
		e = only_event();
		assert_text(e->data, e->data_len, cases[i].kept);
		http_body_free(&body);
	}
}

static void test_append_metadata_kept_as_compact_text(void **state)
{
	const struct store_event *e;

	(void)state;
	assert_ok(
		append("[{\"type\":\"t\",\"metadata\":{ \"correlation_id\" "
		       ": \"c-9\" },\"data\":[ true ]}]"));
	e = only_event();
	assert_text(e->metadata, e->metadata_len,
		    "{\"correlation_id\":\"c-9\"}");
	assert_text(e->data, e->data_len, "[true]");
	http_body_free(&body);
}

static void test_append_given_id_is_parsed_and_kept(void **state)
{
	static const uint8_t want[16] = { 0x6f, 0x1c, 0x8a, 0x52, 0x3f, 0x0e,
					  0x4b, 0x8e, 0x9d, 0x7c, 0x2b, 0x5a,
					  0x1f, 0x0e, 0x9c, 0x11 };

	(void)state;
	assert_ok(
		append("[{\"type\":\"t\",\"id\":"
		       "\"6F1C8A52-3f0e-4b8e-9d7c-2b5a1f0e9c11\"}]"));
	assert_memory_equal(only_event()->id, want, 16);
	http_body_free(&body);
}

static void test_append_missing_id_gets_random_v4_uuid(void **state)
{
	uint8_t first[16];
	const uint8_t *id;

	(void)state;
	assert_ok(append("[{\"type\":\"t\"}]"));
	id = only_event()->id;
	assert_int_equal(id[6] & 0xf0, 0x40);
	assert_int_equal(id[8] & 0xc0, 0x80);
	memcpy(first, id, 16);
	http_body_free(&body);
	assert_ok(append("[{\"type\":\"t\"}]"));
	id = only_event()->id;
	assert_int_equal(id[6] & 0xf0, 0x40);
	assert_memory_not_equal(id, first, 16);
	http_body_free(&body);
}

static void test_append_bad_id_refused(void **state)
{
	(void)state;
	assert_refused(append("[{\"type\":\"t\",\"id\":\"not-a-uuid\"}]"),
		       HTTP_JSON_INVALID);
	assert_refused(append("[{\"type\":\"t\",\"id\":7}]"),
		       HTTP_JSON_INVALID);
}

static void test_append_unknown_field_refused(void **state)
{
	(void)state;
	assert_refused(append("[{\"type\":\"t\",\"colour\":\"red\"}]"),
		       HTTP_JSON_INVALID);
	assert_non_null(strstr(err, "colour"));
}

static void test_append_missing_or_bad_type_refused(void **state)
{
	char json[400];

	(void)state;
	assert_refused(append("[{\"data\":1}]"), HTTP_JSON_INVALID);
	assert_refused(append("[{\"type\":\"\"}]"), HTTP_JSON_INVALID);
	assert_refused(append("[{\"type\":5}]"), HTTP_JSON_INVALID);
	assert_refused(append("[{\"type\":\"a\"},{}]"), HTTP_JSON_INVALID);
	snprintf(json, sizeof json, "[{\"type\":\"%0256d\"}]", 0);
	assert_refused(append(json), HTTP_JSON_INVALID);
	snprintf(json, sizeof json, "[{\"type\":\"%0255d\"}]", 0);
	assert_ok(append(json));
	assert_int_equal(only_event()->type_len, 255);
	http_body_free(&body);
}

static void test_append_bad_field_values_refused(void **state)
{
	(void)state;
	assert_refused(append("[{\"type\":\"t\",\"schema_version\":65536}]"),
		       HTTP_JSON_INVALID);
	assert_refused(append("[{\"type\":\"t\",\"schema_version\":-1}]"),
		       HTTP_JSON_INVALID);
	assert_refused(append("[{\"type\":\"t\",\"schema_version\":\"1\"}]"),
		       HTTP_JSON_INVALID);
	assert_refused(append("[{\"type\":\"t\",\"event_time_us\":1.5}]"),
		       HTTP_JSON_INVALID);
	assert_refused(append("[{\"type\":\"t\"}, 3]"), HTTP_JSON_INVALID);
	assert_refused(append("\"t\""), HTTP_JSON_INVALID);
}

static void test_append_empty_array_refused(void **state)
{
	(void)state;
	assert_refused(append("[]"), HTTP_JSON_INVALID);
}

static void test_append_over_events_max_is_too_large(void **state)
{
	char *json;

	(void)state;
	json = events_array(HTTP_EVENTS_MAX);
	assert_ok(append(json));
	assert_int_equal(body.n_events, HTTP_EVENTS_MAX);
	http_body_free(&body);
	free(json);
	json = events_array(HTTP_EVENTS_MAX + 1);
	assert_refused(append(json), HTTP_JSON_TOO_LARGE);
	free(json);
}

static void test_append_invalid_stream_name_refused(void **state)
{
	static const char ev[] = "[{\"type\":\"t\"}]";
	char name[300];

	(void)state;
	assert_refused(http_parse_append(ev, strlen(ev), "", 0, &body, err,
					 sizeof err),
		       HTTP_JSON_INVALID_STREAM);
	assert_refused(append_to("a\x01"
				 "b",
				 ev),
		       HTTP_JSON_INVALID_STREAM);
	assert_refused(append_to("a\x7f", ev), HTTP_JSON_INVALID_STREAM);
	assert_refused(append_to("caf\xc3", ev), HTTP_JSON_INVALID_STREAM);
	assert_refused(append_to("\xff", ev), HTTP_JSON_INVALID_STREAM);
	assert_refused(http_parse_append(ev, strlen(ev), "a\0b", 3, &body, err,
					 sizeof err),
		       HTTP_JSON_INVALID_STREAM);
	memset(name, 'a', 256);
	name[256] = '\0';
	assert_refused(append_to(name, ev), HTTP_JSON_INVALID_STREAM);
	name[255] = '\0';
	assert_ok(append_to(name, ev));
	assert_int_equal(body.batches[0].txn.parts[0].stream_len, 255);
	http_body_free(&body);
	assert_ok(append_to("caf\xc3\xa9/\xe2\x82\xac", ev));
	http_body_free(&body);
}

static void test_append_stream_name_is_copied(void **state)
{
	char name[] = "order-9";

	(void)state;
	assert_ok(append_to(name, "[{\"type\":\"t\"}]"));
	memset(name, 'x', sizeof name - 1);
	assert_text(body.batches[0].txn.parts[0].stream,
		    body.batches[0].txn.parts[0].stream_len, "order-9");
	http_body_free(&body);
}

static void test_append_malformed_json_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"[",
		"[{\"type\":}]",
		"[{\"type\":\"t\"}] x",
		"[{\"type\":\"t\",}]",
		"[{'type':'t'}]",
		"[{\"type\":\"t\",\"data\":NaN}]",
		"[{\"type\":\"t\",\"data\":1e999}]",
		"[{\"type\":\"t\",\"data\":99999999999999999999}]",
		"[{\"type\":\"a\\u0000b\"}]",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_refused(append(bad[i]), HTTP_JSON_MALFORMED);
}

static void test_append_invalid_utf8_is_malformed(void **state)
{
	(void)state;
	assert_refused(append("[{\"type\":\"\xff\"}]"), HTTP_JSON_MALFORMED);
	assert_refused(append("[{\"type\":\"t\",\"data\":\"\xc3\"}]"),
		       HTTP_JSON_MALFORMED);
	assert_refused(append("[{\"type\":\"t\",\"data\":\"\xed\xa0\x80\"}]"),
		       HTTP_JSON_MALFORMED);
	assert_refused(append("[{\"type\":\"t\",\"data\":\"\\ud800\"}]"),
		       HTTP_JSON_MALFORMED);
}

static void test_append_duplicate_keys_are_malformed(void **state)
{
	(void)state;
	assert_refused(append("[{\"type\":\"a\",\"type\":\"b\"}]"),
		       HTTP_JSON_MALFORMED);
	assert_refused(append("[{\"type\":\"a\",\"data\":{\"k\":1,\"k\":2}}]"),
		       HTTP_JSON_MALFORMED);
}

static void test_append_body_error_wins_over_stream_name(void **state)
{
	(void)state;
	assert_refused(append_to("", "[{"), HTTP_JSON_MALFORMED);
}

/* ------------------------------------------------------------------------
 * sync
 * ------------------------------------------------------------------------ */

#define CID "0c6f9e2a-1b3c-4d5e-8f70-112233445566"

static void test_sync_batches_keyed_by_client_id_and_seq(void **state)
{
	static const uint8_t cid[16] = { 0x0c, 0x6f, 0x9e, 0x2a, 0x1b, 0x3c,
					 0x4d, 0x5e, 0x8f, 0x70, 0x11, 0x22,
					 0x33, 0x44, 0x55, 0x66 };
	char msg[STORE_ERRMSG_SIZE];
	const struct store_txn *t;
	uint32_t i;

	(void)state;
	assert_ok(sync_body(
		"{\"client_id\":\"" CID
		"\",\"batches\":["
		"{\"seq\":1,\"streams\":[{\"stream\":\"canvas-main\","
		"\"events\":[{\"type\":\"a\"},{\"type\":\"b\"}]},"
		"{\"stream\":\"canvas-side\",\"events\":{\"type\":\"c\"}}]},"
		"{\"seq\":5,\"streams\":[{\"stream\":\"canvas-main\","
		"\"events\":[{\"type\":\"d\"}]}]}]}"));
	assert_true(body.has_client);
	assert_memory_equal(body.client_id, cid, 16);
	assert_int_equal(body.n_batches, 2);
	assert_int_equal(body.n_events, 4);
	assert_int_equal(body.batches[0].seq, 1);
	assert_int_equal(body.batches[1].seq, 5);
	for (i = 0; i < body.n_batches; i++) {
		t = &body.batches[i].txn;
		assert_true(t->has_client);
		assert_memory_equal(t->client_id, cid, 16);
		assert_int_equal(t->client_seq, body.batches[i].seq);
		assert_int_equal(store_txn_validate(t, msg), 0);
	}
	t = &body.batches[0].txn;
	assert_int_equal(t->n_parts, 2);
	assert_text(t->parts[0].stream, t->parts[0].stream_len, "canvas-main");
	assert_int_equal(t->parts[0].n_events, 2);
	assert_text(t->parts[1].stream, t->parts[1].stream_len, "canvas-side");
	assert_int_equal(t->parts[1].n_events, 1);
	assert_text(t->parts[1].events[0].type, 1, "c");
	assert_int_equal(t->parts[1].expect.kind, STORE_EXPECT_ANY);
	t = &body.batches[1].txn;
	assert_int_equal(t->n_parts, 1);
	assert_text(t->parts[0].events[0].type, 1, "d");
	http_body_free(&body);
}

static void test_sync_no_batches_is_empty(void **state)
{
	(void)state;
	assert_ok(sync_body("{\"client_id\":\"" CID "\",\"batches\":[]}"));
	assert_int_equal(body.n_batches, 0);
	assert_int_equal(body.n_events, 0);
	http_body_free(&body);
}

static void test_sync_client_id_required_and_a_uuid(void **state)
{
	(void)state;
	assert_refused(sync_body("{\"batches\":[]}"), HTTP_JSON_INVALID);
	assert_refused(sync_body("{\"client_id\":\"x\",\"batches\":[]}"),
		       HTTP_JSON_INVALID);
	assert_refused(sync_body("{\"client_id\":7,\"batches\":[]}"),
		       HTTP_JSON_INVALID);
	assert_refused(sync_body("{\"client_id\":\"" CID "x\","
				 "\"batches\":[]}"),
		       HTTP_JSON_INVALID);
}

#define BATCH(seq)      \
	"{\"seq\":" seq \
	",\"streams\":[{\"stream\":\"s\",\"events\":[{\"type\":\"t\"}]}]}"

static void test_sync_seqs_at_least_one_and_strictly_increasing(void **state)
{
	(void)state;
	assert_refused(sync_body("{\"client_id\":\"" CID
				 "\",\"batches\":[" BATCH("0") "]}"),
		       HTTP_JSON_INVALID);
	assert_refused(sync_body("{\"client_id\":\"" CID
				 "\",\"batches\":[" BATCH("-1") "]}"),
		       HTTP_JSON_INVALID);
	assert_refused(
		sync_body("{\"client_id\":\"" CID
			  "\",\"batches\":[" BATCH("2") "," BATCH("2") "]}"),
		HTTP_JSON_INVALID);
	assert_refused(
		sync_body("{\"client_id\":\"" CID
			  "\",\"batches\":[" BATCH("3") "," BATCH("2") "]}"),
		HTTP_JSON_INVALID);
	assert_refused(sync_body("{\"client_id\":\"" CID
				 "\",\"batches\":[" BATCH("1.0") "]}"),
		       HTTP_JSON_INVALID);
	assert_refused(sync_body("{\"client_id\":\"" CID
				 "\",\"batches\":[" BATCH("\"1\"") "]}"),
		       HTTP_JSON_INVALID);
	assert_ok(sync_body("{\"client_id\":\"" CID "\",\"batches\":[" BATCH(
		"1") "," BATCH("9223372036854775807") "]}"));
	assert_int_equal(body.batches[1].seq, INT64_MAX);
	http_body_free(&body);
}

static void test_sync_shape_errors_refused(void **state)
{
	static const char *const bad[] = {
		"[]",
		"{\"client_id\":\"" CID "\"}",
		"{\"client_id\":\"" CID "\",\"batches\":{}}",
		"{\"client_id\":\"" CID "\",\"batches\":[],\"x\":1}",
		"{\"client_id\":\"" CID "\",\"batches\":[1]}",
		"{\"client_id\":\"" CID "\",\"batches\":[{\"seq\":1}]}",
		"{\"client_id\":\"" CID
		"\",\"batches\":[{\"seq\":1,"
		"\"streams\":[]}]}",
		"{\"client_id\":\"" CID
		"\",\"batches\":[{\"seq\":1,"
		"\"streams\":{}}]}",
		"{\"client_id\":\"" CID
		"\",\"batches\":[{\"seq\":1,"
		"\"streams\":[],\"x\":1}]}",
		"{\"client_id\":\"" CID
		"\",\"batches\":[{\"seq\":1,"
		"\"streams\":[{\"stream\":\"s\"}]}]}",
		"{\"client_id\":\"" CID
		"\",\"batches\":[{\"seq\":1,"
		"\"streams\":[{\"stream\":1,\"events\":[{\"type\":\"t\"}]}]}]}",
		"{\"client_id\":\"" CID
		"\",\"batches\":[{\"seq\":1,"
		"\"streams\":[{\"stream\":\"s\",\"events\":[{\"type\":\"t\"}],"
		"\"x\":1}]}]}",
		"{\"client_id\":\"" CID
		"\",\"batches\":[{\"seq\":1,"
		"\"streams\":[{\"stream\":\"s\",\"events\":[]}]}]}",
		"{\"client_id\":\"" CID
		"\",\"batches\":[{\"seq\":1,"
		"\"streams\":[7]}]}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rv = sync_body(bad[i]);

		if (rv != HTTP_JSON_INVALID)
			fail_msg("case %zu: got %s, want invalid_request", i,
				 http_json_code(rv));
		assert_refused(rv, HTTP_JSON_INVALID);
	}
}

static void test_sync_invalid_stream_name_refused(void **state)
{
	(void)state;
	assert_refused(sync_body("{\"client_id\":\"" CID
				 "\",\"batches\":[{\"seq\":1,\"streams\":[{"
				 "\"stream\":\"\",\"events\":[{\"type\":\"t\"}"
				 "]}]}]}"),
		       HTTP_JSON_INVALID_STREAM);
	assert_refused(sync_body("{\"client_id\":\"" CID
				 "\",\"batches\":[{\"seq\":1,\"streams\":[{"
				 "\"stream\":\"a\\nb\",\"events\":[{\"type\":"
				 "\"t\"}]}]}]}"),
		       HTTP_JSON_INVALID_STREAM);
}

/* A /sync body of @n batches of @per events each, in a new string. */
static char *sync_of(size_t n, size_t per)
{
	size_t cap = 64 + n * (80 + per * 16);
	char *s = malloc(cap);
	size_t len;
	size_t i;
	size_t k;

	assert_non_null(s);
	len = (size_t)snprintf(s, cap,
			       "{\"client_id\":\"" CID "\",\"batches\":[");
	for (i = 0; i < n; i++) {
		len += (size_t)snprintf(s + len, cap - len,
					"%s{\"seq\":%zu,\"streams\":[{"
					"\"stream\":\"s\",\"events\":[",
					i ? "," : "", i + 1);
		for (k = 0; k < per; k++)
			len += (size_t)snprintf(s + len, cap - len,
						"%s{\"type\":\"t\"}",
						k ? "," : "");
		len += (size_t)snprintf(s + len, cap - len, "]}]}");
	}
	snprintf(s + len, cap - len, "]}");
	return s;
}

static void test_sync_over_batches_max_is_too_large(void **state)
{
	char *json;

	(void)state;
	json = sync_of(HTTP_SYNC_BATCHES_MAX, 1);
	assert_ok(sync_body(json));
	assert_int_equal(body.n_batches, HTTP_SYNC_BATCHES_MAX);
	assert_int_equal(body.batches[HTTP_SYNC_BATCHES_MAX - 1].seq,
			 HTTP_SYNC_BATCHES_MAX);
	http_body_free(&body);
	free(json);
	json = sync_of(HTTP_SYNC_BATCHES_MAX + 1, 1);
	assert_refused(sync_body(json), HTTP_JSON_TOO_LARGE);
	free(json);
}

static void test_sync_events_of_all_batches_count_together(void **state)
{
	size_t per = HTTP_EVENTS_MAX / 4;
	char *json;

	(void)state;
	json = sync_of(4, per);
	assert_ok(sync_body(json));
	assert_int_equal(body.n_events, 4 * per);
	http_body_free(&body);
	free(json);
	json = sync_of(5, per);
	assert_refused(sync_body(json), HTTP_JSON_TOO_LARGE);
	free(json);
}

/* ------------------------------------------------------------------------
 * headers
 * ------------------------------------------------------------------------ */

static void test_parse_expected_words_and_numbers(void **state)
{
	struct store_expect e;

	(void)state;
	assert_int_equal(http_parse_expected("any", &e), 0);
	assert_int_equal(e.kind, STORE_EXPECT_ANY);
	assert_int_equal(http_parse_expected("no-stream", &e), 0);
	assert_int_equal(e.kind, STORE_EXPECT_NO_STREAM);
	assert_int_equal(http_parse_expected("exists", &e), 0);
	assert_int_equal(e.kind, STORE_EXPECT_EXISTS);
	assert_int_equal(e.version, 0);
	assert_int_equal(http_parse_expected("0", &e), 0);
	assert_int_equal(e.kind, STORE_EXPECT_NO_STREAM);
	assert_int_equal(e.version, 0);
	assert_int_equal(http_parse_expected("17", &e), 0);
	assert_int_equal(e.kind, STORE_EXPECT_EXACT);
	assert_int_equal(e.version, 17);
	assert_int_equal(http_parse_expected("9223372036854775807", &e), 0);
	assert_int_equal(e.kind, STORE_EXPECT_EXACT);
	assert_int_equal(e.version, STORE_VERSION_MAX);
}

static void test_parse_expected_refuses_garbage_and_overflow(void **state)
{
	static const char *const bad[] = {
		"",
		"Any",
		"any ",
		"no_stream",
		"-1",
		"+1",
		" 1",
		"1x",
		"9223372036854775808",
		"18446744073709551616",
	};
	struct store_expect e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (http_parse_expected(bad[i], &e) != -1)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(http_parse_expected(NULL, &e), -1);
}

static void test_parse_u64_whole_decimal_without_overflow(void **state)
{
	static const char *const bad[] = {
		"",
		"-1",
		"+1",
		" 1",
		"1 ",
		"0x10",
		"1e3",
		"18446744073709551616",
		"99999999999999999999",
	};
	uint64_t v;
	size_t i;

	(void)state;
	assert_int_equal(http_parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(http_parse_u64("007", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(http_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = 12345;
		if (http_parse_u64(bad[i], &v) != -1)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(v, 12345);
	}
	assert_int_equal(http_parse_u64(NULL, &v), -1);
}

/* ------------------------------------------------------------------------
 * render
 * ------------------------------------------------------------------------ */

static void record(struct store_record *r, const char *data,
		   const char *metadata)
{
	static const uint8_t id[16] = { 0x6f, 0x1c, 0x8a, 0x52, 0x3f, 0x0e,
					0x4b, 0x8e, 0x9d, 0x7c, 0x2b, 0x5a,
					0x1f, 0x0e, 0x9c, 0x11 };

	memset(r, 0, sizeof *r);
	r->position = 42;
	r->version = 3;
	r->stream = "order-1";
	r->stream_len = 7;
	memcpy(r->id, id, 16);
	r->type = "ItemAdded";
	r->type_len = 9;
	r->commit_time_us = 1764000000000000;
	r->data = data;
	r->data_len = data != NULL ? (uint32_t)strlen(data) : 0;
	r->metadata = metadata;
	r->metadata_len = metadata != NULL ? (uint32_t)strlen(metadata) : 0;
}

/* The compact text of http_event_json(@r), in a static buffer. */
static const char *render(const struct store_record *r)
{
	static char out[1024];
	json_t *o = http_event_json(r);
	size_t n;

	assert_non_null(o);
	n = json_dumpb(o, out, sizeof out - 1, JSON_COMPACT);
	assert_true(n > 0 && n < sizeof out);
	out[n] = '\0';
	json_decref(o);
	return out;
}

static void test_event_json_embeds_json_data_and_metadata(void **state)
{
	struct store_record r;

	(void)state;
	record(&r, "{\"sku\":\"A1\",\"qty\":2}", "{\"c\":\"c-9\"}");
	assert_string_equal(
		render(&r),
		"{\"position\":42,\"stream\":\"order-1\",\"version\":3,"
		"\"id\":\"6f1c8a52-3f0e-4b8e-9d7c-2b5a1f0e9c11\","
		"\"type\":\"ItemAdded\",\"commit_time_us\":1764000000000000,"
		"\"data\":{\"sku\":\"A1\",\"qty\":2},"
		"\"metadata\":{\"c\":\"c-9\"}}");
	record(&r, "\"text\"", "[1]");
	assert_non_null(strstr(render(&r),
			       "\"data\":\"text\","
			       "\"metadata\":[1]}"));
}

static void test_event_json_non_json_data_is_base64(void **state)
{
	static const struct {
		const char *data;
		const char *want;
	} cases[] = {
		{ "a", "\"data_base64\":\"YQ==\"" },
		{ "ab", "\"data_base64\":\"YWI=\"" },
		{ "abc", "\"data_base64\":\"YWJj\"" },
		{ "abcd", "\"data_base64\":\"YWJjZA==\"" },
		{ "\xff\xfe\xfd", "\"data_base64\":\"//79\"" },
		{ "\xfb\xef", "\"data_base64\":\"++8=\"" },
	};
	struct store_record r;
	const char *out;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		record(&r, cases[i].data, NULL);
		out = render(&r);
		if (strstr(out, cases[i].want) == NULL)
			fail_msg("data '%s': %s", cases[i].data, out);
		assert_null(strstr(out, "\"data\":"));
	}
	record(&r, "{\"a\":1", "x y");
	out = render(&r);
	assert_non_null(strstr(out, "\"data_base64\":\"eyJhIjox\""));
	assert_non_null(strstr(out, "\"metadata_base64\":\"eCB5\""));
}

static void test_event_json_empty_data_and_metadata_left_out(void **state)
{
	struct store_record r;
	const char *out;

	(void)state;
	record(&r, NULL, NULL);
	out = render(&r);
	assert_null(strstr(out, "data"));
	assert_null(strstr(out, "metadata"));
	assert_null(strstr(out, "client_"));
	assert_null(strstr(out, "schema_version"));
	assert_null(strstr(out, "event_time_us"));
}

static void test_event_json_client_and_optional_fields_when_set(void **state)
{
	struct store_record r;
	const char *out;

	(void)state;
	record(&r, "1", NULL);
	r.has_client = true;
	memset(r.client_id, 0xab, 16);
	r.client_seq = 9;
	r.schema_version = 2;
	r.event_time_us = -7;
	out = render(&r);
	assert_non_null(strstr(out,
			       "\"client_id\":"
			       "\"abababab-abab-abab-abab-abababababab\","
			       "\"client_seq\":9"));
	assert_non_null(strstr(out, "\"schema_version\":2"));
	assert_non_null(strstr(out, "\"event_time_us\":-7"));
	assert_non_null(strstr(out, "\"data\":1"));
}

static void test_event_json_invalid_utf8_names_replaced(void **state)
{
	struct store_record r;
	const char *out;

	(void)state;
	record(&r, NULL, NULL);
	r.stream = "a\xff";
	r.stream_len = 2;
	out = render(&r);
	assert_non_null(strstr(out, "\"stream\":\"\xef\xbf\xbd\""));
}

static void test_parsed_event_renders_back_its_data(void **state)
{
	const struct store_event *e;
	struct store_record r;

	(void)state;
	assert_ok(
		append("[{\"type\":\"t\",\"data\":{\"x\":[0.5,\"\\u00e9\"],"
		       "\"y\":null}}]"));
	e = only_event();
	record(&r, NULL, NULL);
	r.data = e->data;
	r.data_len = e->data_len;
	assert_non_null(strstr(render(&r),
			       "\"data\":{\"x\":[0.5,\"\xc3\xa9\"],"
			       "\"y\":null}"));
	http_body_free(&body);
}

/* ------------------------------------------------------------------------
 * memory
 * ------------------------------------------------------------------------ */

static void test_tree_budget_refuses_17mib_of_tiny_values(void **state)
{
	static const char head[] = "[{\"type\":\"t\",\"data\":[";
	size_t len = 17u << 20;
	char *json = malloc(len + 4);
	size_t i;
	int rv;

	(void)state;
	assert_non_null(json);
	memcpy(json, head, sizeof head - 1);
	for (i = sizeof head - 1; i < len - 4; i += 2)
		memcpy(json + i, "1,", 2);
	memcpy(json + i, "1]}]", 4);
	len = i + 4;
	count_allocs(-1);
	rv = http_parse_append(json, len, "s", 1, &body, err, sizeof err);
	stop_counting();
	assert_refused(rv, HTTP_JSON_TOO_LARGE);
	/* The budget counts what jansson asks for; the blocks' headers and
	 * malloc's rounding add at most as much again. Without the budget
	 * this body takes ~800 MiB. */
	if (peak > 2 * (long long)HTTP_JSON_TREE_BYTES_MAX + (8 << 20))
		fail_msg("peak of %lld bytes while parsing", peak);
	assert_true(live <= 0);
	free(json);
}

static void test_body_within_budget_keeps_about_its_size(void **state)
{
	char *json = events_array(HTTP_EVENTS_MAX);
	size_t len = strlen(json);
	int rv;

	(void)state;
	count_allocs(-1);
	rv = http_parse_append(json, len, "s", 1, &body, err, sizeof err);
	stop_counting();
	assert_ok(rv);
	/* What stays: the arrays (~100 bytes an event) and the arena. */
	if (live > (long long)(len + HTTP_EVENTS_MAX * 160))
		fail_msg("%lld bytes kept for a body of %zu", live, len);
	http_body_free(&body);
	free(json);
}

/* Fails every allocation from the k-th on, for each k until a parse gets
 * through: each failure is out_of_memory (never malformed_json or a crash)
 * and leaves the body empty; the sanitizer build reports any leak. */
static void nomem_sweep(int (*parse)(const char *), const char *json)
{
	int k;

	for (k = 0;; k++) {
		int rv;

		count_allocs(k);
		rv = parse(json);
		stop_counting();
		if (rv == 0) {
			http_body_free(&body);
			break;
		}
		if (rv != HTTP_JSON_NOMEM)
			fail_msg("allocation %d failing gave %s: %s", k,
				 http_json_code(rv), err);
		assert_refused(rv, HTTP_JSON_NOMEM);
		assert_true(k < 10000);
	}
	assert_true(k > 0);
}

static void test_out_of_memory_is_nomem_with_empty_body(void **state)
{
	(void)state;
	nomem_sweep(append,
		    "[{\"type\":\"t\",\"data\":{\"a\":[1,2.5,\"x\"]},"
		    "\"metadata\":{\"m\":true}},{\"type\":\"u\"}]");
	nomem_sweep(sync_body, "{\"client_id\":\"" CID "\",\"batches\":[" BATCH(
				       "1") "," BATCH("2") "]}");
}

/* Fails one allocation at a time, each in turn: http_event_json returns
 * NULL or a whole object, never JSON data passed off as base64 because
 * there was no memory to parse it. */
static void test_event_json_out_of_memory_is_null(void **state)
{
	struct store_record r;
	unsigned total;
	unsigned nulls = 0;
	unsigned k;

	(void)state;
	record(&r, "{\"a\":[1,2]}", "\xff");
	r.has_client = true;
	r.schema_version = 1;
	r.event_time_us = 1;
	count_allocs(-1);
	json_decref(http_event_json(&r));
	total = stop_counting();
	assert_true(total > 0);
	for (k = 0; k < total; k++) {
		json_t *o;

		fail_one_alloc((int)k);
		o = http_event_json(&r);
		stop_counting();
		if (o == NULL) {
			nulls++;
			continue;
		}
		if (json_object_get(o, "data") == NULL ||
		    json_object_get(o, "metadata_base64") == NULL ||
		    json_object_get(o, "client_id") == NULL)
			fail_msg("allocation %u failing gave %s", k,
				 json_dumps(o, JSON_COMPACT));
		json_decref(o);
	}
	assert_true(nulls > 0);
}

/* Fails one allocation at a time during a parse: out_of_memory or
 * success, nothing else. */
static void test_parse_with_one_failed_allocation(void **state)
{
	static const char json[] =
		"[{\"type\":\"t\",\"data\":{\"a\":[1,2.5,\"x\"]}}]";
	unsigned total;
	unsigned k;

	(void)state;
	count_allocs(-1);
	assert_ok(append(json));
	total = stop_counting();
	http_body_free(&body);
	for (k = 0; k < total; k++) {
		int rv;

		fail_one_alloc((int)k);
		rv = append(json);
		stop_counting();
		if (rv == 0) {
			assert_int_equal(body.n_events, 1);
			http_body_free(&body);
			continue;
		}
		if (rv != HTTP_JSON_NOMEM)
			fail_msg("allocation %u failing gave %s: %s", k,
				 http_json_code(rv), err);
		assert_refused(rv, HTTP_JSON_NOMEM);
	}
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	static const struct CMUnitTest append_tests[] = {
		cmocka_unit_test(
			test_append_array_gives_one_unkeyed_part_of_every_event),
		cmocka_unit_test(test_append_single_object_is_one_event),
		cmocka_unit_test(
			test_append_data_of_every_json_kind_kept_as_compact_text),
		cmocka_unit_test(test_append_metadata_kept_as_compact_text),
		cmocka_unit_test(test_append_given_id_is_parsed_and_kept),
		cmocka_unit_test(test_append_missing_id_gets_random_v4_uuid),
		cmocka_unit_test(test_append_bad_id_refused),
		cmocka_unit_test(test_append_unknown_field_refused),
		cmocka_unit_test(test_append_missing_or_bad_type_refused),
		cmocka_unit_test(test_append_bad_field_values_refused),
		cmocka_unit_test(test_append_empty_array_refused),
		cmocka_unit_test(test_append_over_events_max_is_too_large),
		cmocka_unit_test(test_append_invalid_stream_name_refused),
		cmocka_unit_test(test_append_stream_name_is_copied),
		cmocka_unit_test(test_append_malformed_json_refused),
		cmocka_unit_test(test_append_invalid_utf8_is_malformed),
		cmocka_unit_test(test_append_duplicate_keys_are_malformed),
		cmocka_unit_test(test_append_body_error_wins_over_stream_name),
	};
	static const struct CMUnitTest sync_tests[] = {
		cmocka_unit_test(test_sync_batches_keyed_by_client_id_and_seq),
		cmocka_unit_test(test_sync_no_batches_is_empty),
		cmocka_unit_test(test_sync_client_id_required_and_a_uuid),
		cmocka_unit_test(
			test_sync_seqs_at_least_one_and_strictly_increasing),
		cmocka_unit_test(test_sync_shape_errors_refused),
		cmocka_unit_test(test_sync_invalid_stream_name_refused),
		cmocka_unit_test(test_sync_over_batches_max_is_too_large),
		cmocka_unit_test(
			test_sync_events_of_all_batches_count_together),
	};
	static const struct CMUnitTest headers_tests[] = {
		cmocka_unit_test(test_parse_expected_words_and_numbers),
		cmocka_unit_test(
			test_parse_expected_refuses_garbage_and_overflow),
		cmocka_unit_test(test_parse_u64_whole_decimal_without_overflow),
	};
	static const struct CMUnitTest render_tests[] = {
		cmocka_unit_test(test_event_json_embeds_json_data_and_metadata),
		cmocka_unit_test(test_event_json_non_json_data_is_base64),
		cmocka_unit_test(
			test_event_json_empty_data_and_metadata_left_out),
		cmocka_unit_test(
			test_event_json_client_and_optional_fields_when_set),
		cmocka_unit_test(test_event_json_invalid_utf8_names_replaced),
		cmocka_unit_test(test_parsed_event_renders_back_its_data),
	};
	static const struct CMUnitTest memory_tests[] = {
		cmocka_unit_test(test_tree_budget_refuses_17mib_of_tiny_values),
		cmocka_unit_test(test_body_within_budget_keeps_about_its_size),
		cmocka_unit_test(test_out_of_memory_is_nomem_with_empty_body),
		cmocka_unit_test(test_event_json_out_of_memory_is_null),
		cmocka_unit_test(test_parse_with_one_failed_allocation),
	};
	const char *group = argc > 1 ? argv[1] : NULL;
	bool ran = false;
	int failed = 0;

	allocs_to_pass = -1;
	http_json_init();
#define GROUP(name)                                                        \
	if (group == NULL || strcmp(group, #name) == 0) {                  \
		ran = true;                                                \
		failed += cmocka_run_group_tests_name(#name, name##_tests, \
						      NULL, NULL);         \
	}
	GROUP(append)
	GROUP(sync)
	GROUP(headers)
	GROUP(render)
	GROUP(memory)
#undef GROUP
	if (!ran) {
		fprintf(stderr,
			"usage: %s [append|sync|headers|render|memory]\n",
			argv[0]);
		return 2;
	}
	return failed != 0;
}
