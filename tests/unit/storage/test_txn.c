/* Unit tests of the transaction and entry codec (storage/txn.c): pure
 * functions, no store. They pin the round trip of every field, the
 * decoder's refusal of malformed bytes (without reading out of bounds: run
 * them under ASan), and that every limit of storage/store_limits.h is reached
 * with its own error code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* A transaction with three parts whose events use every optional field in
 * several combinations. */
struct rich {
	struct store_txn txn;
	struct store_part parts[3];
	struct store_event events[6];
};

static const char rich_meta[] = "{\"correlation\":\"c-1\",\"causation\":\"x\"}";
static const uint8_t rich_data[] = { 0x00, 0x01, 0xff, 0x80, 0x7f, 0x00, 0x42 };

static void rich_make(struct rich *r)
{
	static const char *const streams[3] = { "order-17",
						"user-\xc3\xa9t\xc3\xa9",
						"ledger" };
	static const char *const types[6] = { "OrderPlaced",  "OrderPaid",
					      "UserRenamed",  "T",
					      "LedgerOpened", "LedgerClosed" };
	/* events per part: 2, 1, 3 */
	static const uint32_t counts[3] = { 2, 1, 3 };
	uint32_t i;
	uint32_t k = 0;

	memset(r, 0, sizeof *r);
	for (i = 0; i < 6; i++) {
		struct store_event *e = &r->events[i];

		memset(e->id, 0xa0 + (int)i, sizeof e->id);
		e->id[15] = (uint8_t)i;
		e->type = types[i];
		e->type_len = (uint32_t)strlen(types[i]);
		e->schema_version = (i % 2 == 0) ? (uint16_t)(i + 1) : 0;
		if (i == 0)
			e->schema_version = 65535;
		e->event_time_us =
			(i % 3 == 0) ? 0 : 1690000000000000 + (int64_t)i;
		if (i == 4)
			e->event_time_us = -86400000000; /* a day before 1970 */
		if (i % 3 == 1) {
			e->data = NULL;
			e->data_len = 0;
		} else {
			e->data = rich_data;
			e->data_len = (uint32_t)sizeof rich_data - (i % 2);
		}
		if (i % 2 == 1) {
			e->metadata = rich_meta;
			e->metadata_len = (uint32_t)strlen(rich_meta);
		}
	}
	for (i = 0; i < 3; i++) {
		r->parts[i].stream = streams[i];
		r->parts[i].stream_len = (uint32_t)strlen(streams[i]);
		r->parts[i].n_events = counts[i];
		r->parts[i].events = &r->events[k];
		k += counts[i];
	}
	r->parts[0].expect.kind = STORE_EXPECT_EXACT;
	r->parts[0].expect.version = 41;
	r->parts[1].expect.kind = STORE_EXPECT_NO_STREAM;
	r->parts[2].expect.kind = STORE_EXPECT_EXISTS;
	r->txn.commit_time_us = 1700000000123456;
	r->txn.has_client = true;
	memset(r->txn.client_id, 0x5c, sizeof r->txn.client_id);
	r->txn.client_id[0] = 0x01;
	r->txn.client_seq = 0x0102030405060708ull;
	r->txn.n_parts = 3;
	r->txn.parts = r->parts;
}

static void assert_bytes(const void *a, uint32_t a_len, const void *b,
			 uint32_t b_len)
{
	assert_int_equal(a_len, b_len);
	if (a_len > 0) {
		assert_non_null(a);
		assert_non_null(b);
		assert_memory_equal(a, b, a_len);
	}
}

static void assert_txn_equal(const struct store_txn *a,
			     const struct store_txn *b)
{
	uint32_t i;
	uint32_t k;

	assert_int_equal(a->commit_time_us, b->commit_time_us);
	assert_int_equal(a->has_client, b->has_client);
	if (a->has_client) {
		assert_memory_equal(a->client_id, b->client_id, 16);
		assert_int_equal(a->client_seq, b->client_seq);
	}
	assert_int_equal(a->n_parts, b->n_parts);
	for (i = 0; i < a->n_parts; i++) {
		const struct store_part *pa = &a->parts[i];
		const struct store_part *pb = &b->parts[i];

		assert_bytes(pa->stream, pa->stream_len, pb->stream,
			     pb->stream_len);
		assert_int_equal(pa->expect.kind, pb->expect.kind);
		if (pa->expect.kind == STORE_EXPECT_EXACT)
			assert_int_equal(pa->expect.version,
					 pb->expect.version);
		assert_int_equal(pa->n_events, pb->n_events);
		for (k = 0; k < pa->n_events; k++) {
			const struct store_event *ea = &pa->events[k];
			const struct store_event *eb = &pb->events[k];

			assert_memory_equal(ea->id, eb->id, 16);
			assert_bytes(ea->type, ea->type_len, eb->type,
				     eb->type_len);
			assert_int_equal(ea->schema_version,
					 eb->schema_version);
			assert_int_equal(ea->event_time_us, eb->event_time_us);
			assert_bytes(ea->data, ea->data_len, eb->data,
				     eb->data_len);
			assert_bytes(ea->metadata, ea->metadata_len,
				     eb->metadata, eb->metadata_len);
		}
	}
}

/* Encodes @t into a malloc'd buffer of exactly the encoded size. */
static uint8_t *encode(const struct store_txn *t, size_t *len)
{
	char errmsg[STORE_ERRMSG_SIZE] = "";
	size_t n;
	uint8_t *buf;
	int rv;

	rv = store_txn_validate(t, errmsg);
	if (rv != 0)
		fail_msg("store_txn_validate: %d %s", rv, errmsg);
	n = store_txn_encoded_size(t);
	assert_true(n > 0);
	buf = malloc(n);
	assert_non_null(buf);
	assert_int_equal(store_txn_encode(t, buf), n);
	*len = n;
	return buf;
}

/* Decodes a copy of @buf[0..len) held in a buffer of exactly @len bytes,
 * so that ASan sees any read past the end. */
static int decode_exact(const void *buf, size_t len, struct store_txn_view *v,
			char *errmsg)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	int rv;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	errmsg[0] = '\0';
	rv = store_txn_decode(len > 0 ? copy : copy + 1, len, v, errmsg);
	free(copy);
	return rv;
}

/* The same for store_entry_open(). */
static int entry_open_exact(const void *buf, size_t len, char *errmsg)
{
	struct store_entry_iter it;
	uint8_t *copy = malloc(len > 0 ? len : 1);
	const void *t;
	size_t tl;
	int rv;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	errmsg[0] = '\0';
	rv = store_entry_open(len > 0 ? copy : copy + 1, len, &it, errmsg);
	if (rv == 0) {
		/* A accepted entry must be walkable within its bounds. */
		while (store_entry_next(&it, &t, &tl))
			assert_true((const uint8_t *)t + tl <= copy + len);
	}
	free(copy);
	return rv;
}

/* Finds @needle in @hay; fails the test when absent. */
static size_t find_bytes(const uint8_t *hay, size_t hay_len, const void *needle,
			 size_t needle_len)
{
	size_t i;

	for (i = 0; i + needle_len <= hay_len; i++)
		if (memcmp(hay + i, needle, needle_len) == 0)
			return i;
	fail_msg("bytes not found in encoding");
	return 0;
}

