/* Unit tests of the wire codec (client/wire.c), the byte contract between
 * cairnd and libcairn that docs/protocol.md specifies. They pin:
 *
 *   codec      every message round-trips field for field, and the bytes
 *              are the documented layout (built here by hand, not by the
 *              encoder);
 *   malformed  every truncation, trailing byte, unknown enum value, zero
 *              or huge count and over-long string is rejected, huge counts
 *              before anything is allocated, and peek refuses a bad header
 *              from its 16 bytes alone;
 *   events     the EVENTS writer builds pages the node can stop at
 *              WIRE_READ_BYTES_MAX, after other frames in the same buffer;
 *              SUB_EVENTS pushes share its body;
 *   buf        the output buffer, the encoders' refusals (nothing
 *              appended), out-of-memory paths, the error text's truncation.
 *
 * Bodies are decoded from copies of exactly their size, so that the
 * sanitizer build reports any read past the end. malloc and realloc are
 * wrapped (see CMakeLists.txt) to count and fail allocations.
 *
 *   wire_tests [codec|malformed|events|buf]   (no argument: every group) */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "wire.h"

/* ------------------------------------------------------------------------
 * Allocation counting and failure injection (GNU ld --wrap)
 * ------------------------------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_realloc(void *p, size_t n);

static bool counting;      /* count (and maybe fail) allocations */
static unsigned allocs;    /* allocations seen while counting */
static int allocs_to_pass; /* allocations that succeed before every
			    * later one fails; -1: none fails */

static bool alloc_fails(void)
{
	if (!counting)
		return false;
	allocs++;
	if (allocs_to_pass < 0)
		return false;
	if (allocs_to_pass == 0)
		return true;
	allocs_to_pass--;
	return false;
}

void *__wrap_malloc(size_t n)
{
	return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : __real_realloc(p, n);
}

/* Starts counting; with @pass >= 0, allocations after the first @pass
 * fail. */
static void count_allocs(int pass)
{
	allocs = 0;
	allocs_to_pass = pass;
	counting = true;
}

/* Stops counting and returns the allocations seen. */
static unsigned counted_allocs(void)
{
	counting = false;
	allocs_to_pass = -1;
	return allocs;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static struct wire_bytes str(const char *s)
{
	struct wire_bytes b = { (const uint8_t *)s, (uint32_t)strlen(s) };

	if (b.len == 0)
		b.p = NULL;
	return b;
}

static struct wire_bytes bytes(const void *p, size_t n)
{
	struct wire_bytes b = { n > 0 ? p : NULL, (uint32_t)n };

	return b;
}

static void assert_wire_bytes(struct wire_bytes a, struct wire_bytes b)
{
	assert_int_equal(a.len, b.len);
	if (a.len > 0)
		assert_memory_equal(a.p, b.p, a.len);
}

/* A copy of @len bytes in a block of exactly that size (NULL when @len is
 * 0), so that ASan reports a read past its end. */
static uint8_t *exact_copy(const void *p, size_t len)
{
	uint8_t *c;

	if (len == 0)
		return NULL;
	c = malloc(len);
	assert_non_null(c);
	memcpy(c, p, len);
	return c;
}

/* Checks that @b holds, at @off, a whole frame with a valid header of
 * @type and @request_id. Returns an exact copy of its body (free it) and
 * sets @body_len and @frame_len. */
static uint8_t *frame_body(const struct wire_buf *b, size_t off, unsigned type,
			   uint64_t request_id, size_t *body_len,
			   size_t *frame_len)
{
	struct wire_header h;

	assert_true(off <= b->len);
	assert_int_equal(
		wire_frame_peek(b->p + off, b->len - off, &h, frame_len),
		WIRE_OK);
	assert_int_equal(h.type, type);
	assert_int_equal(h.flags, 0);
	assert_true(h.request_id == request_id);
	assert_int_equal(*frame_len, WIRE_HEADER_BYTES + h.body_len);
	*body_len = h.body_len;
	return exact_copy(b->p + off + WIRE_HEADER_BYTES, h.body_len);
}

/* The frame @b holds, which must be exactly one. */
static uint8_t *only_frame_body(const struct wire_buf *b, unsigned type,
				uint64_t request_id, size_t *body_len)
{
	size_t frame_len;
	uint8_t *body =
		frame_body(b, 0, type, request_id, body_len, &frame_len);

	assert_int_equal(frame_len, b->len);
	return body;
}

/* A growable byte string for writing bodies by hand, field by field, as
 * docs/protocol.md lays them out. */
struct tb {
	uint8_t *p; /* owned */
	size_t len;
	size_t cap;
};

static void tb_raw(struct tb *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap > 0 ? t->cap : 256;

		while (cap < t->len + n)
			cap *= 2;
		t->p = realloc(t->p, cap);
		assert_non_null(t->p);
		t->cap = cap;
	}
	if (n > 0)
		memcpy(t->p + t->len, p, n);
	t->len += n;
}

static void tb_le(struct tb *t, uint64_t v, unsigned width)
{
	uint8_t b[8];
	unsigned i;

	for (i = 0; i < width; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	tb_raw(t, b, width);
}

static void tb_u8(struct tb *t, uint64_t v)
{
	tb_le(t, v, 1);
}

static void tb_u16(struct tb *t, uint64_t v)
{
	tb_le(t, v, 2);
}

static void tb_u32(struct tb *t, uint64_t v)
{
	tb_le(t, v, 4);
}

static void tb_u64(struct tb *t, uint64_t v)
{
	tb_le(t, v, 8);
}

static void tb_str16(struct tb *t, const char *s)
{
	tb_u16(t, strlen(s));
	tb_raw(t, s, strlen(s));
}

static void tb_blob32(struct tb *t, const void *p, size_t n)
{
	tb_u32(t, n);
	tb_raw(t, p, n);
}

static void tb_fill(struct tb *t, uint8_t byte, size_t n)
{
	uint8_t chunk[256];

	memset(chunk, byte, sizeof chunk);
	while (n > 0) {
		size_t k = n < sizeof chunk ? n : sizeof chunk;

		tb_raw(t, chunk, k);
		n -= k;
	}
}

static void tb_free(struct tb *t)
{
	free(t->p);
	memset(t, 0, sizeof *t);
}

/* Decodes @len bytes as a body of @type with its decoder, from an exact
 * copy, and releases whatever the decoder allocated. */
static int decode_any(unsigned type, const void *body, size_t len)
{
	static struct wire_part_result results[WIRE_APPEND_PARTS_MAX];
	uint8_t *copy = exact_copy(body, len);
	int rv;

	switch (type) {
	case WIRE_APPEND: {
		struct wire_append a;

		rv = wire_decode_append(copy, len, &a);
		if (rv == WIRE_OK)
			wire_append_close(&a);
		break;
	}
	case WIRE_READ_STREAM: {
		struct wire_read_stream r;

		rv = wire_decode_read_stream(copy, len, &r);
		break;
	}
	case WIRE_READ_ALL: {
		struct wire_read_all r;

		rv = wire_decode_read_all(copy, len, &r);
		break;
	}
	case WIRE_HEAD: {
		struct wire_head h;

		rv = wire_decode_head(copy, len, &h);
		break;
	}
	case WIRE_STATUS:
		rv = wire_decode_status(copy, len);
		break;
	case WIRE_APPEND_OK: {
		bool dup;
		uint32_t n;

		rv = wire_decode_append_ok(copy, len, &dup, &n, results,
					   WIRE_APPEND_PARTS_MAX);
		break;
	}
	case WIRE_EVENTS: {
		struct wire_events_reader r;
		struct wire_event e;

		rv = wire_events_open(copy, len, &r);
		if (rv == WIRE_OK)
			while (wire_events_next(&r, &e))
				;
		break;
	}
	case WIRE_HEAD_OK: {
		uint64_t v;
		uint64_t p;

		rv = wire_decode_head_ok(copy, len, &v, &p);
		break;
	}
	case WIRE_STATUS_OK: {
		struct wire_status s;

		rv = wire_decode_status_ok(copy, len, &s);
		break;
	}
	case WIRE_ERROR: {
		struct wire_err e;

		rv = wire_decode_error(copy, len, &e);
		break;
	}
	case WIRE_SUBSCRIBE: {
		struct wire_subscribe s;

		rv = wire_decode_subscribe(copy, len, &s);
		break;
	}
	case WIRE_CREDIT: {
		uint32_t n;

		rv = wire_decode_credit(copy, len, &n);
		break;
	}
	case WIRE_UNSUBSCRIBE:
		rv = wire_decode_unsubscribe(copy, len);
		break;
	case WIRE_SUB_EVENTS: {
		struct wire_events_reader r;
		struct wire_event e;

		rv = wire_events_open(copy, len, &r);
		if (rv == WIRE_OK)
			while (wire_events_next(&r, &e))
				;
		break;
	}
	case WIRE_SUB_LIVE: {
		uint64_t next;
		uint64_t last;

		rv = wire_decode_sub_live(copy, len, &next, &last);
		break;
	}
	case WIRE_SUB_END: {
		struct wire_sub_end e;

		rv = wire_decode_sub_end(copy, len, &e);
		break;
	}
	case WIRE_CHECKPOINT_GET: {
		struct wire_checkpoint_get g;

		rv = wire_decode_checkpoint_get(copy, len, &g);
		break;
	}
	case WIRE_CHECKPOINT_SET: {
		struct wire_checkpoint_set cs;

		rv = wire_decode_checkpoint_set(copy, len, &cs);
		break;
	}
	case WIRE_SNAPSHOT_PUT: {
		struct wire_snapshot_put sp;

		rv = wire_decode_snapshot_put(copy, len, &sp);
		break;
	}
	case WIRE_SNAPSHOT_GET: {
		struct wire_snapshot_get g;

		rv = wire_decode_snapshot_get(copy, len, &g);
		break;
	}
	case WIRE_CHECKPOINT: {
		bool found;
		uint64_t v;

		rv = wire_decode_checkpoint(copy, len, &found, &v);
		break;
	}
	case WIRE_STATE_OK: {
		bool dup;

		rv = wire_decode_state_ok(copy, len, &dup);
		break;
	}
	case WIRE_SNAPSHOT: {
		uint64_t v;
		struct wire_bytes d;

		rv = wire_decode_snapshot(copy, len, &v, &d);
		break;
	}
	default:
		fail_msg("no decoder for type %#x", type);
		rv = -1;
	}
	free(copy);
	return rv;
}

/* ------------------------------------------------------------------------
 * Sample messages
 * ------------------------------------------------------------------------ */

static const uint8_t binary_data[] = { 0x00, 0x01, 0xff, 0x80, 0x7f, 0x00 };
static const char json_meta[] = "{\"correlation\":\"c-1\"}";

/* An append with three parts whose events use the fields in several
 * combinations, extremes included. */
struct sample_append {
	struct wire_append a;
	struct wire_part parts[3];
	struct wire_event_in events[6];
};

static void sample_append_make(struct sample_append *s)
{
	static const char *const streams[3] = { "order-17", "user-\xc3\xa9",
						"ledger" };
	static const char *const types[6] = {
		"OrderPlaced", "OrderPaid",    "T",
		"UserRenamed", "LedgerOpened", "LedgerClosed"
	};
	static const uint8_t kinds[3] = { WIRE_EXPECT_EXACT,
					  WIRE_EXPECT_NO_STREAM,
					  WIRE_EXPECT_ANY };
	static const uint32_t counts[3] = { 2, 1, 3 };
	uint32_t i;
	uint32_t k = 0;

	memset(s, 0, sizeof *s);
	for (i = 0; i < 6; i++) {
		struct wire_event_in *e = &s->events[i];

		memset(e->id, 0xa0 + (int)i, sizeof e->id);
		e->id[15] = (uint8_t)i;
		e->type = str(types[i]);
		e->schema_version = i == 0 ? 65535 : (uint16_t)i;
		e->event_time_us = i == 1   ? -86400000000
				   : i == 2 ? INT64_MIN
				   : i == 3 ? INT64_MAX
					    : 1690000000000000 + (int64_t)i;
		if (i % 2 == 0)
			e->data = bytes(binary_data, sizeof binary_data);
		if (i % 3 == 0)
			e->metadata = str(json_meta);
	}
	for (i = 0; i < 3; i++) {
		struct wire_part *p = &s->parts[i];

		p->stream = str(streams[i]);
		p->expect_kind = kinds[i];
		p->expect_version = i == 0 ? 41 : 0;
		p->n_events = counts[i];
		p->events = &s->events[k];
		k += counts[i];
	}
	s->a.has_client = true;
	for (i = 0; i < 16; i++)
		s->a.client_id[i] = (uint8_t)(0x10 + i);
	s->a.client_seq = UINT64_MAX;
	s->a.n_parts = 3;
	s->a.parts = s->parts;
}

static void assert_append_equal(const struct wire_append *x,
				const struct wire_append *y)
{
	uint32_t i;
	uint32_t k;

	assert_int_equal(x->has_client, y->has_client);
	assert_memory_equal(x->client_id, y->client_id, 16);
	assert_true(x->client_seq == y->client_seq);
	assert_int_equal(x->n_parts, y->n_parts);
	for (i = 0; i < x->n_parts; i++) {
		const struct wire_part *p = &x->parts[i];
		const struct wire_part *q = &y->parts[i];

		assert_wire_bytes(p->stream, q->stream);
		assert_int_equal(p->expect_kind, q->expect_kind);
		assert_true(p->expect_version == q->expect_version);
		assert_int_equal(p->n_events, q->n_events);
		for (k = 0; k < p->n_events; k++) {
			const struct wire_event_in *e = &p->events[k];
			const struct wire_event_in *f = &q->events[k];

			assert_memory_equal(e->id, f->id, 16);
			assert_wire_bytes(e->type, f->type);
			assert_int_equal(e->schema_version, f->schema_version);
			assert_true(e->event_time_us == f->event_time_us);
			assert_wire_bytes(e->data, f->data);
			assert_wire_bytes(e->metadata, f->metadata);
		}
	}
}

/* Three events as a read returns them. */
static void sample_events_make(struct wire_event ev[3])
{
	static const char *const streams[3] = { "order-17", "order-17", "" };
	static const char *const types[3] = { "OrderPlaced", "T", "X" };
	int i;

	memset(ev, 0, 3 * sizeof *ev);
	for (i = 0; i < 3; i++) {
		struct wire_event *e = &ev[i];

		e->position = i == 2 ? UINT64_MAX : (uint64_t)(100 + i);
		e->version = (uint64_t)(i + 1);
		e->stream = str(streams[i]);
		memset(e->id, 0x30 + i, 16);
		e->type = str(types[i]);
		e->schema_version = (uint16_t)(i * 7);
		e->event_time_us = i == 1 ? -5 : 1700000000000000;
		e->commit_time_us = 1700000000000001 + (uint64_t)i;
		e->has_client = i != 1;
		if (e->has_client) {
			memset(e->client_id, 0xc0 + i, 16);
			e->client_seq = (uint64_t)(i + 9);
		}
		if (i != 1)
			e->data = bytes(binary_data, sizeof binary_data);
		if (i == 2)
			e->metadata = str(json_meta);
	}
}

static void assert_event_equal(const struct wire_event *x,
			       const struct wire_event *y)
{
	assert_true(x->position == y->position);
	assert_true(x->version == y->version);
	assert_wire_bytes(x->stream, y->stream);
	assert_memory_equal(x->id, y->id, 16);
	assert_wire_bytes(x->type, y->type);
	assert_int_equal(x->schema_version, y->schema_version);
	assert_true(x->event_time_us == y->event_time_us);
	assert_true(x->commit_time_us == y->commit_time_us);
	assert_int_equal(x->has_client, y->has_client);
	assert_memory_equal(x->client_id, y->client_id, 16);
	assert_true(x->client_seq == y->client_seq);
	assert_wire_bytes(x->data, y->data);
	assert_wire_bytes(x->metadata, y->metadata);
}

static void sample_status_make(struct wire_status *s, uint32_t n_members)
{
	static char addr[WIRE_MEMBERS_MAX][3][32];
	uint32_t i;

	memset(s, 0, sizeof *s);
	s->node_id = 2;
	s->role = WIRE_ROLE_FOLLOWER;
	s->term = 7;
	s->commit_index = 1234;
	s->applied_index = 1233;
	s->last_position = UINT64_MAX - 1;
	s->leader_id = 1;
	s->leader_client_address = str("127.0.0.1:7001");
	s->n_members = n_members;
	for (i = 0; i < n_members; i++) {
		struct wire_member *m = &s->members[i];

		snprintf(addr[i][0], sizeof addr[i][0], "10.0.0.%u:9001",
			 i + 1);
		snprintf(addr[i][1], sizeof addr[i][1], "10.0.0.%u:7001",
			 i + 1);
		snprintf(addr[i][2], sizeof addr[i][2], "10.0.0.%u:8001",
			 i + 1);
		m->id = i + 1;
		m->role = (uint8_t)(i % 3);
		m->raft_address = str(addr[i][0]);
		/* A member not yet known by its client or HTTP address. */
		m->client_address = i == 2 ? str("") : str(addr[i][1]);
		m->http_address = i == 2 ? str("") : str(addr[i][2]);
	}
}

static void assert_status_equal(const struct wire_status *x,
				const struct wire_status *y)
{
	uint32_t i;

	assert_true(x->node_id == y->node_id);
	assert_int_equal(x->role, y->role);
	assert_true(x->term == y->term);
	assert_true(x->commit_index == y->commit_index);
	assert_true(x->applied_index == y->applied_index);
	assert_true(x->last_position == y->last_position);
	assert_true(x->leader_id == y->leader_id);
	assert_wire_bytes(x->leader_client_address, y->leader_client_address);
	assert_int_equal(x->n_members, y->n_members);
	for (i = 0; i < x->n_members; i++) {
		assert_true(x->members[i].id == y->members[i].id);
		assert_int_equal(x->members[i].role, y->members[i].role);
		assert_wire_bytes(x->members[i].raft_address,
				  y->members[i].raft_address);
		assert_wire_bytes(x->members[i].client_address,
				  y->members[i].client_address);
		assert_wire_bytes(x->members[i].http_address,
				  y->members[i].http_address);
	}
}

/* One frame of every message, all in one buffer. */
struct sample {
	unsigned type;
	size_t off; /* where its frame starts in the buffer */
	size_t len; /* its frame's length */
};

#define N_SAMPLES 29

static void samples_encode(struct wire_buf *b, struct sample s[N_SAMPLES])
{
	struct sample_append sa;
	struct wire_append minimal;
	struct wire_part minimal_part;
	struct wire_event_in minimal_event;
	struct wire_part_result results[2] = { { 1, 3, 10, 12 },
					       { 5, 5, 13, 13 } };
	struct wire_read_stream rs = { str("order-17"),
				       UINT64_MAX,
				       true,
				       50,
				       { WIRE_CONSISTENCY_AT_LEAST, 99 } };
	struct wire_read_all ra = { 1,
				    0,
				    { WIRE_CONSISTENCY_LEADER, 0 },
				    str("order-"),
				    str("order"),
				    str("OrderPlaced") };
	struct wire_head hd = { str("ledger"), { WIRE_CONSISTENCY_ANY, 0 } };
	struct wire_event ev[3];
	struct wire_events_writer w;
	struct wire_status st;
	struct wire_err err = { WIRE_ENOT_LEADER, 0, 0, str("10.0.0.1:7001"),
				str("not the leader; try 10.0.0.1:7001") };
	struct wire_subscribe sub_stream = {
		WIRE_SUB_STREAM, WIRE_SUB_FROM_POSITION, 7,
		str("order-17"), str("OrderPaid"),       1024
	};
	struct wire_subscribe sub_all = { WIRE_SUB_ALL, WIRE_SUB_FROM_NOW, 0,
					  str(""),      str(""),           0 };
	struct wire_sub_end sub_end = { WIRE_SUB_END_SLOW, 104,
					str("slow consumer") };
	struct wire_checkpoint_get cg = { str("billing"),
					  { WIRE_CONSISTENCY_AT_LEAST, 12 } };
	struct wire_checkpoint_set cs_cas = {
		true, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 },
		9,    str("billing"),
		42,   WIRE_CP_EXPECT_VALUE,
		41
	};
	struct wire_checkpoint_set cs_absent = { 0 };
	struct wire_snapshot_put sp = { 0 };
	struct wire_snapshot_get sg = { str("order-17"),
					UINT64_MAX,
					{ WIRE_CONSISTENCY_LEADER, 0 } };
	struct wire_bytes snap = { binary_data, sizeof binary_data };
	int n = 0;
	int i;

	memset(&minimal_event, 0, sizeof minimal_event);
	memset(&minimal_part, 0, sizeof minimal_part);
	memset(&minimal, 0, sizeof minimal);
	minimal_part.n_events = 1;
	minimal_part.events = &minimal_event;
	minimal.n_parts = 1;
	minimal.parts = &minimal_part;
	sample_append_make(&sa);
	sample_events_make(ev);
	sample_status_make(&st, 3);

#define SAMPLE(t, call)                            \
	do {                                       \
		s[n].type = (t);                   \
		s[n].off = b->len;                 \
		assert_int_equal((call), WIRE_OK); \
		s[n].len = b->len - s[n].off;      \
		n++;                               \
	} while (0)
	SAMPLE(WIRE_APPEND, wire_encode_append(b, 1, &sa.a));
	SAMPLE(WIRE_APPEND, wire_encode_append(b, 2, &minimal));
	SAMPLE(WIRE_APPEND_OK, wire_encode_append_ok(b, 3, true, 2, results));
	SAMPLE(WIRE_READ_STREAM, wire_encode_read_stream(b, 4, &rs));
	SAMPLE(WIRE_READ_ALL, wire_encode_read_all(b, 5, &ra));
	SAMPLE(WIRE_HEAD, wire_encode_head(b, 6, &hd));
	SAMPLE(WIRE_HEAD_OK, wire_encode_head_ok(b, 7, 3, 12));
	SAMPLE(WIRE_STATUS, wire_encode_status(b, 8));
	SAMPLE(WIRE_STATUS_OK, wire_encode_status_ok(b, 9, &st));
	SAMPLE(WIRE_ERROR, wire_encode_error(b, 10, &err));
	s[n].type = WIRE_EVENTS;
	s[n].off = b->len;
	assert_int_equal(wire_events_begin(b, 11, &w), WIRE_OK);
	for (i = 0; i < 3; i++)
		assert_int_equal(wire_events_add(b, &w, &ev[i]), WIRE_OK);
	wire_events_end(b, &w, 103, false);
	s[n].len = b->len - s[n].off;
	n++;
	s[n].type = WIRE_EVENTS;
	s[n].off = b->len;
	assert_int_equal(wire_events_begin(b, 12, &w), WIRE_OK);
	wire_events_end(b, &w, 0, true);
	s[n].len = b->len - s[n].off;
	n++;
	SAMPLE(WIRE_APPEND_OK, wire_encode_append_ok(b, 13, false, 1, results));
	SAMPLE(WIRE_SUBSCRIBE, wire_encode_subscribe(b, 14, &sub_stream));
	SAMPLE(WIRE_SUBSCRIBE, wire_encode_subscribe(b, 15, &sub_all));
	SAMPLE(WIRE_CREDIT, wire_encode_credit(b, 14, 512));
	SAMPLE(WIRE_UNSUBSCRIBE, wire_encode_unsubscribe(b, 14));
	SAMPLE(WIRE_SUB_LIVE, wire_encode_sub_live(b, 14, 104, 103));
	SAMPLE(WIRE_SUB_END, wire_encode_sub_end(b, 14, &sub_end));
	cs_absent.name = str("c");
	cs_absent.value = 1;
	cs_absent.expect_kind = WIRE_CP_EXPECT_ABSENT;
	sp.stream = str("order-17");
	sp.version = 3;
	sp.data = snap;
	SAMPLE(WIRE_CHECKPOINT_GET, wire_encode_checkpoint_get(b, 16, &cg));
	SAMPLE(WIRE_CHECKPOINT_SET, wire_encode_checkpoint_set(b, 17, &cs_cas));
	SAMPLE(WIRE_CHECKPOINT_SET,
	       wire_encode_checkpoint_set(b, 18, &cs_absent));
	SAMPLE(WIRE_SNAPSHOT_PUT, wire_encode_snapshot_put(b, 19, &sp));
	SAMPLE(WIRE_SNAPSHOT_GET, wire_encode_snapshot_get(b, 20, &sg));
	SAMPLE(WIRE_CHECKPOINT, wire_encode_checkpoint(b, 21, true, 42));
	SAMPLE(WIRE_STATE_OK, wire_encode_state_ok(b, 22, true));
	SAMPLE(WIRE_SNAPSHOT, wire_encode_snapshot(b, 23, 3, snap));
	SAMPLE(WIRE_SNAPSHOT,
	       wire_encode_snapshot(b, 24, 0, (struct wire_bytes){ NULL, 0 }));
	s[n].type = WIRE_SUB_EVENTS;
	s[n].off = b->len;
	assert_int_equal(wire_sub_events_begin(b, 14, &w), WIRE_OK);
	for (i = 0; i < 2; i++)
		assert_int_equal(wire_events_add(b, &w, &ev[i]), WIRE_OK);
	wire_events_end(b, &w, 103, true);
	s[n].len = b->len - s[n].off;
	n++;
#undef SAMPLE
	assert_int_equal(n, N_SAMPLES);
}

