/* jepsen/workload.c: the workload client of the fault-injection suite. One
 * process runs N worker threads against a Cairn cluster through libcairn
 * while jepsen/run injects faults, and writes the history of every
 * operation (invoke, then ok, fail or info) as JSON lines and as EDN, for
 * jepsen/check and for Elle.
 *
 * Workloads (--workload):
 *   list-append  each operation reads stream k with a linearizable read and
 *                appends one event expecting exactly the length it read:
 *                an Elle list-append transaction [[:r k [..]] [:append k
 *                v]]; a quarter of the operations are read-only
 *                transactions [[:r k [..]]] (leader reads).
 *   retry        appends with a key of our own (writer id, sequence) to a
 *                few streams; after a timeout the same key is resent
 *                through a client seeded with another node, and some
 *                acknowledged appends are resent once more to check that a
 *                retry returns the original position.
 *   log          half the workers append; the other half each read the
 *                global log from one follower (single node, consistency
 *                any), forward from where they stopped.
 *
 * Conventions, as Jepsen's: a read that fails is :fail (reads change
 * nothing); an append whose outcome is unknown is :info and the worker
 * continues as a new process (process + concurrency), so a process never
 * invokes again after :info. Event data is JSON {"k","v","w","s","p"}: the
 * key, the value, the writer id and sequence, and the process, so the
 * checker can tie every event of the final logs back to the history.
 *
 * Used by jepsen/run; nothing else links it. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cairn.h"

/* Nodes a run may have. */
#define WL_NODES_MAX 5

/* Worker threads at most. */
#define WL_WORKERS_MAX 64

/* List-append: keys in use at once, and appends per key before the key is
 * retired for a fresh one (keeps reads short, as Elle's generator does). */
#define WL_KEYS_ACTIVE     6
#define WL_APPENDS_PER_KEY 48
#define WL_KEYS_MAX        4096

/* Retry workload: streams written, sends of one key at most. */
#define WL_RETRY_STREAMS  4
#define WL_RETRY_ATTEMPTS 6

/* Log workload: streams written, events per read page, pages per read. */
#define WL_LOG_STREAMS 4
#define WL_LOG_PAGE    500
#define WL_LOG_PAGES   8

/* Deadlines (milliseconds) of the clients' calls. */
#define WL_DEADLINE_MS        5000
#define WL_RETRY_DEADLINE_MS  1500
#define WL_READER_DEADLINE_MS 2000
#define WL_CONNECT_MS         1000

/* Page size of a stream read, and the longest stream read (a key is
 * retired long before). */
#define WL_STREAM_PAGE 1000
#define WL_STREAM_MAX  100000

enum wl_kind {
	WL_LIST_APPEND = 0,
	WL_RETRY = 1,
	WL_LOG = 2,
};

struct wl_config {
	int kind;                  /* enum wl_kind */
	char *seeds[WL_NODES_MAX]; /* owned: client addresses */
	unsigned n_nodes;          /* entries of seeds */
	unsigned concurrency;      /* worker threads */
	double rate;               /* operations per second, all */
	unsigned time_limit_s;     /* how long to invoke */
	uint64_t seed;             /* of every random choice */
	const char *run_id;        /* borrowed: stream name prefix */
	const char *json_path;     /* borrowed */
	const char *edn_path;      /* borrowed */
};

/* The history: both files, written under one lock, with indexes in the
 * order the lines are written. */
struct wl_history {
	pthread_mutex_t lock; /* guards everything below */
	FILE *json;           /* owned */
	FILE *edn;            /* owned */
	uint64_t next_index;  /* index of the next line */
	struct timespec t0;   /* monotonic start of the run */
};

/* State the list-append workers share. */
struct wl_keys {
	pthread_mutex_t lock;            /* guards everything below */
	uint64_t active[WL_KEYS_ACTIVE]; /* keys in use */
	unsigned writes[WL_KEYS_ACTIVE]; /* appends invoked on each */
	uint64_t next_key;               /* the next fresh key */
	uint64_t next_value;             /* values are unique per run */
};

