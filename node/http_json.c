/* http_json: see http_json.h.
 *
 * A body is parsed with jansson under a tree budget, then walked twice:
 * the first walk checks its shape and measures what must be kept, the
 * second copies names, types and the compact JSON text of every data and
 * metadata value into one arena and points the transactions at it. The
 * tree is freed before returning, so a parsed body costs about its own
 * size however long the append then waits for Raft. */
#include "http_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uuid.h"

/* How every kept value is written: compact, any JSON value at top level. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

/* ------------------------------------------------------------------------
 * Allocation accounting
 * ------------------------------------------------------------------------ */

/* Each block carries its size in front, so that free can count it. */
struct alloc_head {
	size_t size;
	size_t pad; /* keeps the payload 16-byte aligned */
};

static size_t tree_bytes;  /* live bytes allocated while budgeted */
static bool budget_on;     /* a body is being parsed */
static bool budget_broken; /* the parse asked for more than allowed */
static bool alloc_failed;  /* an allocation failed since last cleared:
			    * jansson does not always say so itself */

static void *json_alloc(size_t size)
{
	struct alloc_head *h;

	if (budget_on) {
		if (size > HTTP_JSON_TREE_BYTES_MAX - tree_bytes) {
			budget_broken = true;
			alloc_failed = true;
			return NULL;
		}
	}
	if (size > SIZE_MAX - sizeof *h) {
		alloc_failed = true;
		return NULL;
	}
	h = malloc(sizeof *h + size);
	if (h == NULL) {
		alloc_failed = true;
		return NULL;
	}
	h->size = budget_on ? size : 0;
	tree_bytes += h->size;
	return h + 1;
}

static void json_release(void *p)
{
	struct alloc_head *h;

	if (p == NULL)
		return;
	h = (struct alloc_head *)p - 1;
	tree_bytes -= h->size;
	free(h);
}

void http_json_init(void)
{
	json_set_alloc_funcs(json_alloc, json_release);
}

const char *http_json_code(int code)
{
	switch (code) {
#define HTTP_JSON_ERROR_CASE(name, num, text) \
	case name:                            \
		return text;
		HTTP_JSON_ERRORS(HTTP_JSON_ERROR_CASE)
#undef HTTP_JSON_ERROR_CASE
	}
	return "internal";
}

/* Parses @body as one JSON value under the tree budget. Returns the tree or
 * NULL with the code in *code and a message in @err. */