/* ------------------------------------------------------------------------
 * codec: round trips and the documented layout
 * ------------------------------------------------------------------------ */

static void header_is_little_endian_at_its_offsets(void **state)
{
	static const uint8_t want[16] = { 16,   0,    0,    0,    0x84, 0,
					  0,    0,    0x08, 0x07, 0x06, 0x05,
					  0x04, 0x03, 0x02, 0x01 };
	struct wire_buf b;
	struct wire_header h;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_head_ok(&b, 0x0102030405060708ull, 1, 2),
			 0);
	assert_int_equal(b.len, 32);
	assert_memory_equal(b.p, want, sizeof want);
	assert_int_equal(wire_header_decode(b.p, &h), WIRE_OK);
	assert_int_equal(h.body_len, 16);
	assert_int_equal(h.type, WIRE_HEAD_OK);
	assert_int_equal(h.flags, 0);
	assert_true(h.request_id == 0x0102030405060708ull);
	wire_buf_close(&b);
}

static void append_round_trips_every_field(void **state)
{
	struct sample_append s;
	struct wire_append got;
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	uint32_t i;

	(void)state;
	sample_append_make(&s);
	wire_buf_init(&b);
	assert_int_equal(wire_encode_append(&b, 42, &s.a), WIRE_OK);
	body = only_frame_body(&b, WIRE_APPEND, 42, &len);
	assert_int_equal(wire_decode_append(body, len, &got), WIRE_OK);
	assert_append_equal(&s.a, &got);
	/* The events of all parts are one array, in order, and the views
	 * point into the body. */
	assert_ptr_equal(got.parts[0].events, &got.events_[0]);
	assert_ptr_equal(got.parts[1].events, &got.events_[2]);
	assert_ptr_equal(got.parts[2].events, &got.events_[3]);
	for (i = 0; i < got.n_parts; i++)
		assert_true(got.parts[i].stream.p >= body &&
			    got.parts[i].stream.p + got.parts[i].stream.len <=
				    body + len);
	wire_append_close(&got);
	assert_null(got.parts);
	assert_null(got.events_);
	free(body);
	wire_buf_close(&b);
}

static void smallest_append_round_trips(void **state)
{
	struct wire_append a;
	struct wire_part part;
	struct wire_event_in ev;
	struct wire_append got;
	struct wire_buf b;
	uint8_t *body;
	size_t len;

	(void)state;
	memset(&a, 0, sizeof a);
	memset(&part, 0, sizeof part);
	memset(&ev, 0, sizeof ev);
	part.n_events = 1;
	part.events = &ev;
	a.n_parts = 1;
	a.parts = &part;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_append(&b, 1, &a), WIRE_OK);
	body = only_frame_body(&b, WIRE_APPEND, 1, &len);
	/* 29 fixed, 15 for the part, 36 for the event. */
	assert_int_equal(len, 29 + 15 + 36);
	assert_int_equal(wire_decode_append(body, len, &got), WIRE_OK);
	assert_append_equal(&a, &got);
	assert_false(got.has_client);
	assert_null(got.parts[0].stream.p);
	assert_null(got.parts[0].events[0].data.p);
	wire_append_close(&got);
	free(body);
	wire_buf_close(&b);
}

static void append_ok_round_trips(void **state)
{
	struct wire_part_result in[3] = { { 1, 2, 3, 4 },
					  { UINT64_MAX, 0, 7, UINT64_MAX },
					  { 5, 5, 6, 6 } };
	struct wire_part_result out[3];
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	uint32_t n = 0;
	bool dup = false;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_append_ok(&b, 5, true, 3, in), WIRE_OK);
	body = only_frame_body(&b, WIRE_APPEND_OK, 5, &len);
	assert_int_equal(len, 1 + 4 + 3 * 32);
	assert_int_equal(wire_decode_append_ok(body, len, &dup, &n, out, 3),
			 WIRE_OK);
	assert_true(dup);
	assert_int_equal(n, 3);
	assert_memory_equal(in, out, sizeof in);
	free(body);
	wire_buf_close(&b);
}

static void read_stream_round_trips(void **state)
{
	struct wire_read_stream in = { str("order-17"),
				       UINT64_MAX,
				       true,
				       7,
				       { WIRE_CONSISTENCY_AT_LEAST,
					 0x1122334455667788ull } };
	struct wire_read_stream out;
	struct wire_buf b;
	uint8_t *body;
	size_t len;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_read_stream(&b, 9, &in), WIRE_OK);
	body = only_frame_body(&b, WIRE_READ_STREAM, 9, &len);
	assert_int_equal(wire_decode_read_stream(body, len, &out), WIRE_OK);
	assert_wire_bytes(in.stream, out.stream);
	assert_true(in.from_version == out.from_version);
	assert_int_equal(in.backward, out.backward);
	assert_int_equal(in.limit, out.limit);
	assert_int_equal(in.consistency.kind, out.consistency.kind);
	assert_true(in.consistency.min_position ==
		    out.consistency.min_position);
	free(body);
	wire_buf_close(&b);
}

static void read_all_round_trips_with_and_without_filters(void **state)
{
	struct wire_read_all in[2] = {
		{ 77,
		  10000,
		  { WIRE_CONSISTENCY_LEADER, 0 },
		  str("order-"),
		  str("order"),
		  str("OrderPlaced") },
		{ 0,
		  0,
		  { WIRE_CONSISTENCY_ANY, 0 },
		  str(""),
		  str(""),
		  str("") },
	};
	struct wire_read_all out;
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		wire_buf_init(&b);
		assert_int_equal(wire_encode_read_all(&b, 10, &in[i]), WIRE_OK);
		body = only_frame_body(&b, WIRE_READ_ALL, 10, &len);
		assert_int_equal(wire_decode_read_all(body, len, &out),
				 WIRE_OK);
		assert_true(in[i].from_position == out.from_position);
		assert_int_equal(in[i].limit, out.limit);
		assert_int_equal(in[i].consistency.kind, out.consistency.kind);
		assert_true(in[i].consistency.min_position ==
			    out.consistency.min_position);
		assert_wire_bytes(in[i].stream_prefix, out.stream_prefix);
		assert_wire_bytes(in[i].category, out.category);
		assert_wire_bytes(in[i].type, out.type);
		if (i == 1) {
			/* Empty filters decode as NULL views. */
			assert_null(out.stream_prefix.p);
			assert_null(out.category.p);
			assert_null(out.type.p);
		}
		free(body);
		wire_buf_close(&b);
	}
}