struct wl_worker {
	struct wl_config *cfg;           /* borrowed */
	struct wl_history *hist;         /* borrowed */
	struct wl_keys *keys;            /* borrowed */
	unsigned index;                  /* 0..concurrency-1 */
	uint64_t process;                /* current Jepsen process */
	uint64_t rng;                    /* xorshift state */
	uint8_t writer[16];              /* writer id of the current process */
	uint64_t next_seq;               /* its next sequence */
	cairn_client *any;               /* owned: all seeds, redirects */
	cairn_client *via[WL_NODES_MAX]; /* owned: seeded with node i first */
	cairn_client *reader;            /* owned: single node (log readers) */
	unsigned reader_node;            /* the node a log reader reads */
	uint64_t cursor;                 /* log reader: next position */
	pthread_t thread;
};

static volatile int stop_flag;

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rng_next(s) % n);
}

static uint64_t now_ns(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - t0->tv_sec) * 1000000000u +
	       (uint64_t)t.tv_nsec - (uint64_t)t0->tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- EDN ---- */

static void edn_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* Writes @v as EDN. Strings become keywords when @keyword is set (the
 * values of :type and :f, and the function of a micro-operation). */
static void edn_value(FILE *f, json_t *v, bool keyword, bool txn)
{
	size_t i;
	const char *k;
	json_t *x;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		bool first = true;
		bool is_txn = false;
		json_t *fv = json_object_get(v, "f");
		if (fv != NULL && json_is_string(fv) &&
		    strcmp(json_string_value(fv), "txn") == 0)
			is_txn = true;
		fputc('{', f);
		json_object_foreach(v, k, x)
		{
			if (!first)
				fputs(", ", f);
			first = false;
			fprintf(f, ":%s ", k);
			edn_value(f, x,
				  strcmp(k, "type") == 0 || strcmp(k, "f") == 0,
				  is_txn && strcmp(k, "value") == 0);
		}
		fputc('}', f);
		break;
	}
	case JSON_ARRAY:
		fputc('[', f);
		json_array_foreach(v, i, x)
		{
			if (i > 0)
				fputc(' ', f);
			/* A transaction is a vector of micro-operations, each
			 * a vector whose first element is a function. */
			if (txn && json_is_array(x)) {
				size_t j;
				json_t *y;
				fputc('[', f);
				json_array_foreach(x, j, y)
				{
					if (j > 0)
						fputc(' ', f);
					edn_value(f, y, j == 0, false);
				}
				fputc(']', f);
			} else {
				edn_value(f, x, false, false);
			}
		}
		fputc(']', f);
		break;
	case JSON_STRING:
		if (keyword)
			fprintf(f, ":%s", json_string_value(v));
		else
			edn_string(f, json_string_value(v));
		break;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(f, "%f", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("true", f);
		break;
	case JSON_FALSE:
		fputs("false", f);
		break;
	case JSON_NULL:
		fputs("nil", f);
		break;
	}
}

/* Records one operation. @value and @extra (may be NULL; its fields are
 * merged in) are borrowed. Returns the time recorded. */
