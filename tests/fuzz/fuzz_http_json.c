/* fuzz_http_json: libFuzzer target for the HTTP gateway's JSON codec
 * (node/http_json.c), the first code of cairnd to see the body of a POST
 * /streams/{stream} or POST /sync and the headers it parses by hand. The
 * first byte of an input picks what the rest is fed to:
 *
 *   0  http_parse_append: one byte of stream name length, that many bytes
 *      of stream name, then the body;
 *   1  http_parse_sync: the body;
 *   2  http_parse_expected (and http_parse_u64) on the text up to the
 *      first NUL;
 *   3  http_parse_u64 alone, checked against a reference parser;
 *   4  http_event_json on a record whose stream, type, data and metadata
 *      are cut from the input (any bytes, as the binary protocol may have
 *      stored them).
 *
 * What a parse guarantees, and what is checked here, when it succeeds:
 * counts within HTTP_EVENTS_MAX, HTTP_SYNC_BATCHES_MAX and
 * HTTP_SYNC_STREAMS_MAX; every pointer inside the arrays and the arena the
 * body owns; valid stream names and types of 1..255 bytes; every part
 * with expected version ANY and at least one event; /sync seqs >= 1,
 * strictly increasing, each batch keyed (client_id, seq); an append
 * unkeyed. Every transaction then either passes store_txn_validate or is
 * refused by it with one of the few codes the codec leaves to the store
 * (a type with control characters, data or metadata or a transaction over
 * a storage limit, a stream twice in one /sync batch), never for a shape
 * the codec checks itself. Every event rendered back by http_event_json
 * carries the same stream, type and id, and its data and metadata dump
 * to exactly the texts the parse kept. When a parse fails, the code is one
 * of HTTP_JSON_ERRORS, the message is not empty, and the body is empty.
 * The corpus replay test (replay.c) links this file too. */
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http_json.h"
#include "store.h"
#include "uuid.h"

/* Size of the error buffer handed to the parsers; the gateway's is 512. */
#define ERR_SIZE 512

/* Dumps @v compactly (as the gateway does) into a new buffer; *len is its
 * length. The caller frees it. */
static char *dump(const json_t *v, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	CHECK(http_json_dump_append(v, &buf, len, &cap) == 0,
	      "http_json_dump_append failed");
	return buf;
}

/* The value @key of @o must be the JSON text [text, text+len): present
 * when len > 0 (absent otherwise) and dumping to exactly those bytes. */
static void check_payload(const json_t *o, const char *key, const char *key_b64,
			  const void *text, uint32_t len)
{
	const json_t *v = json_object_get(o, key);
	char *out;
	size_t out_len;

	CHECK(json_object_get(o, key_b64) == NULL,
	      "%s of JSON text rendered as base64", key);
	if (len == 0) {
		CHECK(v == NULL, "empty %s rendered", key);
		return;
	}
	CHECK(v != NULL, "%s missing from the event's JSON", key);
	out = dump(v, &out_len);
	CHECK(out_len == len && memcmp(out, text, len) == 0,
	      "%s kept as '%.*s' renders as '%.*s'", key, (int)len,
	      (const char *)text, (int)out_len, out);
	free(out);
}