/* Stores a little-endian integer of @width bytes at @p. */
static void put_le(uint8_t *p, unsigned width, uint64_t v)
{
	unsigned i;

	for (i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned width)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < width; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A one-part, one-event transaction whose fields the caller then edits. */
struct one {
	struct store_txn txn;
	struct store_part part;
	struct store_event ev;
};

static void one_make(struct one *o, const char *stream)
{
	memset(o, 0, sizeof *o);
	memset(o->ev.id, 0x11, sizeof o->ev.id);
	o->ev.type = "T";
	o->ev.type_len = 1;
	o->part.stream = stream;
	o->part.stream_len = (uint32_t)strlen(stream);
	o->part.expect.kind = STORE_EXPECT_ANY;
	o->part.n_events = 1;
	o->part.events = &o->ev;
	o->txn.commit_time_us = 1;
	o->txn.n_parts = 1;
	o->txn.parts = &o->part;
}

static void set_stream(struct one *o, const char *name, size_t len)
{
	o->part.stream = name;
	o->part.stream_len = (uint32_t)len;
}

/* Asserts that @t is accepted by store_txn_validate() and store_entry_add(),
 * and that its encoding decodes back to it. */
static void expect_valid(const struct store_txn *t)
{
	struct store_entry_builder b;
	char errmsg[STORE_ERRMSG_SIZE] = "";
	int rv;

	rv = store_txn_validate(t, errmsg);
	if (rv != 0)
		fail_msg("store_txn_validate rejected a valid txn: %d %s", rv,
			 errmsg);
	store_entry_builder_init(&b);
	rv = store_entry_add(&b, t, errmsg);
	if (rv != 0)
		fail_msg("store_entry_add rejected a valid txn: %d %s", rv,
			 errmsg);
	assert_int_equal(b.count, 1);
	store_entry_builder_close(&b);
}

/* Asserts that store_txn_validate() and store_entry_add() both reject @t
 * with @code and a message, and that a rejected add leaves a builder that
 * already holds one transaction byte for byte unchanged. */
static void expect_invalid(const struct store_txn *t, int code)
{
	struct store_entry_builder b;
	struct one ok;
	char errmsg[STORE_ERRMSG_SIZE] = "";
	uint8_t *before;
	size_t before_len;
	uint32_t before_count;
	const void *buf;
	size_t len;
	int rv;

	rv = store_txn_validate(t, errmsg);
	if (rv != code)
		fail_msg("store_txn_validate: want %d (%s), got %d (%s)", code,
			 store_strerror(code), rv, errmsg);
	assert_true(errmsg[0] != '\0');

	store_entry_builder_init(&b);
	one_make(&ok, "good-1");
	assert_int_equal(store_entry_add(&b, &ok.txn, errmsg), 0);
	before_len = b.len;
	before_count = b.count;
	before = malloc(before_len);
	assert_non_null(before);
	memcpy(before, b.buf, before_len);

	errmsg[0] = '\0';
	rv = store_entry_add(&b, t, errmsg);
	if (rv != code)
		fail_msg("store_entry_add: want %d (%s), got %d (%s)", code,
			 store_strerror(code), rv, errmsg);
	assert_true(errmsg[0] != '\0');
	assert_int_equal(b.len, before_len);
	assert_int_equal(b.count, before_count);
	assert_memory_equal(b.buf, before, before_len);

	/* The builder still finishes into an entry with just the first. */
	assert_int_equal(store_entry_finish(&b, &buf, &len), 0);
	assert_int_equal(store_entry_count(buf), 1);
	free(before);
	store_entry_builder_close(&b);
}

/* ------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------ */

static void txn_round_trip_keeps_every_field(void **state)
{
	struct rich r;
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *buf;
	uint8_t *again;
	size_t len;
	size_t len2;

	(void)state;
	rich_make(&r);
	buf = encode(&r.txn, &len);
	store_txn_view_init(&v);
	assert_int_equal(decode_exact(buf, len, &v, errmsg), 0);
	/* decode_exact freed its copy; decode the original to keep pointers. */
	assert_int_equal(store_txn_decode(buf, len, &v, errmsg), 0);
	assert_txn_equal(&r.txn, &v.txn);

	/* The decoded view re-encodes to exactly the same bytes. */
	again = encode(&v.txn, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);

	free(again);
	store_txn_view_close(&v);
	free(buf);
}

static void txn_round_trip_without_client_or_optional_fields(void **state)
{
	struct one o;
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *buf;
	uint8_t *again;
	size_t len;
	size_t len2;

	(void)state;
	one_make(&o, "plain");
	/* Stale client fields that has_client=false says to ignore. */
	o.txn.client_seq = 0;
	buf = encode(&o.txn, &len);
	store_txn_view_init(&v);
	assert_int_equal(store_txn_decode(buf, len, &v, errmsg), 0);
	assert_false(v.txn.has_client);
	assert_int_equal(v.txn.n_parts, 1);
	assert_int_equal(v.txn.parts[0].n_events, 1);
	assert_int_equal(v.txn.parts[0].events[0].schema_version, 0);
	assert_int_equal(v.txn.parts[0].events[0].event_time_us, 0);
	assert_int_equal(v.txn.parts[0].events[0].data_len, 0);
	assert_int_equal(v.txn.parts[0].events[0].metadata_len, 0);
	assert_txn_equal(&o.txn, &v.txn);
	again = encode(&v.txn, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	free(again);
	store_txn_view_close(&v);
	free(buf);
}

static void txn_encoding_differs_when_a_field_differs(void **state)
{
	struct rich a;
	struct rich b;
	uint8_t *ea;
	uint8_t *eb;
	size_t la;
	size_t lb;

	(void)state;
	rich_make(&a);
	ea = encode(&a.txn, &la);

	/* Each optional field changes the bytes: none is silently dropped. */
	rich_make(&b);
	b.events[2].schema_version = 9;
	eb = encode(&b.txn, &lb);
	assert_true(la != lb || memcmp(ea, eb, la) != 0);
	free(eb);

	rich_make(&b);
	b.events[1].event_time_us += 1;
	eb = encode(&b.txn, &lb);
	assert_true(la != lb || memcmp(ea, eb, la) != 0);
	free(eb);

	rich_make(&b);
	b.txn.client_seq += 1;
	eb = encode(&b.txn, &lb);
	assert_true(la != lb || memcmp(ea, eb, la) != 0);
	free(eb);

	rich_make(&b);
	b.parts[0].expect.version = 42;
	eb = encode(&b.txn, &lb);
	assert_true(la != lb || memcmp(ea, eb, la) != 0);
	free(eb);

	free(ea);
}

/* The decoder's "count against the bytes" checks must not refuse the
 * smallest valid parts and events: 1-byte names, no data, no metadata. */
static void smallest_possible_txn_decodes(void **state)
{
	const char *const streams[] = { "a", "b", "c", "d", "e", NULL };
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	struct tu_txn *t;
	uint8_t *buf;
	size_t len;
	uint32_t n;

	(void)state;
	for (n = 1; n <= 3; n++) {
		t = tu_txn_make(streams, tu_any(), n, 0, 1);
		buf = encode(&t->txn, &len);
		/* Header, then per part 14 fixed bytes + name, per event 35
		 * fixed bytes + type (docs/storage-format.md). */
		assert_int_equal(len, 16 + 5 * (14 + 1 + n * (35 + 1)));
		store_txn_view_init(&v);
		if (decode_exact(buf, len, &v, errmsg) != 0)
			fail_msg("%u events per part: %s", n, errmsg);
		store_txn_view_close(&v);
		free(buf);
		tu_txn_free(t);
	}
}

static void txn_view_is_reused_between_decodes(void **state)
{
	struct rich r;
	struct one o;
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *big;
	uint8_t *small;
	size_t big_len;
	size_t small_len;

	(void)state;
	rich_make(&r);
	one_make(&o, "small");
	big = encode(&r.txn, &big_len);
	small = encode(&o.txn, &small_len);
	store_txn_view_init(&v);
	assert_int_equal(store_txn_decode(big, big_len, &v, errmsg), 0);
	assert_txn_equal(&r.txn, &v.txn);
	assert_int_equal(store_txn_decode(small, small_len, &v, errmsg), 0);
	assert_txn_equal(&o.txn, &v.txn);
	assert_int_equal(store_txn_decode(big, big_len, &v, errmsg), 0);
	assert_txn_equal(&r.txn, &v.txn);
	store_txn_view_close(&v);
	free(big);
	free(small);
}

static void entry_with_several_txns_round_trips(void **state)
{
	struct store_entry_builder b;
	struct store_entry_iter it;
	struct store_txn_view v;
	struct rich r;
	struct one o1;
	struct one o2;
	const struct store_txn *txns[3];
	char errmsg[STORE_ERRMSG_SIZE];
	const void *entry;
	size_t entry_len;
	const void *t;
	size_t tl;
	uint32_t i;

	(void)state;
	rich_make(&r);
	one_make(&o1, "a-1");
	one_make(&o2, "b-2");
	o2.txn.has_client = true;
	memset(o2.txn.client_id, 7, 16);
	o2.txn.client_seq = 3;
	txns[0] = &o1.txn;
	txns[1] = &r.txn;
	txns[2] = &o2.txn;

	store_entry_builder_init(&b);
	for (i = 0; i < 3; i++) {
		assert_int_equal(store_entry_add(&b, txns[i], errmsg), 0);
		assert_int_equal(b.count, i + 1);
	}
	assert_int_equal(store_entry_finish(&b, &entry, &entry_len), 0);
	assert_int_equal(entry_len % 8, 0);
	assert_int_equal(store_entry_count(entry), 3);
	assert_int_equal(entry_open_exact(entry, entry_len, errmsg), 0);

	store_txn_view_init(&v);
	assert_int_equal(store_entry_open(entry, entry_len, &it, errmsg), 0);
	for (i = 0; i < 3; i++) {
		uint8_t *enc;
		size_t enc_len;

		assert_true(store_entry_next(&it, &t, &tl));
		/* The entry carries each transaction's encoding verbatim. */
		enc = encode(txns[i], &enc_len);
		assert_int_equal(tl, enc_len);
		assert_memory_equal(t, enc, enc_len);
		free(enc);
		assert_int_equal(store_txn_decode(t, tl, &v, errmsg), 0);
		assert_txn_equal(txns[i], &v.txn);
	}
	assert_false(store_entry_next(&it, &t, &tl));
	assert_false(store_entry_next(&it, &t, &tl));
	store_txn_view_close(&v);
	store_entry_builder_close(&b);
}

static void entry_add_encoded_builds_the_same_entry(void **state)
{
	struct store_entry_builder a;
	struct store_entry_builder b;
	struct rich r;
	struct one o;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *ea;
	const void *eb;
	size_t la;
	size_t lb;
	uint8_t *enc1;
	uint8_t *enc2;
	size_t l1;
	size_t l2;

	(void)state;
	rich_make(&r);
	one_make(&o, "x-1");
	enc1 = encode(&r.txn, &l1);
	enc2 = encode(&o.txn, &l2);
	store_entry_builder_init(&a);
	store_entry_builder_init(&b);
	assert_int_equal(store_entry_add(&a, &r.txn, errmsg), 0);
	assert_int_equal(store_entry_add(&a, &o.txn, errmsg), 0);
	assert_int_equal(store_entry_add_encoded(&b, enc1, l1, errmsg), 0);
	assert_int_equal(store_entry_add_encoded(&b, enc2, l2, errmsg), 0);
	assert_int_equal(store_entry_finish(&a, &ea, &la), 0);
	assert_int_equal(store_entry_finish(&b, &eb, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(ea, eb, la);
	store_entry_builder_close(&a);
	store_entry_builder_close(&b);
	free(enc1);
	free(enc2);
}

static void entry_length_is_a_multiple_of_8(void **state)
{
	struct store_entry_builder b;
	char errmsg[STORE_ERRMSG_SIZE];
	static char data[64];
	const void *entry;
	size_t len;
	uint32_t d;
	uint32_t n;

	(void)state;
	store_entry_builder_init(&b);
	for (n = 1; n <= 3; n++) {
		for (d = 0; d < 17; d++) {
			struct one o;
			uint32_t k;

			store_entry_builder_reset(&b);
			for (k = 0; k < n; k++) {
				one_make(&o, "pad-stream");
				o.ev.data = data;
				o.ev.data_len = d + k;
				assert_int_equal(
					store_entry_add(&b, &o.txn, errmsg), 0);
			}
			assert_int_equal(b.count, n);
			assert_int_equal(store_entry_finish(&b, &entry, &len),
					 0);
			assert_int_equal(len % 8, 0);
			assert_int_equal(store_entry_count(entry), n);
			assert_int_equal(entry_open_exact(entry, len, errmsg),
					 0);
		}
	}
	store_entry_builder_close(&b);
}

static void entry_finish_without_txns_is_empty(void **state)
{
	struct store_entry_builder b;
	struct one o;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *entry;
	size_t len;

	(void)state;
	store_entry_builder_init(&b);
	assert_int_equal(store_entry_finish(&b, &entry, &len), STORE_EEMPTY);
	one_make(&o, "x");
	assert_int_equal(store_entry_add(&b, &o.txn, errmsg), 0);
	store_entry_builder_reset(&b);
	assert_int_equal(b.count, 0);
	assert_int_equal(store_entry_finish(&b, &entry, &len), STORE_EEMPTY);
	store_entry_builder_close(&b);
}

static void entry_builder_reset_forgets_earlier_txns(void **state)
{
	struct store_entry_builder b;
	struct store_entry_iter it;
	struct store_txn_view v;
	struct one o1;
	struct one o2;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *entry;
	size_t len;
	const void *t;
	size_t tl;

	(void)state;
	one_make(&o1, "first");
	one_make(&o2, "second");
	store_entry_builder_init(&b);
	assert_int_equal(store_entry_add(&b, &o1.txn, errmsg), 0);
	assert_int_equal(store_entry_finish(&b, &entry, &len), 0);
	store_entry_builder_reset(&b);
	assert_int_equal(store_entry_add(&b, &o2.txn, errmsg), 0);
	assert_int_equal(store_entry_finish(&b, &entry, &len), 0);
	assert_int_equal(store_entry_count(entry), 1);
	assert_int_equal(store_entry_open(entry, len, &it, errmsg), 0);
	assert_true(store_entry_next(&it, &t, &tl));
	store_txn_view_init(&v);
	assert_int_equal(store_txn_decode(t, tl, &v, errmsg), 0);
	assert_txn_equal(&o2.txn, &v.txn);
	assert_false(store_entry_next(&it, &t, &tl));
	store_txn_view_close(&v);
	store_entry_builder_close(&b);
}

/* ------------------------------------------------------------------------
 * The decoder refuses malformed bytes
 * ------------------------------------------------------------------------ */

static void txn_decode_rejects_every_truncation(void **state)
{
	struct rich r;
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *buf;
	size_t len;
	size_t n;

	(void)state;
	rich_make(&r);
	buf = encode(&r.txn, &len);
	store_txn_view_init(&v);
	for (n = 0; n < len; n++) {
		int rv = decode_exact(buf, n, &v, errmsg);

		if (rv != STORE_EMALFORMED)
			fail_msg(
				"prefix of %zu/%zu bytes: want EMALFORMED, got "
				"%d (%s)",
				n, len, rv, errmsg);
		assert_true(errmsg[0] != '\0');
	}
	assert_int_equal(decode_exact(buf, len, &v, errmsg), 0);
	store_txn_view_close(&v);
	free(buf);
}

static void txn_decode_rejects_trailing_bytes(void **state)
{
	struct rich r;
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *buf;
	uint8_t *longer;
	size_t len;
	size_t extra;

	(void)state;
	rich_make(&r);
	buf = encode(&r.txn, &len);
	longer = calloc(len + 16, 1);
	assert_non_null(longer);
	memcpy(longer, buf, len);
	store_txn_view_init(&v);
	for (extra = 1; extra <= 16; extra++)
		assert_int_equal(decode_exact(longer, len + extra, &v, errmsg),
				 STORE_EMALFORMED);
	store_txn_view_close(&v);
	free(longer);
	free(buf);
}

/* Encodes a one-part transaction on stream "zz-stream-q1", overwrites
 * @n bytes of the name's encoding at @at with @bytes, and decodes it. */
static int decode_with_stream_patched(size_t at, const char *bytes, size_t n)
{
	static const char orig[] = "zz-stream-q1";
	struct one o;
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *buf;
	size_t len;
	size_t pos;
	int rv;

	assert_true(at + n <= sizeof orig - 1);
	one_make(&o, orig);
	buf = encode(&o.txn, &len);
	pos = find_bytes(buf, len, orig, sizeof orig - 1);
	memcpy(buf + pos + at, bytes, n);
	store_txn_view_init(&v);
	rv = decode_exact(buf, len, &v, errmsg);
	if (rv != 0)
		assert_true(errmsg[0] != '\0');
	store_txn_view_close(&v);
	free(buf);
	return rv;
}

static void txn_decode_validates_stream_names(void **state)
{
	(void)state;
	assert_int_equal(decode_with_stream_patched(4, "\n", 1),
			 STORE_EINVALID_STREAM);
	assert_int_equal(decode_with_stream_patched(4, "\0", 1),
			 STORE_EINVALID_STREAM);
	assert_int_equal(decode_with_stream_patched(4, "\xc0\xaf", 2),
			 STORE_EINVALID_STREAM);
	assert_int_equal(decode_with_stream_patched(4, "\xed\xa0\x80", 3),
			 STORE_EINVALID_STREAM);
	assert_int_equal(decode_with_stream_patched(11, "\xc3", 1),
			 STORE_EINVALID_STREAM);
	/* The same patch with valid bytes decodes, so the above fail for the
	 * name and nothing else. */
	assert_int_equal(decode_with_stream_patched(4, "\xc3\xa9", 2), 0);
}

static void txn_decode_rejects_duplicate_stream_in_bytes(void **state)
{
	struct tu_txn *t;
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	const char *const streams[] = { "dupa-1", "dupb-1", NULL };
	uint8_t *buf;
	size_t len;
	size_t at;

	(void)state;
	t = tu_txn_make(streams, tu_any(), 2, 3, 1);
	buf = encode(&t->txn, &len);
	at = find_bytes(buf, len, "dupb-1", 6);
	memcpy(buf + at, "dupa-1", 6);
	store_txn_view_init(&v);
	assert_int_equal(decode_exact(buf, len, &v, errmsg),
			 STORE_EDUPLICATE_STREAM);
	store_txn_view_close(&v);
	free(buf);
	tu_txn_free(t);
}

/* Flips every single byte of a valid encoding in turn: the decoder either
 * accepts the bytes or rejects them with a code of the table, and never
 * reads outside them (ASan). */
static void txn_decode_survives_every_single_byte_change(void **state)
{
	struct rich r;
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *buf;
	size_t len;
	size_t i;
	static const uint8_t values[] = { 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff };
	size_t k;

	(void)state;
	rich_make(&r);
	buf = encode(&r.txn, &len);
	store_txn_view_init(&v);
	for (i = 0; i < len; i++) {
		uint8_t orig = buf[i];

		for (k = 0; k < sizeof values; k++) {
			int rv;

			buf[i] = values[k];
			rv = decode_exact(buf, len, &v, errmsg);
			if (rv == STORE_ENOMEM)
				fail_msg(
					"byte %zu=0x%02x: allocated from a "
					"count",
					i, values[k]);
			if (rv != 0 &&
			    (rv < STORE_ECORRUPT || rv > STORE_EINVAL))
				fail_msg("byte %zu=0x%02x: unexpected code %d",
					 i, values[k], rv);
		}
		buf[i] = orig;
	}
	store_txn_view_close(&v);
	free(buf);
}

/* ------------------------------------------------------------------------
 * Entry framing
 * ------------------------------------------------------------------------ */

/* A finished entry of three transactions, copied into @out (malloc'd). */
static uint8_t *make_entry(size_t *len)
{
	struct store_entry_builder b;
	struct rich r;
	struct one o1;
	struct one o2;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *entry;
	uint8_t *copy;

	rich_make(&r);
	one_make(&o1, "e-1");
	one_make(&o2, "e-22");
	o2.ev.data = "abc";
	o2.ev.data_len = 3;
	store_entry_builder_init(&b);
	assert_int_equal(store_entry_add(&b, &o1.txn, errmsg), 0);
	assert_int_equal(store_entry_add(&b, &r.txn, errmsg), 0);
	assert_int_equal(store_entry_add(&b, &o2.txn, errmsg), 0);
	assert_int_equal(store_entry_finish(&b, &entry, len), 0);
	copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, entry, *len);
	store_entry_builder_close(&b);
	return copy;
}

/* Offsets of the transactions' bytes within @entry. */
static uint32_t entry_offsets(const uint8_t *entry, size_t len, size_t *off,
			      size_t *tlen, uint32_t max)
{
	struct store_entry_iter it;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *t;
	size_t tl;
	uint32_t n = 0;

	assert_int_equal(store_entry_open(entry, len, &it, errmsg), 0);
	while (store_entry_next(&it, &t, &tl)) {
		assert_true(n < max);
		off[n] = (size_t)((const uint8_t *)t - entry);
		tlen[n] = tl;
		n++;
	}
	return n;
}

static void entry_open_rejects_every_truncation(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *entry;
	size_t len;
	size_t n;

	(void)state;
	entry = make_entry(&len);
	for (n = 0; n < len; n++) {
		int rv = entry_open_exact(entry, n, errmsg);

		if (rv != STORE_EMALFORMED)
			fail_msg(
				"entry prefix %zu/%zu: want EMALFORMED, got %d",
				n, len, rv);
		assert_true(errmsg[0] != '\0');
	}
	assert_int_equal(entry_open_exact(entry, len, errmsg), 0);
	free(entry);
}

static void entry_open_rejects_trailing_bytes(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *entry;
	uint8_t *longer;
	size_t len;
	size_t extra;

	(void)state;
	entry = make_entry(&len);
	longer = calloc(len + 16, 1);
	assert_non_null(longer);
	memcpy(longer, entry, len);
	/* Zeros after the entry are not padding: padding is at most 7 bytes
	 * and the lengths account for the rest. */
	for (extra = 1; extra <= 16; extra++)
		assert_int_equal(entry_open_exact(longer, len + extra, errmsg),
				 STORE_EMALFORMED);
	free(longer);
	free(entry);
}

static void entry_open_rejects_bad_magic(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *entry;
	size_t len;
	size_t i;

	(void)state;
	entry = make_entry(&len);
	/* The header starts with the magic: changing any of its first four
	 * bytes is refused. */
	for (i = 0; i < 4; i++) {
		entry[i] ^= 0x20;
		assert_int_equal(entry_open_exact(entry, len, errmsg),
				 STORE_EMALFORMED);
		assert_true(errmsg[0] != '\0');
		entry[i] ^= 0x20;
	}
	assert_int_equal(entry_open_exact(entry, len, errmsg), 0);
	free(entry);
}

static void entry_open_rejects_nonzero_padding(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	size_t off[4];
	size_t tlen[4];
	uint8_t *entry;
	size_t len;
	size_t body_end;
	size_t i;
	uint32_t n;

	(void)state;
	entry = make_entry(&len);
	n = entry_offsets(entry, len, off, tlen, 4);
	assert_int_equal(n, 3);
	body_end = off[2] + tlen[2];
	/* The last transaction (o2 with 3 bytes of data) leaves padding;
	 * if this assertion fails, make_entry needs another size. */
	assert_true(body_end < len);
	for (i = body_end; i < len; i++) {
		assert_int_equal(entry[i], 0);
		entry[i] = 1;
		assert_int_equal(entry_open_exact(entry, len, errmsg),
				 STORE_EMALFORMED);
		entry[i] = 0;
	}
	assert_int_equal(entry_open_exact(entry, len, errmsg), 0);
	free(entry);
}

/* Every byte of the entry outside the transactions' bodies is framing
 * (header, length fields, padding): changing any one is refused, and never
 * leads the iterator outside the buffer. */
static void entry_open_survives_every_framing_byte_change(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	size_t off[4];
	size_t tlen[4];
	uint8_t *entry;
	size_t len;
	size_t i;
	uint32_t n;
	static const uint8_t values[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	size_t k;

	(void)state;
	entry = make_entry(&len);
	n = entry_offsets(entry, len, off, tlen, 4);
	assert_int_equal(n, 3);
	for (i = 0; i < len; i++) {
		uint8_t orig = entry[i];
		bool in_body = false;
		uint32_t j;

		for (j = 0; j < n; j++)
			if (i >= off[j] && i < off[j] + tlen[j])
				in_body = true;
		if (in_body)
			continue;
		for (k = 0; k < sizeof values; k++) {
			int rv;

			if (values[k] == orig)
				continue;
			entry[i] = values[k];
			rv = entry_open_exact(entry, len, errmsg);
			if (rv != STORE_EMALFORMED)
				fail_msg(
					"framing byte %zu=0x%02x: want "
					"EMALFORMED, got %d",
					i, values[k], rv);
		}
		entry[i] = orig;
	}
	free(entry);
}

/* ------------------------------------------------------------------------
 * Byte-level malformations (docs/storage-format.md)
 * ------------------------------------------------------------------------ */

/* Offsets in the encoding of one_make(&o, stream) with no client, one part
 * and one event of type "T", as docs/storage-format.md lays them out. */
struct layout {
	size_t n_parts;    /* u32 */
	size_t stream_len; /* u8 */
	size_t mode;       /* u8 */
	size_t expected;   /* u64 */
	size_t n_events;   /* u32 */
	size_t type_len;   /* u8 */
	size_t data_len;   /* u32 */
	size_t data;
	size_t meta_len; /* u32 */
};

static struct layout layout_of(const uint8_t *buf, size_t len,
			       const struct one *o)
{
	struct layout l;
	size_t sl = o->part.stream_len;

	l.n_parts = 4;
	l.stream_len = 16;
	l.mode = 17 + sl;
	l.expected = 18 + sl;
	l.n_events = 26 + sl;
	l.type_len = 30 + sl + 16;
	l.data_len = l.type_len + 1 + o->ev.type_len + 2 + 8;
	l.data = l.data_len + 4;
	l.meta_len = l.data + o->ev.data_len;
	/* The test's reading of the format agrees with the encoder. */
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[1], 0);
	assert_int_equal(get_le(buf + l.n_parts, 4), 1);
	assert_int_equal(get_le(buf + 8, 8), o->txn.commit_time_us);
	assert_int_equal(buf[l.stream_len], sl);
	assert_memory_equal(buf + l.stream_len + 1, o->part.stream, sl);
	assert_int_equal(buf[l.mode], o->part.expect.kind);
	assert_int_equal(get_le(buf + l.n_events, 4), 1);
	assert_memory_equal(buf + l.n_events + 4, o->ev.id, 16);
	assert_int_equal(buf[l.type_len], o->ev.type_len);
	assert_int_equal(get_le(buf + l.data_len, 4), o->ev.data_len);
	assert_int_equal(get_le(buf + l.meta_len, 4), o->ev.metadata_len);
	assert_int_equal(l.meta_len + 4 + o->ev.metadata_len, len);
	return l;
}

/* @buf with @remove bytes at @at replaced by @ins[0..ins_n), malloc'd. */
static uint8_t *splice(const uint8_t *buf, size_t len, size_t at, size_t remove,
		       const void *ins, size_t ins_n, size_t *out_len)
{
	uint8_t *out = malloc(len - remove + ins_n + 1);

	assert_non_null(out);
	memcpy(out, buf, at);
	if (ins_n > 0)
		memcpy(out + at, ins, ins_n);
	memcpy(out + at + ins_n, buf + at + remove, len - at - remove);
	*out_len = len - remove + ins_n;
	return out;
}

static int decode_patched(const uint8_t *buf, size_t len)
{
	struct store_txn_view v;
	char errmsg[STORE_ERRMSG_SIZE];
	int rv;

	store_txn_view_init(&v);
	rv = decode_exact(buf, len, &v, errmsg);
	if (rv != 0)
		assert_true(errmsg[0] != '\0');
	store_txn_view_close(&v);
	return rv;
}

static void txn_decode_rejects_unknown_format_version(void **state)
{
	struct one o;
	uint8_t *buf;
	size_t len;

	(void)state;
	one_make(&o, "fmt");
	buf = encode(&o.txn, &len);
	(void)layout_of(buf, len, &o);
	buf[0] = 0;
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	buf[0] = 2;
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	buf[0] = 0xff;
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	buf[0] = 1;
	assert_int_equal(decode_patched(buf, len), 0);
	free(buf);
}

static void txn_decode_rejects_unknown_flags_and_reserved_bytes(void **state)
{
	struct one o;
	uint8_t *buf;
	size_t len;
	unsigned bit;

	(void)state;
	one_make(&o, "fmt");
	buf = encode(&o.txn, &len);
	(void)layout_of(buf, len, &o);
	for (bit = 1; bit < 8; bit++) {
		buf[1] = (uint8_t)(1u << bit);
		assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	}
	buf[1] = 0;
	buf[2] = 1;
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	buf[2] = 0;
	buf[3] = 0x80;
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	free(buf);
}

/* Setting the client flag on a transaction without client fields makes
 * the decoder read 24 bytes that are not there as client id and sequence:
 * the parts then no longer fit. */
static void txn_decode_rejects_client_flag_without_client_bytes(void **state)
{
	struct one o;
	uint8_t *buf;
	size_t len;

	(void)state;
	one_make(&o, "fmt");
	buf = encode(&o.txn, &len);
	(void)layout_of(buf, len, &o);
	buf[1] = 1;
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	free(buf);
}

static void txn_decode_rejects_part_count_beyond_the_bytes(void **state)
{
	static const uint32_t counts[] = { 2,          3,          1000,
					   0x7fffffff, 0x80000000, 0xffffffff };
	struct one o;
	uint8_t *buf;
	size_t len;
	size_t i;

	(void)state;
	one_make(&o, "cnt");
	buf = encode(&o.txn, &len);
	(void)layout_of(buf, len, &o);
	for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		put_le(buf + 4, 4, counts[i]);
		/* EMALFORMED, and never ENOMEM: nothing is allocated from a
		 * count the bytes cannot hold (ASan would abort on it). */
		assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	}
	free(buf);
}

static void txn_decode_rejects_zero_parts(void **state)
{
	struct one o;
	uint8_t *buf;
	size_t len;
	int rv;

	(void)state;
	one_make(&o, "cnt");
	buf = encode(&o.txn, &len);
	(void)layout_of(buf, len, &o);
	put_le(buf + 4, 4, 0);
	/* The header alone, claiming no parts, is an empty transaction;
	 * with the part's bytes left over it is malformed as well. */
	assert_int_equal(decode_patched(buf, 16), STORE_EEMPTY);
	rv = decode_patched(buf, len);
	if (rv != STORE_EEMPTY && rv != STORE_EMALFORMED)
		fail_msg("zero parts and trailing bytes: got %d", rv);
	free(buf);
}

static void txn_decode_rejects_event_count_beyond_the_bytes(void **state)
{
	static const uint32_t counts[] = { 2,          5,          1000,
					   0x7fffffff, 0x80000000, 0xffffffff };
	struct one o;
	struct layout l;
	uint8_t *buf;
	size_t len;
	size_t i;

	(void)state;
	one_make(&o, "cnt");
	buf = encode(&o.txn, &len);
	l = layout_of(buf, len, &o);
	for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		int rv;

		put_le(buf + l.n_events, 4, counts[i]);
		rv = decode_patched(buf, len);
		/* A count over the event limit may be refused for that first;
		 * either way nothing is allocated from it. */
		if (rv == STORE_ETOO_MANY_EVENTS &&
		    counts[i] > STORE_TXN_EVENTS_MAX)
			continue;
		if (rv != STORE_EMALFORMED)
			fail_msg("%u events claimed: got %d", counts[i], rv);
	}
	free(buf);
}

static void txn_decode_rejects_lengths_past_the_end(void **state)
{
	struct one o;
	struct layout l;
	uint8_t *buf;
	size_t len;
	uint64_t orig;

	(void)state;
	one_make(&o, "len");
	o.ev.data = "abcdef";
	o.ev.data_len = 6;
	o.ev.metadata = "m";
	o.ev.metadata_len = 1;
	buf = encode(&o.txn, &len);
	l = layout_of(buf, len, &o);

	orig = get_le(buf + l.data_len, 4);
	put_le(buf + l.data_len, 4, len - l.data + 1);
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	put_le(buf + l.data_len, 4, 0xffffffff);
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	put_le(buf + l.data_len, 4, 0x80000000);
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	put_le(buf + l.data_len, 4, orig);

	put_le(buf + l.meta_len, 4, 2);
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	put_le(buf + l.meta_len, 4, 0xffffffff);
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	/* A shorter metadata length leaves trailing bytes. */
	put_le(buf + l.meta_len, 4, 0);
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	put_le(buf + l.meta_len, 4, 1);

	buf[l.stream_len] = 255;
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	buf[l.stream_len] = (uint8_t)o.part.stream_len;

	buf[l.type_len] = 255;
	assert_int_equal(decode_patched(buf, len), STORE_EMALFORMED);
	buf[l.type_len] = 1;
	assert_int_equal(decode_patched(buf, len), 0);
	free(buf);
}

static void txn_decode_rejects_empty_names_in_bytes(void **state)
{
	static const uint8_t zero = 0;
	struct one o;
	struct layout l;
	uint8_t *buf;
	uint8_t *bad;
	size_t len;
	size_t bad_len;

	(void)state;
	one_make(&o, "nm");
	/* Data, so that without the name bytes the part is still as long as
	 * the smallest valid one and it is the name that is refused. */
	o.ev.data = "0123456789";
	o.ev.data_len = 10;
	buf = encode(&o.txn, &len);
	l = layout_of(buf, len, &o);
	/* Stream length 0 and its two bytes removed. */
	bad = splice(buf, len, l.stream_len, 3, &zero, 1, &bad_len);
	assert_int_equal(decode_patched(bad, bad_len), STORE_EINVALID_STREAM);
	free(bad);
	/* Type length 0 and its byte removed. */
	bad = splice(buf, len, l.type_len, 2, &zero, 1, &bad_len);
	assert_int_equal(decode_patched(bad, bad_len), STORE_EINVALID_TYPE);
	free(bad);
	free(buf);
}

static void txn_decode_rejects_invalid_expected_version_in_bytes(void **state)
{
	struct one o;
	struct layout l;
	uint8_t *buf;
	size_t len;

	(void)state;
	one_make(&o, "exp");
	buf = encode(&o.txn, &len);
	l = layout_of(buf, len, &o);
	buf[l.mode] = 4;
	assert_int_equal(decode_patched(buf, len), STORE_EINVALID_EXPECTED);
	buf[l.mode] = 0xff;
	assert_int_equal(decode_patched(buf, len), STORE_EINVALID_EXPECTED);
	buf[l.mode] = STORE_EXPECT_EXACT;
	put_le(buf + l.expected, 8, STORE_VERSION_MAX);
	assert_int_equal(decode_patched(buf, len), 0);
	put_le(buf + l.expected, 8, STORE_VERSION_MAX + 1);
	assert_int_equal(decode_patched(buf, len), STORE_EINVALID_EXPECTED);
	put_le(buf + l.expected, 8, UINT64_MAX);
	assert_int_equal(decode_patched(buf, len), STORE_EINVALID_EXPECTED);
	/* Other modes carry a zero version. */
	buf[l.mode] = STORE_EXPECT_ANY;
	put_le(buf + l.expected, 8, 5);
	assert_int_not_equal(decode_patched(buf, len), 0);
	free(buf);
}

static void txn_decode_rejects_sizes_over_the_limits_in_bytes(void **state)
{
	uint8_t *data = calloc(STORE_EVENT_DATA_MAX, 1);
	uint8_t *meta = calloc(STORE_EVENT_METADATA_MAX, 1);
	struct one o;
	struct layout l;
	uint8_t *buf;
	uint8_t *bad;
	size_t len;
	size_t bad_len;
	uint8_t extra = 0;

	(void)state;
	assert_non_null(data);
	assert_non_null(meta);
	one_make(&o, "big");
	o.ev.data = data;
	o.ev.data_len = STORE_EVENT_DATA_MAX;
	o.ev.metadata = meta;
	o.ev.metadata_len = STORE_EVENT_METADATA_MAX;
	buf = encode(&o.txn, &len);
	l = layout_of(buf, len, &o);
	assert_int_equal(decode_patched(buf, len), 0);

	/* One more byte of data, with its length saying so. */
	bad = splice(buf, len, l.meta_len, 0, &extra, 1, &bad_len);
	put_le(bad + l.data_len, 4, STORE_EVENT_DATA_MAX + 1);
	assert_int_equal(decode_patched(bad, bad_len), STORE_EDATA_TOO_LARGE);
	free(bad);

	/* One more byte of metadata. */
	bad = splice(buf, len, len, 0, &extra, 1, &bad_len);
	put_le(bad + l.meta_len, 4, STORE_EVENT_METADATA_MAX + 1);
	assert_int_equal(decode_patched(bad, bad_len),
			 STORE_EMETADATA_TOO_LARGE);
	free(bad);

	free(buf);
	free(data);
	free(meta);
}

/* Offsets of the entry header fields. */
#define ENTRY_VERSION       4
#define ENTRY_COUNT         8
#define ENTRY_BODY_LEN      12
#define ENTRY_FIRST_TXN_LEN 16

static void entry_header_is_as_documented(void **state)
{
	size_t off[4];
	size_t tlen[4];
	uint8_t *entry;
	size_t len;

	(void)state;
	entry = make_entry(&len);
	assert_memory_equal(entry, "CRNE", 4);
	assert_int_equal(entry[ENTRY_VERSION], 1);
	assert_int_equal(get_le(entry + ENTRY_COUNT, 4), 3);
	assert_int_equal(entry_offsets(entry, len, off, tlen, 4), 3);
	assert_int_equal(off[0], 20);
	assert_int_equal(get_le(entry + ENTRY_FIRST_TXN_LEN, 4), tlen[0]);
	assert_int_equal(get_le(entry + ENTRY_BODY_LEN, 4),
			 off[2] + tlen[2] - 16);
	free(entry);
}

static void entry_open_rejects_unknown_format_and_reserved_bytes(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *entry;
	size_t len;
	size_t i;

	(void)state;
	entry = make_entry(&len);
	entry[ENTRY_VERSION] = 2;
	assert_int_equal(entry_open_exact(entry, len, errmsg),
			 STORE_EMALFORMED);
	entry[ENTRY_VERSION] = 0;
	assert_int_equal(entry_open_exact(entry, len, errmsg),
			 STORE_EMALFORMED);
	entry[ENTRY_VERSION] = 1;
	for (i = 5; i < 8; i++) {
		entry[i] = 1;
		assert_int_equal(entry_open_exact(entry, len, errmsg),
				 STORE_EMALFORMED);
		entry[i] = 0;
	}
	assert_int_equal(entry_open_exact(entry, len, errmsg), 0);
	free(entry);
}

static void entry_open_rejects_wrong_transaction_count(void **state)
{
	static const uint32_t counts[] = {
		0, 2, 4, 1000, 65536, 65537, 0x7fffffff, 0xffffffff
	};
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *entry;
	size_t len;
	size_t i;

	(void)state;
	entry = make_entry(&len);
	for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		put_le(entry + ENTRY_COUNT, 4, counts[i]);
		assert_int_equal(entry_open_exact(entry, len, errmsg),
				 STORE_EMALFORMED);
	}
	put_le(entry + ENTRY_COUNT, 4, 3);
	assert_int_equal(entry_open_exact(entry, len, errmsg), 0);
	free(entry);
}