static uint64_t hist_record(struct wl_history *h, const char *type,
			    uint64_t process, const char *f, json_t *value,
			    json_t *extra)
{
	json_t *op = json_object();
	uint64_t t;
	char *line;

	pthread_mutex_lock(&h->lock);
	t = now_ns(&h->t0);
	json_object_set_new(op, "index",
			    json_integer((json_int_t)h->next_index));
	json_object_set_new(op, "time", json_integer((json_int_t)t));
	json_object_set_new(op, "type", json_string(type));
	json_object_set_new(op, "process", json_integer((json_int_t)process));
	json_object_set_new(op, "f", json_string(f));
	json_object_set(op, "value", value != NULL ? value : json_null());
	if (extra != NULL)
		json_object_update(op, extra);
	line = json_dumps(op, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (line != NULL) {
		fprintf(h->json, "%s\n", line);
		free(line);
	}
	edn_value(h->edn, op, false, false);
	fputc('\n', h->edn);
	fflush(h->json);
	fflush(h->edn);
	h->next_index++;
	pthread_mutex_unlock(&h->lock);
	json_decref(op);
	return t;
}

/* ---- helpers ---- */

static void new_process(struct wl_worker *w, bool first)
{
	if (!first)
		w->process += w->cfg->concurrency;
	cairn_uuid(w->writer);
	w->next_seq = 1;
}

/* Errors after which an append certainly did not happen. */
static bool definite_failure(int rv)
{
	return rv == CAIRN_EWRONG_EXPECTED_VERSION || rv == CAIRN_EINVALID ||
	       rv == CAIRN_ETOO_LARGE || rv == CAIRN_EMALFORMED ||
	       rv == CAIRN_EUNKNOWN_TYPE || rv == CAIRN_ESTALE_SEQUENCE ||
	       rv == CAIRN_EARG;
}

static const char *error_name(int rv)
{
	switch (rv) {
	case CAIRN_EWRONG_EXPECTED_VERSION:
		return "conflict";
	case CAIRN_ESTALE_SEQUENCE:
		return "stale-sequence";
	case CAIRN_ETIMEOUT:
		return "timeout";
	case CAIRN_EUNKNOWN_OUTCOME:
		return "unknown-outcome";
	case CAIRN_EUNAVAILABLE:
		return "unavailable";
	case CAIRN_ECONNECT:
		return "connect";
	case CAIRN_ENOT_LEADER:
		return "not-leader";
	case CAIRN_EBUSY:
		return "busy";
	case CAIRN_EINTERNAL:
		return "internal";
	default:
		return cairn_strerror(rv);
	}
}

static json_t *event_data(uint64_t k, uint64_t v, const uint8_t writer[16],
			  uint64_t seq, uint64_t process)
{
	char id[37];
	cairn_uuid_format(writer, id);
	return json_pack("{sI sI ss sI sI}", "k", (json_int_t)k, "v",
			 (json_int_t)v, "w", id, "s", (json_int_t)seq, "p",
			 (json_int_t)process);
}

/* The value of an event written by this workload, or -1. */
static json_int_t event_value(const struct cairn_event *e)
{
	json_t *d = json_loadb(e->data, e->data_len, 0, NULL);
	json_int_t v = -1;
	if (d != NULL) {
		json_t *x = json_object_get(d, "v");
		if (json_is_integer(x))
			v = json_integer_value(x);
		json_decref(d);
	}
	return v;
}

/* Reads a whole stream with @consistency; fills @out with the values. */
static int read_values(cairn_client *c, const char *stream, int consistency,
		       json_t *out, struct cairn_error *err)
{
	struct cairn_read_options ro = { .consistency = consistency,
					 .limit = WL_STREAM_PAGE };
	uint64_t from = 1;

	for (;;) {
		struct cairn_page page;
		int rv = cairn_read_stream(c, stream, from, false, &ro, &page,
					   err);
		if (rv != 0)
			return rv;
		for (size_t i = 0; i < page.n; i++)
			json_array_append_new(
				out,
				json_integer(event_value(&page.events[i])));
		from = page.next;
		bool end = page.end || page.n == 0;
		cairn_page_free(&page);
		if (end || json_array_size(out) > WL_STREAM_MAX)
			return 0;
	}
}

static void stream_name(char *buf, size_t len, const char *prefix,
			const char *run_id, uint64_t k)
{
	snprintf(buf, len, "%s-%s-%" PRIu64, prefix, run_id, k);
}

/* ---- list-append ---- */

static uint64_t pick_key(struct wl_keys *keys, uint64_t *rng, bool write,
			 uint64_t *value)
{
	unsigned slot;
	uint64_t k;

	pthread_mutex_lock(&keys->lock);
	slot = rng_below(rng, WL_KEYS_ACTIVE);
	k = keys->active[slot];
	if (write) {
		*value = keys->next_value++;
		if (++keys->writes[slot] >= WL_APPENDS_PER_KEY) {
			keys->active[slot] = keys->next_key++;
			keys->writes[slot] = 0;
		}
	}
	pthread_mutex_unlock(&keys->lock);
	return k;
}

static void list_append_op(struct wl_worker *w)
{
	bool write = rng_below(&w->rng, 4) != 0;
	uint64_t v = 0;
	uint64_t k = pick_key(w->keys, &w->rng, write, &v);
	char stream[128];
	struct cairn_error err;
	json_t *inv;
	json_t *list = json_array();
	json_t *done;
	json_t *extra;
	int rv;

	stream_name(stream, sizeof stream, "la", w->cfg->run_id, k);
	if (write)
		inv = json_pack("[[s I n] [s I I]]", "r", (json_int_t)k,
				"append", (json_int_t)k, (json_int_t)v);
	else
		inv = json_pack("[[s I n]]", "r", (json_int_t)k);
	hist_record(w->hist, "invoke", w->process, "txn", inv, NULL);

	rv = read_values(w->any, stream, CAIRN_CONSISTENCY_LEADER, list, &err);
	if (rv != 0) {
		extra = json_pack("{ss}", "error", error_name(rv));
		hist_record(w->hist, "fail", w->process, "txn", inv, extra);
		json_decref(extra);
		goto out;
	}
	if (!write) {
		done = json_pack("[[s I O]]", "r", (json_int_t)k, list);
		hist_record(w->hist, "ok", w->process, "txn", done, NULL);
		json_decref(done);
		goto out;
	}

	uint64_t expect = json_array_size(list);
	uint64_t seq = w->next_seq++;
	json_t *data = event_data(k, v, w->writer, seq, w->process);
	char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
	struct cairn_event_in ev = { .type = "ListAppend",
				     .data = text,
				     .data_len = strlen(text) };
	struct cairn_append_part part = { .stream = stream,
					  .expect_kind = CAIRN_EXPECT_EXACT,
					  .expect_version = expect,
					  .events = &ev,
					  .n_events = 1 };
	struct cairn_append_key key = { .has_key = true, .seq = seq };
	struct cairn_part_result res;
	bool dup = false;
	char wid[37];

	memcpy(key.client_id, w->writer, 16);
	cairn_uuid_format(w->writer, wid);
	rv = cairn_append(w->any, &part, 1, &key, &res, &dup, &err);
	done = json_pack("[[s I O] [s I I]]", "r", (json_int_t)k, list,
			 "append", (json_int_t)k, (json_int_t)v);
	if (rv == 0) {
		extra = json_pack("{sI sI ss sI sb}", "position",
				  (json_int_t)res.first_position, "version",
				  (json_int_t)res.first_version, "writer", wid,
				  "seq", (json_int_t)seq, "duplicate", dup);
		hist_record(w->hist, "ok", w->process, "txn", done, extra);
	} else if (definite_failure(rv)) {
		extra = json_pack("{ss ss sI}", "error", error_name(rv),
				  "writer", wid, "seq", (json_int_t)seq);
		hist_record(w->hist, "fail", w->process, "txn", done, extra);
	} else {
		extra = json_pack("{ss ss sI}", "error", error_name(rv),
				  "writer", wid, "seq", (json_int_t)seq);
		hist_record(w->hist, "info", w->process, "txn", done, extra);
		new_process(w, false);
	}
	json_decref(extra);
	json_decref(done);
	free(text);
	json_decref(data);
out:
	json_decref(list);
	json_decref(inv);
}

/* ---- retry storms ---- */

static void retry_op(struct wl_worker *w)
{
	struct wl_config *cfg = w->cfg;
	uint64_t k = rng_below(&w->rng, WL_RETRY_STREAMS);
	uint64_t v;
	uint64_t seq = w->next_seq++;
	char stream[128];
	char wid[37];
	struct cairn_error err;
	json_t *positions = json_array();
	json_t *inv;
	json_t *extra;
	int last_rv = 0;
	int ok_count = 0;
	bool dup_seen = false;
	unsigned attempts = 0;
	unsigned node = rng_below(&w->rng, cfg->n_nodes);

	pthread_mutex_lock(&w->keys->lock);
	v = w->keys->next_value++;
	pthread_mutex_unlock(&w->keys->lock);
	stream_name(stream, sizeof stream, "rt", cfg->run_id, k);
	cairn_uuid_format(w->writer, wid);
	inv = json_pack("{sI sI}", "k", (json_int_t)k, "v", (json_int_t)v);
	hist_record(w->hist, "invoke", w->process, "append", inv, NULL);

	json_t *data = event_data(k, v, w->writer, seq, w->process);
	char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
	uint8_t event_id[16];
	cairn_uuid(event_id);
	struct cairn_event_in ev = { .id = event_id,
				     .type = "RetryAppend",
				     .data = text,
				     .data_len = strlen(text) };
	struct cairn_append_part part = { .stream = stream,
					  .expect_kind = CAIRN_EXPECT_ANY,
					  .events = &ev,
					  .n_events = 1 };
	struct cairn_append_key key = { .has_key = true, .seq = seq };
	memcpy(key.client_id, w->writer, 16);

	/* Send until a definite answer; after an acknowledgement, one more
	 * send through another node in a third of the cases. */
	bool resend_after_ok = rng_below(&w->rng, 3) == 0;
	while (attempts < WL_RETRY_ATTEMPTS && (attempts == 0 || !stop_flag)) {
		struct cairn_part_result res;
		bool dup = false;
		int rv = cairn_append(w->via[node], &part, 1, &key, &res, &dup,
				      &err);
		attempts++;
		node = (node + 1) % cfg->n_nodes;
		if (rv == 0) {
			json_array_append_new(
				positions,
				json_integer((json_int_t)res.first_position));
			ok_count++;
			dup_seen = dup_seen || dup;
			if (ok_count == 1 && resend_after_ok)
				continue;
			last_rv = 0;
			break;
		}
		last_rv = rv;
		if (definite_failure(rv))
			break;
	}
	if (ok_count > 0) {
		extra = json_pack("{sO sI sb sI ss sI}", "position",
				  json_array_get(positions, 0), "positions",
				  (json_int_t)0, "duplicate", dup_seen,
				  "attempts", (json_int_t)attempts, "writer",
				  wid, "seq", (json_int_t)seq);
		json_object_set(extra, "positions", positions);
		hist_record(w->hist, "ok", w->process, "append", inv, extra);
	} else if (definite_failure(last_rv)) {
		extra = json_pack("{ss sI ss sI}", "error", error_name(last_rv),
				  "attempts", (json_int_t)attempts, "writer",
				  wid, "seq", (json_int_t)seq);
		hist_record(w->hist, "fail", w->process, "append", inv, extra);
	} else {
		extra = json_pack("{ss sI ss sI}", "error", error_name(last_rv),
				  "attempts", (json_int_t)attempts, "writer",
				  wid, "seq", (json_int_t)seq);
		hist_record(w->hist, "info", w->process, "append", inv, extra);
		new_process(w, false);
	}
	json_decref(extra);
	free(text);
	json_decref(data);
	json_decref(inv);
	json_decref(positions);
}

/* ---- log: writers and follower readers ---- */

static void log_write_op(struct wl_worker *w)
{
	uint64_t k = rng_below(&w->rng, WL_LOG_STREAMS);
	uint64_t v;
	uint64_t seq = w->next_seq++;
	char stream[128];
	char wid[37];
	struct cairn_error err;
	json_t *inv;
	json_t *extra;
	struct cairn_part_result res;
	bool dup = false;

	pthread_mutex_lock(&w->keys->lock);
	v = w->keys->next_value++;
	pthread_mutex_unlock(&w->keys->lock);
	stream_name(stream, sizeof stream, "lg", w->cfg->run_id, k);
	cairn_uuid_format(w->writer, wid);
	inv = json_pack("{sI sI}", "k", (json_int_t)k, "v", (json_int_t)v);
	hist_record(w->hist, "invoke", w->process, "append", inv, NULL);
	json_t *data = event_data(k, v, w->writer, seq, w->process);
	char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);
	struct cairn_event_in ev = { .type = "LogAppend",
				     .data = text,
				     .data_len = strlen(text) };
	struct cairn_append_part part = { .stream = stream,
					  .expect_kind = CAIRN_EXPECT_ANY,
					  .events = &ev,
					  .n_events = 1 };
	struct cairn_append_key key = { .has_key = true, .seq = seq };
	memcpy(key.client_id, w->writer, 16);
	int rv = cairn_append(w->any, &part, 1, &key, &res, &dup, &err);
	if (rv == 0) {
		extra = json_pack("{sI sb ss sI}", "position",
				  (json_int_t)res.first_position, "duplicate",
				  dup, "writer", wid, "seq", (json_int_t)seq);
		hist_record(w->hist, "ok", w->process, "append", inv, extra);
	} else if (definite_failure(rv)) {
		extra = json_pack("{ss ss sI}", "error", error_name(rv),
				  "writer", wid, "seq", (json_int_t)seq);
		hist_record(w->hist, "fail", w->process, "append", inv, extra);
	} else {
		extra = json_pack("{ss ss sI}", "error", error_name(rv),
				  "writer", wid, "seq", (json_int_t)seq);
		hist_record(w->hist, "info", w->process, "append", inv, extra);
		new_process(w, false);
	}
	json_decref(extra);
	free(text);
	json_decref(data);
	json_decref(inv);
}