/* Renders @e of stream @p as a record and checks its JSON against it. */
static void check_render(const struct store_part *p,
			 const struct store_event *e, const struct store_txn *t)
{
	struct store_record r;
	char id[UUID_TEXT_SIZE];
	json_t *o;
	json_t *v;
	char *out;
	size_t out_len;

	memset(&r, 0, sizeof r);
	r.position = 1;
	r.version = 1;
	r.stream = p->stream;
	r.stream_len = p->stream_len;
	memcpy(r.id, e->id, sizeof r.id);
	r.type = e->type;
	r.type_len = e->type_len;
	r.schema_version = e->schema_version;
	r.event_time_us = e->event_time_us;
	r.commit_time_us = 1;
	r.has_client = t->has_client;
	memcpy(r.client_id, t->client_id, sizeof r.client_id);
	r.client_seq = t->client_seq;
	r.data = e->data;
	r.data_len = e->data_len;
	r.metadata = e->metadata;
	r.metadata_len = e->metadata_len;

	o = http_event_json(&r);
	CHECK(o != NULL, "http_event_json failed");
	v = json_object_get(o, "stream");
	CHECK(json_string_length(v) == p->stream_len &&
		      memcmp(json_string_value(v), p->stream, p->stream_len) ==
			      0,
	      "stream renders differently");
	v = json_object_get(o, "type");
	CHECK(json_string_length(v) == e->type_len &&
		      memcmp(json_string_value(v), e->type, e->type_len) == 0,
	      "type renders differently");
	uuid_format(e->id, id);
	CHECK(json_is_string(json_object_get(o, "id")) &&
		      strcmp(json_string_value(json_object_get(o, "id")), id) ==
			      0,
	      "id renders differently");
	CHECK((json_object_get(o, "client_id") != NULL) == t->has_client,
	      "client_id present iff keyed");
	CHECK((json_object_get(o, "schema_version") != NULL) ==
		      (e->schema_version != 0),
	      "schema_version present iff set");
	CHECK((json_object_get(o, "event_time_us") != NULL) ==
		      (e->event_time_us != 0),
	      "event_time_us present iff set");
	check_payload(o, "data", "data_base64", e->data, e->data_len);
	check_payload(o, "metadata", "metadata_base64", e->metadata,
		      e->metadata_len);
	out = dump(o, &out_len);
	free(out);
	json_decref(o);
}

/* store_txn_validate codes the codec may leave to the store: everything
 * else it checks itself. */
static bool left_to_store(int rv, bool sync)
{
	switch (rv) {
	case STORE_EINVALID_TYPE:
	case STORE_EDATA_TOO_LARGE:
	case STORE_EMETADATA_TOO_LARGE:
	case STORE_ETXN_TOO_LARGE:
		return true;
	case STORE_EDUPLICATE_STREAM:
		return sync;
	default:
		return false;
	}
}

/* Checks a parsed body, then frees it. */
static void check_body(struct http_body *b, bool sync)
{
	/* What the arena's block holds: exactly what was asked for under
	 * ASan, at least that otherwise. */
	size_t arena_len = malloc_usable_size(b->arena);
	uint64_t last_seq = 0;
	size_t parts_seen = 0;
	size_t events_seen = 0;
	uint32_t i;
	uint32_t j;
	uint32_t k;

	CHECK(b->batches != NULL && b->parts != NULL && b->events != NULL &&
		      b->arena != NULL,
	      "a successful parse left an array NULL");
	CHECK(b->has_client == sync, "has_client %d for sync %d", b->has_client,
	      sync);
	CHECK(b->n_events <= HTTP_EVENTS_MAX, "%zu events", b->n_events);
	if (sync)
		CHECK(b->n_batches <= HTTP_SYNC_BATCHES_MAX, "%u batches",
		      b->n_batches);
	else
		CHECK(b->n_batches == 1, "append with %u batches",
		      b->n_batches);
	for (i = 0; i < b->n_batches; i++) {
		const struct http_batch *bt = &b->batches[i];
		const struct store_txn *t = &bt->txn;
		char errmsg[STORE_ERRMSG_SIZE];
		int rv;

		if (sync) {
			CHECK(bt->seq >= 1 && bt->seq > last_seq,
			      "batch %u: seq %" PRIu64 " after %" PRIu64, i,
			      bt->seq, last_seq);
			last_seq = bt->seq;
			CHECK(t->has_client && t->client_seq == bt->seq &&
				      memcmp(t->client_id, b->client_id, 16) ==
					      0,
			      "batch %u not keyed by (client_id, seq)", i);
			CHECK(t->n_parts >= 1 &&
				      t->n_parts <= HTTP_SYNC_STREAMS_MAX,
			      "batch %u: %u parts", i, t->n_parts);
		} else {
			CHECK(bt->seq == 0 && !t->has_client,
			      "append batch keyed");
			CHECK(t->n_parts == 1, "append with %u parts",
			      t->n_parts);
		}
		CHECK(t->parts == &b->parts[parts_seen],
		      "batch %u: parts not contiguous", i);
		for (j = 0; j < t->n_parts; j++) {
			const struct store_part *p = &t->parts[j];

			CHECK(store_stream_name_valid(p->stream, p->stream_len),
			      "batch %u part %u: invalid stream name", i, j);
			CHECK(fuzz_inside(p->stream, p->stream_len, b->arena,
					  arena_len),
			      "batch %u part %u: stream outside the arena", i,
			      j);
			CHECK(p->expect.kind == STORE_EXPECT_ANY &&
				      p->expect.version == 0,
			      "batch %u part %u: expect %u", i, j,
			      p->expect.kind);
			CHECK(p->n_events >= 1, "batch %u part %u: no events",
			      i, j);
			CHECK(p->events == &b->events[events_seen],
			      "batch %u part %u: events not contiguous", i, j);
			events_seen += p->n_events;
			CHECK(events_seen <= b->n_events,
			      "parts hold more events than the body");
			for (k = 0; k < p->n_events; k++) {
				const struct store_event *e = &p->events[k];

				CHECK(e->type_len >= 1 &&
					      e->type_len <=
						      STORE_EVENT_TYPE_MAX,
				      "type_len %u", e->type_len);
				CHECK(fuzz_inside(e->type, e->type_len,
						  b->arena, arena_len),
				      "type outside the arena");
				CHECK((e->data == NULL) == (e->data_len == 0),
				      "data %p of %u bytes", e->data,
				      e->data_len);
				CHECK(fuzz_inside(e->data, e->data_len,
						  b->arena, arena_len),
				      "data outside the arena");
				CHECK((e->metadata == NULL) ==
					      (e->metadata_len == 0),
				      "metadata %p of %u bytes", e->metadata,
				      e->metadata_len);
				CHECK(fuzz_inside(e->metadata, e->metadata_len,
						  b->arena, arena_len),
				      "metadata outside the arena");
			}
		}
		parts_seen += t->n_parts;
		rv = store_txn_validate(t, errmsg);
		CHECK(rv == 0 || left_to_store(rv, sync),
		      "batch %u: store_txn_validate %d (%s): %s", i, rv,
		      store_strerror(rv), errmsg);
		for (j = 0; j < t->n_parts; j++)
			for (k = 0; k < t->parts[j].n_events; k++)
				check_render(&t->parts[j],
					     &t->parts[j].events[k], t);
	}
	CHECK(events_seen == b->n_events, "parts hold %zu of %zu events",
	      events_seen, b->n_events);
	http_body_free(b);
	CHECK(b->batches == NULL && b->n_batches == 0 && b->arena == NULL,
	      "http_body_free left the body set");
}