static void events_round_trip_every_field(void **state)
{
	struct wire_event ev[3];
	struct wire_event got;
	struct wire_events_writer w;
	struct wire_events_reader r;
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	int i;

	(void)state;
	sample_events_make(ev);
	wire_buf_init(&b);
	assert_int_equal(wire_events_begin(&b, 11, &w), WIRE_OK);
	for (i = 0; i < 3; i++)
		assert_int_equal(wire_events_add(&b, &w, &ev[i]), WIRE_OK);
	assert_int_equal(w.count, 3);
	wire_events_end(&b, &w, 0xabcdef, true);
	body = only_frame_body(&b, WIRE_EVENTS, 11, &len);
	assert_int_equal(len, 13 + w.event_bytes);
	assert_int_equal(wire_events_open(body, len, &r), WIRE_OK);
	assert_true(r.next == 0xabcdef);
	assert_true(r.end);
	assert_int_equal(r.count, 3);
	for (i = 0; i < 3; i++) {
		assert_true(wire_events_next(&r, &got));
		assert_event_equal(&ev[i], &got);
	}
	assert_false(wire_events_next(&r, &got));
	assert_false(wire_events_next(&r, &got));
	free(body);
	wire_buf_close(&b);
}

static void head_and_head_ok_round_trip(void **state)
{
	struct wire_head in = { str("ledger"), { WIRE_CONSISTENCY_LEADER, 0 } };
	struct wire_head out;
	struct wire_buf b;
	uint64_t version = 0;
	uint64_t position = 0;
	uint8_t *body;
	size_t len;
	size_t frame_len;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_head(&b, 1, &in), WIRE_OK);
	assert_int_equal(wire_encode_head_ok(&b, 2, UINT64_MAX, 17), WIRE_OK);
	body = frame_body(&b, 0, WIRE_HEAD, 1, &len, &frame_len);
	assert_int_equal(wire_decode_head(body, len, &out), WIRE_OK);
	assert_wire_bytes(in.stream, out.stream);
	assert_int_equal(in.consistency.kind, out.consistency.kind);
	free(body);
	body = frame_body(&b, frame_len, WIRE_HEAD_OK, 2, &len, &frame_len);
	assert_int_equal(wire_decode_head_ok(body, len, &version, &position),
			 WIRE_OK);
	assert_true(version == UINT64_MAX);
	assert_true(position == 17);
	free(body);
	wire_buf_close(&b);
}

static void status_and_status_ok_round_trip(void **state)
{
	struct wire_status in;
	struct wire_status out;
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	uint32_t n;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_status(&b, 3), WIRE_OK);
	body = only_frame_body(&b, WIRE_STATUS, 3, &len);
	assert_int_equal(len, 0);
	assert_int_equal(wire_decode_status(body, len), WIRE_OK);
	wire_buf_close(&b);
	for (n = 0; n <= WIRE_MEMBERS_MAX; n += 4) {
		sample_status_make(&in, n);
		in.role = (uint8_t)(n % 4);
		wire_buf_init(&b);
		assert_int_equal(wire_encode_status_ok(&b, 4, &in), WIRE_OK);
		body = only_frame_body(&b, WIRE_STATUS_OK, 4, &len);
		assert_int_equal(wire_decode_status_ok(body, len, &out),
				 WIRE_OK);
		assert_status_equal(&in, &out);
		free(body);
		wire_buf_close(&b);
	}
}

static void error_round_trips(void **state)
{
	struct wire_err in = { WIRE_EWRONG_EXPECTED_VERSION, 2, 41, str(""),
			       str("part 2: stream order-17 is at 41") };
	struct wire_err out;
	struct wire_buf b;
	uint8_t *body;
	size_t len;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_error(&b, 0, &in), WIRE_OK);
	body = only_frame_body(&b, WIRE_ERROR, 0, &len);
	assert_int_equal(wire_decode_error(body, len, &out), WIRE_OK);
	assert_int_equal(out.code, in.code);
	assert_int_equal(out.part, in.part);
	assert_true(out.actual_version == in.actual_version);
	assert_wire_bytes(in.leader, out.leader);
	assert_wire_bytes(in.message, out.message);
	free(body);
	wire_buf_close(&b);
}

/* Compares the body of the only frame in @b with the hand-built @want. */
static void assert_body_is(struct wire_buf *b, unsigned type,
			   const struct tb *want)
{
	uint8_t *body;
	size_t len;

	body = only_frame_body(b, type, 1, &len);
	assert_int_equal(len, want->len);
	assert_memory_equal(body, want->p, len);
	assert_int_equal(decode_any(type, want->p, want->len), WIRE_OK);
	free(body);
	wire_buf_reset(b);
}

static void encodings_match_the_documented_layout(void **state)
{
	static const uint8_t id[16] = { 1, 2,  3,  4,  5,  6,  7,  8,
					9, 10, 11, 12, 13, 14, 15, 16 };
	struct wire_event_in ev = {
		{ 0 }, str("T"), 3, -2, str("dd"), str("m")
	};
	struct wire_part part = { str("s-1"), WIRE_EXPECT_EXACT, 9, 1, &ev };
	struct wire_append a;
	struct wire_part_result res = { 1, 2, 3, 4 };
	struct wire_read_stream rs = { str("s-1"),
				       5,
				       true,
				       6,
				       { WIRE_CONSISTENCY_AT_LEAST, 7 } };
	struct wire_read_all ra = {
		8,        9,         { WIRE_CONSISTENCY_LEADER, 0 },
		str("p"), str("cc"), str("ttt")
	};
	struct wire_head hd = { str("s-1"), { WIRE_CONSISTENCY_ANY, 0 } };
	struct wire_event e;
	struct wire_events_writer w;
	struct wire_status st;
	struct wire_err err = { WIRE_ENOT_LEADER, 1, 2, str("h:1"), str("m") };
	struct wire_buf b;
	struct tb t = { 0 };

	(void)state;
	wire_buf_init(&b);
	memcpy(ev.id, id, 16);
	memset(&a, 0, sizeof a);
	a.has_client = true;
	memcpy(a.client_id, id, 16);
	a.client_seq = 0x0102;
	a.n_parts = 1;
	a.parts = &part;

	assert_int_equal(wire_encode_append(&b, 1, &a), WIRE_OK);
	tb_u8(&t, 1);
	tb_raw(&t, id, 16);
	tb_u64(&t, 0x0102);
	tb_u32(&t, 1);
	tb_str16(&t, "s-1");
	tb_u8(&t, 3);
	tb_u64(&t, 9);
	tb_u32(&t, 1);
	tb_raw(&t, id, 16);
	tb_str16(&t, "T");
	tb_u16(&t, 3);
	tb_u64(&t, (uint64_t)-2);
	tb_blob32(&t, "dd", 2);
	tb_blob32(&t, "m", 1);
	assert_body_is(&b, WIRE_APPEND, &t);

	t.len = 0;
	assert_int_equal(wire_encode_append_ok(&b, 1, false, 1, &res), 0);
	tb_u8(&t, 0);
	tb_u32(&t, 1);
	tb_u64(&t, 1);
	tb_u64(&t, 2);
	tb_u64(&t, 3);
	tb_u64(&t, 4);
	assert_body_is(&b, WIRE_APPEND_OK, &t);

	t.len = 0;
	assert_int_equal(wire_encode_read_stream(&b, 1, &rs), 0);
	tb_str16(&t, "s-1");
	tb_u64(&t, 5);
	tb_u8(&t, 1);
	tb_u32(&t, 6);
	tb_u8(&t, 1);
	tb_u64(&t, 7);
	assert_body_is(&b, WIRE_READ_STREAM, &t);

	t.len = 0;
	assert_int_equal(wire_encode_read_all(&b, 1, &ra), 0);
	tb_u64(&t, 8);
	tb_u32(&t, 9);
	tb_u8(&t, 2);
	tb_u64(&t, 0);
	tb_str16(&t, "p");
	tb_str16(&t, "cc");
	tb_str16(&t, "ttt");
	assert_body_is(&b, WIRE_READ_ALL, &t);

	t.len = 0;
	memset(&e, 0, sizeof e);
	e.position = 10;
	e.version = 11;
	e.stream = str("s-1");
	memcpy(e.id, id, 16);
	e.type = str("T");
	e.schema_version = 12;
	e.event_time_us = 13;
	e.commit_time_us = 14;
	e.has_client = true;
	memcpy(e.client_id, id, 16);
	e.client_seq = 15;
	e.data = str("dd");
	assert_int_equal(wire_events_begin(&b, 1, &w), 0);
	assert_int_equal(wire_events_add(&b, &w, &e), 0);
	wire_events_end(&b, &w, 12, true);
	tb_u64(&t, 12);
	tb_u8(&t, 1);
	tb_u32(&t, 1);
	tb_u64(&t, 10);
	tb_u64(&t, 11);
	tb_str16(&t, "s-1");
	tb_raw(&t, id, 16);
	tb_str16(&t, "T");
	tb_u16(&t, 12);
	tb_u64(&t, 13);
	tb_u64(&t, 14);
	tb_u8(&t, 1);
	tb_raw(&t, id, 16);
	tb_u64(&t, 15);
	tb_blob32(&t, "dd", 2);
	tb_blob32(&t, "", 0);
	assert_int_equal(w.event_bytes, t.len - 13);
	assert_body_is(&b, WIRE_EVENTS, &t);

	t.len = 0;
	assert_int_equal(wire_encode_head(&b, 1, &hd), 0);
	tb_str16(&t, "s-1");
	tb_u8(&t, 0);
	tb_u64(&t, 0);
	assert_body_is(&b, WIRE_HEAD, &t);

	t.len = 0;
	assert_int_equal(wire_encode_head_ok(&b, 1, 5, 6), 0);
	tb_u64(&t, 5);
	tb_u64(&t, 6);
	assert_body_is(&b, WIRE_HEAD_OK, &t);

	t.len = 0;
	memset(&st, 0, sizeof st);
	st.node_id = 1;
	st.role = WIRE_ROLE_LEADER;
	st.term = 2;
	st.commit_index = 3;
	st.applied_index = 4;
	st.last_position = 5;
	st.leader_id = 1;
	st.leader_client_address = str("c:1");
	st.n_members = 1;
	st.members[0].id = 1;
	st.members[0].role = WIRE_MEMBER_VOTER;
	st.members[0].raft_address = str("r:1");
	st.members[0].client_address = str("c:1");
	st.members[0].http_address = str("h:1");
	assert_int_equal(wire_encode_status_ok(&b, 1, &st), 0);
	tb_u64(&t, 1);
	tb_u8(&t, 2);
	tb_u64(&t, 2);
	tb_u64(&t, 3);
	tb_u64(&t, 4);
	tb_u64(&t, 5);
	tb_u64(&t, 1);
	tb_str16(&t, "c:1");
	tb_u32(&t, 1);
	tb_u64(&t, 1);
	tb_u8(&t, 1);
	tb_str16(&t, "r:1");
	tb_str16(&t, "c:1");
	tb_str16(&t, "h:1");
	assert_body_is(&b, WIRE_STATUS_OK, &t);

	t.len = 0;
	assert_int_equal(wire_encode_error(&b, 1, &err), 0);
	tb_u32(&t, 5);
	tb_u32(&t, 1);
	tb_u64(&t, 2);
	tb_str16(&t, "h:1");
	tb_str16(&t, "m");
	assert_body_is(&b, WIRE_ERROR, &t);

	tb_free(&t);
	wire_buf_close(&b);
}

static void type_names_cover_every_type_and_requests_have_the_high_bit_clear(
	void **state)
{
	static const unsigned types[] = {
		WIRE_APPEND,       WIRE_READ_STREAM,    WIRE_READ_ALL,
		WIRE_HEAD,         WIRE_STATUS,         WIRE_SUBSCRIBE,
		WIRE_CREDIT,       WIRE_UNSUBSCRIBE,    WIRE_APPEND_OK,
		WIRE_EVENTS,       WIRE_HEAD_OK,        WIRE_STATUS_OK,
		WIRE_SUB_EVENTS,   WIRE_SUB_LIVE,       WIRE_SUB_END,
		WIRE_ERROR,        WIRE_CHECKPOINT_GET, WIRE_CHECKPOINT_SET,
		WIRE_SNAPSHOT_PUT, WIRE_SNAPSHOT_GET,   WIRE_CHECKPOINT,
		WIRE_STATE_OK,     WIRE_SNAPSHOT,       WIRE_STATE_BEGIN,
		WIRE_STATE_CHUNK,  WIRE_STATE_END,      WIRE_STATE_LISTING,
		WIRE_STATE_DATA,   WIRE_STATE_ENDED,
	};
	size_t i;
	unsigned t;
	unsigned named = 0;

	(void)state;
	for (i = 0; i < sizeof types / sizeof types[0]; i++) {
		assert_non_null(wire_type_name(types[i]));
		assert_int_equal(wire_type_is_request(types[i]),
				 (types[i] & 0x80) == 0);
	}
	assert_string_equal(wire_type_name(WIRE_APPEND), "APPEND");
	assert_string_equal(wire_type_name(WIRE_ERROR), "ERROR");
	for (t = 0; t <= 0xffff; t++)
		if (wire_type_name(t) != NULL)
			named++;
	/* And the four membership types (test_wire_members.c names them). */
	assert_int_equal(named, sizeof types / sizeof types[0] + 4);
	assert_false(wire_type_is_request(0));
	assert_false(wire_type_is_request(0x06));
	assert_false(wire_type_is_request(0x24));
	assert_false(wire_type_is_request(0x13));
	assert_false(wire_type_is_request(0x102));
	assert_string_equal(wire_type_name(WIRE_SUBSCRIBE), "SUBSCRIBE");
	assert_string_equal(wire_type_name(WIRE_SUB_END), "SUB_END");
}

static void strerror_has_a_message_for_every_code(void **state)
{
	int code;

	(void)state;
	for (code = WIRE_EMALFORMED; code <= WIRE_EINTERNAL; code++)
		assert_string_not_equal(wire_strerror(code), "unknown error");
	assert_string_equal(wire_strerror(WIRE_ENOT_LEADER), "not the leader");
	assert_string_equal(wire_strerror(0), "unknown error");
	assert_string_equal(wire_strerror(17), "unknown error");
	assert_string_equal(wire_strerror(-1), "unknown error");
}

/* ------------------------------------------------------------------------
 * malformed: rejections
 * ------------------------------------------------------------------------ */

static void every_truncation_of_every_message_is_rejected(void **state)
{
	struct sample s[N_SAMPLES];
	struct wire_buf b;
	size_t i;
	size_t cut;

	(void)state;
	wire_buf_init(&b);
	samples_encode(&b, s);
	for (i = 0; i < N_SAMPLES; i++) {
		const uint8_t *body = b.p + s[i].off + WIRE_HEADER_BYTES;
		size_t len = s[i].len - WIRE_HEADER_BYTES;

		assert_int_equal(decode_any(s[i].type, body, len), WIRE_OK);
		for (cut = 0; cut < len; cut++)
			if (decode_any(s[i].type, body, cut) !=
			    WIRE_DECODE_MALFORMED)
				fail_msg(
					"sample %zu (%s) cut at %zu of %zu "
					"decodes",
					i, wire_type_name(s[i].type), cut, len);
	}
	wire_buf_close(&b);
}

static void trailing_bytes_are_rejected_for_every_message(void **state)
{
	struct sample s[N_SAMPLES];
	struct wire_buf b;
	uint8_t *longer;
	size_t i;
	size_t k;

	(void)state;
	wire_buf_init(&b);
	samples_encode(&b, s);
	for (i = 0; i < N_SAMPLES; i++) {
		const uint8_t *body = b.p + s[i].off + WIRE_HEADER_BYTES;
		size_t len = s[i].len - WIRE_HEADER_BYTES;

		longer = malloc(len + 8);
		assert_non_null(longer);
		memcpy(longer, body, len);
		memset(longer + len, 0, 8);
		for (k = 1; k <= 8; k++)
			if (decode_any(s[i].type, longer, len + k) !=
			    WIRE_DECODE_MALFORMED)
				fail_msg(
					"sample %zu (%s) with %zu trailing "
					"bytes decodes",
					i, wire_type_name(s[i].type), k);
		free(longer);
	}
	wire_buf_close(&b);
}