static void log_read_op(struct wl_worker *w)
{
	struct cairn_read_options ro = { .consistency = CAIRN_CONSISTENCY_ANY,
					 .limit = WL_LOG_PAGE };
	struct cairn_error err;
	uint64_t from = w->cursor;
	json_t *inv;
	json_t *events = json_array();
	json_t *done;
	bool end = false;
	int rv = 0;

	/* Now and then re-read from further back, to compare again. */
	if (rng_below(&w->rng, 5) == 0)
		from = from > 200 ? from - 200 : 1;
	inv = json_pack("{sI sI sn}", "node", (json_int_t)(w->reader_node + 1),
			"from", (json_int_t)from, "events");
	hist_record(w->hist, "invoke", w->process, "read-all", inv, NULL);
	uint64_t pos = from;
	for (unsigned p = 0; p < WL_LOG_PAGES && !end; p++) {
		struct cairn_page page;
		rv = cairn_read_all(w->reader, pos, NULL, &ro, &page, &err);
		if (rv != 0)
			break;
		for (size_t i = 0; i < page.n; i++) {
			char id[37];
			cairn_uuid_format(page.events[i].id, id);
			json_array_append_new(
				events,
				json_pack("[I s]",
					  (json_int_t)page.events[i].position,
					  id));
		}
		pos = page.next;
		end = page.end;
		cairn_page_free(&page);
	}
	if (rv != 0 && json_array_size(events) == 0) {
		json_t *extra = json_pack("{ss}", "error", error_name(rv));
		hist_record(w->hist, "fail", w->process, "read-all", inv,
			    extra);
		json_decref(extra);
	} else {
		done = json_pack("{sI sI sO sb}", "node",
				 (json_int_t)(w->reader_node + 1), "from",
				 (json_int_t)from, "events", events, "end",
				 end && rv == 0);
		hist_record(w->hist, "ok", w->process, "read-all", done, NULL);
		json_decref(done);
		if (pos > w->cursor)
			w->cursor = pos;
	}
	json_decref(events);
	json_decref(inv);
}