/* Checks a failed parse: a known code, a message, an empty body. */
static void check_failure(int rv, const char *err, const struct http_body *b)
{
	static const struct http_body empty;

	CHECK(rv > 0, "negative code %d", rv);
	CHECK(strcmp(http_json_code(rv), "internal") != 0,
	      "code %d is not in HTTP_JSON_ERRORS", rv);
	CHECK(memchr(err, '\0', ERR_SIZE) != NULL, "err not terminated");
	CHECK(err[0] != '\0', "empty message for %s", http_json_code(rv));
	CHECK(memcmp(b, &empty, sizeof *b) == 0,
	      "failed parse left the body set");
}

static void fuzz_append(const uint8_t *data, size_t size)
{
	struct http_body b;
	char err[ERR_SIZE];
	size_t stream_len;
	char *stream;
	char *body;
	int rv;

	if (size < 1)
		return;
	stream_len = data[0];
	data++;
	size--;
	if (stream_len > size)
		stream_len = size;
	/* Copies of exactly their size, so ASan sees any read past them. */
	stream = malloc(stream_len ? stream_len : 1);
	body = malloc(size - stream_len ? size - stream_len : 1);
	CHECK(stream != NULL && body != NULL, "out of memory");
	memcpy(stream, data, stream_len);
	memcpy(body, data + stream_len, size - stream_len);
	memset(err, 'x', sizeof err);
	rv = http_parse_append(body, size - stream_len, stream, stream_len, &b,
			       err, sizeof err);
	if (rv != 0) {
		check_failure(rv, err, &b);
		if (!store_stream_name_valid(stream, stream_len))
			CHECK(rv == HTTP_JSON_INVALID_STREAM ||
				      rv == HTTP_JSON_MALFORMED ||
				      rv == HTTP_JSON_TOO_LARGE,
			      "invalid stream name gave %s",
			      http_json_code(rv));
	} else {
		CHECK(store_stream_name_valid(stream, stream_len),
		      "accepted an invalid stream name");
		CHECK(b.parts[0].stream_len == stream_len &&
			      memcmp(b.parts[0].stream, stream, stream_len) ==
				      0,
		      "stream name not kept as given");
		CHECK(b.parts[0].stream != stream,
		      "stream name borrowed, not copied");
		check_body(&b, false);
	}
	free(body);
	free(stream);
}