static json_t *load_budgeted(const char *body, size_t len, int *code, char *err,
			     size_t err_len)
{
	json_error_t je;
	json_t *root;

	budget_on = true;
	budget_broken = false;
	alloc_failed = false;
	root = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
			  &je);
	budget_on = false;
	if (root != NULL)
		return root;
	if (budget_broken) {
		*code = HTTP_JSON_TOO_LARGE;
		snprintf(err, err_len,
			 "the body's JSON needs more than %u MiB to parse",
			 HTTP_JSON_TREE_BYTES_MAX >> 20);
	} else if (alloc_failed) {
		*code = HTTP_JSON_NOMEM;
		snprintf(err, err_len, "out of memory parsing the body");
	} else {
		*code = HTTP_JSON_MALFORMED;
		snprintf(err, err_len, "line %d column %d: %s", je.line,
			 je.column, je.text);
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Walking a body
 * ------------------------------------------------------------------------ */

struct walk {
	bool fill;           /* second pass: copy into the body */
	struct http_body *b; /* filled on the second pass */
	uint32_t n_batches;  /* counted so far */
	size_t n_parts;      /* counted so far */
	size_t n_events;     /* counted so far */
	size_t arena_len;    /* bytes of the arena used so far */
	int code;            /* the first error */
	char *err;           /* borrowed: the caller's message buffer */
	size_t err_len;
};

static int fail(struct walk *w, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct walk *w, int code, const char *fmt, ...)
{
	va_list ap;

	w->code = code;
	va_start(ap, fmt);
	vsnprintf(w->err, w->err_len, fmt, ap);
	va_end(ap);
	return -1;
}

/* Keeps @len bytes of @s; returns where they are on the fill pass. */
static const char *keep(struct walk *w, const char *s, size_t len)
{
	char *p = NULL;

	if (w->fill && len > 0) {
		p = w->b->arena + w->arena_len;
		memcpy(p, s, len);
	}
	w->arena_len += len;
	return p;
}

/* Keeps the compact JSON text of @v. */
static int keep_json(struct walk *w, const json_t *v, const void **out,
		     uint32_t *out_len)
{
	size_t n = json_dumpb(v, NULL, 0, DUMP_FLAGS);

	if (n == 0)
		return fail(w, HTTP_JSON_NOMEM, "cannot encode a value");
	if (n > UINT32_MAX)
		return fail(w, HTTP_JSON_TOO_LARGE, "a value is too large");
	if (w->fill) {
		char *p = w->b->arena + w->arena_len;

		if (json_dumpb(v, p, n, DUMP_FLAGS) != n)
			return fail(w, HTTP_JSON_NOMEM,
				    "cannot encode a value");
		*out = p;
		*out_len = (uint32_t)n;
	}
	w->arena_len += n;
	if (w->arena_len > HTTP_JSON_KEPT_BYTES_MAX)
		return fail(w, HTTP_JSON_TOO_LARGE,
			    "the body's events take more than %u MiB",
			    HTTP_JSON_KEPT_BYTES_MAX >> 20);
	return 0;
}

static int walk_event(struct walk *w, json_t *ev, size_t k)
{
	struct store_event *e = w->fill ? &w->b->events[w->n_events] : NULL;
	const char *key;
	json_t *v;

	if (!json_is_object(ev))
		return fail(w, HTTP_JSON_INVALID, "event %zu is not an object",
			    k);
	if (w->n_events >= HTTP_EVENTS_MAX)
		return fail(w, HTTP_JSON_TOO_LARGE,
			    "more than %u events in one request",
			    HTTP_EVENTS_MAX);
	if (w->fill) {
		memset(e, 0, sizeof *e);
		uuid_random(e->id);
	}
	json_object_foreach(ev, key, v)
	{
		if (strcmp(key, "type") == 0) {
			size_t len = json_string_length(v);

			if (!json_is_string(v) || len == 0)
				return fail(w, HTTP_JSON_INVALID,
					    "event %zu: \"type\" must be a "
					    "non-empty string",
					    k);
			if (len > STORE_EVENT_TYPE_MAX)
				return fail(w, HTTP_JSON_INVALID,
					    "event %zu: \"type\" is longer "
					    "than %u bytes",
					    k, STORE_EVENT_TYPE_MAX);
			if (w->fill) {
				e->type = keep(w, json_string_value(v), len);
				e->type_len = (uint32_t)len;
			} else {
				w->arena_len += len;
			}
		} else if (strcmp(key, "data") == 0) {
			if (keep_json(w, v, e ? &e->data : NULL,
				      e ? &e->data_len : NULL) != 0)
				return -1;
		} else if (strcmp(key, "metadata") == 0) {
			if (keep_json(w, v, e ? &e->metadata : NULL,
				      e ? &e->metadata_len : NULL) != 0)
				return -1;
		} else if (strcmp(key, "id") == 0) {
			uint8_t id[16];

			if (!json_is_string(v) ||
			    uuid_parse(json_string_value(v),
				       json_string_length(v), id) != 0)
				return fail(w, HTTP_JSON_INVALID,
					    "event %zu: \"id\" must be a UUID",
					    k);
			if (w->fill)
				memcpy(e->id, id, sizeof id);
		} else if (strcmp(key, "schema_version") == 0) {
			json_int_t sv = json_integer_value(v);

			if (!json_is_integer(v) || sv < 0 || sv > UINT16_MAX)
				return fail(w, HTTP_JSON_INVALID,
					    "event %zu: \"schema_version\" "
					    "must be an integer 0..65535",
					    k);
			if (w->fill)
				e->schema_version = (uint16_t)sv;
		} else if (strcmp(key, "event_time_us") == 0) {
			if (!json_is_integer(v))
				return fail(w, HTTP_JSON_INVALID,
					    "event %zu: \"event_time_us\" "
					    "must be an integer",
					    k);
			if (w->fill)
				e->event_time_us = json_integer_value(v);
		} else {
			return fail(w, HTTP_JSON_INVALID,
				    "event %zu: unknown field \"%s\"", k, key);
		}
	}
	if (json_object_get(ev, "type") == NULL)
		return fail(w, HTTP_JSON_INVALID, "event %zu has no \"type\"",
			    k);
	w->n_events++;
	return 0;
}

/* Walks an array of events (or one event object) into one part. */
static int walk_events(struct walk *w, json_t *events, size_t limit)
{
	size_t i;

	if (json_is_object(events))
		return walk_event(w, events, 0);
	if (!json_is_array(events) || json_array_size(events) == 0)
		return fail(w, HTTP_JSON_INVALID,
			    "events must be a non-empty array of objects");
	if (json_array_size(events) > limit - w->n_events)
		return fail(w, HTTP_JSON_TOO_LARGE,
			    "more than %zu events in one request", limit);
	for (i = 0; i < json_array_size(events); i++) {
		if (walk_event(w, json_array_get(events, i), i) != 0)
			return -1;
	}
	return 0;
}

/* Keeps a stream name and starts a part for it. */
static int walk_part(struct walk *w, const char *stream, size_t len,
		     json_t *events)
{
	struct store_part *p = w->fill ? &w->b->parts[w->n_parts] : NULL;
	size_t first = w->n_events;

	if (!store_stream_name_valid(stream, len))
		return fail(w, HTTP_JSON_INVALID_STREAM,
			    "invalid stream name (1..%u bytes of UTF-8, no "
			    "control characters)",
			    STORE_STREAM_NAME_MAX);
	if (w->fill) {
		memset(p, 0, sizeof *p);
		p->stream = keep(w, stream, len);
		p->stream_len = (uint32_t)len;
		p->expect.kind = STORE_EXPECT_ANY;
	} else {
		w->arena_len += len;
	}
	if (walk_events(w, events, HTTP_EVENTS_MAX) != 0)
		return -1;
	if (w->fill) {
		p->events = &w->b->events[first];
		p->n_events = (uint32_t)(w->n_events - first);
	}
	w->n_parts++;
	return 0;
}

/* Starts a batch whose parts follow. */
static struct http_batch *begin_batch(struct walk *w, uint64_t seq)
{
	struct http_batch *bt = NULL;

	if (w->fill) {
		bt = &w->b->batches[w->n_batches];
		memset(bt, 0, sizeof *bt);
		bt->seq = seq;
		bt->txn.parts = &w->b->parts[w->n_parts];
		if (w->b->has_client) {
			bt->txn.has_client = true;
			memcpy(bt->txn.client_id, w->b->client_id, 16);
			bt->txn.client_seq = seq;
		}
	}
	return bt;
}

static void end_batch(struct walk *w, struct http_batch *bt, size_t first)
{
	if (bt != NULL)
		bt->txn.n_parts = (uint32_t)(w->n_parts - first);
	w->n_batches++;
}

struct append_args {
	const char *stream;
	size_t stream_len;
};

static int walk_append(struct walk *w, json_t *root, const void *arg)
{
	const struct append_args *a = arg;
	struct http_batch *bt = begin_batch(w, 0);
	size_t first = w->n_parts;

	if (walk_part(w, a->stream, a->stream_len, root) != 0)
		return -1;
	end_batch(w, bt, first);
	return 0;
}

static int walk_sync(struct walk *w, json_t *root, const void *arg)
{
	json_t *batches;
	json_t *id;
	uint64_t last_seq = 0;
	const char *key;
	json_t *v;
	size_t i;

	(void)arg;
	if (!json_is_object(root))
		return fail(w, HTTP_JSON_INVALID,
			    "the body must be an object with \"client_id\" "
			    "and \"batches\"");
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "client_id") != 0 &&
		    strcmp(key, "batches") != 0)
			return fail(w, HTTP_JSON_INVALID,
				    "unknown field \"%s\"", key);
	}
	id = json_object_get(root, "client_id");
	if (!json_is_string(id) ||
	    uuid_parse(json_string_value(id), json_string_length(id),
		       w->fill ? w->b->client_id : (uint8_t[16]){ 0 }) != 0)
		return fail(w, HTTP_JSON_INVALID,
			    "\"client_id\" must be a UUID");
	if (w->fill)
		w->b->has_client = true;
	batches = json_object_get(root, "batches");
	if (!json_is_array(batches))
		return fail(w, HTTP_JSON_INVALID,
			    "\"batches\" must be an array");
	if (json_array_size(batches) > HTTP_SYNC_BATCHES_MAX)
		return fail(w, HTTP_JSON_TOO_LARGE,
			    "more than %u batches in one request",
			    HTTP_SYNC_BATCHES_MAX);
	for (i = 0; i < json_array_size(batches); i++) {
		json_t *batch = json_array_get(batches, i);
		json_t *seq = json_object_get(batch, "seq");
		json_t *streams = json_object_get(batch, "streams");
		struct http_batch *bt;
		size_t first = w->n_parts;
		size_t j;

		if (!json_is_object(batch) || json_object_size(batch) != 2 ||
		    !json_is_integer(seq) || !json_is_array(streams))
			return fail(w, HTTP_JSON_INVALID,
				    "batch %zu must be {\"seq\": N, "
				    "\"streams\": [...]}",
				    i);
		if (json_integer_value(seq) < 1 ||
		    (uint64_t)json_integer_value(seq) <= last_seq)
			return fail(w, HTTP_JSON_INVALID,
				    "batch %zu: seqs must be >= 1 and strictly "
				    "increase",
				    i);
		last_seq = (uint64_t)json_integer_value(seq);
		if (json_array_size(streams) == 0 ||
		    json_array_size(streams) > HTTP_SYNC_STREAMS_MAX)
			return fail(w, HTTP_JSON_INVALID,
				    "batch %zu: 1..%u streams", i,
				    HTTP_SYNC_STREAMS_MAX);
		bt = begin_batch(w, last_seq);
		for (j = 0; j < json_array_size(streams); j++) {
			json_t *s = json_array_get(streams, j);
			json_t *name = json_object_get(s, "stream");
			json_t *events = json_object_get(s, "events");

			if (!json_is_object(s) || json_object_size(s) != 2 ||
			    !json_is_string(name) || events == NULL)
				return fail(w, HTTP_JSON_INVALID,
					    "batch %zu stream %zu must be "
					    "{\"stream\": S, \"events\": "
					    "[...]}",
					    i, j);
			if (walk_part(w, json_string_value(name),
				      json_string_length(name), events) != 0)
				return -1;
		}
		end_batch(w, bt, first);
	}
	return 0;
}