static void entry_open_rejects_body_length_past_the_end(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *entry;
	size_t len;
	uint64_t body;

	(void)state;
	entry = make_entry(&len);
	body = get_le(entry + ENTRY_BODY_LEN, 4);
	put_le(entry + ENTRY_BODY_LEN, 4, len - 16 + 1);
	assert_int_equal(entry_open_exact(entry, len, errmsg),
			 STORE_EMALFORMED);
	put_le(entry + ENTRY_BODY_LEN, 4, len);
	assert_int_equal(entry_open_exact(entry, len, errmsg),
			 STORE_EMALFORMED);
	put_le(entry + ENTRY_BODY_LEN, 4, 0xffffffff);
	assert_int_equal(entry_open_exact(entry, len, errmsg),
			 STORE_EMALFORMED);
	/* Shorter than the transactions it holds. */
	put_le(entry + ENTRY_BODY_LEN, 4, body - 1);
	assert_int_equal(entry_open_exact(entry, len, errmsg),
			 STORE_EMALFORMED);
	put_le(entry + ENTRY_BODY_LEN, 4, body - 8);
	assert_int_equal(entry_open_exact(entry, len, errmsg),
			 STORE_EMALFORMED);
	put_le(entry + ENTRY_BODY_LEN, 4, body);
	assert_int_equal(entry_open_exact(entry, len, errmsg), 0);
	free(entry);
}