static void peek_needs_more_until_the_whole_frame_is_there(void **state)
{
	struct sample s[N_SAMPLES];
	struct wire_header h;
	struct wire_buf b;
	size_t frame_len;
	size_t i;
	size_t cut;
	size_t off = 0;

	(void)state;
	wire_buf_init(&b);
	samples_encode(&b, s);
	assert_int_equal(wire_frame_peek(NULL, 0, &h, &frame_len),
			 WIRE_NEED_MORE);
	assert_int_equal(frame_len, 0);
	for (i = 0; i < N_SAMPLES; i++) {
		for (cut = 0; cut < s[i].len; cut++) {
			uint8_t *c = exact_copy(b.p + s[i].off, cut);

			assert_int_equal(
				wire_frame_peek(c, cut, &h, &frame_len),
				WIRE_NEED_MORE);
			/* Once the header is there, the frame's size is
			 * known. */
			assert_int_equal(frame_len, cut < WIRE_HEADER_BYTES
							    ? 0
							    : s[i].len);
			free(c);
		}
	}
	/* Cutting the buffer of all the samples frame by frame finds each
	 * one where it was written. */
	for (i = 0; i < N_SAMPLES; i++) {
		assert_int_equal(
			wire_frame_peek(b.p + off, b.len - off, &h, &frame_len),
			WIRE_OK);
		assert_int_equal(off, s[i].off);
		assert_int_equal(frame_len, s[i].len);
		assert_int_equal(h.type, s[i].type);
		off += frame_len;
	}
	assert_int_equal(off, b.len);
	wire_buf_close(&b);
}

static void peek_rejects_a_length_over_the_maximum_from_the_header_alone(
	void **state)
{
	struct wire_header h;
	struct tb t = { 0 };
	size_t frame_len = 1;

	(void)state;
	tb_u32(&t, WIRE_BODY_BYTES_MAX + 1);
	tb_u16(&t, WIRE_APPEND);
	tb_u16(&t, 0);
	tb_u64(&t, 77);
	/* Only the 16 header bytes: no body is waited for or allocated. */
	count_allocs(-1);
	assert_int_equal(wire_frame_peek(t.p, t.len, &h, &frame_len),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(counted_allocs(), 0);
	/* The request id is there to echo in the error reply. */
	assert_true(h.request_id == 77);
	assert_int_equal(h.body_len, WIRE_BODY_BYTES_MAX + 1);
	assert_int_equal(wire_header_decode(t.p, &h), WIRE_DECODE_MALFORMED);
	t.p[0] = t.p[1] = t.p[2] = t.p[3] = 0xff;
	assert_int_equal(wire_frame_peek(t.p, t.len, &h, &frame_len),
			 WIRE_DECODE_MALFORMED);
	/* The maximum itself is a valid length: wait for the body. */
	t.len = 0;
	tb_u32(&t, WIRE_BODY_BYTES_MAX);
	tb_u16(&t, WIRE_APPEND);
	tb_u16(&t, 0);
	tb_u64(&t, 77);
	assert_int_equal(wire_frame_peek(t.p, t.len, &h, &frame_len),
			 WIRE_NEED_MORE);
	assert_int_equal(frame_len, WIRE_HEADER_BYTES + WIRE_BODY_BYTES_MAX);
	tb_free(&t);
}

static void peek_rejects_nonzero_flags(void **state)
{
	struct wire_header h;
	struct wire_buf b;
	size_t frame_len;
	int bit;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_status(&b, 5), WIRE_OK);
	for (bit = 0; bit < 16; bit++) {
		b.p[6] = (uint8_t)((1u << bit) & 0xff);
		b.p[7] = (uint8_t)((1u << bit) >> 8);
		assert_int_equal(wire_frame_peek(b.p, b.len, &h, &frame_len),
				 WIRE_DECODE_MALFORMED);
		assert_int_equal(h.flags, 1u << bit);
		assert_true(h.request_id == 5);
	}
	wire_buf_close(&b);
}

/* The fixed fields of an APPEND body: no client, then @n_parts. */
static void tb_append_fixed(struct tb *t, uint64_t n_parts)
{
	tb_u8(t, 0);
	tb_fill(t, 0, 16);
	tb_u64(t, 0);
	tb_u32(t, n_parts);
}

/* One part's fixed fields. */
static void tb_part(struct tb *t, const char *stream, uint64_t n_events)
{
	tb_str16(t, stream);
	tb_u8(t, 0);
	tb_u64(t, 0);
	tb_u32(t, n_events);
}