static void fuzz_sync(const uint8_t *data, size_t size)
{
	struct http_body b;
	char err[ERR_SIZE];
	char *body = malloc(size ? size : 1);
	int rv;

	CHECK(body != NULL, "out of memory");
	memcpy(body, data, size);
	memset(err, 'x', sizeof err);
	rv = http_parse_sync(body, size, &b, err, sizeof err);
	if (rv != 0)
		check_failure(rv, err, &b);
	else
		check_body(&b, true);
	free(body);
}

/* A reference for http_parse_u64: at least one digit, nothing else, and
 * no overflow (checked digit by digit in 128-bit-free arithmetic). */
static bool ref_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		uint64_t hi;

		if (*s < '0' || *s > '9')
			return false;
		hi = v * 10;
		if (v > UINT64_MAX / 10 ||
		    hi > UINT64_MAX - (uint64_t)(*s - '0'))
			return false;
		v = hi + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

/* The text of @data up to its first NUL, in a new string. */
static char *cstr(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t n = nul != NULL ? (size_t)(nul - data) : size;
	char *s = malloc(n + 1);

	CHECK(s != NULL, "out of memory");
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

static void fuzz_u64(const uint8_t *data, size_t size)
{
	char *s = cstr(data, size);
	uint64_t want = 0;
	uint64_t got = 12345;
	bool ok = ref_u64(s, &want);
	int rv = http_parse_u64(s, &got);

	CHECK((rv == 0) == ok, "'%s': http_parse_u64 %d, reference %d", s, rv,
	      ok);
	if (ok)
		CHECK(got == want, "'%s': %" PRIu64 ", want %" PRIu64, s, got,
		      want);
	else
		CHECK(got == 12345, "'%s': output written on failure", s);
	free(s);
}

static void fuzz_expected(const uint8_t *data, size_t size)
{
	char *s = cstr(data, size);
	struct store_expect e;
	uint64_t v = 0;
	bool number = ref_u64(s, &v);
	int rv = http_parse_expected(s, &e);

	if (strcmp(s, "any") == 0) {
		CHECK(rv == 0 && e.kind == STORE_EXPECT_ANY && e.version == 0,
		      "any");
	} else if (strcmp(s, "no-stream") == 0) {
		CHECK(rv == 0 && e.kind == STORE_EXPECT_NO_STREAM &&
			      e.version == 0,
		      "no-stream");
	} else if (strcmp(s, "exists") == 0) {
		CHECK(rv == 0 && e.kind == STORE_EXPECT_EXISTS &&
			      e.version == 0,
		      "exists");
	} else if (number && v <= STORE_VERSION_MAX) {
		CHECK(rv == 0, "'%s' refused", s);
		CHECK(e.version == v, "'%s' gave %" PRIu64, s, e.version);
		CHECK(e.kind == (v == 0 ? STORE_EXPECT_NO_STREAM
					: STORE_EXPECT_EXACT),
		      "'%s' gave kind %u", s, e.kind);
	} else {
		CHECK(rv == -1, "'%s' accepted", s);
	}
	free(s);
}

/* Decodes standard base64 with padding; returns the length or -1. */
static long unbase64(const char *s, size_t len, uint8_t *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqr"
		"stuvwxyz0123456789+/";
	size_t i;
	long n = 0;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		uint32_t v = 0;
		int pad = 0;
		int k;

		for (k = 0; k < 4; k++) {
			const char *c;

			if (s[i + k] == '=' && i + 4 == len && k >= 2) {
				pad++;
				v <<= 6;
				continue;
			}
			if (pad > 0 || s[i + k] == '\0')
				return -1;
			c = strchr(tab, s[i + k]);
			if (c == NULL)
				return -1;
			v = v << 6 | (uint32_t)(c - tab);
		}
		out[n++] = (uint8_t)(v >> 16);
		if (pad < 2)
			out[n++] = (uint8_t)(v >> 8);
		if (pad < 1)
			out[n++] = (uint8_t)v;
	}
	return n;
}