static void entry_open_rejects_txn_length_past_the_body(void **state)
{
	static const uint32_t lens[] = { 0, 1, 0xffff, 0x7fffffff, 0xffffffff };
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *entry;
	size_t len;
	uint64_t orig;
	size_t i;

	(void)state;
	entry = make_entry(&len);
	orig = get_le(entry + ENTRY_FIRST_TXN_LEN, 4);
	for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		put_le(entry + ENTRY_FIRST_TXN_LEN, 4, lens[i]);
		assert_int_equal(entry_open_exact(entry, len, errmsg),
				 STORE_EMALFORMED);
	}
	put_le(entry + ENTRY_FIRST_TXN_LEN, 4, orig);
	assert_int_equal(entry_open_exact(entry, len, errmsg), 0);
	free(entry);
}

static void entry_open_rejects_entry_over_the_byte_limit(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	size_t body = (size_t)STORE_ENTRY_BYTES_MAX + 8;
	size_t len = 16 + body;
	uint8_t *entry = calloc(len, 1);

	(void)state;
	assert_non_null(entry);
	memcpy(entry, "CRNE", 4);
	entry[ENTRY_VERSION] = 1;
	put_le(entry + ENTRY_COUNT, 4, 1);
	put_le(entry + ENTRY_BODY_LEN, 4, body);
	put_le(entry + 16, 4, body - 4);
	assert_int_equal(len % 8, 0);
	assert_int_equal(entry_open_exact(entry, len, errmsg),
			 STORE_EMALFORMED);
	free(entry);
}