/* One event of an APPEND. */
static void tb_event_in(struct tb *t)
{
	tb_fill(t, 0x11, 16);
	tb_str16(t, "T");
	tb_u16(t, 0);
	tb_u64(t, 0);
	tb_blob32(t, "d", 1);
	tb_blob32(t, "", 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Decodes @t as an APPEND many times: it must be refused every time,
 * without one allocation, and fast (microseconds each; the bound is loose
 * so a loaded machine cannot fail it, a walk of 2^32 items would). */
static void assert_append_refused_without_allocating(const struct tb *t)
{
	struct wire_append a;
	uint8_t *copy = exact_copy(t->p, t->len);
	double start = now_s();
	int i;

	count_allocs(-1);
	for (i = 0; i < 1000; i++)
		assert_int_equal(wire_decode_append(copy, t->len, &a),
				 WIRE_DECODE_MALFORMED);
	assert_int_equal(counted_allocs(), 0);
	assert_true(now_s() - start < 5.0);
	assert_null(a.parts);
	assert_null(a.events_);
	free(copy);
}

static void huge_part_counts_are_rejected_without_allocating(void **state)
{
	struct tb t = { 0 };

	(void)state;
	tb_append_fixed(&t, UINT32_MAX);
	assert_append_refused_without_allocating(&t);
	/* Within the maximum, but more than the bytes can hold. */
	t.len = 0;
	tb_append_fixed(&t, WIRE_APPEND_PARTS_MAX);
	tb_part(&t, "s", 1);
	tb_event_in(&t);
	assert_append_refused_without_allocating(&t);
	tb_free(&t);
}

static void huge_event_counts_are_rejected_without_allocating(void **state)
{
	struct tb t = { 0 };

	(void)state;
	tb_append_fixed(&t, 1);
	tb_part(&t, "s", UINT32_MAX);
	tb_event_in(&t);
	assert_append_refused_without_allocating(&t);
	/* The first part is fine; the second claims 2^31 events. */
	t.len = 0;
	tb_append_fixed(&t, 2);
	tb_part(&t, "a", 1);
	tb_event_in(&t);
	tb_part(&t, "b", 1u << 31);
	tb_event_in(&t);
	tb_event_in(&t);
	assert_append_refused_without_allocating(&t);
	/* Counts that the bytes could hold by the minimum but whose events
	 * are larger: the walk stops at the first event that overruns. */
	t.len = 0;
	tb_append_fixed(&t, 1);
	tb_part(&t, "s", 3);
	tb_event_in(&t);
	tb_event_in(&t);
	tb_fill(&t, 0, 36);
	t.p[t.len - 4] = 0xff; /* metadata length of the third */
	assert_append_refused_without_allocating(&t);
	tb_free(&t);
}

static void huge_counts_in_replies_are_rejected_fast(void **state)
{
	struct wire_events_reader r;
	struct wire_status st;
	struct wire_part_result res[4];
	struct tb t = { 0 };
	double start = now_s();
	uint32_t n;
	bool dup;
	int i;

	(void)state;
	tb_u64(&t, 1);
	tb_u8(&t, 0);
	tb_u32(&t, UINT32_MAX);
	tb_fill(&t, 0, 87);
	for (i = 0; i < 1000; i++)
		assert_int_equal(wire_events_open(t.p, t.len, &r),
				 WIRE_DECODE_MALFORMED);
	t.len = 0;
	tb_u8(&t, 0);
	tb_u32(&t, UINT32_MAX);
	tb_fill(&t, 0, 32);
	assert_int_equal(wire_decode_append_ok(t.p, t.len, &dup, &n, res, 4),
			 WIRE_DECODE_MALFORMED);
	t.len = 0;
	tb_fill(&t, 0, 8 + 1 + 5 * 8);
	tb_str16(&t, "");
	tb_u32(&t, UINT32_MAX);
	assert_int_equal(wire_decode_status_ok(t.p, t.len, &st),
			 WIRE_DECODE_MALFORMED);
	assert_true(now_s() - start < 5.0);
	tb_free(&t);
}

/* An APPEND of @n_parts parts "p<i>" with one event each. */
static void tb_append_parts(struct tb *t, uint32_t n_parts)
{
	char name[16];
	uint32_t i;

	tb_append_fixed(t, n_parts);
	for (i = 0; i < n_parts; i++) {
		snprintf(name, sizeof name, "p%u", i);
		tb_part(t, name, 1);
		tb_event_in(t);
	}
}

static void part_count_limit_is_accepted_and_one_more_rejected(void **state)
{
	struct wire_append a;
	struct tb t = { 0 };
	uint8_t *copy;

	(void)state;
	tb_append_parts(&t, WIRE_APPEND_PARTS_MAX);
	copy = exact_copy(t.p, t.len);
	count_allocs(-1);
	assert_int_equal(wire_decode_append(copy, t.len, &a), WIRE_OK);
	/* One array of parts, one of events. */
	assert_int_equal(counted_allocs(), 2);
	assert_int_equal(a.n_parts, WIRE_APPEND_PARTS_MAX);
	assert_int_equal(a.parts[WIRE_APPEND_PARTS_MAX - 1].stream.len, 4);
	assert_memory_equal(a.parts[WIRE_APPEND_PARTS_MAX - 1].stream.p, "p999",
			    4);
	wire_append_close(&a);
	free(copy);
	t.len = 0;
	tb_append_parts(&t, WIRE_APPEND_PARTS_MAX + 1);
	assert_append_refused_without_allocating(&t);
	tb_free(&t);
}

/* Decodes @t as @type after setting the byte at @off to @v. */
static int decode_patched(unsigned type, struct tb *t, size_t off, uint8_t v)
{
	uint8_t old;
	int rv;

	assert_true(off < t->len);
	old = t->p[off];
	t->p[off] = v;
	rv = decode_any(type, t->p, t->len);
	t->p[off] = old;
	return rv;
}

/* Asserts that @type decodes @t with @ok at @off and refuses @bad. */
static void assert_enum_field(unsigned type, struct tb *t, size_t off,
			      uint8_t ok, uint8_t bad)
{
	assert_int_equal(decode_patched(type, t, off, ok), WIRE_OK);
	assert_int_equal(decode_patched(type, t, off, bad),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(decode_patched(type, t, off, 0xff),
			 WIRE_DECODE_MALFORMED);
}

static void unknown_enum_values_are_rejected(void **state)
{
	struct tb t = { 0 };
	size_t at;

	(void)state;
	/* APPEND: has_client, expect_kind. */
	tb_append_fixed(&t, 1);
	tb_part(&t, "s", 1);
	tb_event_in(&t);
	assert_enum_field(WIRE_APPEND, &t, 0, 1, 2);
	assert_enum_field(WIRE_APPEND, &t, 29 + 3, WIRE_EXPECT_EXACT, 4);

	/* READ_STREAM: backward, consistency. */
	t.len = 0;
	tb_str16(&t, "s");
	tb_u64(&t, 1);
	tb_u8(&t, 0);
	tb_u32(&t, 0);
	at = t.len;
	tb_u8(&t, 0);
	tb_u64(&t, 0);
	assert_enum_field(WIRE_READ_STREAM, &t, 3 + 8, 1, 2);
	assert_enum_field(WIRE_READ_STREAM, &t, at, WIRE_CONSISTENCY_LEADER, 3);

	/* READ_ALL and HEAD: consistency. */
	t.len = 0;
	tb_u64(&t, 0);
	tb_u32(&t, 0);
	tb_u8(&t, 0);
	tb_u64(&t, 0);
	tb_str16(&t, "");
	tb_str16(&t, "");
	tb_str16(&t, "");
	assert_enum_field(WIRE_READ_ALL, &t, 12, WIRE_CONSISTENCY_AT_LEAST, 3);
	t.len = 0;
	tb_str16(&t, "s");
	tb_u8(&t, 0);
	tb_u64(&t, 0);
	assert_enum_field(WIRE_HEAD, &t, 3, WIRE_CONSISTENCY_LEADER, 3);

	/* APPEND_OK: duplicate. */
	t.len = 0;
	tb_u8(&t, 0);
	tb_u32(&t, 1);
	tb_fill(&t, 0, 32);
	assert_enum_field(WIRE_APPEND_OK, &t, 0, 1, 2);

	/* EVENTS: end, an event's has_client. */
	t.len = 0;
	tb_u64(&t, 0);
	tb_u8(&t, 0);
	tb_u32(&t, 1);
	tb_u64(&t, 1);
	tb_u64(&t, 1);
	tb_str16(&t, "s");
	tb_fill(&t, 0, 16);
	tb_str16(&t, "T");
	tb_u16(&t, 0);
	tb_u64(&t, 0);
	tb_u64(&t, 0);
	at = t.len;
	tb_u8(&t, 0);
	tb_fill(&t, 0, 16);
	tb_u64(&t, 0);
	tb_blob32(&t, "", 0);
	tb_blob32(&t, "", 0);
	assert_enum_field(WIRE_EVENTS, &t, 8, 1, 2);
	assert_enum_field(WIRE_EVENTS, &t, at, 1, 2);

	/* STATUS_OK: role, a member's role. */
	t.len = 0;
	tb_u64(&t, 1);
	tb_u8(&t, 0);
	tb_fill(&t, 0, 5 * 8);
	tb_str16(&t, "");
	tb_u32(&t, 1);
	tb_u64(&t, 1);
	at = t.len;
	tb_u8(&t, 0);
	tb_str16(&t, "r:1");
	tb_str16(&t, "");
	tb_str16(&t, "");
	assert_enum_field(WIRE_STATUS_OK, &t, 8, WIRE_ROLE_UNAVAILABLE, 4);
	assert_enum_field(WIRE_STATUS_OK, &t, at, WIRE_MEMBER_SPARE, 3);

	/* ERROR: the code; 0 and codes past the table are unknown. */
	t.len = 0;
	tb_u32(&t, WIRE_EMALFORMED);
	tb_u32(&t, 0);
	tb_u64(&t, 0);
	tb_str16(&t, "");
	tb_str16(&t, "");
	assert_enum_field(WIRE_ERROR, &t, 0, WIRE_EINTERNAL, 0);
	assert_int_equal(decode_patched(WIRE_ERROR, &t, 0, 17),
			 WIRE_DECODE_MALFORMED);
	/* A code whose high bytes are set is unknown too. */
	assert_int_equal(decode_patched(WIRE_ERROR, &t, 3, 1),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
}

static void zero_counts_are_rejected(void **state)
{
	struct tb t = { 0 };

	(void)state;
	tb_append_fixed(&t, 0);
	assert_int_equal(decode_any(WIRE_APPEND, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	t.len = 0;
	tb_append_fixed(&t, 1);
	tb_part(&t, "s", 0);
	assert_int_equal(decode_any(WIRE_APPEND, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	/* A part without events followed by bytes that would be one. */
	tb_event_in(&t);
	assert_int_equal(decode_any(WIRE_APPEND, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	t.len = 0;
	tb_u8(&t, 0);
	tb_u32(&t, 0);
	assert_int_equal(decode_any(WIRE_APPEND_OK, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
}

static void append_ok_with_more_parts_than_room_is_rejected(void **state)
{
	struct wire_part_result in[3] = { { 1, 1, 1, 1 },
					  { 2, 2, 2, 2 },
					  { 3, 3, 3, 3 } };
	struct wire_part_result out[3];
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	uint32_t n = 0;
	bool dup;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_append_ok(&b, 1, false, 3, in), WIRE_OK);
	body = only_frame_body(&b, WIRE_APPEND_OK, 1, &len);
	assert_int_equal(wire_decode_append_ok(body, len, &dup, &n, out, 2),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(wire_decode_append_ok(body, len, &dup, &n, NULL, 0),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(wire_decode_append_ok(body, len, &dup, &n, out, 3),
			 WIRE_OK);
	assert_int_equal(n, 3);
	free(body);
	wire_buf_close(&b);
}

/* A STATUS_OK body with @n members, whose first member's raft address has
 * @addr_len bytes. */
static void tb_status(struct tb *t, uint32_t n, size_t addr_len)
{
	uint32_t i;

	t->len = 0;
	tb_u64(t, 1);
	tb_u8(t, WIRE_ROLE_LEADER);
	tb_fill(t, 0, 5 * 8);
	tb_str16(t, "c:1");
	tb_u32(t, n);
	for (i = 0; i < n; i++) {
		tb_u64(t, i + 1);
		tb_u8(t, WIRE_MEMBER_VOTER);
		tb_u16(t, i == 0 ? addr_len : 3);
		tb_fill(t, 'a', i == 0 ? addr_len : 3);
		tb_str16(t, "");
		tb_str16(t, "h:1");
	}
}

static void status_ok_member_limits_are_enforced(void **state)
{
	struct tb t = { 0 };

	(void)state;
	tb_status(&t, WIRE_MEMBERS_MAX, 3);
	assert_int_equal(decode_any(WIRE_STATUS_OK, t.p, t.len), WIRE_OK);
	tb_status(&t, WIRE_MEMBERS_MAX + 1, 3);
	assert_int_equal(decode_any(WIRE_STATUS_OK, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	tb_status(&t, 1, WIRE_STRING_MAX);
	assert_int_equal(decode_any(WIRE_STATUS_OK, t.p, t.len), WIRE_OK);
	tb_status(&t, 1, WIRE_STRING_MAX + 1);
	assert_int_equal(decode_any(WIRE_STATUS_OK, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
}

/* An ERROR body whose leader and message have the lengths given. */
static void tb_error(struct tb *t, size_t leader_len, size_t message_len)
{
	t->len = 0;
	tb_u32(t, WIRE_ENOT_LEADER);
	tb_u32(t, 0);
	tb_u64(t, 0);
	tb_u16(t, leader_len);
	tb_fill(t, 'l', leader_len);
	tb_u16(t, message_len);
	tb_fill(t, 'm', message_len);
}

static void error_strings_over_their_maximum_are_rejected(void **state)
{
	struct tb t = { 0 };

	(void)state;
	tb_error(&t, WIRE_STRING_MAX, WIRE_STRING_MAX);
	assert_int_equal(decode_any(WIRE_ERROR, t.p, t.len), WIRE_OK);
	tb_error(&t, WIRE_STRING_MAX + 1, 0);
	assert_int_equal(decode_any(WIRE_ERROR, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	tb_error(&t, 0, WIRE_STRING_MAX + 1);
	assert_int_equal(decode_any(WIRE_ERROR, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	tb_error(&t, 0, 65535);
	assert_int_equal(decode_any(WIRE_ERROR, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
}

static void status_request_with_a_body_is_rejected(void **state)
{
	static const uint8_t one = 0;

	(void)state;
	assert_int_equal(wire_decode_status(NULL, 0), WIRE_OK);
	assert_int_equal(wire_decode_status(&one, 1), WIRE_DECODE_MALFORMED);
}

static void length_fields_past_the_body_are_rejected(void **state)
{
	struct tb t = { 0 };
	size_t len_at;

	(void)state;
	/* A str16 longer than what is left. */
	tb_u16(&t, 2);
	tb_raw(&t, "s", 1);
	assert_int_equal(decode_any(WIRE_HEAD, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	/* A blob32 of 4 GiB - 1 in an APPEND. */
	t.len = 0;
	tb_append_fixed(&t, 1);
	tb_part(&t, "s", 1);
	tb_fill(&t, 0, 16);
	tb_str16(&t, "T");
	tb_u16(&t, 0);
	tb_u64(&t, 0);
	len_at = t.len;
	tb_blob32(&t, "d", 1);
	tb_blob32(&t, "", 0);
	assert_int_equal(decode_any(WIRE_APPEND, t.p, t.len), WIRE_OK);
	t.p[len_at] = t.p[len_at + 1] = t.p[len_at + 2] = t.p[len_at + 3] =
		0xff;
	assert_int_equal(decode_any(WIRE_APPEND, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	/* The data length one more than there is: metadata's length is cut. */
	t.p[len_at] = 2;
	t.p[len_at + 1] = t.p[len_at + 2] = t.p[len_at + 3] = 0;
	assert_int_equal(decode_any(WIRE_APPEND, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
}

static void append_decode_out_of_memory_leaves_nothing(void **state)
{
	struct sample_append s;
	struct wire_append got;
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	int pass;

	(void)state;
	sample_append_make(&s);
	wire_buf_init(&b);
	assert_int_equal(wire_encode_append(&b, 1, &s.a), WIRE_OK);
	body = only_frame_body(&b, WIRE_APPEND, 1, &len);
	/* The parts array fails, then the events array (the sanitizer
	 * build's leak check sees the parts array freed). */
	for (pass = 0; pass < 2; pass++) {
		count_allocs(pass);
		assert_int_equal(wire_decode_append(body, len, &got),
				 WIRE_DECODE_NOMEM);
		assert_int_equal(counted_allocs(), pass + 1);
		assert_null(got.parts);
		assert_null(got.events_);
		assert_int_equal(got.n_parts, 0);
	}
	free(body);
	wire_buf_close(&b);
}

/* ------------------------------------------------------------------------
 * events: the page writer
 * ------------------------------------------------------------------------ */

static void events_writer_stops_a_page_at_the_byte_limit(void **state)
{
	enum { DATA = 300 * 1024 };
	struct wire_events_writer w;
	struct wire_events_reader r;
	struct wire_event e;
	struct wire_event got;
	struct wire_buf b;
	uint8_t *data = malloc(DATA);
	uint8_t *body;
	size_t len;
	uint64_t version = 0;
	uint32_t i;

	(void)state;
	assert_non_null(data);
	for (i = 0; i < DATA; i++)
		data[i] = (uint8_t)(i * 7);
	memset(&e, 0, sizeof e);
	e.stream = str("big");
	e.type = str("Blob");
	e.data = bytes(data, DATA);
	wire_buf_init(&b);
	assert_int_equal(wire_events_begin(&b, 3, &w), WIRE_OK);
	assert_int_equal(w.event_bytes, 0);
	/* As the node does: add while under the limit; always one. */
	do {
		version++;
		e.version = version;
		e.position = version + 100;
		assert_int_equal(wire_events_add(&b, &w, &e), WIRE_OK);
	} while (w.event_bytes < WIRE_READ_BYTES_MAX);
	wire_events_end(&b, &w, version + 1, false);
	/* 4 MiB / (300 KiB + 87 + 3 + 4) rounded up. */
	assert_int_equal(w.count, 14);
	assert_int_equal(w.event_bytes, 14 * (87 + 3 + 4 + DATA));
	body = only_frame_body(&b, WIRE_EVENTS, 3, &len);
	assert_int_equal(wire_events_open(body, len, &r), WIRE_OK);
	assert_int_equal(r.count, 14);
	assert_false(r.end);
	assert_true(r.next == 15);
	for (i = 1; i <= 14; i++) {
		assert_true(wire_events_next(&r, &got));
		assert_true(got.version == i);
		assert_true(got.position == i + 100);
		assert_int_equal(got.data.len, DATA);
		assert_memory_equal(got.data.p, data, DATA);
	}
	assert_false(wire_events_next(&r, &got));
	free(body);
	wire_buf_close(&b);
	free(data);
}

static void events_page_follows_other_frames_in_the_buffer(void **state)
{
	struct wire_event ev[3];
	struct wire_event got;
	struct wire_events_writer w;
	struct wire_events_reader r;
	struct wire_err err = { WIRE_EBUSY, 0, 0, str(""), str("") };
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	size_t frame_len;
	size_t first_len;
	int i;
	int k;

	(void)state;
	sample_events_make(ev);
	wire_buf_init(&b);
	assert_int_equal(wire_encode_error(&b, 1, &err), WIRE_OK);
	first_len = b.len;
	assert_int_equal(wire_events_begin(&b, 2, &w), WIRE_OK);
	assert_int_equal(w.frame_off, first_len);
	/* Enough events to move the buffer several times. */
	for (k = 0; k < 100; k++)
		for (i = 0; i < 3; i++)
			assert_int_equal(wire_events_add(&b, &w, &ev[i]),
					 WIRE_OK);
	wire_events_end(&b, &w, 7, true);
	assert_int_equal(wire_encode_head_ok(&b, 3, 1, 1), WIRE_OK);

	body = frame_body(&b, 0, WIRE_ERROR, 1, &len, &frame_len);
	assert_int_equal(frame_len, first_len);
	free(body);
	body = frame_body(&b, first_len, WIRE_EVENTS, 2, &len, &frame_len);
	assert_int_equal(wire_events_open(body, len, &r), WIRE_OK);
	assert_int_equal(r.count, 300);
	for (k = 0; k < 100; k++)
		for (i = 0; i < 3; i++) {
			assert_true(wire_events_next(&r, &got));
			assert_event_equal(&ev[i], &got);
		}
	free(body);
	body = frame_body(&b, first_len + frame_len, WIRE_HEAD_OK, 3, &len,
			  &frame_len);
	free(body);
	wire_buf_close(&b);
}

static void events_reader_rejects_a_count_that_disagrees_with_the_body(
	void **state)
{
	struct wire_event ev[3];
	struct wire_events_writer w;
	struct wire_events_reader r;
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	int i;

	(void)state;
	sample_events_make(ev);
	wire_buf_init(&b);
	assert_int_equal(wire_events_begin(&b, 2, &w), WIRE_OK);
	for (i = 0; i < 3; i++)
		assert_int_equal(wire_events_add(&b, &w, &ev[i]), WIRE_OK);
	wire_events_end(&b, &w, 7, true);
	body = only_frame_body(&b, WIRE_EVENTS, 2, &len);
	body[9] = 2; /* one event left over */
	assert_int_equal(wire_events_open(body, len, &r),
			 WIRE_DECODE_MALFORMED);
	body[9] = 4; /* one event missing */
	assert_int_equal(wire_events_open(body, len, &r),
			 WIRE_DECODE_MALFORMED);
	body[9] = 3;
	assert_int_equal(wire_events_open(body, len, &r), WIRE_OK);
	free(body);
	wire_buf_close(&b);
}

static void events_writer_refuses_an_event_past_the_frame_limit(void **state)
{
	struct wire_event ev[3];
	struct wire_event huge;
	struct wire_events_writer w;
	struct wire_events_reader r;
	struct wire_buf b;
	uint8_t *body;
	uint8_t *data;
	size_t len;
	size_t before;
	uint32_t fits;

	(void)state;
	sample_events_make(ev);
	wire_buf_init(&b);
	assert_int_equal(wire_events_begin(&b, 2, &w), WIRE_OK);
	assert_int_equal(wire_events_add(&b, &w, &ev[0]), WIRE_OK);
	/* Data that fills the body to exactly the maximum fits; one byte
	 * more does not, and leaves the page as it was. */
	fits = WIRE_BODY_BYTES_MAX - 13 - (uint32_t)w.event_bytes - 87;
	data = calloc(1, fits + 1);
	assert_non_null(data);
	memset(&huge, 0, sizeof huge);
	huge.data = bytes(data, fits + 1);
	before = b.len;
	assert_int_equal(wire_events_add(&b, &w, &huge), WIRE_ENCODE_TOO_LARGE);
	assert_int_equal(b.len, before);
	assert_int_equal(w.count, 1);
	huge.data.len = fits;
	assert_int_equal(wire_events_add(&b, &w, &huge), WIRE_OK);
	assert_int_equal(wire_events_add(&b, &w, &ev[1]),
			 WIRE_ENCODE_TOO_LARGE);
	wire_events_end(&b, &w, 0, false);
	body = only_frame_body(&b, WIRE_EVENTS, 2, &len);
	assert_int_equal(len, WIRE_BODY_BYTES_MAX);
	assert_int_equal(wire_events_open(body, len, &r), WIRE_OK);
	assert_int_equal(r.count, 2);
	free(body);
	free(data);
	wire_buf_close(&b);
}

static void events_writer_out_of_memory_leaves_the_page_intact(void **state)
{
	struct wire_event ev[3];
	struct wire_event got;
	struct wire_events_writer w;
	struct wire_events_reader r;
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	size_t before;
	int added = 0;
	int i;

	(void)state;
	sample_events_make(ev);
	wire_buf_init(&b);
	assert_int_equal(wire_events_begin(&b, 2, &w), WIRE_OK);
	/* Add until an addition needs the buffer to grow, and fail it. */
	for (;;) {
		before = b.len;
		count_allocs(0);
		i = wire_events_add(&b, &w, &ev[added % 3]);
		counted_allocs();
		if (i != WIRE_OK)
			break;
		added++;
	}
	assert_int_equal(i, WIRE_DECODE_NOMEM);
	assert_int_equal(b.len, before);
	assert_int_equal(w.count, added);
	wire_events_end(&b, &w, 1, true);
	body = only_frame_body(&b, WIRE_EVENTS, 2, &len);
	assert_int_equal(wire_events_open(body, len, &r), WIRE_OK);
	for (i = 0; i < added; i++) {
		assert_true(wire_events_next(&r, &got));
		assert_event_equal(&ev[i % 3], &got);
	}
	assert_false(wire_events_next(&r, &got));
	free(body);
	wire_buf_close(&b);
}

/* ------------------------------------------------------------------------
 * buf: the output buffer, encoder refusals, error text
 * ------------------------------------------------------------------------ */

static void buf_consume_drops_the_written_prefix(void **state)
{
	struct wire_header h;
	struct wire_buf b;
	size_t frame_len;
	size_t first;
	size_t total;
	uint8_t *copy;

	(void)state;
	wire_buf_init(&b);
	wire_buf_consume(&b, 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(wire_encode_head_ok(&b, 1, 2, 3), WIRE_OK);
	first = b.len;
	assert_int_equal(wire_encode_status(&b, 4), WIRE_OK);
	total = b.len;
	copy = exact_copy(b.p, b.len);
	/* A partial write: the rest stays, in order. */
	wire_buf_consume(&b, 5);
	assert_int_equal(b.len, total - 5);
	assert_memory_equal(b.p, copy + 5, total - 5);
	/* The rest of the first frame: the second is now at the start. */
	wire_buf_consume(&b, first - 5);
	assert_int_equal(wire_frame_peek(b.p, b.len, &h, &frame_len), WIRE_OK);
	assert_int_equal(h.type, WIRE_STATUS);
	assert_true(h.request_id == 4);
	assert_int_equal(frame_len, b.len);
	wire_buf_consume(&b, 0);
	assert_int_equal(b.len, total - first);
	wire_buf_consume(&b, b.len);
	assert_int_equal(b.len, 0);
	/* Memory is kept for the next frames. */
	assert_non_null(b.p);
	assert_true(b.cap >= total);
	free(copy);
	wire_buf_close(&b);
	assert_null(b.p);
	assert_int_equal(b.cap, 0);
}

static void buf_reset_keeps_the_memory(void **state)
{
	struct wire_buf b;
	uint8_t *p;
	size_t cap;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_status(&b, 1), WIRE_OK);
	p = b.p;
	cap = b.cap;
	wire_buf_reset(&b);
	assert_int_equal(b.len, 0);
	count_allocs(-1);
	assert_int_equal(wire_encode_status(&b, 2), WIRE_OK);
	assert_int_equal(counted_allocs(), 0);
	assert_ptr_equal(b.p, p);
	assert_int_equal(b.cap, cap);
	wire_buf_close(&b);
}

/* Encodes an error with @message and returns the decoded message's
 * length, checking it is a prefix of @message. */
static uint32_t error_message_sent(const char *message, size_t len)
{
	struct wire_err in = { WIRE_EINTERNAL, 0, 0, str(""),
			       bytes(message, len) };
	struct wire_err out;
	struct wire_buf b;
	uint8_t *body;
	size_t body_len;
	uint32_t n;

	wire_buf_init(&b);
	assert_int_equal(wire_encode_error(&b, 1, &in), WIRE_OK);
	body = only_frame_body(&b, WIRE_ERROR, 1, &body_len);
	assert_int_equal(wire_decode_error(body, body_len, &out), WIRE_OK);
	n = out.message.len;
	assert_true(n <= len);
	if (n > 0)
		assert_memory_equal(out.message.p, message, n);
	free(body);
	wire_buf_close(&b);
	return n;
}

static void error_frame_truncates_a_long_message(void **state)
{
	char *text = malloc(5000);

	(void)state;
	assert_non_null(text);
	memset(text, 'a', 5000);
	assert_int_equal(error_message_sent(text, 5000), WIRE_STRING_MAX);
	assert_int_equal(error_message_sent(text, WIRE_STRING_MAX),
			 WIRE_STRING_MAX);
	assert_int_equal(error_message_sent(text, WIRE_STRING_MAX + 1),
			 WIRE_STRING_MAX);
	assert_int_equal(error_message_sent(text, 10), 10);
	assert_int_equal(error_message_sent(text, 0), 0);
	/* Never inside a UTF-8 character: "é" (2 bytes) across the cut. */
	memcpy(text + WIRE_STRING_MAX - 1, "\xc3\xa9", 2);
	assert_int_equal(error_message_sent(text, 5000), WIRE_STRING_MAX - 1);
	/* "€" (3 bytes) ending one past the cut, then two past. */
	memset(text, 'a', 5000);
	memcpy(text + WIRE_STRING_MAX - 2, "\xe2\x82\xac", 3);
	assert_int_equal(error_message_sent(text, 5000), WIRE_STRING_MAX - 2);
	memset(text, 'a', 5000);
	memcpy(text + WIRE_STRING_MAX - 1, "\xe2\x82\xac", 3);
	assert_int_equal(error_message_sent(text, 5000), WIRE_STRING_MAX - 1);
	/* A 4-byte character across the cut. */
	memset(text, 'a', 5000);
	memcpy(text + WIRE_STRING_MAX - 3, "\xf0\x9f\x98\x80", 4);
	assert_int_equal(error_message_sent(text, 5000), WIRE_STRING_MAX - 3);
	/* A character that ends right at the cut is kept whole. */
	memset(text, 'a', 5000);
	memcpy(text + WIRE_STRING_MAX - 2, "\xc3\xa9", 2);
	assert_int_equal(error_message_sent(text, 5000), WIRE_STRING_MAX);
	/* Not UTF-8 at all: cut at most three bytes short. */
	memset(text, 0x80, 5000);
	assert_int_equal(error_message_sent(text, 5000), WIRE_STRING_MAX);
	free(text);
}

/* Asserts that @call refuses with @code and leaves @b as it was. */
#define assert_refused(b, code, call)                    \
	do {                                             \
		size_t len_before_ = (b)->len;           \
		assert_int_equal((call), (code));        \
		assert_int_equal((b)->len, len_before_); \
	} while (0)

static void encoders_refuse_what_decoders_reject(void **state)
{
	struct sample_append s;
	struct wire_read_stream rs = { str("s"), 0, false, 0, { 3, 0 } };
	struct wire_read_all ra = { 0, 0, { 3, 0 }, str(""), str(""), str("") };
	struct wire_head hd = { str("s"), { 3, 0 } };
	struct wire_status st;
	struct wire_err err = { 0, 0, 0, str(""), str("") };
	struct wire_part_result res = { 0, 0, 0, 0 };
	struct wire_part many[WIRE_APPEND_PARTS_MAX + 1];
	char *long_text = malloc(70000);
	struct wire_buf b;
	uint32_t i;

	(void)state;
	assert_non_null(long_text);
	memset(long_text, 'x', 70000);
	wire_buf_init(&b);
	/* Something already in the buffer must stay as it is. */
	assert_int_equal(wire_encode_status(&b, 1), WIRE_OK);

	sample_append_make(&s);
	s.a.n_parts = 0;
	assert_refused(&b, WIRE_ENCODE_INVALID,
		       wire_encode_append(&b, 1, &s.a));
	sample_append_make(&s);
	s.parts[1].n_events = 0;
	assert_refused(&b, WIRE_ENCODE_INVALID,
		       wire_encode_append(&b, 1, &s.a));
	sample_append_make(&s);
	s.parts[2].expect_kind = 4;
	assert_refused(&b, WIRE_ENCODE_INVALID,
		       wire_encode_append(&b, 1, &s.a));
	sample_append_make(&s);
	s.parts[0].stream = bytes(long_text, 65536);
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_append(&b, 1, &s.a));
	sample_append_make(&s);
	s.events[5].type = bytes(long_text, 65536);
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_append(&b, 1, &s.a));
	sample_append_make(&s);
	for (i = 0; i <= WIRE_APPEND_PARTS_MAX; i++)
		many[i] = s.parts[0];
	s.a.parts = many;
	s.a.n_parts = WIRE_APPEND_PARTS_MAX + 1;
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_append(&b, 1, &s.a));
	s.a.n_parts = WIRE_APPEND_PARTS_MAX;
	assert_int_equal(wire_encode_append(&b, 1, &s.a), WIRE_OK);
	wire_buf_reset(&b);

	assert_refused(&b, WIRE_ENCODE_INVALID,
		       wire_encode_append_ok(&b, 1, false, 0, &res));
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_append_ok(&b, 1, false,
					     WIRE_APPEND_PARTS_MAX + 1, &res));
	assert_refused(&b, WIRE_ENCODE_INVALID,
		       wire_encode_read_stream(&b, 1, &rs));
	rs.consistency.kind = 0;
	rs.stream = bytes(long_text, 65536);
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_read_stream(&b, 1, &rs));
	assert_refused(&b, WIRE_ENCODE_INVALID,
		       wire_encode_read_all(&b, 1, &ra));
	ra.consistency.kind = 0;
	ra.type = bytes(long_text, 65536);
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_read_all(&b, 1, &ra));
	assert_refused(&b, WIRE_ENCODE_INVALID, wire_encode_head(&b, 1, &hd));
	hd.consistency.kind = 0;
	hd.stream = bytes(long_text, 65536);
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE, wire_encode_head(&b, 1, &hd));

	sample_status_make(&st, 3);
	st.role = 4;
	assert_refused(&b, WIRE_ENCODE_INVALID,
		       wire_encode_status_ok(&b, 1, &st));
	sample_status_make(&st, 3);
	st.members[1].role = 3;
	assert_refused(&b, WIRE_ENCODE_INVALID,
		       wire_encode_status_ok(&b, 1, &st));
	sample_status_make(&st, 3);
	st.members[2].http_address = bytes(long_text, WIRE_STRING_MAX + 1);
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_status_ok(&b, 1, &st));
	sample_status_make(&st, 3);
	st.leader_client_address = bytes(long_text, WIRE_STRING_MAX + 1);
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_status_ok(&b, 1, &st));
	sample_status_make(&st, 3);
	st.n_members = WIRE_MEMBERS_MAX + 1;
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_status_ok(&b, 1, &st));

	assert_refused(&b, WIRE_ENCODE_INVALID, wire_encode_error(&b, 1, &err));
	err.code = 17;
	assert_refused(&b, WIRE_ENCODE_INVALID, wire_encode_error(&b, 1, &err));
	err.code = WIRE_ENOT_LEADER;
	err.leader = bytes(long_text, WIRE_STRING_MAX + 1);
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_error(&b, 1, &err));
	err.leader.len = WIRE_STRING_MAX;
	assert_int_equal(wire_encode_error(&b, 1, &err), WIRE_OK);

	wire_buf_close(&b);
	free(long_text);
}

static void append_over_the_body_maximum_is_refused(void **state)
{
	struct wire_event_in ev[2];
	struct wire_part part;
	struct wire_append a;
	struct wire_buf b;
	uint8_t *data = calloc(1, WIRE_BODY_BYTES_MAX);
	uint32_t fits;

	(void)state;
	assert_non_null(data);
	memset(ev, 0, sizeof ev);
	memset(&part, 0, sizeof part);
	memset(&a, 0, sizeof a);
	part.n_events = 1;
	part.events = ev;
	a.n_parts = 1;
	a.parts = &part;
	/* One event whose data fills the body to exactly the maximum. */
	fits = WIRE_BODY_BYTES_MAX - (29 + 15 + 36);
	ev[0].data = bytes(data, fits);
	wire_buf_init(&b);
	assert_int_equal(wire_encode_append(&b, 1, &a), WIRE_OK);
	assert_int_equal(b.len, WIRE_HEADER_BYTES + WIRE_BODY_BYTES_MAX);
	assert_int_equal(decode_any(WIRE_APPEND, b.p + WIRE_HEADER_BYTES,
				    WIRE_BODY_BYTES_MAX),
			 WIRE_OK);
	wire_buf_reset(&b);
	ev[0].data.len = fits + 1;
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_append(&b, 1, &a));
	/* Many events whose sum is over: the size is checked as it grows
	 * (4 GiB-long claims cannot wrap it). */
	ev[0].data = bytes(data, WIRE_BODY_BYTES_MAX / 2);
	ev[1] = ev[0];
	part.n_events = 2;
	assert_refused(&b, WIRE_ENCODE_TOO_LARGE,
		       wire_encode_append(&b, 1, &a));
	wire_buf_close(&b);
	free(data);
}

static void encoders_out_of_memory_leave_the_buffer_unchanged(void **state)
{
	struct sample_append s;
	struct wire_status st;
	struct wire_err err = { WIRE_EBUSY, 0, 0, str(""), str("busy") };
	struct wire_part_result res = { 1, 1, 1, 1 };
	struct wire_read_stream rs = { str("s"), 0, false, 0, { 0, 0 } };
	struct wire_read_all ra = { 0, 0, { 0, 0 }, str(""), str(""), str("") };
	struct wire_head hd = { str("s"), { 0, 0 } };
	struct wire_events_writer w;
	struct wire_buf b;
	uint8_t *copy;
	size_t len;
	int step;

	(void)state;
	sample_append_make(&s);
	sample_status_make(&st, 3);
	for (step = 0; step < 10; step++) {
		wire_buf_init(&b);
		/* Fill the first block exactly, so any frame must grow it. */
		while (b.len == 0 || b.len + 16 <= b.cap)
			assert_int_equal(wire_encode_status(&b, 1), WIRE_OK);
		len = b.len;
		copy = exact_copy(b.p, b.len);
		count_allocs(0);
		switch (step) {
		case 0:
			assert_int_equal(wire_encode_append(&b, 1, &s.a),
					 WIRE_DECODE_NOMEM);
			break;
		case 1:
			assert_int_equal(
				wire_encode_append_ok(&b, 1, true, 1, &res),
				WIRE_DECODE_NOMEM);
			break;
		case 2:
			assert_int_equal(wire_encode_read_stream(&b, 1, &rs),
					 WIRE_DECODE_NOMEM);
			break;
		case 3:
			assert_int_equal(wire_encode_read_all(&b, 1, &ra),
					 WIRE_DECODE_NOMEM);
			break;
		case 4:
			assert_int_equal(wire_encode_head(&b, 1, &hd),
					 WIRE_DECODE_NOMEM);
			break;
		case 5:
			assert_int_equal(wire_encode_head_ok(&b, 1, 1, 1),
					 WIRE_DECODE_NOMEM);
			break;
		case 6:
			assert_int_equal(wire_encode_status(&b, 1),
					 WIRE_DECODE_NOMEM);
			break;
		case 7:
			assert_int_equal(wire_encode_status_ok(&b, 1, &st),
					 WIRE_DECODE_NOMEM);
			break;
		case 8:
			assert_int_equal(wire_encode_error(&b, 1, &err),
					 WIRE_DECODE_NOMEM);
			break;
		case 9:
			assert_int_equal(wire_events_begin(&b, 1, &w),
					 WIRE_DECODE_NOMEM);
			break;
		}
		assert_int_equal(counted_allocs(), 1);
		assert_int_equal(b.len, len);
		assert_memory_equal(b.p, copy, len);
		free(copy);
		wire_buf_close(&b);
	}
}

/* ------------------------------------------------------------------------
 * Subscriptions: SUBSCRIBE, CREDIT, UNSUBSCRIBE, SUB_EVENTS, SUB_LIVE,
 * SUB_END
 * ------------------------------------------------------------------------ */

static void subscription_messages_round_trip_every_field(void **state)
{
	struct wire_subscribe in = { WIRE_SUB_CATEGORY,  WIRE_SUB_FROM_POSITION,
				     UINT64_MAX,         str("order"),
				     str("OrderPlaced"), UINT32_MAX };
	struct wire_subscribe out;
	struct wire_sub_end end_in = { WIRE_SUB_END_SHUTDOWN, 42,
				       str("node shutting down") };
	struct wire_sub_end end_out;
	struct wire_events_writer w;
	struct wire_events_reader r;
	struct wire_event ev[3];
	struct wire_event e;
	struct wire_buf b;
	uint8_t *body;
	size_t len;
	uint64_t next;
	uint64_t last;
	uint32_t credit;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_subscribe(&b, 77, &in), WIRE_OK);
	body = only_frame_body(&b, WIRE_SUBSCRIBE, 77, &len);
	assert_int_equal(wire_decode_subscribe(body, len, &out), WIRE_OK);
	assert_int_equal(out.kind, in.kind);
	assert_int_equal(out.from_kind, in.from_kind);
	assert_true(out.from == in.from);
	assert_wire_bytes(out.target, in.target);
	assert_wire_bytes(out.type, in.type);
	assert_int_equal(out.credit, in.credit);
	free(body);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_credit(&b, 77, 3), WIRE_OK);
	body = only_frame_body(&b, WIRE_CREDIT, 77, &len);
	assert_int_equal(wire_decode_credit(body, len, &credit), WIRE_OK);
	assert_int_equal(credit, 3);
	free(body);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_unsubscribe(&b, 77), WIRE_OK);
	body = only_frame_body(&b, WIRE_UNSUBSCRIBE, 77, &len);
	assert_int_equal(len, 0);
	assert_int_equal(wire_decode_unsubscribe(body, len), WIRE_OK);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_sub_live(&b, 77, 9, UINT64_MAX), WIRE_OK);
	body = only_frame_body(&b, WIRE_SUB_LIVE, 77, &len);
	assert_int_equal(wire_decode_sub_live(body, len, &next, &last),
			 WIRE_OK);
	assert_int_equal(next, 9);
	assert_true(last == UINT64_MAX);
	free(body);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_sub_end(&b, 77, &end_in), WIRE_OK);
	body = only_frame_body(&b, WIRE_SUB_END, 77, &len);
	assert_int_equal(wire_decode_sub_end(body, len, &end_out), WIRE_OK);
	assert_int_equal(end_out.reason, end_in.reason);
	assert_int_equal(end_out.next, 42);
	assert_wire_bytes(end_out.message, end_in.message);
	free(body);

	wire_buf_reset(&b);
	sample_events_make(ev);
	assert_int_equal(wire_sub_events_begin(&b, 77, &w), WIRE_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wire_events_add(&b, &w, &ev[i]), WIRE_OK);
	wire_events_end(&b, &w, 1000, false);
	body = only_frame_body(&b, WIRE_SUB_EVENTS, 77, &len);
	assert_int_equal(wire_events_open(body, len, &r), WIRE_OK);
	assert_int_equal(r.count, 3);
	assert_int_equal(r.next, 1000);
	assert_false(r.end);
	for (int i = 0; i < 3; i++) {
		assert_true(wire_events_next(&r, &e));
		assert_event_equal(&e, &ev[i]);
	}
	assert_false(wire_events_next(&r, &e));
	free(body);
	wire_buf_close(&b);
}

static void subscription_bodies_match_the_documented_layout(void **state)
{
	struct wire_subscribe s = { WIRE_SUB_STREAM,
				    WIRE_SUB_FROM_POSITION,
				    5,
				    str("order-17"),
				    str("Paid"),
				    1024 };
	struct wire_sub_end e = { WIRE_SUB_END_SLOW, 104, str("slow") };
	struct tb t = { 0 };
	struct wire_buf b;
	uint8_t *body;
	size_t len;

	(void)state;
	wire_buf_init(&b);
	/* SUBSCRIBE: kind, from_kind, from, target, type, credit. */
	tb_u8(&t, 1);
	tb_u8(&t, 0);
	tb_u64(&t, 5);
	tb_str16(&t, "order-17");
	tb_str16(&t, "Paid");
	tb_u32(&t, 1024);
	assert_int_equal(wire_encode_subscribe(&b, 1, &s), WIRE_OK);
	body = only_frame_body(&b, WIRE_SUBSCRIBE, 1, &len);
	assert_int_equal(len, t.len);
	assert_memory_equal(body, t.p, t.len);
	free(body);

	/* CREDIT: u32 events. */
	t.len = 0;
	wire_buf_reset(&b);
	tb_u32(&t, 0x01020304);
	assert_int_equal(wire_encode_credit(&b, 2, 0x01020304), WIRE_OK);
	body = only_frame_body(&b, WIRE_CREDIT, 2, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(body, t.p, t.len);
	free(body);

	/* SUB_LIVE: u64 next, u64 last_position. */
	t.len = 0;
	wire_buf_reset(&b);
	tb_u64(&t, 104);
	tb_u64(&t, 103);
	assert_int_equal(wire_encode_sub_live(&b, 3, 104, 103), WIRE_OK);
	body = only_frame_body(&b, WIRE_SUB_LIVE, 3, &len);
	assert_int_equal(len, 16);
	assert_memory_equal(body, t.p, t.len);
	free(body);

	/* SUB_END: u32 reason, u64 next, str16 message. */
	t.len = 0;
	wire_buf_reset(&b);
	tb_u32(&t, 2);
	tb_u64(&t, 104);
	tb_str16(&t, "slow");
	assert_int_equal(wire_encode_sub_end(&b, 4, &e), WIRE_OK);
	body = only_frame_body(&b, WIRE_SUB_END, 4, &len);
	assert_int_equal(len, t.len);
	assert_memory_equal(body, t.p, t.len);
	free(body);

	/* The type numbers are the protocol's. */
	assert_int_equal(WIRE_SUBSCRIBE, 0x10);
	assert_int_equal(WIRE_CREDIT, 0x11);
	assert_int_equal(WIRE_UNSUBSCRIBE, 0x12);
	assert_int_equal(WIRE_SUB_EVENTS, 0x90);
	assert_int_equal(WIRE_SUB_LIVE, 0x91);
	assert_int_equal(WIRE_SUB_END, 0x92);
	tb_free(&t);
	wire_buf_close(&b);
}

static void subscription_enums_and_zero_credit_are_rejected(void **state)
{
	struct wire_subscribe s = { WIRE_SUB_ALL, WIRE_SUB_FROM_NOW, 0,
				    str(""),      str(""),           1 };
	struct wire_sub_end e = { WIRE_SUB_END_INTERNAL, 0, str("") };
	struct tb t = { 0 };
	struct wire_buf b;

	(void)state;
	/* SUBSCRIBE kind (offset 0): 0..2; from_kind (offset 1): 0..1. */
	tb_u8(&t, 0);
	tb_u8(&t, 0);
	tb_u64(&t, 0);
	tb_str16(&t, "");
	tb_str16(&t, "");
	tb_u32(&t, 0);
	assert_enum_field(WIRE_SUBSCRIBE, &t, 0, 2, 3);
	assert_enum_field(WIRE_SUBSCRIBE, &t, 1, 1, 2);
	/* SUB_END reason (u32 at 0): 1..4. */
	t.len = 0;
	tb_u32(&t, 1);
	tb_u64(&t, 0);
	tb_str16(&t, "");
	assert_int_equal(decode_patched(WIRE_SUB_END, &t, 0, 4), WIRE_OK);
	assert_int_equal(decode_patched(WIRE_SUB_END, &t, 0, 0),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(decode_patched(WIRE_SUB_END, &t, 0, 5),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(decode_patched(WIRE_SUB_END, &t, 3, 1),
			 WIRE_DECODE_MALFORMED); /* reason 2^24 + 1 */
	/* CREDIT of 0 events. */
	t.len = 0;
	tb_u32(&t, 0);
	assert_int_equal(decode_any(WIRE_CREDIT, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	/* UNSUBSCRIBE with a body. */
	assert_int_equal(decode_any(WIRE_UNSUBSCRIBE, t.p, 1),
			 WIRE_DECODE_MALFORMED);

	/* The encoders refuse the same, appending nothing. */
	wire_buf_init(&b);
	s.kind = 3;
	assert_int_equal(wire_encode_subscribe(&b, 1, &s), WIRE_ENCODE_INVALID);
	s.kind = WIRE_SUB_ALL;
	s.from_kind = 2;
	assert_int_equal(wire_encode_subscribe(&b, 1, &s), WIRE_ENCODE_INVALID);
	assert_int_equal(wire_encode_credit(&b, 1, 0), WIRE_ENCODE_INVALID);
	e.reason = 0;
	assert_int_equal(wire_encode_sub_end(&b, 1, &e), WIRE_ENCODE_INVALID);
	e.reason = 5;
	assert_int_equal(wire_encode_sub_end(&b, 1, &e), WIRE_ENCODE_INVALID);
	assert_int_equal(b.len, 0);
	wire_buf_close(&b);
	tb_free(&t);
}

static void subscription_strings_and_counts_over_their_limits_are_refused(
	void **state)
{
	struct wire_subscribe s = {
		WIRE_SUB_STREAM, 0, 0, str("s"), str(""), 1
	};
	struct wire_sub_end e = { WIRE_SUB_END_SLOW, 0, str("") };
	struct wire_sub_end out;
	struct wire_events_reader r;
	struct tb t = { 0 };
	struct wire_buf b;
	char *big = malloc(70000);
	uint8_t *body;
	size_t len;
	double start = now_s();

	(void)state;
	assert_non_null(big);
	memset(big, 'a', 70000);
	wire_buf_init(&b);
	/* A str16 holds at most 65,535 bytes. */
	s.target = bytes(big, 65536);
	assert_int_equal(wire_encode_subscribe(&b, 1, &s),
			 WIRE_ENCODE_TOO_LARGE);
	s.target = str("s");
	s.type = bytes(big, 65536);
	assert_int_equal(wire_encode_subscribe(&b, 1, &s),
			 WIRE_ENCODE_TOO_LARGE);
	assert_int_equal(b.len, 0);
	/* A SUB_END message over WIRE_STRING_MAX is cut to it... */
	e.message = bytes(big, WIRE_STRING_MAX + 100);
	assert_int_equal(wire_encode_sub_end(&b, 1, &e), WIRE_OK);
	body = only_frame_body(&b, WIRE_SUB_END, 1, &len);
	assert_int_equal(wire_decode_sub_end(body, len, &out), WIRE_OK);
	assert_int_equal(out.message.len, WIRE_STRING_MAX);
	free(body);
	/* ... and a decoder refuses a longer one. */
	tb_u32(&t, 1);
	tb_u64(&t, 0);
	tb_u16(&t, WIRE_STRING_MAX + 1);
	tb_fill(&t, 'a', WIRE_STRING_MAX + 1);
	assert_int_equal(decode_any(WIRE_SUB_END, t.p, t.len),
			 WIRE_DECODE_MALFORMED);
	/* A SUB_EVENTS count far above what its bytes hold. */
	t.len = 0;
	tb_u64(&t, 1);
	tb_u8(&t, 0);
	tb_u32(&t, UINT32_MAX);
	tb_fill(&t, 0, 87);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(wire_events_open(t.p, t.len, &r),
				 WIRE_DECODE_MALFORMED);
	assert_true(now_s() - start < 5.0);
	free(big);
	tb_free(&t);
	wire_buf_close(&b);
}

/* ------------------------------------------------------------------------ */

static void checkpoint_and_snapshot_messages_round_trip(void **state)
{
	struct wire_checkpoint_set in = {
		true,       { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 },
		77,         str("projector-1"),
		UINT64_MAX, WIRE_CP_EXPECT_VALUE,
		5
	};
	struct wire_checkpoint_set cs;
	struct wire_checkpoint_get cg_in = { str("projector-1"),
					     { WIRE_CONSISTENCY_AT_LEAST,
					       99 } };
	struct wire_checkpoint_get cg;
	struct wire_snapshot_put sp_in = { false, { 0 },
					   0,     str("order-1"),
					   4,     str("{\"total\":3}") };
	struct wire_snapshot_put sp;
	struct wire_snapshot_get sg_in = { str("order-1"),
					   7,
					   { WIRE_CONSISTENCY_ANY, 0 } };
	struct wire_snapshot_get sg;
	struct wire_bytes data;
	struct wire_header h;
	struct wire_buf b;
	uint64_t v;
	bool flag;
	const uint8_t *body;

	(void)state;
	wire_buf_init(&b);
#define BODY()                                                          \
	do {                                                            \
		assert_int_equal(wire_header_decode(b.p, &h), WIRE_OK); \
		body = b.p + WIRE_HEADER_BYTES;                         \
	} while (0)
	assert_int_equal(wire_encode_checkpoint_set(&b, 5, &in), WIRE_OK);
	BODY();
	assert_int_equal(h.type, WIRE_CHECKPOINT_SET);
	assert_int_equal(h.request_id, 5);
	assert_int_equal(wire_decode_checkpoint_set(body, h.body_len, &cs),
			 WIRE_OK);
	assert_true(cs.has_client);
	assert_memory_equal(cs.client_id, in.client_id, 16);
	assert_int_equal(cs.client_seq, 77);
	assert_wire_bytes(cs.name, in.name);
	assert_true(cs.value == UINT64_MAX);
	assert_int_equal(cs.expect_kind, WIRE_CP_EXPECT_VALUE);
	assert_int_equal(cs.expected, 5);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_checkpoint_get(&b, 6, &cg_in), WIRE_OK);
	BODY();
	assert_int_equal(wire_decode_checkpoint_get(body, h.body_len, &cg),
			 WIRE_OK);
	assert_wire_bytes(cg.name, cg_in.name);
	assert_int_equal(cg.consistency.kind, WIRE_CONSISTENCY_AT_LEAST);
	assert_int_equal(cg.consistency.min_position, 99);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_checkpoint(&b, 7, false, 0), WIRE_OK);
	BODY();
	assert_int_equal(h.type, WIRE_CHECKPOINT);
	assert_int_equal(wire_decode_checkpoint(body, h.body_len, &flag, &v),
			 WIRE_OK);
	assert_false(flag);
	assert_int_equal(v, 0);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_snapshot_put(&b, 8, &sp_in), WIRE_OK);
	BODY();
	assert_int_equal(wire_decode_snapshot_put(body, h.body_len, &sp),
			 WIRE_OK);
	assert_false(sp.has_client);
	assert_wire_bytes(sp.stream, sp_in.stream);
	assert_int_equal(sp.version, 4);
	assert_wire_bytes(sp.data, sp_in.data);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_snapshot_get(&b, 9, &sg_in), WIRE_OK);
	BODY();
	assert_int_equal(wire_decode_snapshot_get(body, h.body_len, &sg),
			 WIRE_OK);
	assert_wire_bytes(sg.stream, sg_in.stream);
	assert_int_equal(sg.max_version, 7);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_snapshot(&b, 10, 4, sp_in.data), WIRE_OK);
	BODY();
	assert_int_equal(wire_decode_snapshot(body, h.body_len, &v, &data),
			 WIRE_OK);
	assert_int_equal(v, 4);
	assert_wire_bytes(data, sp_in.data);

	wire_buf_reset(&b);
	assert_int_equal(wire_encode_state_ok(&b, 11, false), WIRE_OK);
	BODY();
	assert_int_equal(wire_decode_state_ok(body, h.body_len, &flag),
			 WIRE_OK);
	assert_false(flag);
#undef BODY
	wire_buf_close(&b);
}

static void checkpoint_and_snapshot_encoders_refuse_invalid_fields(void **state)
{
	struct wire_checkpoint_set cs = { 0 };
	struct wire_snapshot_put sp = { 0 };
	struct wire_buf b;

	(void)state;
	wire_buf_init(&b);
	cs.name = str("c");
	cs.expect_kind = WIRE_CP_EXPECT_VALUE; /* expected 0 */
	assert_int_equal(wire_encode_checkpoint_set(&b, 1, &cs),
			 WIRE_ENCODE_INVALID);
	cs.expect_kind = WIRE_CP_EXPECT_ABSENT;
	cs.expected = 3;
	assert_int_equal(wire_encode_checkpoint_set(&b, 1, &cs),
			 WIRE_ENCODE_INVALID);
	cs.expect_kind = 3;
	cs.expected = 0;
	assert_int_equal(wire_encode_checkpoint_set(&b, 1, &cs),
			 WIRE_ENCODE_INVALID);
	sp.stream = str("s");
	assert_int_equal(wire_encode_snapshot_put(&b, 1, &sp),
			 WIRE_ENCODE_INVALID);
	sp.version = 1;
	sp.data.len = WIRE_SNAPSHOT_BYTES_MAX + 1;
	sp.data.p = (const uint8_t *)"";
	assert_int_equal(wire_encode_snapshot_put(&b, 1, &sp),
			 WIRE_ENCODE_TOO_LARGE);
	assert_int_equal(wire_encode_checkpoint(&b, 1, false, 3),
			 WIRE_ENCODE_INVALID);
	assert_int_equal(wire_encode_snapshot(&b, 1, 0, str("x")),
			 WIRE_ENCODE_INVALID);
	assert_int_equal(b.len, 0);
	wire_buf_close(&b);
}

static void checkpoint_and_snapshot_decoders_reject_bad_fields(void **state)
{
	struct wire_checkpoint_set cs;
	struct wire_snapshot_put sp;
	struct wire_bytes d;
	uint64_t v;
	bool found;
	struct tb t;

	(void)state;
	/* CHECKPOINT_SET with expect kind 3. */
	memset(&t, 0, sizeof t);
	tb_u8(&t, 0);
	tb_fill(&t, 0, 16);
	tb_u64(&t, 0);
	tb_str16(&t, "c");
	tb_u64(&t, 1);
	tb_u8(&t, 3);
	tb_u64(&t, 0);
	assert_int_equal(wire_decode_checkpoint_set(t.p, t.len, &cs),
			 WIRE_DECODE_MALFORMED);
	t.p[t.len - 9] = WIRE_CP_EXPECT_VALUE; /* expected 0 */
	assert_int_equal(wire_decode_checkpoint_set(t.p, t.len, &cs),
			 WIRE_DECODE_MALFORMED);
	t.p[t.len - 8] = 1;
	assert_int_equal(wire_decode_checkpoint_set(t.p, t.len, &cs), WIRE_OK);
	t.p[0] = 2; /* has_client not a bool */
	assert_int_equal(wire_decode_checkpoint_set(t.p, t.len, &cs),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);

	/* SNAPSHOT_PUT claiming more than the snapshot maximum. */
	memset(&t, 0, sizeof t);
	tb_u8(&t, 0);
	tb_fill(&t, 0, 16);
	tb_u64(&t, 0);
	tb_str16(&t, "s");
	tb_u64(&t, 1);
	tb_u32(&t, WIRE_SNAPSHOT_BYTES_MAX + 1);
	tb_fill(&t, 'x', WIRE_SNAPSHOT_BYTES_MAX + 1);
	assert_int_equal(wire_decode_snapshot_put(t.p, t.len, &sp),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);

	/* SNAPSHOT_PUT at version 0. */
	memset(&t, 0, sizeof t);
	tb_u8(&t, 0);
	tb_fill(&t, 0, 16);
	tb_u64(&t, 0);
	tb_str16(&t, "s");
	tb_u64(&t, 0);
	tb_u32(&t, 0);
	assert_int_equal(wire_decode_snapshot_put(t.p, t.len, &sp),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);

	/* A missing checkpoint with a value; a missing snapshot with data. */
	memset(&t, 0, sizeof t);
	tb_u8(&t, 0);
	tb_u64(&t, 5);
	assert_int_equal(wire_decode_checkpoint(t.p, t.len, &found, &v),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
	memset(&t, 0, sizeof t);
	tb_u64(&t, 0);
	tb_blob32(&t, "x", 1);
	assert_int_equal(wire_decode_snapshot(t.p, t.len, &v, &d),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
}

/* ------------------------------------------------------------------------
 * Copying a node's store: STATE_BEGIN, STATE_LISTING, STATE_CHUNK,
 * STATE_DATA, STATE_END, STATE_ENDED
 * ------------------------------------------------------------------------ */

/* The body of the frame at the start of @b (the frame's header checked). */
static const uint8_t *only_body(const struct wire_buf *b, uint16_t type,
				uint64_t id, size_t *len)
{
	struct wire_header h;

	assert_true(b->len >= WIRE_HEADER_BYTES);
	assert_int_equal(wire_header_decode(b->p, &h), WIRE_OK);
	assert_int_equal(h.type, type);
	assert_int_equal(h.request_id, id);
	assert_int_equal(b->len, WIRE_HEADER_BYTES + h.body_len);
	*len = h.body_len;
	return b->p + WIRE_HEADER_BYTES;
}

static void state_copy_messages_round_trip_every_field(void **state)
{
	struct wire_state_file files[3] = {
		{ { (const uint8_t *)"000012.sst", 10 }, 1ull << 33 },
		{ { (const uint8_t *)"CURRENT", 7 }, 16 },
		{ { (const uint8_t *)"MANIFEST-000005", 15 }, 0 },
	};
	struct wire_state_listing l = { 0 };
	struct wire_state_listing l2;
	struct wire_state_begin sb = { 42, WIRE_STATE_LEADER };
	struct wire_state_begin sb2;
	struct wire_state_chunk ch = { 0x1122334455667788ull, 2, 1ull << 40,
				       WIRE_STATE_CHUNK_BYTES_MAX };
	struct wire_state_chunk ch2;
	struct wire_bytes data;
	struct wire_buf b;
	const uint8_t *body;
	uint64_t session;
	uint32_t crc;
	size_t len;
	uint32_t k;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_state_begin(&b, 7, &sb), 0);
	body = only_body(&b, WIRE_STATE_BEGIN, 7, &len);
	assert_int_equal(len, 9);
	assert_int_equal(wire_decode_state_begin(body, len, &sb2), WIRE_OK);
	assert_int_equal(sb2.min_applied_index, 42);
	assert_int_equal(sb2.flags, WIRE_STATE_LEADER);
	wire_buf_reset(&b);

	l.session = 99;
	l.node_id = 3;
	l.identity = str("5102b113-ffd6-4961-b863-092734dd3361");
	l.applied_index = 1000;
	l.last_position = 777;
	l.n_files = 3;
	l.files = files;
	assert_int_equal(wire_encode_state_listing(&b, 8, &l), 0);
	body = only_body(&b, WIRE_STATE_LISTING, 8, &len);
	assert_int_equal(wire_decode_state_listing(body, len, &l2), WIRE_OK);
	assert_int_equal(l2.session, 99);
	assert_int_equal(l2.node_id, 3);
	assert_wire_bytes(l2.identity, l.identity);
	assert_int_equal(l2.applied_index, 1000);
	assert_int_equal(l2.last_position, 777);
	assert_int_equal(l2.n_files, 3);
	for (k = 0; k < 3; k++) {
		assert_wire_bytes(l2.files[k].name, files[k].name);
		assert_int_equal(l2.files[k].size, files[k].size);
	}
	wire_state_listing_close(&l2);
	assert_null(l2.files);
	wire_buf_reset(&b);

	assert_int_equal(wire_encode_state_chunk(&b, 9, &ch), 0);
	body = only_body(&b, WIRE_STATE_CHUNK, 9, &len);
	assert_int_equal(len, 24);
	assert_int_equal(wire_decode_state_chunk(body, len, &ch2), WIRE_OK);
	assert_int_equal(ch2.session, ch.session);
	assert_int_equal(ch2.file, 2);
	assert_int_equal(ch2.offset, 1ull << 40);
	assert_int_equal(ch2.length, WIRE_STATE_CHUNK_BYTES_MAX);
	wire_buf_reset(&b);

	assert_int_equal(
		wire_encode_state_data(&b, 10, 0xdeadbeef, str("chunk bytes")),
		0);
	body = only_body(&b, WIRE_STATE_DATA, 10, &len);
	assert_int_equal(wire_decode_state_data(body, len, &crc, &data),
			 WIRE_OK);
	assert_int_equal(crc, 0xdeadbeef);
	assert_wire_bytes(data, str("chunk bytes"));
	wire_buf_reset(&b);

	assert_int_equal(wire_encode_state_end(&b, 11, 99), 0);
	body = only_body(&b, WIRE_STATE_END, 11, &len);
	assert_int_equal(wire_decode_state_end(body, len, &session), WIRE_OK);
	assert_int_equal(session, 99);
	wire_buf_reset(&b);

	assert_int_equal(wire_encode_state_ended(&b, 12), 0);
	body = only_body(&b, WIRE_STATE_ENDED, 12, &len);
	assert_int_equal(len, 0);
	assert_int_equal(wire_decode_state_ended(body, len), WIRE_OK);
	assert_int_equal(wire_decode_state_ended(body, 1),
			 WIRE_DECODE_MALFORMED);
	wire_buf_close(&b);

	assert_string_equal(wire_strerror(WIRE_EBEHIND),
			    "node has not applied the index asked for");
	assert_string_equal(wire_strerror(WIRE_ETRANSFER_GONE),
			    "copy session expired or unknown");
}

static void state_listing_count_is_checked_before_allocating(void **state)
{
	struct wire_state_listing l;
	struct tb t;

	(void)state;
	/* A count the remaining bytes cannot hold: refused with no
	 * allocation. */
	memset(&t, 0, sizeof t);
	tb_u64(&t, 1);
	tb_u64(&t, 1);
	tb_str16(&t, "id");
	tb_u64(&t, 5);
	tb_u64(&t, 5);
	tb_u32(&t, WIRE_STATE_FILES_MAX);
	tb_str16(&t, "a");
	tb_u64(&t, 1);
	count_allocs(-1);
	assert_int_equal(wire_decode_state_listing(t.p, t.len, &l),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(counted_allocs(), 0);
	tb_free(&t);

	/* Over the maximum, even with the bytes there. */
	memset(&t, 0, sizeof t);
	tb_u64(&t, 1);
	tb_u64(&t, 1);
	tb_str16(&t, "");
	tb_u64(&t, 5);
	tb_u64(&t, 5);
	tb_u32(&t, WIRE_STATE_FILES_MAX + 1);
	tb_fill(&t, 'x', 11 * ((size_t)WIRE_STATE_FILES_MAX + 1));
	count_allocs(-1);
	assert_int_equal(wire_decode_state_listing(t.p, t.len, &l),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(counted_allocs(), 0);
	tb_free(&t);

	/* Out of memory for the array leaves nothing. */
	memset(&t, 0, sizeof t);
	tb_u64(&t, 1);
	tb_u64(&t, 1);
	tb_str16(&t, "");
	tb_u64(&t, 5);
	tb_u64(&t, 5);
	tb_u32(&t, 1);
	tb_str16(&t, "a");
	tb_u64(&t, 1);
	count_allocs(0);
	assert_int_equal(wire_decode_state_listing(t.p, t.len, &l),
			 WIRE_DECODE_NOMEM);
	counted_allocs();
	assert_null(l.files);
	assert_int_equal(l.n_files, 0);
	tb_free(&t);
}

static void state_file_names_that_leave_the_directory_are_rejected(void **state)
{
	static const char *const bad[] = { "", ".", "..", "../x", "a/b", "/a" };
	struct wire_state_file f;
	struct wire_state_listing l = { 0 };
	struct wire_buf b;
	size_t k;

	(void)state;
	wire_buf_init(&b);
	l.session = 1;
	l.n_files = 1;
	l.files = &f;
	f.size = 1;
	for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		struct wire_state_listing l2;
		struct tb t;

		f.name = str(bad[k]);
		assert_false(wire_state_name_valid(f.name));
		assert_int_equal(wire_encode_state_listing(&b, 1, &l),
				 WIRE_ENCODE_INVALID);
		assert_int_equal(b.len, 0);
		memset(&t, 0, sizeof t);
		tb_u64(&t, 1);
		tb_u64(&t, 1);
		tb_str16(&t, "");
		tb_u64(&t, 0);
		tb_u64(&t, 0);
		tb_u32(&t, 1);
		tb_str16(&t, bad[k]);
		tb_u64(&t, 1);
		assert_int_equal(wire_decode_state_listing(t.p, t.len, &l2),
				 WIRE_DECODE_MALFORMED);
		tb_free(&t);
	}
	/* A NUL inside a name too. */
	f.name = bytes("a\0b", 3);
	assert_false(wire_state_name_valid(f.name));
	f.name = str("000001.sst");
	assert_true(wire_state_name_valid(f.name));
	/* Session 0 names nothing. */
	l.session = 0;
	assert_int_equal(wire_encode_state_listing(&b, 1, &l),
			 WIRE_ENCODE_INVALID);
	wire_buf_close(&b);
}

static void state_chunk_and_data_sizes_are_bounded(void **state)
{
	struct wire_state_chunk ch = { 1, 0, 0, 0 };
	struct wire_state_begin sb = { 0, 0x80 };
	struct wire_bytes data;
	struct wire_buf b;
	uint32_t crc;
	struct tb t;

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_state_chunk(&b, 1, &ch),
			 WIRE_ENCODE_INVALID);
	ch.length = WIRE_STATE_CHUNK_BYTES_MAX + 1;
	assert_int_equal(wire_encode_state_chunk(&b, 1, &ch),
			 WIRE_ENCODE_INVALID);
	assert_int_equal(wire_encode_state_begin(&b, 1, &sb),
			 WIRE_ENCODE_INVALID);
	assert_int_equal(b.len, 0);

	memset(&t, 0, sizeof t);
	tb_u64(&t, 1);
	tb_u32(&t, 0);
	tb_u64(&t, 0);
	tb_u32(&t, WIRE_STATE_CHUNK_BYTES_MAX + 1);
	assert_int_equal(wire_decode_state_chunk(t.p, t.len, &ch),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
	memset(&t, 0, sizeof t);
	tb_u64(&t, 0);
	tb_u8(&t, 2); /* an unknown flag */
	assert_int_equal(wire_decode_state_begin(t.p, t.len, &sb),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);

	/* STATE_DATA over one chunk: neither encoded nor decoded. */
	{
		uint8_t *big = calloc(1, WIRE_STATE_CHUNK_BYTES_MAX + 1);

		assert_non_null(big);
		assert_int_equal(
			wire_encode_state_data(
				&b, 1, 0,
				bytes(big, WIRE_STATE_CHUNK_BYTES_MAX + 1)),
			WIRE_ENCODE_TOO_LARGE);
		memset(&t, 0, sizeof t);
		tb_u32(&t, 0);
		tb_blob32(&t, big, WIRE_STATE_CHUNK_BYTES_MAX + 1);
		assert_int_equal(
			wire_decode_state_data(t.p, t.len, &crc, &data),
			WIRE_DECODE_MALFORMED);
		tb_free(&t);
		free(big);
	}
	/* A blob length past the body. */
	memset(&t, 0, sizeof t);
	tb_u32(&t, 0);
	tb_u32(&t, 10);
	tb_raw(&t, "abc", 3);
	assert_int_equal(wire_decode_state_data(t.p, t.len, &crc, &data),
			 WIRE_DECODE_MALFORMED);
	tb_free(&t);
	wire_buf_close(&b);
}

static const struct CMUnitTest codec_tests[] = {
	cmocka_unit_test(checkpoint_and_snapshot_messages_round_trip),
	cmocka_unit_test(
		checkpoint_and_snapshot_encoders_refuse_invalid_fields),
	cmocka_unit_test(checkpoint_and_snapshot_decoders_reject_bad_fields),
	cmocka_unit_test(header_is_little_endian_at_its_offsets),
	cmocka_unit_test(append_round_trips_every_field),
	cmocka_unit_test(smallest_append_round_trips),
	cmocka_unit_test(append_ok_round_trips),
	cmocka_unit_test(read_stream_round_trips),
	cmocka_unit_test(read_all_round_trips_with_and_without_filters),
	cmocka_unit_test(events_round_trip_every_field),
	cmocka_unit_test(head_and_head_ok_round_trip),
	cmocka_unit_test(status_and_status_ok_round_trip),
	cmocka_unit_test(error_round_trips),
	cmocka_unit_test(encodings_match_the_documented_layout),
	cmocka_unit_test(
		type_names_cover_every_type_and_requests_have_the_high_bit_clear),
	cmocka_unit_test(strerror_has_a_message_for_every_code),
	cmocka_unit_test(subscription_messages_round_trip_every_field),
	cmocka_unit_test(subscription_bodies_match_the_documented_layout),
	cmocka_unit_test(state_copy_messages_round_trip_every_field),
};

static const struct CMUnitTest malformed_tests[] = {
	cmocka_unit_test(every_truncation_of_every_message_is_rejected),
	cmocka_unit_test(trailing_bytes_are_rejected_for_every_message),
	cmocka_unit_test(peek_needs_more_until_the_whole_frame_is_there),
	cmocka_unit_test(
		peek_rejects_a_length_over_the_maximum_from_the_header_alone),
	cmocka_unit_test(peek_rejects_nonzero_flags),
	cmocka_unit_test(huge_part_counts_are_rejected_without_allocating),
	cmocka_unit_test(huge_event_counts_are_rejected_without_allocating),
	cmocka_unit_test(huge_counts_in_replies_are_rejected_fast),
	cmocka_unit_test(part_count_limit_is_accepted_and_one_more_rejected),
	cmocka_unit_test(unknown_enum_values_are_rejected),
	cmocka_unit_test(zero_counts_are_rejected),
	cmocka_unit_test(append_ok_with_more_parts_than_room_is_rejected),
	cmocka_unit_test(status_ok_member_limits_are_enforced),
	cmocka_unit_test(error_strings_over_their_maximum_are_rejected),
	cmocka_unit_test(status_request_with_a_body_is_rejected),
	cmocka_unit_test(length_fields_past_the_body_are_rejected),
	cmocka_unit_test(append_decode_out_of_memory_leaves_nothing),
	cmocka_unit_test(subscription_enums_and_zero_credit_are_rejected),
	cmocka_unit_test(
		subscription_strings_and_counts_over_their_limits_are_refused),
	cmocka_unit_test(state_listing_count_is_checked_before_allocating),
	cmocka_unit_test(
		state_file_names_that_leave_the_directory_are_rejected),
	cmocka_unit_test(state_chunk_and_data_sizes_are_bounded),
};

static const struct CMUnitTest events_tests[] = {
	cmocka_unit_test(events_writer_stops_a_page_at_the_byte_limit),
	cmocka_unit_test(events_page_follows_other_frames_in_the_buffer),
	cmocka_unit_test(
		events_reader_rejects_a_count_that_disagrees_with_the_body),
	cmocka_unit_test(events_writer_refuses_an_event_past_the_frame_limit),
	cmocka_unit_test(events_writer_out_of_memory_leaves_the_page_intact),
};

static const struct CMUnitTest buf_tests[] = {
	cmocka_unit_test(buf_consume_drops_the_written_prefix),
	cmocka_unit_test(buf_reset_keeps_the_memory),
	cmocka_unit_test(error_frame_truncates_a_long_message),
	cmocka_unit_test(encoders_refuse_what_decoders_reject),
	cmocka_unit_test(append_over_the_body_maximum_is_refused),
	cmocka_unit_test(encoders_out_of_memory_leave_the_buffer_unchanged),
};

int main(int argc, char **argv)
{
	const char *group = argc > 1 ? argv[1] : NULL;
	bool ran = false;
	int failed = 0;

	allocs_to_pass = -1;
	if (group == NULL || strcmp(group, "codec") == 0) {
		ran = true;
		failed += cmocka_run_group_tests_name("codec", codec_tests,
						      NULL, NULL);
	}
	if (group == NULL || strcmp(group, "malformed") == 0) {
		ran = true;
		failed += cmocka_run_group_tests_name(
			"malformed", malformed_tests, NULL, NULL);
	}
	if (group == NULL || strcmp(group, "events") == 0) {
		ran = true;
		failed += cmocka_run_group_tests_name("events", events_tests,
						      NULL, NULL);
	}
	if (group == NULL || strcmp(group, "buf") == 0) {
		ran = true;
		failed += cmocka_run_group_tests_name("buf", buf_tests, NULL,
						      NULL);
	}
	if (!ran) {
		fprintf(stderr, "usage: %s [codec|malformed|events|buf]\n",
			argv[0]);
		return 2;
	}
	return failed != 0;
}