/* ---- workers ---- */

static void *worker_main(void *arg)
{
	struct wl_worker *w = arg;
	struct wl_config *cfg = w->cfg;
	double interval_ms = 1000.0 * cfg->concurrency / cfg->rate;
	bool reader = cfg->kind == WL_LOG && w->index % 2 == 1;

	while (!stop_flag) {
		switch (cfg->kind) {
		case WL_LIST_APPEND:
			list_append_op(w);
			break;
		case WL_RETRY:
			retry_op(w);
			break;
		case WL_LOG:
			if (reader)
				log_read_op(w);
			else
				log_write_op(w);
			break;
		}
		/* Uniform in [0.5, 1.5] times the interval. */
		unsigned ms =
			(unsigned)(interval_ms *
				   (0.5 +
				    (double)rng_below(&w->rng, 1001) / 1000.0));
		while (ms > 0 && !stop_flag) {
			unsigned step = ms > 100 ? 100 : ms;
			sleep_ms(step);
			ms -= step;
		}
	}
	return NULL;
}

static int open_client(const char *seeds, unsigned deadline_ms, bool single,
		       cairn_client **out)
{
	struct cairn_options o = { .deadline_ms = deadline_ms,
				   .connect_timeout_ms = WL_CONNECT_MS,
				   .single_node = single };
	struct cairn_error err;
	int rv = cairn_open(seeds, &o, out, &err);
	if (rv != 0)
		fprintf(stderr, "workload: open %s: %s\n", seeds, err.message);
	return rv;
}