/* ------------------------------------------------------------------------
 * Limits: each gives its own error
 * ------------------------------------------------------------------------ */

static void stream_name_empty_is_rejected(void **state)
{
	struct one o;

	(void)state;
	one_make(&o, "x");
	set_stream(&o, "", 0);
	expect_invalid(&o.txn, STORE_EINVALID_STREAM);
}

static void stream_name_of_255_bytes_is_accepted_and_256_rejected(void **state)
{
	char name[257];
	struct one o;

	(void)state;
	memset(name, 'n', sizeof name);
	name[256] = '\0';
	one_make(&o, "x");
	set_stream(&o, name, 255);
	expect_valid(&o.txn);
	set_stream(&o, name, 256);
	expect_invalid(&o.txn, STORE_EINVALID_STREAM);

	/* Multi-byte characters count in bytes: 127 two-byte characters and
	 * one ASCII byte are 255 bytes; one more two-byte character is 257. */
	{
		char u[260];
		size_t i;

		for (i = 0; i < 127; i++) {
			u[2 * i] = (char)0xc3;
			u[2 * i + 1] = (char)0xa9;
		}
		u[254] = 'x';
		set_stream(&o, u, 255);
		expect_valid(&o.txn);
		u[254] = (char)0xc3;
		u[255] = (char)0xa9;
		set_stream(&o, u, 256);
		expect_invalid(&o.txn, STORE_EINVALID_STREAM);
	}
}

