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
 *   log          half the workers append (to streams of two categories,
 *                "lg" and "lo"); the other half each read the global log
 *                from one follower (single node, consistency any), forward
 *                from where they stopped. Besides, subscribers follow the
 *                log through the faults: one to the global log per node
 *                (its client seeded with that node first, so it starts
 *                there; libcairn resumes it on another node when that one
 *                fails) and one to the category "lg" on the node that led
 *                at the start, all from position 1. Each records what it
 *                received as :sub-next operations (a batch of events
 *                [position stream version id], the live marker with the
 *                node's last position when it came, and where it
 *                continues); a subscription that ends for good is a
 *                :sub-next :fail and is opened again from where it stood
 *                (:subscribe with resubscribe true). When the writers
 *                stop, the cluster's last position is recorded
 *                (:sub-target) and the subscribers get up to --sub-grace
 *                seconds to receive all of it; each then records
 *                :sub-close (events delivered, last position).
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

/* Subscribers: their processes start here (workers' never reach it);
 * waits for a batch's first item and for the others; items per batch;
 * pause before subscribing again; quiet time after which a category
 * subscriber is done; default grace after the writers stop; how long the
 * cluster's last position is polled for. */
#define WL_SUB_PROCESS_BASE  1000000
#define WL_SUB_WAIT_MS       500
#define WL_SUB_BATCH_WAIT_MS 20
#define WL_SUB_BATCH         200
#define WL_SUB_RETRY_MS      250
#define WL_SUB_QUIET_MS      2000
#define WL_SUB_GRACE_S       45
#define WL_SUB_TARGET_MS     15000
#define WL_SUB_CATEGORY      "lg"

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
	unsigned sub_grace_s;      /* subscribers' catch-up after it */
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
	stream_name(stream, sizeof stream, k % 2 == 0 ? "lg" : "lo",
		    w->cfg->run_id, k);
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

/* ---- log: subscribers ---- */

/* What the subscribers share with the main thread. */
struct wl_subs_state {
	volatile uint64_t target; /* the cluster's last position once the
				   * writers stopped; 0: not yet known */
	volatile int all_done;    /* every global-log subscriber reached
				   * target */
	volatile int stop;        /* the grace period is over */
};

static struct wl_subs_state subs_state;

struct wl_sub {
	struct wl_config *cfg;   /* borrowed */
	struct wl_history *hist; /* borrowed */
	unsigned index;          /* 0..n_subs-1 */
	uint64_t process;        /* its Jepsen process */
	char name[16];           /* "s<index>": names it in the history */
	unsigned node;           /* the node seeded first (0-based) */
	bool leader_at_start;    /* that node led when the run began */
	bool category;           /* a category, else the global log */
	char target[64];         /* the category */
	cairn_client *client;    /* owned: seeded with node first */
	cairn_subscription *sub; /* owned: the current subscription */
	uint64_t next;           /* where a new subscription starts */
	uint64_t last_position;  /* of the last event delivered; 0: none */
	uint64_t delivered;      /* events delivered, all subscriptions */
	unsigned subscriptions;  /* subscriptions opened */
	uint64_t last_item_ns;   /* when the last item came */
	volatile int done;       /* finished: recorded its close */
	pthread_t thread;
};

/* Opens a subscription from sub->next and records it. */
static int sub_open(struct wl_sub *s)
{
	struct cairn_subscribe_options so = {
		.kind = s->category ? CAIRN_SUB_CATEGORY : CAIRN_SUB_ALL,
		.target = s->category ? s->target : NULL,
		.from = s->next,
	};
	struct cairn_error err;
	json_t *inv = json_pack("{ss sI ss ss sI sb sb}", "sub", s->name,
				"node", (json_int_t)(s->node + 1), "kind",
				s->category ? "category" : "all", "target",
				s->category ? s->target : "", "from",
				(json_int_t)s->next, "leader-at-start",
				s->leader_at_start, "resubscribe",
				s->subscriptions > 0);
	int rv;

	hist_record(s->hist, "invoke", s->process, "subscribe", inv, NULL);
	rv = cairn_subscribe(s->client, &so, NULL, NULL, &s->sub, &err);
	if (rv == 0) {
		s->subscriptions++;
		hist_record(s->hist, "ok", s->process, "subscribe", inv, NULL);
	} else {
		json_t *extra = json_pack("{ss}", "error", error_name(rv));
		s->sub = NULL;
		hist_record(s->hist, "fail", s->process, "subscribe", inv,
			    extra);
		json_decref(extra);
	}
	json_decref(inv);
	return rv;
}

/* Records one batch of items as a completed sub-next operation. */
static void sub_flush(struct wl_sub *s, json_t *events, json_t *live,
		      uint64_t next)
{
	json_t *inv;
	json_t *done;

	if (json_array_size(events) == 0 && live == NULL)
		return;
	inv = json_pack("{ss}", "sub", s->name);
	done = json_pack("{ss sO sI}", "sub", s->name, "events", events, "next",
			 (json_int_t)next);
	if (live != NULL)
		json_object_set(done, "live", live);
	hist_record(s->hist, "invoke", s->process, "sub-next", inv, NULL);
	hist_record(s->hist, "ok", s->process, "sub-next", done, NULL);
	json_decref(done);
	json_decref(inv);
	json_array_clear(events);
}