typedef int (*walk_fn)(struct walk *w, json_t *root, const void *arg);

static int parse(const char *body, size_t len, walk_fn fn, const void *arg,
		 struct http_body *b, char *err, size_t err_len)
{
	struct walk w;
	json_t *root;
	int code = 0;

	memset(b, 0, sizeof *b);
	err[0] = '\0';
	root = load_budgeted(body, len, &code, err, err_len);
	if (root == NULL)
		return code;

	memset(&w, 0, sizeof w);
	w.b = b;
	w.err = err;
	w.err_len = err_len;
	if (fn(&w, root, arg) != 0)
		goto err_after_load;

	b->batches = calloc(w.n_batches ? w.n_batches : 1, sizeof *b->batches);
	b->parts = calloc(w.n_parts ? w.n_parts : 1, sizeof *b->parts);
	b->events = calloc(w.n_events ? w.n_events : 1, sizeof *b->events);
	b->arena = malloc(w.arena_len ? w.arena_len : 1);
	if (b->batches == NULL || b->parts == NULL || b->events == NULL ||
	    b->arena == NULL) {
		fail(&w, HTTP_JSON_NOMEM, "out of memory");
		goto err_after_alloc;
	}
	w.fill = true;
	w.n_batches = 0;
	w.n_parts = 0;
	w.n_events = 0;
	w.arena_len = 0;
	if (fn(&w, root, arg) != 0)
		goto err_after_alloc; /* only NOMEM can differ on this pass */
	b->n_batches = w.n_batches;
	b->n_events = w.n_events;
	json_decref(root);
	return 0;

err_after_alloc:
	http_body_free(b);
err_after_load:
	json_decref(root);
	return w.code;
}