static void stream_name_with_invalid_utf8_is_rejected(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		{ "ab\xc0\xaf", 4 },             /* overlong '/' */
		{ "ab\xe0\x80\xaf", 5 },         /* overlong, 3 bytes */
		{ "ab\xf0\x80\x80\xaf", 6 },     /* overlong, 4 bytes */
		{ "ab\xed\xa0\x80", 5 },         /* surrogate U+D800 */
		{ "ab\xed\xbf\xbf", 5 },         /* surrogate U+DFFF */
		{ "ab\xe2\x82", 4 },             /* truncated at the end */
		{ "ab\xe2\x82z", 5 },            /* truncated in the middle */
		{ "\x80x", 2 },                  /* lone continuation byte */
		{ "ab\xf4\x90\x80\x80", 6 },     /* above U+10FFFF */
		{ "ab\xff", 3 },                 /* never valid */
		{ "ab\xf8\x88\x80\x80\x80", 7 }, /* five-byte form */
	};
	struct one o;
	size_t i;

	(void)state;
	one_make(&o, "x");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_false(store_stream_name_valid(bad[i].s, bad[i].len));
		set_stream(&o, bad[i].s, bad[i].len);
		expect_invalid(&o.txn, STORE_EINVALID_STREAM);
	}
}

static void stream_name_with_control_characters_is_rejected(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		{ "a\nb", 3 },      { "a\x7f", 2 },     { "a\0b", 3 },
		{ "a\xc2\x85", 3 }, { "\tab", 3 },      { "a\r", 2 },
		{ "\x1b[0m", 4 },   { "a\xc2\x9f", 3 }, { "a\xc2\x80", 3 },
	};
	struct one o;
	size_t i;

	(void)state;
	one_make(&o, "x");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (store_stream_name_valid(bad[i].s, bad[i].len))
			fail_msg("name %zu accepted", i);
		set_stream(&o, bad[i].s, bad[i].len);
		expect_invalid(&o.txn, STORE_EINVALID_STREAM);
	}
}