/* @key or @key_b64 of @o must give back [bytes, bytes+len). */
static void check_stored(const json_t *o, const char *key, const char *key_b64,
			 const void *bytes, size_t len)
{
	const json_t *v = json_object_get(o, key);
	const json_t *b64 = json_object_get(o, key_b64);
	uint8_t *out;
	long n;

	if (len == 0) {
		CHECK(v == NULL && b64 == NULL, "empty %s rendered", key);
		return;
	}
	CHECK((v == NULL) != (b64 == NULL), "%s: neither or both forms", key);
	if (v != NULL) {
		json_t *again = json_loadb(bytes, len, JSON_DECODE_ANY, NULL);

		CHECK(again != NULL, "%s embedded but is not JSON", key);
		CHECK(json_equal(again, v), "%s embedded differently", key);
		json_decref(again);
		return;
	}
	CHECK(json_is_string(b64), "%s is not a string", key_b64);
	CHECK(json_string_length(b64) == (len + 2) / 3 * 4,
	      "%s of %zu bytes has %zu characters", key_b64, len,
	      json_string_length(b64));
	out = malloc(len + 3);
	CHECK(out != NULL, "out of memory");
	n = unbase64(json_string_value(b64), json_string_length(b64), out);
	CHECK(n >= 0 && (size_t)n == len && memcmp(out, bytes, len) == 0,
	      "%s does not decode to the stored bytes", key_b64);
	free(out);
}

/* A record of arbitrary bytes: stream and type from the first two bytes'
 * lengths, metadata from the third, data the rest. */
static void fuzz_render(const uint8_t *data, size_t size)
{
	struct store_record r;
	size_t lens[3];
	const uint8_t *p;
	uint8_t *copy;
	json_t *o;
	json_t *again;
	char *out;
	size_t out_len;
	int i;

	if (size < 3)
		return;
	copy = malloc(size);
	CHECK(copy != NULL, "out of memory");
	memcpy(copy, data, size);
	p = copy + 3;
	size -= 3;
	memset(&r, 0, sizeof r);
	for (i = 0; i < 3; i++) {
		lens[i] = copy[i] % 64;
		if (lens[i] > size)
			lens[i] = size;
		size -= lens[i];
	}
	r.position = UINT64_MAX;
	r.version = 7;
	r.stream = (const char *)p;
	r.stream_len = (uint32_t)lens[0];
	r.type = (const char *)p + lens[0];
	r.type_len = (uint32_t)lens[1];
	r.metadata = p + lens[0] + lens[1];
	r.metadata_len = (uint32_t)lens[2];
	r.data = p + lens[0] + lens[1] + lens[2];
	r.data_len = (uint32_t)size;
	r.schema_version = (uint16_t)(copy[0] & 1);
	r.event_time_us = -(int64_t)(copy[1] & 1);
	r.has_client = copy[2] & 1;
	memcpy(r.id, "0123456789abcdef", 16);
	o = http_event_json(&r);
	CHECK(o != NULL, "http_event_json failed");
	check_stored(o, "data", "data_base64", r.data, r.data_len);
	check_stored(o, "metadata", "metadata_base64", r.metadata,
		     r.metadata_len);
	CHECK(json_is_string(json_object_get(o, "stream")) &&
		      json_is_string(json_object_get(o, "type")),
	      "stream or type not a string");
	/* What the gateway sends must be JSON a client can read back (a
	 * name with a NUL byte is sent as \u0000, valid JSON that jansson
	 * reads only when asked to). */
	out = dump(o, &out_len);
	again = json_loadb(out, out_len, JSON_ALLOW_NUL, NULL);
	CHECK(again != NULL, "the event's JSON does not parse: %.*s",
	      (int)out_len, out);
	CHECK(json_equal(again, o), "the event's JSON reads back differently");
	json_decref(again);
	free(out);
	json_decref(o);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;

	if (!ready) {
		http_json_init();
		ready = true;
	}
	if (size < 1)
		return 0;
	switch (data[0] % 5) {
	case 0:
		fuzz_append(data + 1, size - 1);
		break;
	case 1:
		fuzz_sync(data + 1, size - 1);
		break;
	case 2:
		fuzz_expected(data + 1, size - 1);
		fuzz_u64(data + 1, size - 1);
		break;
	case 3:
		fuzz_u64(data + 1, size - 1);
		break;
	default:
		fuzz_render(data + 1, size - 1);
		break;
	}
	return 0;
}