int http_parse_append(const char *body, size_t len, const char *stream,
		      size_t stream_len, struct http_body *b, char *err,
		      size_t err_len)
{
	struct append_args a = { stream, stream_len };

	return parse(body, len, walk_append, &a, b, err, err_len);
}

int http_parse_sync(const char *body, size_t len, struct http_body *b,
		    char *err, size_t err_len)
{
	return parse(body, len, walk_sync, NULL, b, err, err_len);
}

void http_body_free(struct http_body *b)
{
	free(b->batches);
	free(b->parts);
	free(b->events);
	free(b->arena);
	memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------------
 * Small parsers
 * ------------------------------------------------------------------------ */

int http_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return -1;
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int http_parse_expected(const char *s, struct store_expect *e)
{
	uint64_t v;

	if (s == NULL)
		return -1;
	memset(e, 0, sizeof *e);
	if (strcmp(s, "any") == 0) {
		e->kind = STORE_EXPECT_ANY;
	} else if (strcmp(s, "no-stream") == 0) {
		e->kind = STORE_EXPECT_NO_STREAM;
	} else if (strcmp(s, "exists") == 0) {
		e->kind = STORE_EXPECT_EXISTS;
	} else if (http_parse_u64(s, &v) == 0 && v <= STORE_VERSION_MAX) {
		e->kind = v == 0 ? STORE_EXPECT_NO_STREAM : STORE_EXPECT_EXACT;
		e->version = v;
	} else {
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Events out
 * ------------------------------------------------------------------------ */

static json_t *base64_string(const void *data, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		"+/";
	const uint8_t *p = data;
	size_t out_len = (len + 2) / 3 * 4;
	char *out = malloc(out_len + 1);
	json_t *s;
	size_t i;
	size_t k = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];

		out[k++] = tab[v >> 18];
		out[k++] = tab[(v >> 12) & 63];
		out[k++] = tab[(v >> 6) & 63];
		out[k++] = tab[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		out[k++] = tab[v >> 18];
		out[k++] = tab[(v >> 12) & 63];
		out[k++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[k++] = '=';
	}
	s = json_stringn_nocheck(out, k);
	free(out);
	return s;
}

/* Sets @key to the JSON in @data, or @key_b64 to its base64 text. */
static int set_payload(json_t *obj, const char *key, const char *key_b64,
		       const void *data, size_t len)
{
	json_t *v;

	if (len == 0)
		return 0;
	/* Embedded only when it reads back as the same JSON: duplicate keys
	 * would be merged, so such data goes out as base64, byte for byte.
	 * The tree budget applies as for bodies: data written through the
	 * binary protocol as a megabyte of tiny values goes out as base64
	 * rather than as a huge tree. */
	alloc_failed = false;
	budget_on = true;
	budget_broken = false;
	v = json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
		       NULL);
	budget_on = false;
	if (v != NULL)
		return json_object_set_new(obj, key, v);
	if (alloc_failed && !budget_broken)
		return -1; /* not "not JSON": no memory to tell */
	v = base64_string(data, len);
	if (v == NULL)
		return -1;
	return json_object_set_new(obj, key_b64, v);
}

/* A string that may not be UTF-8 (written through the binary protocol by a
 * client that broke the rules before the store checked them): replaced
 * rather than emitting invalid JSON. */
static json_t *text(const char *s, size_t len)
{
	json_t *v = json_stringn(s, len);

	return v != NULL ? v : json_string("\xef\xbf\xbd");
}

json_t *http_event_json(const struct store_record *r)
{
	char id[UUID_TEXT_SIZE];
	json_t *o = json_object();
	int rv = 0;

	if (o == NULL)
		return NULL;
	uuid_format(r->id, id);
	rv |= json_object_set_new(o, "position",
				  json_integer((json_int_t)r->position));
	rv |= json_object_set_new(o, "stream", text(r->stream, r->stream_len));
	rv |= json_object_set_new(o, "version",
				  json_integer((json_int_t)r->version));
	rv |= json_object_set_new(o, "id", json_string(id));
	rv |= json_object_set_new(o, "type", text(r->type, r->type_len));
	rv |= json_object_set_new(o, "commit_time_us",
				  json_integer((json_int_t)r->commit_time_us));
	if (r->event_time_us != 0)
		rv |= json_object_set_new(o, "event_time_us",
					  json_integer(r->event_time_us));
	if (r->schema_version != 0)
		rv |= json_object_set_new(o, "schema_version",
					  json_integer(r->schema_version));
	if (r->has_client) {
		uuid_format(r->client_id, id);
		rv |= json_object_set_new(o, "client_id", json_string(id));
		rv |= json_object_set_new(
			o, "client_seq",
			json_integer((json_int_t)r->client_seq));
	}
	rv |= set_payload(o, "data", "data_base64", r->data, r->data_len);
	rv |= set_payload(o, "metadata", "metadata_base64", r->metadata,
			  r->metadata_len);
	if (rv != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int http_json_dump_append(const json_t *v, char **buf, size_t *len, size_t *cap)
{
	size_t n = json_dumpb(v, NULL, 0, DUMP_FLAGS);

	if (n == 0)
		return -1;
	if (n > *cap - *len) {
		size_t want = *cap ? *cap : 4096;
		char *p;

		while (want - *len < n)
			want *= 2;
		p = realloc(*buf, want);
		if (p == NULL)
			return -1;
		*buf = p;
		*cap = want;
	}
	if (json_dumpb(v, *buf + *len, n, DUMP_FLAGS) != n)
		return -1;
	*len += n;
	return 0;
}