static void stream_name_valid_accepts_utf8_and_punctuation(void **state)
{
	static const char *const good[] = {
		"a",
		"order-123",
		"user-\xc3\xa9t\xc3\xa9", /* é */
		"\xe2\x82\xac-42",        /* € */
		"emoji-\xf0\x9f\x98\x80", /* U+1F600 */
		"max-\xf4\x8f\xbf\xbf",   /* U+10FFFF */
		"\xc2\xa0nbsp",           /* U+00A0, not C1 */
		"with space and $pecial/chars:*",
		"bom-\xef\xbb\xbf", /* U+FEFF */
	};
	struct one o;
	size_t i;

	(void)state;
	one_make(&o, "x");
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (!store_stream_name_valid(good[i], strlen(good[i])))
			fail_msg("valid name %zu refused", i);
		set_stream(&o, good[i], strlen(good[i]));
		expect_valid(&o.txn);
	}
	assert_false(store_stream_name_valid("", 0));
}

static void type_empty_or_256_bytes_is_rejected(void **state)
{
	char type[257];
	struct one o;

	(void)state;
	memset(type, 't', sizeof type);
	one_make(&o, "s");
	o.ev.type = type;
	o.ev.type_len = 0;
	expect_invalid(&o.txn, STORE_EINVALID_TYPE);
	o.ev.type_len = 255;
	expect_valid(&o.txn);
	o.ev.type_len = 256;
	expect_invalid(&o.txn, STORE_EINVALID_TYPE);
}

static void type_with_invalid_utf8_is_rejected(void **state)
{
	struct one o;

	(void)state;
	one_make(&o, "s");
	o.ev.type = "Bad\xc0\xaf";
	o.ev.type_len = 5;
	expect_invalid(&o.txn, STORE_EINVALID_TYPE);
	o.ev.type = "Bad\xed\xa0\x80";
	o.ev.type_len = 6;
	expect_invalid(&o.txn, STORE_EINVALID_TYPE);
}

static void data_of_max_size_is_accepted_and_one_more_rejected(void **state)
{
	uint8_t *data = calloc(STORE_EVENT_DATA_MAX + 1, 1);
	struct one o;

	(void)state;
	assert_non_null(data);
	one_make(&o, "s");
	o.ev.data = data;
	o.ev.data_len = STORE_EVENT_DATA_MAX;
	expect_valid(&o.txn);
	o.ev.data_len = STORE_EVENT_DATA_MAX + 1;
	expect_invalid(&o.txn, STORE_EDATA_TOO_LARGE);
	free(data);
}

static void metadata_of_max_size_is_accepted_and_one_more_rejected(void **state)
{
	uint8_t *meta = calloc(STORE_EVENT_METADATA_MAX + 1, 1);
	struct one o;

	(void)state;
	assert_non_null(meta);
	one_make(&o, "s");
	o.ev.metadata = meta;
	o.ev.metadata_len = STORE_EVENT_METADATA_MAX;
	expect_valid(&o.txn);
	o.ev.metadata_len = STORE_EVENT_METADATA_MAX + 1;
	expect_invalid(&o.txn, STORE_EMETADATA_TOO_LARGE);
	free(meta);
}

static void ten_thousand_events_are_accepted_and_one_more_rejected(void **state)
{
	const char *const one_stream[] = { "many", NULL };
	const char *const two_streams[] = { "many-a", "many-b", NULL };
	struct tu_txn *t;

	(void)state;
	t = tu_txn_make(one_stream, tu_any(), STORE_TXN_EVENTS_MAX, 0, 1);
	expect_valid(&t->txn);
	tu_txn_free(t);
	t = tu_txn_make(one_stream, tu_any(), STORE_TXN_EVENTS_MAX + 1, 0, 1);
	expect_invalid(&t->txn, STORE_ETOO_MANY_EVENTS);
	tu_txn_free(t);

	/* The limit is per transaction, not per part. */
	t = tu_txn_make(two_streams, tu_any(), STORE_TXN_EVENTS_MAX / 2, 0, 1);
	expect_valid(&t->txn);
	tu_txn_free(t);
	t = tu_txn_make(two_streams, tu_any(), STORE_TXN_EVENTS_MAX / 2, 0, 1);
	t->parts[1].n_events = STORE_TXN_EVENTS_MAX / 2 + 1;
	{
		/* tu_txn_make allocated one spare event after the last part. */
		t->events[STORE_TXN_EVENTS_MAX] = t->events[0];
	}
	expect_invalid(&t->txn, STORE_ETOO_MANY_EVENTS);
	tu_txn_free(t);
}

static void txn_over_16_mib_is_rejected(void **state)
{
	const char *const streams[] = { "big", NULL };
	struct tu_txn *t;

	(void)state;
	/* 15 events of 1 MiB fit. */
	t = tu_txn_make(streams, tu_any(), 15, STORE_EVENT_DATA_MAX, 1);
	assert_true(store_txn_encoded_size(&t->txn) <= STORE_TXN_BYTES_MAX);
	expect_valid(&t->txn);
	tu_txn_free(t);
	/* 17 events of 1 MiB do not, though each event is within its own
	 * limits. */
	t = tu_txn_make(streams, tu_any(), 17, STORE_EVENT_DATA_MAX, 1);
	expect_invalid(&t->txn, STORE_ETXN_TOO_LARGE);
	tu_txn_free(t);
	/* 16 events of 1 MiB are 16 MiB of data alone, plus framing. */
	t = tu_txn_make(streams, tu_any(), 16, STORE_EVENT_DATA_MAX, 1);
	expect_invalid(&t->txn, STORE_ETXN_TOO_LARGE);
	tu_txn_free(t);
}

static void same_stream_twice_in_one_txn_is_rejected(void **state)
{
	const char *const streams[] = { "dup-1", "other", "dup-1", NULL };
	struct tu_txn *t;

	(void)state;
	t = tu_txn_make(streams, tu_any(), 1, 0, 1);
	expect_invalid(&t->txn, STORE_EDUPLICATE_STREAM);
	tu_txn_free(t);
}

static void part_without_events_is_rejected(void **state)
{
	const char *const streams[] = { "a-1", "b-1", NULL };
	struct tu_txn *t;
	struct one o;

	(void)state;
	t = tu_txn_make(streams, tu_any(), 2, 0, 1);
	t->parts[1].n_events = 0;
	expect_invalid(&t->txn, STORE_EEMPTY);
	tu_txn_free(t);

	one_make(&o, "x");
	o.txn.n_parts = 0;
	expect_invalid(&o.txn, STORE_EEMPTY);
}

static void exact_expected_version_above_max_is_rejected(void **state)
{
	struct one o;

	(void)state;
	one_make(&o, "x");
	o.part.expect.kind = STORE_EXPECT_EXACT;
	o.part.expect.version = STORE_VERSION_MAX;
	expect_valid(&o.txn);
	o.part.expect.version = STORE_VERSION_MAX + 1;
	expect_invalid(&o.txn, STORE_EINVALID_EXPECTED);
	o.part.expect.version = UINT64_MAX;
	expect_invalid(&o.txn, STORE_EINVALID_EXPECTED);
	o.part.expect.version = 0;
	expect_valid(&o.txn);
}

static void unknown_expect_kind_is_rejected(void **state)
{
	struct one o;

	(void)state;
	one_make(&o, "x");
	o.part.expect.kind = 4;
	expect_invalid(&o.txn, STORE_EINVALID_EXPECTED);
	o.part.expect.kind = 255;
	expect_invalid(&o.txn, STORE_EINVALID_EXPECTED);
}

static void entry_over_its_byte_limit_refuses_the_next_txn(void **state)
{
	const char *const streams[] = { "big", NULL };
	struct store_entry_builder b;
	struct tu_txn *t;
	char errmsg[STORE_ERRMSG_SIZE];
	size_t len_before;
	uint32_t count_before;
	const void *entry;
	size_t len;

	(void)state;
	/* Two transactions of 15 MiB each: each is valid, both together
	 * exceed STORE_ENTRY_BYTES_MAX. */
	t = tu_txn_make(streams, tu_any(), 15, STORE_EVENT_DATA_MAX, 1);
	store_entry_builder_init(&b);
	assert_int_equal(store_entry_add(&b, &t->txn, errmsg), 0);
	len_before = b.len;
	count_before = b.count;
	errmsg[0] = '\0';
	assert_int_equal(store_entry_add(&b, &t->txn, errmsg),
			 STORE_EENTRY_TOO_LARGE);
	assert_true(errmsg[0] != '\0');
	assert_int_equal(b.len, len_before);
	assert_int_equal(b.count, count_before);
	assert_int_equal(store_entry_finish(&b, &entry, &len), 0);
	assert_true(len <= STORE_ENTRY_BYTES_MAX);
	assert_int_equal(store_entry_count(entry), 1);
	store_entry_builder_close(&b);
	tu_txn_free(t);
}