/* The seed list starting at node @first. */
static void seeds_from(const struct wl_config *cfg, unsigned first, char *buf,
		       size_t len)
{
	buf[0] = '\0';
	for (unsigned i = 0; i < cfg->n_nodes; i++) {
		size_t used = strlen(buf);
		snprintf(buf + used, len - used, "%s%s", i > 0 ? "," : "",
			 cfg->seeds[(first + i) % cfg->n_nodes]);
	}
}

static int worker_init(struct wl_worker *w)
{
	const struct wl_config *cfg = w->cfg;
	char seeds[1024];
	unsigned deadline =
		cfg->kind == WL_RETRY ? WL_RETRY_DEADLINE_MS : WL_DEADLINE_MS;

	seeds_from(cfg, w->index % cfg->n_nodes, seeds, sizeof seeds);
	if (open_client(seeds, deadline, false, &w->any) != 0)
		return 1;
	for (unsigned i = 0; i < cfg->n_nodes; i++) {
		seeds_from(cfg, i, seeds, sizeof seeds);
		if (open_client(seeds, deadline, false, &w->via[i]) != 0)
			return 1;
	}
	/* Log readers: worker 1 reads node 1, worker 3 node 2, ... */
	w->reader_node = (w->index / 2) % cfg->n_nodes;
	w->cursor = 1;
	if (open_client(cfg->seeds[w->reader_node], WL_READER_DEADLINE_MS, true,
			&w->reader) != 0)
		return 1;
	new_process(w, true);
	return 0;
}