/* True when this subscriber has seen all it needs once the writers have
 * stopped: a global-log subscriber reaches the target; a category one
 * waits for every global-log subscriber, then for a quiet spell. */
static bool sub_finished(struct wl_sub *s, struct wl_history *h)
{
	uint64_t target = subs_state.target;

	if (target == 0)
		return false;
	if (!s->category)
		return s->last_position >= target;
	return subs_state.all_done &&
	       now_ns(&h->t0) - s->last_item_ns > WL_SUB_QUIET_MS * 1000000ull;
}

static void *sub_main(void *arg)
{
	struct wl_sub *s = arg;
	json_t *events = json_array();
	json_t *live = NULL;
	uint64_t next = s->next;

	while (!subs_state.stop && !sub_finished(s, s->hist)) {
		struct cairn_sub_item item;
		struct cairn_error err;
		int rv;

		if (s->sub == NULL) {
			if (sub_open(s) != 0) {
				sleep_ms(WL_SUB_RETRY_MS);
				continue;
			}
		}
		/* Collect a batch: wait long for its first item, briefly for
		 * the others. */
		rv = cairn_subscription_next(
			s->sub,
			json_array_size(events) > 0 || live != NULL
				? WL_SUB_BATCH_WAIT_MS
				: WL_SUB_WAIT_MS,
			&item, &err);
		if (rv == CAIRN_ETIMEOUT) {
			sub_flush(s, events, live, next);
			json_decref(live);
			live = NULL;
			continue;
		}
		if (rv != 0) {
			/* Ended for good (libcairn resumes on its own across
			 * node failures): record it, subscribe again from
			 * where it stood. */
			json_t *v = json_pack("{ss sI}", "sub", s->name, "next",
					      (json_int_t)s->next);
			json_t *extra =
				json_pack("{ss ss}", "error", error_name(rv),
					  "message", err.message);
			sub_flush(s, events, live, next);
			json_decref(live);
			live = NULL;
			hist_record(s->hist, "invoke", s->process, "sub-next",
				    v, NULL);
			hist_record(s->hist, "fail", s->process, "sub-next", v,
				    extra);
			json_decref(extra);
			json_decref(v);
			cairn_subscription_close(s->sub);
			s->sub = NULL;
			sleep_ms(WL_SUB_RETRY_MS);
			continue;
		}
		s->last_item_ns = now_ns(&s->hist->t0);
		next = item.next;
		if (item.next > s->next)
			s->next = item.next;
		if (item.what == CAIRN_SUB_LIVE) {
			json_decref(live);
			live = json_pack("{sI}", "last-position",
					 (json_int_t)item.last_position);
			continue;
		}
		const struct cairn_event *e = &item.event;
		char id[37];
		char stream[512];
		size_t len = e->stream_len < sizeof stream - 1
				     ? e->stream_len
				     : sizeof stream - 1;
		memcpy(stream, e->stream, len);
		stream[len] = '\0';
		cairn_uuid_format(e->id, id);
		json_array_append_new(
			events, json_pack("[I s I s]", (json_int_t)e->position,
					  stream, (json_int_t)e->version, id));
		s->delivered++;
		if (e->position > s->last_position)
			s->last_position = e->position;
		if (json_array_size(events) >= WL_SUB_BATCH)
			sub_flush(s, events, NULL, next);
	}
	sub_flush(s, events, live, next);
	json_decref(live);
	json_decref(events);

	json_t *v = json_pack("{ss sI sI sI sI sI sb}", "sub", s->name,
			      "delivered", (json_int_t)s->delivered,
			      "last-position", (json_int_t)s->last_position,
			      "next", (json_int_t)s->next, "target",
			      (json_int_t)subs_state.target, "subscriptions",
			      (json_int_t)s->subscriptions, "finished",
			      sub_finished(s, s->hist));
	hist_record(s->hist, "invoke", s->process, "sub-close", v, NULL);
	if (s->sub != NULL)
		cairn_subscription_close(s->sub);
	s->sub = NULL;
	hist_record(s->hist, "ok", s->process, "sub-close", v, NULL);
	json_decref(v);
	s->done = 1;
	return NULL;
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

/* ---- subscribers: start and finish ---- */

/* Opens the subscribers' clients: one global-log subscriber per node and
 * one category subscriber on the node leading now. @probe is a client to
 * ask the nodes' status with. Returns how many, or -1. */
static int subs_init(struct wl_config *cfg, struct wl_history *hist,
		     cairn_client *probe, struct wl_sub *subs)
{
	char seeds[1024];
	int leader = -1;

	for (unsigned i = 0; i < cfg->n_nodes; i++) {
		struct cairn_status st;
		struct cairn_error err;
		if (cairn_status(probe, cfg->seeds[i], &st, &err) == 0 &&
		    st.role == CAIRN_ROLE_LEADER)
			leader = (int)i;
	}
	for (unsigned i = 0; i <= cfg->n_nodes; i++) {
		struct wl_sub *s = &subs[i];
		s->cfg = cfg;
		s->hist = hist;
		s->index = i;
		s->process = WL_SUB_PROCESS_BASE + i;
		snprintf(s->name, sizeof s->name, "s%u", i);
		s->category = i == cfg->n_nodes;
		s->node =
			s->category ? (leader >= 0 ? (unsigned)leader : 0) : i;
		s->leader_at_start = (int)s->node == leader;
		snprintf(s->target, sizeof s->target, "%s", WL_SUB_CATEGORY);
		s->next = 1;
		seeds_from(cfg, s->node, seeds, sizeof seeds);
		if (open_client(seeds, WL_DEADLINE_MS, false, &s->client) != 0)
			return -1;
	}
	return (int)cfg->n_nodes + 1;
}

/* Once the writers stopped: records the cluster's last position (every
 * node answering agrees, twice in a row, or the highest seen when the
 * polling time runs out) and lets the subscribers catch up to it, for
 * the grace period at most. */
static void subs_finish(struct wl_config *cfg, struct wl_history *hist,
			cairn_client *probe, struct wl_sub *subs, int n_subs)
{
	uint64_t prev = 0;
	uint64_t highest = 0;
	uint64_t target = 0;
	uint64_t process = WL_SUB_PROCESS_BASE - 1;
	unsigned answered_max = 0;
	json_t *v;

	v = json_object();
	hist_record(hist, "invoke", process, "sub-target", v, NULL);
	json_decref(v);
	for (unsigned waited = 0; waited < WL_SUB_TARGET_MS; waited += 500) {
		uint64_t lo = UINT64_MAX;
		uint64_t hi = 0;
		unsigned answered = 0;
		for (unsigned i = 0; i < cfg->n_nodes; i++) {
			struct cairn_status st;
			struct cairn_error err;
			if (cairn_status(probe, cfg->seeds[i], &st, &err) != 0)
				continue;
			answered++;
			if (st.last_position < lo)
				lo = st.last_position;
			if (st.last_position > hi)
				hi = st.last_position;
		}
		if (hi > highest)
			highest = hi;
		if (answered > answered_max)
			answered_max = answered;
		if (answered > cfg->n_nodes / 2 && lo == hi && hi == prev) {
			target = hi;
			break;
		}
		prev = answered > 0 && lo == hi ? hi : 0;
		sleep_ms(500);
	}
	v = json_pack("{sI sb sI}", "last-position",
		      (json_int_t)(target != 0 ? target : highest), "agreed",
		      target != 0, "nodes", (json_int_t)answered_max);
	hist_record(hist, "ok", process, "sub-target", v, NULL);
	json_decref(v);
	subs_state.target = target != 0 ? target : highest;
	if (subs_state.target == 0)
		subs_state.target = 1; /* nothing written: finish at once */

	for (unsigned ms = 0; ms < cfg->sub_grace_s * 1000; ms += 100) {
		bool all = true;
		bool every = true;
		for (int i = 0; i < n_subs; i++) {
			if (!subs[i].done) {
				every = false;
				if (!subs[i].category)
					all = false;
			}
		}
		if (all)
			subs_state.all_done = 1;
		if (every)
			break;
		sleep_ms(100);
	}
	subs_state.stop = 1;
	for (int i = 0; i < n_subs; i++)
		pthread_join(subs[i].thread, NULL);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: workload --seeds A,B,C --workload "
		"list-append|retry|log\n"
		"                --json FILE --edn FILE [--time-limit SECS]\n"
		"                [--rate OPS] [--concurrency N] [--seed N]\n"
		"                [--run-id ID] [--sub-grace SECS]\n");
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
		} else if (strcmp(a, "--sub-grace") == 0) {
			cfg->sub_grace_s = (unsigned)strtoul(v, NULL, 10);
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
				 .sub_grace_s = WL_SUB_GRACE_S,
				 .seed = 1,
				 .run_id = "x" };
	struct wl_history hist = { .next_index = 0 };
	struct wl_keys keys;
	struct wl_worker *workers;
	struct wl_sub subs[WL_NODES_MAX + 1];
	int n_subs = 0;
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
	memset(subs, 0, sizeof subs);
	if (cfg.kind == WL_LOG) {
		n_subs = subs_init(&cfg, &hist, workers[0].any, subs);
		if (n_subs < 0)
			return 1;
		for (int i = 0; i < n_subs; i++)
			pthread_create(&subs[i].thread, NULL, sub_main,
				       &subs[i]);
	}
	for (unsigned i = 0; i < cfg.concurrency; i++)
		pthread_create(&workers[i].thread, NULL, worker_main,
			       &workers[i]);
	for (unsigned s = 0; s < cfg.time_limit_s * 10; s++)
		sleep_ms(100);
	stop_flag = 1;
	for (unsigned i = 0; i < cfg.concurrency; i++)
		pthread_join(workers[i].thread, NULL);
	if (n_subs > 0)
		subs_finish(&cfg, &hist, workers[0].any, subs, n_subs);
	for (int i = 0; i < n_subs; i++)
		cairn_close(subs[i].client);
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