static void entry_over_its_txn_count_limit_refuses_the_next_txn(void **state)
{
	struct store_entry_builder b;
	struct one o;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *entry;
	size_t len;
	size_t len_before;
	uint32_t i;

	(void)state;
	one_make(&o, "t");
	store_entry_builder_init(&b);
	for (i = 0; i < STORE_ENTRY_TXNS_MAX; i++) {
		int rv = store_entry_add(&b, &o.txn, errmsg);

		if (rv != 0)
			fail_msg("txn %u of %u refused: %d %s", i,
				 STORE_ENTRY_TXNS_MAX, rv, errmsg);
	}
	len_before = b.len;
	assert_int_equal(store_entry_add(&b, &o.txn, errmsg),
			 STORE_EENTRY_TOO_LARGE);
	assert_int_equal(b.count, STORE_ENTRY_TXNS_MAX);
	assert_int_equal(b.len, len_before);
	assert_int_equal(store_entry_finish(&b, &entry, &len), 0);
	assert_int_equal(store_entry_count(entry), STORE_ENTRY_TXNS_MAX);
	assert_int_equal(entry_open_exact(entry, len, errmsg), 0);
	store_entry_builder_close(&b);
}

/* store_entry_add_encoded() trusts bytes that were validated when encoded
 * or decoded (a bad one is REJECTED at apply, see test_apply.c), but it
 * keeps the size limits of a transaction and of an entry. */
static void entry_add_encoded_keeps_the_size_limits(void **state)
{
	const char *const streams[] = { "big", NULL };
	struct store_entry_builder b;
	struct tu_txn *t;
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *buf;
	uint8_t *huge;
	size_t len;
	size_t len_before;

	(void)state;
	t = tu_txn_make(streams, tu_any(), 15, STORE_EVENT_DATA_MAX, 1);
	buf = encode(&t->txn, &len);
	store_entry_builder_init(&b);
	assert_int_equal(store_entry_add_encoded(&b, buf, len, errmsg), 0);
	len_before = b.len;
	assert_int_equal(store_entry_add_encoded(&b, buf, len, errmsg),
			 STORE_EENTRY_TOO_LARGE);
	assert_int_equal(b.len, len_before);
	assert_int_equal(b.count, 1);

	store_entry_builder_reset(&b);
	huge = calloc((size_t)STORE_TXN_BYTES_MAX + 1, 1);
	assert_non_null(huge);
	assert_int_equal(store_entry_add_encoded(
				 &b, huge, STORE_TXN_BYTES_MAX + 1, errmsg),
			 STORE_ETXN_TOO_LARGE);
	assert_int_equal(b.count, 0);
	free(huge);
	store_entry_builder_close(&b);
	free(buf);
	tu_txn_free(t);
}

static void strerror_has_a_message_for_every_code(void **state)
{
	int code;

	(void)state;
	for (code = STORE_ENOMEM; code <= STORE_EINVAL; code++) {
		const char *m = store_strerror(code);

		assert_non_null(m);
		assert_string_not_equal(m, "unknown error");
	}
	assert_string_equal(store_strerror(STORE_EINVALID_STREAM),
			    "invalid stream name");
	assert_string_equal(store_strerror(0x7fff), "unknown error");
	assert_string_equal(store_strerror(-1), "unknown error");
}

/* ------------------------------------------------------------------------
 * Stream names and categories
 * ------------------------------------------------------------------------ */

static void stream_category_is_the_part_before_the_first_dash(void **state)
{
	const char *c;
	size_t len = 99;

	(void)state;
	c = store_stream_category("order-12-x", 10, &len);
	assert_int_equal(len, 5);
	assert_non_null(c);
	assert_memory_equal(c, "order", 5);

	len = 99;
	c = store_stream_category("order-", 6, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(c, "order", 5);

	len = 99;
	(void)store_stream_category("order", 5, &len);
	assert_int_equal(len, 0);

	/* Only @name_len bytes count: the '-' beyond them is not seen. */
	len = 99;
	(void)store_stream_category("order-1", 5, &len);
	assert_int_equal(len, 0);

	len = 99;
	c = store_stream_category("\xc3\xa9t\xc3\xa9-1", 7, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(c, "\xc3\xa9t\xc3\xa9", 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(txn_round_trip_keeps_every_field),
		cmocka_unit_test(
			txn_round_trip_without_client_or_optional_fields),
		cmocka_unit_test(txn_encoding_differs_when_a_field_differs),
		cmocka_unit_test(smallest_possible_txn_decodes),
		cmocka_unit_test(txn_view_is_reused_between_decodes),
		cmocka_unit_test(entry_with_several_txns_round_trips),
		cmocka_unit_test(entry_add_encoded_builds_the_same_entry),
		cmocka_unit_test(entry_length_is_a_multiple_of_8),
		cmocka_unit_test(entry_finish_without_txns_is_empty),
		cmocka_unit_test(entry_builder_reset_forgets_earlier_txns),
		cmocka_unit_test(txn_decode_rejects_every_truncation),
		cmocka_unit_test(txn_decode_rejects_trailing_bytes),
		cmocka_unit_test(txn_decode_validates_stream_names),
		cmocka_unit_test(txn_decode_rejects_duplicate_stream_in_bytes),
		cmocka_unit_test(txn_decode_survives_every_single_byte_change),
		cmocka_unit_test(entry_open_rejects_every_truncation),
		cmocka_unit_test(entry_open_rejects_trailing_bytes),
		cmocka_unit_test(entry_open_rejects_bad_magic),
		cmocka_unit_test(entry_open_rejects_nonzero_padding),
		cmocka_unit_test(entry_open_survives_every_framing_byte_change),
		cmocka_unit_test(txn_decode_rejects_unknown_format_version),
		cmocka_unit_test(
			txn_decode_rejects_unknown_flags_and_reserved_bytes),
		cmocka_unit_test(
			txn_decode_rejects_client_flag_without_client_bytes),
		cmocka_unit_test(
			txn_decode_rejects_part_count_beyond_the_bytes),
		cmocka_unit_test(txn_decode_rejects_zero_parts),
		cmocka_unit_test(
			txn_decode_rejects_event_count_beyond_the_bytes),
		cmocka_unit_test(txn_decode_rejects_lengths_past_the_end),
		cmocka_unit_test(txn_decode_rejects_empty_names_in_bytes),
		cmocka_unit_test(
			txn_decode_rejects_invalid_expected_version_in_bytes),
		cmocka_unit_test(
			txn_decode_rejects_sizes_over_the_limits_in_bytes),
		cmocka_unit_test(entry_header_is_as_documented),
		cmocka_unit_test(
			entry_open_rejects_unknown_format_and_reserved_bytes),
		cmocka_unit_test(entry_open_rejects_wrong_transaction_count),
		cmocka_unit_test(entry_open_rejects_body_length_past_the_end),
		cmocka_unit_test(entry_open_rejects_txn_length_past_the_body),
		cmocka_unit_test(entry_open_rejects_entry_over_the_byte_limit),
		cmocka_unit_test(stream_name_empty_is_rejected),
		cmocka_unit_test(
			stream_name_of_255_bytes_is_accepted_and_256_rejected),
		cmocka_unit_test(stream_name_with_invalid_utf8_is_rejected),
		cmocka_unit_test(
			stream_name_with_control_characters_is_rejected),
		cmocka_unit_test(
			stream_name_valid_accepts_utf8_and_punctuation),
		cmocka_unit_test(type_empty_or_256_bytes_is_rejected),
		cmocka_unit_test(type_with_invalid_utf8_is_rejected),
		cmocka_unit_test(
			data_of_max_size_is_accepted_and_one_more_rejected),
		cmocka_unit_test(
			metadata_of_max_size_is_accepted_and_one_more_rejected),
		cmocka_unit_test(
			ten_thousand_events_are_accepted_and_one_more_rejected),
		cmocka_unit_test(txn_over_16_mib_is_rejected),
		cmocka_unit_test(same_stream_twice_in_one_txn_is_rejected),
		cmocka_unit_test(part_without_events_is_rejected),
		cmocka_unit_test(exact_expected_version_above_max_is_rejected),
		cmocka_unit_test(unknown_expect_kind_is_rejected),
		cmocka_unit_test(
			entry_over_its_byte_limit_refuses_the_next_txn),
		cmocka_unit_test(
			entry_over_its_txn_count_limit_refuses_the_next_txn),
		cmocka_unit_test(entry_add_encoded_keeps_the_size_limits),
		cmocka_unit_test(strerror_has_a_message_for_every_code),
		cmocka_unit_test(
			stream_category_is_the_part_before_the_first_dash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