static void worker_close(struct wl_worker *w)
{
	if (w->any != NULL)
		cairn_close(w->any);
	for (unsigned i = 0; i < WL_NODES_MAX; i++)
		if (w->via[i] != NULL)
			cairn_close(w->via[i]);
	if (w->reader != NULL)
		cairn_close(w->reader);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: workload --seeds A,B,C --workload "
		"list-append|retry|log\n"
		"                --json FILE --edn FILE [--time-limit SECS]\n"
		"                [--rate OPS] [--concurrency N] [--seed N]\n"
		"                [--run-id ID]\n");
}

static int parse_args(int argc, char **argv, struct wl_config *cfg)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		if (v == NULL) {
			fprintf(stderr, "workload: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--seeds") == 0) {
			char *copy = strdup(v);
			char *save = NULL;
			for (char *t = strtok_r(copy, ",", &save); t != NULL;
			     t = strtok_r(NULL, ",", &save)) {
				if (cfg->n_nodes == WL_NODES_MAX) {
					fprintf(stderr,
						"workload: at most %d "
						"seeds\n",
						WL_NODES_MAX);
					free(copy);
					return 2;
				}
				cfg->seeds[cfg->n_nodes++] = strdup(t);
			}
			free(copy);
		} else if (strcmp(a, "--workload") == 0) {
			if (strcmp(v, "list-append") == 0)
				cfg->kind = WL_LIST_APPEND;
			else if (strcmp(v, "retry") == 0)
				cfg->kind = WL_RETRY;
			else if (strcmp(v, "log") == 0)
				cfg->kind = WL_LOG;
			else {
				fprintf(stderr,
					"workload: unknown workload "
					"'%s'\n",
					v);
				return 2;
			}
		} else if (strcmp(a, "--json") == 0) {
			cfg->json_path = v;
		} else if (strcmp(a, "--edn") == 0) {
			cfg->edn_path = v;
		} else if (strcmp(a, "--time-limit") == 0) {
			cfg->time_limit_s = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--rate") == 0) {
			cfg->rate = strtod(v, NULL);
		} else if (strcmp(a, "--concurrency") == 0) {
			cfg->concurrency = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--seed") == 0) {
			cfg->seed = strtoull(v, NULL, 10);
		} else if (strcmp(a, "--run-id") == 0) {
			cfg->run_id = v;
		} else {
			fprintf(stderr, "workload: unknown option %s\n", a);
			return 2;
		}
	}
	if (cfg->n_nodes == 0 || cfg->json_path == NULL ||
	    cfg->edn_path == NULL) {
		usage(stderr);
		return 2;
	}
	if (cfg->concurrency == 0 || cfg->concurrency > WL_WORKERS_MAX ||
	    cfg->rate <= 0) {
		fprintf(stderr, "workload: concurrency 1..%d, rate > 0\n",
			WL_WORKERS_MAX);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct wl_config cfg = { .kind = WL_LIST_APPEND,
				 .concurrency = 6,
				 .rate = 20,
				 .time_limit_s = 60,
				 .seed = 1,
				 .run_id = "x" };
	struct wl_history hist = { .next_index = 0 };
	struct wl_keys keys;
	struct wl_worker *workers;
	int rv = parse_args(argc, argv, &cfg);

	if (rv != 0)
		return rv;
	pthread_mutex_init(&hist.lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &hist.t0);
	hist.json = fopen(cfg.json_path, "w");
	hist.edn = fopen(cfg.edn_path, "w");
	if (hist.json == NULL || hist.edn == NULL) {
		fprintf(stderr, "workload: cannot write the history: %s\n",
			strerror(errno));
		return 1;
	}
	pthread_mutex_init(&keys.lock, NULL);
	for (unsigned i = 0; i < WL_KEYS_ACTIVE; i++) {
		keys.active[i] = i;
		keys.writes[i] = 0;
	}
	keys.next_key = WL_KEYS_ACTIVE;
	keys.next_value = 1;

	workers = calloc(cfg.concurrency, sizeof *workers);
	if (workers == NULL)
		return 1;
	for (unsigned i = 0; i < cfg.concurrency; i++) {
		struct wl_worker *w = &workers[i];
		w->cfg = &cfg;
		w->hist = &hist;
		w->keys = &keys;
		w->index = i;
		w->process = i;
		w->rng = cfg.seed * 0x9E3779B97F4A7C15ull + i * 7919 + 1;
		if (worker_init(w) != 0)
			return 1;
	}
	for (unsigned i = 0; i < cfg.concurrency; i++)
		pthread_create(&workers[i].thread, NULL, worker_main,
			       &workers[i]);
	for (unsigned s = 0; s < cfg.time_limit_s * 10; s++)
		sleep_ms(100);
	stop_flag = 1;
	for (unsigned i = 0; i < cfg.concurrency; i++)
		pthread_join(workers[i].thread, NULL);
	for (unsigned i = 0; i < cfg.concurrency; i++)
		worker_close(&workers[i]);
	fprintf(stderr, "workload: %" PRIu64 " history lines\n",
		hist.next_index);
	fclose(hist.json);
	fclose(hist.edn);
	free(workers);
	for (unsigned i = 0; i < cfg.n_nodes; i++)
		free(cfg.seeds[i]);
	return 0;
}
