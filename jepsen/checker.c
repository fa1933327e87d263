/* jepsen/checker.c: the checks of jepsen/check (see checker.h). Reads the
 * workload's JSON history and the nodes' final dumps, then checks, each
 * into one result:
 *
 *   final-dumps            every node that may not be missing gave a dump
 *   log-dense              positions 1..N, in order, on every node
 *   log-identical          every node holds the same log (prefix hash)
 *   stream-versions        per stream, versions 1..n in position order
 *   unique-events          no event id and no (writer, sequence) twice
 *   acked-not-lost         every acknowledged append is in every dump, at
 *                          the position it was acknowledged with
 *   failed-not-committed   no append reported failed is in a log
 *   retry-same-position    every acknowledgement of one key gave one
 *                          position
 *   one-success-per-version  at most one success per (stream, expected
 *                          version), and its version is expected + 1
 *   list-append            Elle-style: dependency graph (ww, wr, rw,
 *                          realtime, process), cycles classified G0, G1c,
 *                          G-single, G2 (with -realtime when a realtime or
 *                          process edge closes them), plus G1a, garbage
 *                          reads, duplicate elements, incompatible orders
 *   monotonic-reads        per process, reads never go back
 *   follower-reads         what follower reads returned is in the final
 *                          log at the same positions
 *   follower-staleness     how far follower reads lagged (a report)
 *   subscriptions-gapless  each subscriber's events, in the order
 *                          received, are exactly the final log's
 *                          positions (global log: 1, 2, 3, ...; a
 *                          category: the positions of its streams)
 *   subscriptions-no-duplicates  no position received twice or going back
 *   subscriptions-match-log  every event received is the final log's at
 *                          its position (id, stream, version) and matches
 *                          the subscriber's filter
 *   subscriptions-complete by the end each subscriber had received up to
 *                          the final log's last position its filter
 *                          matches (nothing unseen after the heal)
 *   subscriptions-live     one live marker per subscription; a subscriber
 *                          that received events went live
 *   node-logs              no assertion, abort, sanitizer report or
 *                          unexpected exit in node logs
 *
 * Hash maps are jansson objects keyed by strings. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "checker.h"

enum op_type {
	OP_OPEN = 0, /* invoked, never completed: as info */
	OP_OK = 1,
	OP_FAIL = 2,
	OP_INFO = 3,
};

/* Edge kinds of the dependency graph. */
enum {
	E_WW = 1,
	E_WR = 2,
	E_RW = 4,
	E_RT = 8,
	E_PR = 16,
};

/* Micro-operations of one transaction at most. */
#define CHK_MOPS_MAX 16

/* One micro-operation: a read of a key's list, or an append to it. */
struct mop {
	bool read;
	int64_t key;
	int64_t val;  /* append */
	json_t *list; /* read: borrowed; NULL when unknown */
};

struct op {
	uint64_t process;
	const char *f;   /* borrowed from the history */
	int type;        /* enum op_type */
	json_t *inv;     /* borrowed: the invoke line */
	json_t *done;    /* borrowed: the completion line, or NULL */
	uint64_t t_inv;  /* ns */
	uint64_t t_done; /* ns; UINT64_MAX when it never completed */
	size_t line_inv;
	size_t line_done;
	/* list-append: the micro-operations, and the first read and first
	 * append (the workload's transactions have one of each) */
	struct mop mops[CHK_MOPS_MAX];
	size_t n_mops;
	bool has_read;
	int64_t rkey;
	json_t *rlist; /* borrowed; NULL when unknown */
	bool has_append;
	int64_t akey;
	int64_t aval;
	/* appends */
	const char *writer; /* borrowed; NULL when none */
	int64_t seq;
	int64_t position;  /* acknowledged position, -1 when none */
	const char *error; /* borrowed; NULL when none */
	int gnode;         /* graph node, -1 when none */
};

struct ev {
	uint64_t position;
	const char *stream; /* borrowed */
	uint64_t version;
	const char *id;     /* borrowed */
	const char *writer; /* borrowed; NULL when the data has none */
	int64_t seq;
	int64_t k;
	int64_t v;
	uint64_t hash; /* of position, stream, version, id */
};

struct dump {
	bool present;
	json_t *lines; /* owned: array of the parsed lines */
	size_t n;
	struct ev *evs; /* owned */
};

struct edge {
	int to;
	int type;
};

struct gnode {
	int op;           /* index into ops */
	struct edge *out; /* owned */
	size_t n_out;
	size_t cap_out;
};

struct ctx {
	const struct chk_input *in;
	struct chk_report *rep;
	json_t *history; /* owned: array of lines */
	struct op *ops;  /* owned */
	size_t n_ops;
	struct dump dumps[CHK_NODES_MAX];
	int ref;           /* reference dump, -1 when none */
	json_t *anomalies; /* owned: class -> array of descriptions */
	json_t *cycles;    /* owned: cycles recorded, by their node sets */
	/* graph */
	struct gnode *g; /* owned */
	size_t n_g;
};

/* Accumulates examples for one detail line. */
struct examples {
	unsigned count;
	char text[CHK_DETAIL_MAX / 2];
};

static void example(struct examples *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void example(struct examples *x, const char *fmt, ...)
{
	va_list ap;
	size_t used = strlen(x->text);

	x->count++;
	if (x->count > CHK_EXAMPLES_MAX || used + 8 >= sizeof x->text)
		return;
	if (used > 0) {
		snprintf(x->text + used, sizeof x->text - used, "; ");
		used = strlen(x->text);
	}
	va_start(ap, fmt);
	vsnprintf(x->text + used, sizeof x->text - used, fmt, ap);
	va_end(ap);
}

static void result(struct ctx *c, const char *name, bool pass, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));

static void result(struct ctx *c, const char *name, bool pass, const char *fmt,
		   ...)
{
	struct chk_result *r;
	va_list ap;

	if (c->rep->n == CHK_RESULTS_MAX)
		return;
	r = &c->rep->results[c->rep->n++];
	snprintf(r->name, sizeof r->name, "%s", name);
	r->pass = pass;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof r->detail, fmt, ap);
	va_end(ap);
}

/* Records an anomaly of class @cls with its description. */
static void anomaly(struct ctx *c, const char *cls, const char *desc)
{
	json_t *list = json_object_get(c->anomalies, cls);
	if (list == NULL) {
		list = json_array();
		json_object_set_new(c->anomalies, cls, list);
	}
	json_array_append_new(list, json_string(desc));
}

static int64_t int_field(json_t *o, const char *key, int64_t deflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : deflt;
}

static const char *str_field(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* ---- reading ---- */

static json_t *read_lines(const char *path, bool *present, char *errmsg,
			  size_t errmsg_len)
{
	FILE *f = fopen(path, "r");
	json_t *arr;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	size_t lineno = 0;

	*present = false;
	if (f == NULL) {
		snprintf(errmsg, errmsg_len, "cannot open %s", path);
		return NULL;
	}
	arr = json_array();
	while ((len = getline(&line, &cap, f)) != -1) {
		json_error_t jerr;
		json_t *v;
		lineno++;
		if (len <= 1)
			continue;
		v = json_loads(line, 0, &jerr);
		if (v == NULL || !json_is_object(v)) {
			snprintf(errmsg, errmsg_len,
				 "%s:%zu: not a JSON object", path, lineno);
			json_decref(v);
			json_decref(arr);
			free(line);
			fclose(f);
			return NULL;
		}
		json_array_append_new(arr, v);
	}
	free(line);
	fclose(f);
	*present = true;
	return arr;
}

/* Parses the micro-operations of a list-append transaction value. */
static void parse_txn(struct op *o, json_t *value)
{
	size_t i;
	json_t *m;

	if (!json_is_array(value))
		return;
	json_array_foreach(value, i, m)
	{
		const char *fn = json_string_value(json_array_get(m, 0));
		json_t *k = json_array_get(m, 1);
		json_t *v = json_array_get(m, 2);
		struct mop *mo;
		if (fn == NULL || !json_is_integer(k) ||
		    o->n_mops == CHK_MOPS_MAX)
			continue;
		mo = &o->mops[o->n_mops];
		mo->key = json_integer_value(k);
		if (strcmp(fn, "r") == 0) {
			mo->read = true;
			mo->list = json_is_array(v) ? v : NULL;
			if (!o->has_read) {
				o->has_read = true;
				o->rkey = mo->key;
				o->rlist = mo->list;
			}
		} else if (strcmp(fn, "append") == 0 && json_is_integer(v)) {
			mo->read = false;
			mo->val = json_integer_value(v);
			if (!o->has_append) {
				o->has_append = true;
				o->akey = mo->key;
				o->aval = mo->val;
			}
		} else {
			continue;
		}
		o->n_mops++;
	}
}

static int load_history(struct ctx *c, char *errmsg, size_t errmsg_len)
{
	bool present;
	json_t *open = json_object(); /* process -> op index */
	size_t i;
	json_t *line;

	c->history =
		read_lines(c->in->history_path, &present, errmsg, errmsg_len);
	if (c->history == NULL) {
		json_decref(open);
		return 1;
	}
	c->ops = calloc(json_array_size(c->history) + 1, sizeof *c->ops);
	json_array_foreach(c->history, i, line)
	{
		const char *type = str_field(line, "type");
		int64_t process = int_field(line, "process", -1);
		char pkey[32];
		json_t *idx;
		struct op *o;

		if (type == NULL || process < 0)
			continue;
		snprintf(pkey, sizeof pkey, "%" PRId64, process);
		if (strcmp(type, "invoke") == 0) {
			o = &c->ops[c->n_ops];
			o->process = (uint64_t)process;
			o->f = str_field(line, "f");
			if (o->f == NULL)
				o->f = "";
			o->type = OP_OPEN;
			o->inv = line;
			o->t_inv = (uint64_t)int_field(line, "time", 0);
			o->t_done = UINT64_MAX;
			o->line_inv = i;
			o->position = -1;
			o->gnode = -1;
			json_object_set_new(open, pkey,
					    json_integer((json_int_t)c->n_ops));
			c->n_ops++;
			continue;
		}
		idx = json_object_get(open, pkey);
		if (idx == NULL)
			continue;
		o = &c->ops[json_integer_value(idx)];
		json_object_del(open, pkey);
		o->done = line;
		o->line_done = i;
		if (strcmp(type, "ok") == 0) {
			o->type = OP_OK;
			o->t_done = (uint64_t)int_field(line, "time", 0);
		} else if (strcmp(type, "fail") == 0) {
			o->type = OP_FAIL;
			o->t_done = (uint64_t)int_field(line, "time", 0);
		} else {
			o->type = OP_INFO;
		}
	}
	json_decref(open);

	for (i = 0; i < c->n_ops; i++) {
		struct op *o = &c->ops[i];
		json_t *src = o->done != NULL ? o->done : o->inv;
		if (strcmp(o->f, "txn") == 0)
			parse_txn(o, json_object_get(src, "value"));
		o->writer = str_field(src, "writer");
		o->seq = int_field(src, "seq", -1);
		if (o->type == OP_OK)
			o->position = int_field(src, "position", -1);
		o->error = str_field(src, "error");
	}
	return 0;
}

static void load_dump(struct ctx *c, unsigned node)
{
	struct dump *d = &c->dumps[node];
	char errmsg[256];
	size_t i;
	json_t *line;
	const char *path = c->in->dump_paths[node];

	d->present = false;
	if (path == NULL)
		return;
	/* A missing file: the node gave no dump; an empty one: its log is
	 * empty. */
	d->lines = read_lines(path, &d->present, errmsg, sizeof errmsg);
	if (d->lines == NULL) {
		d->present = false;
		return;
	}
	d->n = json_array_size(d->lines);
	d->evs = calloc(d->n, sizeof *d->evs);
	json_array_foreach(d->lines, i, line)
	{
		struct ev *e = &d->evs[i];
		json_t *data = json_object_get(line, "data");
		e->position = (uint64_t)int_field(line, "position", 0);
		e->stream = str_field(line, "stream");
		if (e->stream == NULL)
			e->stream = "";
		e->version = (uint64_t)int_field(line, "version", 0);
		e->id = str_field(line, "id");
		if (e->id == NULL)
			e->id = "";
		e->writer = json_is_object(data) ? str_field(data, "w") : NULL;
		e->seq = json_is_object(data) ? int_field(data, "s", -1) : -1;
		e->k = json_is_object(data) ? int_field(data, "k", -1) : -1;
		e->v = json_is_object(data) ? int_field(data, "v", -1) : -1;
		e->hash = fnv(0xcbf29ce484222325ull, &e->position,
			      sizeof e->position);
		e->hash = fnv(e->hash, e->stream, strlen(e->stream));
		e->hash = fnv(e->hash, &e->version, sizeof e->version);
		e->hash = fnv(e->hash, e->id, strlen(e->id));
	}
}

/* ---- log checks ---- */

static void check_dumps(struct ctx *c)
{
	struct examples x = { 0 };
	unsigned present = 0;
	bool pass = true;

	c->ref = -1;
	for (unsigned i = 0; i < c->in->n_nodes; i++) {
		if (c->dumps[i].present) {
			present++;
			if (c->ref < 0)
				c->ref = (int)i;
			continue;
		}
		if (c->in->allow_missing[i]) {
			example(&x,
				"node %u gave none (its files were "
				"corrupted: allowed)",
				i + 1);
		} else {
			example(&x, "node %u gave none", i + 1);
			pass = false;
		}
	}
	if (present <= c->in->n_nodes / 2)
		pass = false;
	result(c, "final-dumps", pass, "%u of %u nodes dumped%s%s", present,
	       c->in->n_nodes, x.count > 0 ? ": " : "", x.text);
}

static void check_dense(struct ctx *c)
{
	struct examples x = { 0 };

	for (unsigned i = 0; i < c->in->n_nodes; i++) {
		struct dump *d = &c->dumps[i];
		if (!d->present)
			continue;
		for (size_t j = 0; j < d->n; j++) {
			if (d->evs[j].position != j + 1) {
				example(&x,
					"node %u: line %zu holds position "
					"%" PRIu64 ", expected %zu",
					i + 1, j + 1, d->evs[j].position,
					j + 1);
				break;
			}
		}
	}
	result(c, "log-dense", x.count == 0, "%s",
	       x.count == 0 ? "positions 1..N with no gap on every dump"
			    : x.text);
}

static void check_identical(struct ctx *c)
{
	struct examples x = { 0 };
	char sums[256] = "";

	if (c->ref < 0) {
		result(c, "log-identical", false, "no dump to compare");
		return;
	}
	for (unsigned i = 0; i < c->in->n_nodes; i++) {
		struct dump *d = &c->dumps[i];
		struct dump *r = &c->dumps[c->ref];
		uint64_t h = 0xcbf29ce484222325ull;
		size_t common;
		size_t used = strlen(sums);

		if (!d->present)
			continue;
		for (size_t j = 0; j < d->n; j++)
			h = fnv(h, &d->evs[j].hash, sizeof d->evs[j].hash);
		snprintf(sums + used, sizeof sums - used,
			 "%snode %u: %zu events hash %016" PRIx64,
			 used > 0 ? ", " : "", i + 1, d->n, h);
		common = d->n < r->n ? d->n : r->n;
		for (size_t j = 0; j < common; j++) {
			if (d->evs[j].hash != r->evs[j].hash) {
				example(&x,
					"node %u differs from node %d at "
					"position %zu (%s@%" PRIu64
					" vs %s@%" PRIu64 ")",
					i + 1, c->ref + 1, j + 1,
					d->evs[j].stream, d->evs[j].version,
					r->evs[j].stream, r->evs[j].version);
				break;
			}
		}
		if (d->n != r->n)
			example(&x, "node %u holds %zu events, node %d %zu",
				i + 1, d->n, c->ref + 1, r->n);
	}
	result(c, "log-identical", x.count == 0, "%s%s%s", sums,
	       x.count > 0 ? "; " : "", x.text);
}

static void check_stream_versions(struct ctx *c)
{
	struct examples x = { 0 };
	json_t *heads;
	size_t streams = 0;

	if (c->ref < 0) {
		result(c, "stream-versions", false, "no dump");
		return;
	}
	for (unsigned i = 0; i < c->in->n_nodes; i++) {
		struct dump *d = &c->dumps[i];
		if (!d->present)
			continue;
		heads = json_object();
		for (size_t j = 0; j < d->n; j++) {
			struct ev *e = &d->evs[j];
			int64_t head = int_field(heads, e->stream, 0);
			if (e->version != (uint64_t)head + 1)
				example(&x,
					"node %u: %s version %" PRIu64
					" at position %" PRIu64
					" follows version %" PRId64,
					i + 1, e->stream, e->version,
					e->position, head);
			json_object_set_new(
				heads, e->stream,
				json_integer((json_int_t)e->version));
		}
		if ((int)i == c->ref)
			streams = json_object_size(heads);
		json_decref(heads);
	}
	if (x.count == 0)
		result(c, "stream-versions", true,
		       "%zu streams, versions contiguous from 1, one event "
		       "per version",
		       streams);
	else
		result(c, "stream-versions", false, "%u breaks: %s", x.count,
		       x.text);
}

static void ws_key(char *buf, size_t len, const char *w, int64_t s)
{
	snprintf(buf, len, "%s/%" PRId64, w, s);
}

static void check_unique(struct ctx *c)
{
	struct examples x = { 0 };

	for (unsigned i = 0; i < c->in->n_nodes; i++) {
		struct dump *d = &c->dumps[i];
		json_t *ids;
		json_t *ws;
		if (!d->present)
			continue;
		ids = json_object();
		ws = json_object();
		for (size_t j = 0; j < d->n; j++) {
			struct ev *e = &d->evs[j];
			json_t *prev = json_object_get(ids, e->id);
			if (prev != NULL)
				example(&x,
					"node %u: event id %s at positions "
					"%" JSON_INTEGER_FORMAT " and %" PRIu64,
					i + 1, e->id, json_integer_value(prev),
					e->position);
			else
				json_object_set_new(
					ids, e->id,
					json_integer((json_int_t)e->position));
			if (e->writer != NULL) {
				char key[96];
				ws_key(key, sizeof key, e->writer, e->seq);
				prev = json_object_get(ws, key);
				if (prev != NULL)
					example(&x,
						"node %u: writer %s appended "
						"twice (positions "
						"%" JSON_INTEGER_FORMAT
						" and %" PRIu64 ")",
						i + 1, key,
						json_integer_value(prev),
						e->position);
				else
					json_object_set_new(
						ws, key,
						json_integer(
							(json_int_t)
								e->position));
			}
		}
		json_decref(ids);
		json_decref(ws);
	}
	result(c, "unique-events", x.count == 0, "%s",
	       x.count == 0 ? "no event id and no (writer, sequence) twice"
			    : x.text);
}

/* (writer/seq) -> index into the dump's events. */
static json_t *ws_index(const struct dump *d)
{
	json_t *m = json_object();
	for (size_t j = 0; j < d->n; j++) {
		char key[96];
		if (d->evs[j].writer == NULL)
			continue;
		ws_key(key, sizeof key, d->evs[j].writer, d->evs[j].seq);
		json_object_set_new(m, key, json_integer((json_int_t)j));
	}
	return m;
}

static bool is_append(const struct op *o)
{
	return o->writer != NULL && o->seq >= 0 &&
	       (strcmp(o->f, "append") == 0 ||
		(strcmp(o->f, "txn") == 0 && o->has_append));
}

static void check_acked(struct ctx *c)
{
	struct examples x = { 0 };
	size_t acked = 0;

	for (unsigned i = 0; i < c->in->n_nodes; i++) {
		struct dump *d = &c->dumps[i];
		json_t *m;
		if (!d->present)
			continue;
		m = ws_index(d);
		for (size_t k = 0; k < c->n_ops; k++) {
			struct op *o = &c->ops[k];
			char key[96];
			json_t *at;
			if (o->type != OP_OK || !is_append(o))
				continue;
			if ((int)i == c->ref)
				acked++;
			ws_key(key, sizeof key, o->writer, o->seq);
			at = json_object_get(m, key);
			if (at == NULL) {
				example(&x,
					"node %u lacks %s (history line %zu, "
					"acknowledged at position %" PRId64 ")",
					i + 1, key, o->line_done, o->position);
				continue;
			}
			if (o->position >= 0 &&
			    d->evs[json_integer_value(at)].position !=
				    (uint64_t)o->position)
				example(&x,
					"node %u holds %s at position %" PRIu64
					", acknowledged at %" PRId64,
					i + 1, key,
					d->evs[json_integer_value(at)].position,
					o->position);
		}
		json_decref(m);
	}
	if (x.count == 0)
		result(c, "acked-not-lost", c->ref >= 0,
		       "%zu acknowledged appends, all on every dump at their "
		       "position",
		       acked);
	else
		result(c, "acked-not-lost", false, "%u lost or moved: %s",
		       x.count, x.text);
}

static void check_failed(struct ctx *c)
{
	struct examples x = { 0 };
	size_t failed = 0;

	if (c->ref < 0) {
		result(c, "failed-not-committed", false, "no dump");
		return;
	}
	json_t *m = ws_index(&c->dumps[c->ref]);
	for (size_t k = 0; k < c->n_ops; k++) {
		struct op *o = &c->ops[k];
		char key[96];
		if (o->type != OP_FAIL || !is_append(o))
			continue;
		failed++;
		ws_key(key, sizeof key, o->writer, o->seq);
		if (json_object_get(m, key) != NULL)
			example(&x,
				"%s failed (%s, history line %zu) yet is "
				"in the log",
				key, o->error != NULL ? o->error : "?",
				o->line_done);
	}
	json_decref(m);
	result(c, "failed-not-committed", x.count == 0,
	       "%zu failed appends%s%s", failed,
	       x.count > 0 ? ": " : ", none in the log", x.text);
}

static void check_retry(struct ctx *c)
{
	struct examples x = { 0 };
	json_t *seen = json_object(); /* writer/seq -> position */
	size_t resent = 0;

	for (size_t k = 0; k < c->n_ops; k++) {
		struct op *o = &c->ops[k];
		json_t *ps;
		size_t i;
		json_t *p;
		char key[96];
		if (o->type != OP_OK || !is_append(o))
			continue;
		ws_key(key, sizeof key, o->writer, o->seq);
		ps = json_object_get(o->done, "positions");
		if (json_array_size(ps) > 1)
			resent++;
		json_array_foreach(ps, i, p)
		{
			if (json_integer_value(p) != o->position)
				example(&x,
					"%s acknowledged at %" PRId64
					" and at %" JSON_INTEGER_FORMAT
					" (history line %zu)",
					key, o->position, json_integer_value(p),
					o->line_done);
		}
		json_t *prev = json_object_get(seen, key);
		if (prev != NULL && json_integer_value(prev) != o->position)
			example(&x,
				"%s acknowledged at %" JSON_INTEGER_FORMAT
				" and at %" PRId64,
				key, json_integer_value(prev), o->position);
		json_object_set_new(seen, key,
				    json_integer((json_int_t)o->position));
	}
	json_decref(seen);
	result(c, "retry-same-position", x.count == 0,
	       "%zu keys resent after "
	       "an acknowledgement%s%s",
	       resent, x.count > 0 ? ": " : ", each got its original position",
	       x.text);
}

static void check_one_success(struct ctx *c)
{
	struct examples x = { 0 };
	json_t *by = json_object(); /* "k/expected" -> op index */
	size_t n = 0;

	for (size_t k = 0; k < c->n_ops; k++) {
		struct op *o = &c->ops[k];
		char key[64];
		int64_t expected;
		int64_t version;
		if (o->type != OP_OK || !o->has_append || o->rlist == NULL)
			continue;
		n++;
		expected = (int64_t)json_array_size(o->rlist);
		snprintf(key, sizeof key, "%" PRId64 "/%" PRId64, o->akey,
			 expected);
		json_t *prev = json_object_get(by, key);
		if (prev != NULL)
			example(&x,
				"key %" PRId64 " expected version %" PRId64
				" succeeded twice (history lines %zu and %zu)",
				o->akey, expected,
				c->ops[json_integer_value(prev)].line_done,
				o->line_done);
		else
			json_object_set_new(by, key,
					    json_integer((json_int_t)k));
		version = int_field(o->done, "version", -1);
		if (version >= 0 && version != expected + 1)
			example(&x,
				"key %" PRId64 " expected version %" PRId64
				" committed as version %" PRId64 " (line %zu)",
				o->akey, expected, version, o->line_done);
	}
	json_decref(by);
	result(c, "one-success-per-version", x.count == 0,
	       "%zu conditional appends acknowledged%s%s", n,
	       x.count > 0 ? ": " : ", at most one per expected version",
	       x.text);
}

/* ---- Elle-style list-append ---- */

static void add_edge(struct ctx *c, int from, int to, int type)
{
	struct gnode *n;
	if (from < 0 || to < 0 || from == to)
		return;
	n = &c->g[from];
	if (n->n_out == n->cap_out) {
		n->cap_out = n->cap_out == 0 ? 8 : n->cap_out * 2;
		n->out = realloc(n->out, n->cap_out * sizeof *n->out);
	}
	n->out[n->n_out].to = to;
	n->out[n->n_out].type = type;
	n->n_out++;
}

/* Tarjan's strongly connected components over edges of @mask. */
struct tarjan {
	struct ctx *c;
	int mask;
	int *index;
	int *low;
	bool *on;
	int *stack;
	int sp;
	int next;
	int *comp; /* out: component of each node */
	int *comp_size;
	int n_comp;
};

static void strong(struct tarjan *t, int v)
{
	t->index[v] = t->low[v] = t->next++;
	t->stack[t->sp++] = v;
	t->on[v] = true;
	for (size_t i = 0; i < t->c->g[v].n_out; i++) {
		struct edge *e = &t->c->g[v].out[i];
		if ((e->type & t->mask) == 0)
			continue;
		if (t->index[e->to] < 0) {
			strong(t, e->to);
			if (t->low[e->to] < t->low[v])
				t->low[v] = t->low[e->to];
		} else if (t->on[e->to] && t->index[e->to] < t->low[v]) {
			t->low[v] = t->index[e->to];
		}
	}
	if (t->low[v] == t->index[v]) {
		int w;
		int size = 0;
		do {
			w = t->stack[--t->sp];
			t->on[w] = false;
			t->comp[w] = t->n_comp;
			size++;
		} while (w != v);
		t->comp_size[t->n_comp] = size;
		t->n_comp++;
	}
}

static void sccs(struct ctx *c, int mask, int *comp, int *comp_size)
{
	size_t n = c->n_g;
	struct tarjan t = { .c = c,
			    .mask = mask,
			    .comp = comp,
			    .comp_size = comp_size };
	t.index = malloc(n * sizeof(int));
	t.low = malloc(n * sizeof(int));
	t.on = calloc(n, sizeof(bool));
	t.stack = malloc(n * sizeof(int));
	for (size_t i = 0; i < n; i++)
		t.index[i] = -1;
	for (size_t i = 0; i < n; i++)
		if (t.index[i] < 0)
			strong(&t, (int)i);
	free(t.index);
	free(t.low);
	free(t.on);
	free(t.stack);
}

/* Shortest path from @from to @to over edges of @mask inside component
 * @cc of @comp; with @from == @to, the shortest cycle through it. Fills
 * @path with its nodes (from first, to last) and @types with the edge
 * into each node (types[0] is 0); returns the number of nodes, 0 when
 * there is no such path or it is longer than @max. */
static size_t bfs(struct ctx *c, int mask, const int *comp, int cc, int from,
		  int to, int *path, int *types, size_t max)
{
	size_t n = c->n_g;
	int *prev = malloc(n * sizeof(int));
	int *prev_type = malloc(n * sizeof(int));
	int *queue = malloc(n * sizeof(int));
	size_t head = 0;
	size_t tail = 0;
	size_t len = 0;
	int reached_from = -1; /* the node whose edge reached @to */
	int last_type = 0;

	for (size_t i = 0; i < n; i++)
		prev[i] = -2;
	prev[from] = -1;
	queue[tail++] = from;
	while (head < tail && reached_from < 0) {
		int v = queue[head++];
		for (size_t i = 0; i < c->g[v].n_out; i++) {
			struct edge *e = &c->g[v].out[i];
			if ((e->type & mask) == 0 || comp[e->to] != cc)
				continue;
			if (e->to == to) {
				reached_from = v;
				last_type = e->type & mask;
				break;
			}
			if (prev[e->to] != -2)
				continue;
			prev[e->to] = v;
			prev_type[e->to] = e->type & mask;
			queue[tail++] = e->to;
		}
	}
	if (reached_from >= 0) {
		/* Count the nodes, then fill from the end. */
		size_t k = 2;
		for (int v = reached_from; v != from; v = prev[v])
			k++;
		if (k <= max) {
			size_t i = k - 1;
			path[i] = to;
			types[i] = last_type;
			for (int v = reached_from; v != from; v = prev[v]) {
				i--;
				path[i] = v;
				types[i] = prev_type[v];
			}
			path[0] = from;
			types[0] = 0;
			len = k;
		}
	}
	free(prev);
	free(prev_type);
	free(queue);
	return len;
}

static const char *edge_name(int type)
{
	if (type & E_WW)
		return "ww";
	if (type & E_WR)
		return "wr";
	if (type & E_RW)
		return "rw";
	if (type & E_RT)
		return "rt";
	return "process";
}

/* Names a cycle by its edges (types[i] is the edge into path[i], for
 * i >= 1) and records it unless its class already has enough examples. */
static void record_cycle(struct ctx *c, const int *path, const int *types,
			 size_t len, json_t *found)
{
	int rw = 0;
	int wr = 0;
	bool rt = false;
	char cls[32];
	char desc[1024];
	size_t used = 0;

	for (size_t i = 1; i < len; i++) {
		int t = types[i];
		if (t & E_WW)
			continue;
		if (t & E_WR)
			wr++;
		else if (t & E_RW)
			rw++;
		else
			rt = true;
	}
	if (rw == 0 && wr == 0)
		snprintf(cls, sizeof cls, "G0");
	else if (rw == 0)
		snprintf(cls, sizeof cls, "G1c");
	else if (rw == 1)
		snprintf(cls, sizeof cls, "G-single");
	else
		snprintf(cls, sizeof cls, "G2");
	if (rt)
		strncat(cls, "-realtime", sizeof cls - strlen(cls) - 1);
	/* The same cycle is found by several searches: count it once. */
	{
		int sorted[64];
		size_t m = len - 1 < 64 ? len - 1 : 64;
		char sig[512];
		size_t at;
		memcpy(sorted, path, m * sizeof(int));
		for (size_t a = 1; a < m; a++)
			for (size_t b = a; b > 0 && sorted[b - 1] > sorted[b];
			     b--) {
				int t = sorted[b];
				sorted[b] = sorted[b - 1];
				sorted[b - 1] = t;
			}
		at = (size_t)snprintf(sig, sizeof sig, "%s", cls);
		for (size_t a = 0; a < m && at + 16 < sizeof sig; a++)
			at += (size_t)snprintf(sig + at, sizeof sig - at, " %d",
					       sorted[a]);
		if (json_object_get(c->cycles, sig) != NULL)
			return;
		json_object_set_new(c->cycles, sig, json_true());
	}
	json_int_t seen = json_integer_value(json_object_get(found, cls));
	json_object_set_new(found, cls, json_integer(seen + 1));
	if (seen >= CHK_EXAMPLES_MAX)
		return;
	desc[0] = '\0';
	for (size_t i = 0; i < len && used + 64 < sizeof desc; i++) {
		struct op *o = &c->ops[c->g[path[i]].op];
		if (i > 0)
			used += (size_t)snprintf(desc + used,
						 sizeof desc - used, " -%s-> ",
						 edge_name(types[i]));
		used += (size_t)snprintf(desc + used, sizeof desc - used,
					 "op@line%zu(p%" PRIu64 ")",
					 o->line_inv, o->process);
	}
	anomaly(c, cls, desc);
}

/* Finds cycles over @mask: one per non-trivial component, and for the
 * G-single search one per rw edge that closes a cycle over @mask_no_rw. */
static void find_cycles(struct ctx *c, int mask, json_t *found)
{
	size_t n = c->n_g;
	int *comp = malloc(n * sizeof(int));
	int *size = malloc((n + 1) * sizeof(int));
	int *path = malloc(4096 * sizeof(int));
	int *types = malloc(4096 * sizeof(int));
	bool *done = calloc(n + 1, sizeof(bool));

	sccs(c, mask, comp, size);
	for (size_t v = 0; v < n; v++) {
		int cc = comp[v];
		size_t len;
		if (size[cc] < 2 || done[cc])
			continue;
		done[cc] = true;
		len = bfs(c, mask, comp, cc, (int)v, (int)v, path, types, 4096);
		if (len > 1)
			record_cycle(c, path, types, len, found);
	}
	free(comp);
	free(size);
	free(path);
	free(types);
	free(done);
}

/* G-single: a cycle with exactly one rw edge, a -rw-> b then b ~> a over
 * the other kinds in @mask. */
static void find_single(struct ctx *c, int mask, json_t *found)
{
	size_t n = c->n_g;
	int *comp = malloc(n * sizeof(int));
	int *size = malloc((n + 1) * sizeof(int));
	int *path = malloc(4096 * sizeof(int));
	int *types = malloc(4096 * sizeof(int));
	unsigned tries = 0;

	sccs(c, mask | E_RW, comp, size);
	for (size_t a = 0; a < n && tries < 2000; a++) {
		for (size_t i = 0; i < c->g[a].n_out; i++) {
			struct edge *e = &c->g[a].out[i];
			size_t len;
			if (!(e->type & E_RW) || comp[e->to] != comp[a] ||
			    size[comp[a]] < 2)
				continue;
			tries++;
			len = bfs(c, mask, comp, comp[a], e->to, (int)a,
				  path + 1, types + 1, 4094);
			if (len == 0)
				continue;
			path[0] = (int)a;
			types[0] = 0;
			types[1] = E_RW;
			record_cycle(c, path, types, len + 1, found);
			break;
		}
	}
	free(comp);
	free(size);
	free(path);
	free(types);
}

static void check_list_append(struct ctx *c)
{
	json_t *order = json_object();  /* key -> array of values */
	json_t *writer = json_object(); /* "k/v" -> op index */
	json_t *found = json_object();  /* class -> count */
	struct examples x = { 0 };
	size_t txns = 0;
	size_t i;
	char key[64];
	char desc[256];

	for (size_t k = 0; k < c->n_ops; k++)
		if (strcmp(c->ops[k].f, "txn") == 0)
			txns++;
	if (txns == 0) {
		result(c, "list-append", true, "no list-append transactions");
		goto out;
	}
	if (c->ref < 0) {
		result(c, "list-append", false,
		       "no dump gives the final order");
		goto out;
	}
	/* Version order per key: the final log of the reference node. */
	struct dump *d = &c->dumps[c->ref];
	for (size_t j = 0; j < d->n; j++) {
		struct ev *e = &d->evs[j];
		json_t *arr;
		if (strncmp(e->stream, "la-", 3) != 0 || e->k < 0)
			continue;
		snprintf(key, sizeof key, "%" PRId64, e->k);
		arr = json_object_get(order, key);
		if (arr == NULL) {
			arr = json_array();
			json_object_set_new(order, key, arr);
		}
		json_array_append_new(arr, json_integer(e->v));
	}
	/* Who appended each value. */
	for (size_t k = 0; k < c->n_ops; k++) {
		struct op *o = &c->ops[k];
		for (size_t m = 0; m < o->n_mops; m++) {
			if (o->mops[m].read)
				continue;
			snprintf(key, sizeof key, "%" PRId64 "/%" PRId64,
				 o->mops[m].key, o->mops[m].val);
			json_object_set_new(writer, key,
					    json_integer((json_int_t)k));
		}
	}
	/* Graph nodes: acknowledged transactions, and unacknowledged ones
	 * whose append is in the final order (they committed). */
	c->g = calloc(c->n_ops + 1, sizeof *c->g);
	c->n_g = 0;
	json_t *committed = json_object(); /* "k/v" present in final order */
	const char *kk;
	json_t *arr;
	json_object_foreach(order, kk, arr)
	{
		json_t *v;
		json_array_foreach(arr, i, v)
		{
			snprintf(key, sizeof key, "%s/%" JSON_INTEGER_FORMAT,
				 kk, json_integer_value(v));
			json_object_set_new(committed, key,
					    json_integer((json_int_t)i));
		}
	}
	for (size_t k = 0; k < c->n_ops; k++) {
		struct op *o = &c->ops[k];
		bool in = false;
		if (strcmp(o->f, "txn") != 0)
			continue;
		if (o->type == OP_OK)
			in = true;
		else if (o->type == OP_INFO || o->type == OP_OPEN) {
			for (size_t m = 0; m < o->n_mops; m++) {
				if (o->mops[m].read)
					continue;
				snprintf(key, sizeof key,
					 "%" PRId64 "/%" PRId64, o->mops[m].key,
					 o->mops[m].val);
				if (json_object_get(committed, key) != NULL)
					in = true;
			}
		}
		if (!in)
			continue;
		o->gnode = (int)c->n_g;
		c->g[c->n_g].op = (int)k;
		c->n_g++;
	}
	/* ww edges along each key's order. */
	json_object_foreach(order, kk, arr)
	{
		int prev = -1;
		json_t *v;
		json_t *dups = json_object();
		json_array_foreach(arr, i, v)
		{
			json_t *w;
			int g = -1;
			snprintf(key, sizeof key, "%s/%" JSON_INTEGER_FORMAT,
				 kk, json_integer_value(v));
			if (json_object_get(dups, key) != NULL) {
				snprintf(desc, sizeof desc,
					 "key %s: value %" JSON_INTEGER_FORMAT
					 " twice in the final log",
					 kk, json_integer_value(v));
				anomaly(c, "duplicate-elements", desc);
				example(&x, "%s", desc);
			}
			json_object_set_new(dups, key, json_true());
			w = json_object_get(writer, key);
			if (w == NULL) {
				snprintf(desc, sizeof desc,
					 "key %s: value %" JSON_INTEGER_FORMAT
					 " in the final log was never "
					 "appended",
					 kk, json_integer_value(v));
				anomaly(c, "garbage-write", desc);
				example(&x, "%s", desc);
			} else {
				g = c->ops[json_integer_value(w)].gnode;
				if (c->ops[json_integer_value(w)].type ==
				    OP_FAIL) {
					snprintf(desc, sizeof desc,
						 "key %s: value "
						 "%" JSON_INTEGER_FORMAT
						 " of a failed transaction is "
						 "in the final log",
						 kk, json_integer_value(v));
					anomaly(c, "aborted-write-committed",
						desc);
					example(&x, "%s", desc);
				}
			}
			if (prev >= 0 && g >= 0)
				add_edge(c, prev, g, E_WW);
			prev = g;
		}
		json_decref(dups);
	}
	/* Reads: G1a, garbage, duplicates, order; wr and rw edges. */
	for (size_t km = 0; km < c->n_ops * CHK_MOPS_MAX; km++) {
		struct op *o = &c->ops[km / CHK_MOPS_MAX];
		struct mop *mo = &o->mops[km % CHK_MOPS_MAX];
		json_t *fin;
		size_t len;
		bool prefix = true;
		json_t *seen;
		json_t *v;
		if (km % CHK_MOPS_MAX >= o->n_mops || o->gnode < 0 ||
		    !mo->read || mo->list == NULL)
			continue;
		snprintf(key, sizeof key, "%" PRId64, mo->key);
		fin = json_object_get(order, key);
		len = json_array_size(mo->list);
		seen = json_object();
		json_array_foreach(mo->list, i, v)
		{
			char vk[64];
			json_t *w;
			snprintf(vk, sizeof vk, "%" JSON_INTEGER_FORMAT,
				 json_integer_value(v));
			if (json_object_get(seen, vk) != NULL) {
				snprintf(desc, sizeof desc,
					 "line %zu read key %" PRId64
					 " with value %s twice",
					 o->line_done, mo->key, vk);
				anomaly(c, "duplicate-elements", desc);
				example(&x, "%s", desc);
			}
			json_object_set_new(seen, vk, json_true());
			snprintf(vk, sizeof vk,
				 "%" PRId64 "/%" JSON_INTEGER_FORMAT, mo->key,
				 json_integer_value(v));
			w = json_object_get(writer, vk);
			if (w == NULL) {
				snprintf(desc, sizeof desc,
					 "line %zu read key %" PRId64
					 " value %" JSON_INTEGER_FORMAT
					 " that nobody appended",
					 o->line_done, mo->key,
					 json_integer_value(v));
				anomaly(c, "garbage-read", desc);
				example(&x, "%s", desc);
			} else if (c->ops[json_integer_value(w)].type ==
				   OP_FAIL) {
				snprintf(desc, sizeof desc,
					 "G1a: line %zu read key %" PRId64
					 " value %" JSON_INTEGER_FORMAT
					 " of a failed transaction (line %zu)",
					 o->line_done, mo->key,
					 json_integer_value(v),
					 c->ops[json_integer_value(w)]
						 .line_done);
				anomaly(c, "G1a", desc);
				example(&x, "%s", desc);
			}
			if (i >= json_array_size(fin) ||
			    json_integer_value(json_array_get(fin, i)) !=
				    json_integer_value(v))
				prefix = false;
		}
		json_decref(seen);
		if (!prefix) {
			snprintf(desc, sizeof desc,
				 "line %zu read key %" PRId64
				 " in an order that is no prefix of the final "
				 "order (%zu values read, %zu final)",
				 o->line_done, mo->key, len,
				 json_array_size(fin));
			anomaly(c, "incompatible-order", desc);
			example(&x, "%s", desc);
			continue;
		}
		if (len > 0) {
			snprintf(key, sizeof key,
				 "%" PRId64 "/%" JSON_INTEGER_FORMAT, mo->key,
				 json_integer_value(
					 json_array_get(fin, len - 1)));
			json_t *w = json_object_get(writer, key);
			if (w != NULL)
				add_edge(c, c->ops[json_integer_value(w)].gnode,
					 o->gnode, E_WR);
		}
		if (len < json_array_size(fin)) {
			snprintf(key, sizeof key,
				 "%" PRId64 "/%" JSON_INTEGER_FORMAT, mo->key,
				 json_integer_value(json_array_get(fin, len)));
			json_t *w = json_object_get(writer, key);
			if (w != NULL)
				add_edge(c, o->gnode,
					 c->ops[json_integer_value(w)].gnode,
					 E_RW);
		}
	}
	/* Realtime edges (transitively reduced through a frontier of the
	 * latest completed transactions) and process edges. */
	{
		int *frontier = malloc((c->n_ops + 1) * sizeof(int));
		size_t nf = 0;
		int **preds = calloc(c->n_ops + 1, sizeof(int *));
		size_t *npreds = calloc(c->n_ops + 1, sizeof(size_t));
		json_t *last = json_object(); /* process -> gnode */
		/* Lines in order: invocations and completions. */
		int *at_line =
			malloc((json_array_size(c->history) + 1) * sizeof(int));
		bool *is_done =
			calloc(json_array_size(c->history) + 1, sizeof(bool));
		for (i = 0; i < json_array_size(c->history); i++)
			at_line[i] = -1;
		for (size_t k = 0; k < c->n_ops; k++) {
			struct op *o = &c->ops[k];
			if (o->gnode < 0)
				continue;
			at_line[o->line_inv] = (int)k;
			if (o->type == OP_OK) {
				at_line[o->line_done] = (int)k;
				is_done[o->line_done] = true;
			}
		}
		for (i = 0; i < json_array_size(c->history); i++) {
			int k = at_line[i];
			struct op *o;
			if (k < 0)
				continue;
			o = &c->ops[k];
			if (!is_done[i]) {
				char pk[32];
				preds[k] = malloc((nf + 1) * sizeof(int));
				memcpy(preds[k], frontier, nf * sizeof(int));
				npreds[k] = nf;
				for (size_t f = 0; f < nf; f++)
					add_edge(c, c->ops[frontier[f]].gnode,
						 o->gnode, E_RT);
				snprintf(pk, sizeof pk, "%" PRIu64, o->process);
				json_t *p = json_object_get(last, pk);
				if (p != NULL)
					add_edge(c, (int)json_integer_value(p),
						 o->gnode, E_PR);
				json_object_set_new(last, pk,
						    json_integer(o->gnode));
				continue;
			}
			/* Completed: drop its predecessors, join. */
			size_t w = 0;
			for (size_t f = 0; f < nf; f++) {
				bool pred = false;
				for (size_t p = 0; p < npreds[k]; p++)
					if (preds[k][p] == frontier[f])
						pred = true;
				if (!pred)
					frontier[w++] = frontier[f];
			}
			nf = w;
			frontier[nf++] = k;
		}
		for (size_t k = 0; k < c->n_ops; k++)
			free(preds[k]);
		free(preds);
		free(npreds);
		free(frontier);
		free(at_line);
		free(is_done);
		json_decref(last);
	}
	/* Cycles, without and then with realtime and process edges. */
	find_cycles(c, E_WW, found);
	find_cycles(c, E_WW | E_WR, found);
	find_single(c, E_WW | E_WR, found);
	find_cycles(c, E_WW | E_WR | E_RW, found);
	find_cycles(c, E_WW | E_RT | E_PR, found);
	find_cycles(c, E_WW | E_WR | E_RT | E_PR, found);
	find_single(c, E_WW | E_WR | E_RT | E_PR, found);
	find_cycles(c, E_WW | E_WR | E_RW | E_RT | E_PR, found);
	{
		const char *cls;
		json_t *count;
		json_object_foreach(found, cls, count)
		{
			json_t *list = json_object_get(c->anomalies, cls);
			example(&x, "%s x%" JSON_INTEGER_FORMAT ": %s", cls,
				json_integer_value(count),
				list != NULL ? json_string_value(
						       json_array_get(list, 0))
					     : "");
		}
	}
	size_t edges = 0;
	for (size_t g = 0; g < c->n_g; g++)
		edges += c->g[g].n_out;
	if (x.count == 0)
		result(c, "list-append", true,
		       "%zu transactions, %zu keys, graph of %zu nodes and %zu "
		       "edges: no anomaly (strict serializable)",
		       txns, json_object_size(order), c->n_g, edges);
	else
		result(c, "list-append", false, "%u anomalies: %s", x.count,
		       x.text);
	json_decref(committed);
out:
	json_decref(order);
	json_decref(writer);
	json_decref(found);
}

/* ---- reads ---- */

static void check_monotonic(struct ctx *c)
{
	struct examples x = { 0 };
	json_t *last = json_object(); /* "p/k" -> length; "p/log" -> pos */
	size_t reads = 0;

	for (size_t k = 0; k < c->n_ops; k++) {
		struct op *o = &c->ops[k];
		char key[64];
		int64_t now;
		if (o->type != OP_OK)
			continue;
		if (strcmp(o->f, "txn") == 0 && o->has_read &&
		    o->rlist != NULL) {
			snprintf(key, sizeof key, "%" PRIu64 "/%" PRId64,
				 o->process, o->rkey);
			now = (int64_t)json_array_size(o->rlist);
		} else if (strcmp(o->f, "read-all") == 0) {
			json_t *v = json_object_get(o->done, "value");
			json_t *evs = json_object_get(v, "events");
			size_t n = json_array_size(evs);
			snprintf(key, sizeof key, "%" PRIu64 "/log",
				 o->process);
			if (n == 0)
				now = int_field(v, "from", 1) - 1;
			else
				now = json_integer_value(json_array_get(
					json_array_get(evs, n - 1), 0));
			if (json_object_get(v, "end") != json_true())
				continue;
		} else {
			continue;
		}
		reads++;
		json_t *prev = json_object_get(last, key);
		if (prev != NULL && json_integer_value(prev) > now)
			example(&x,
				"process %" PRIu64
				" saw %s at %" JSON_INTEGER_FORMAT
				" then at %" PRId64 " (line %zu)",
				o->process, strchr(key, '/') + 1,
				json_integer_value(prev), now, o->line_done);
		if (prev == NULL || json_integer_value(prev) < now)
			json_object_set_new(last, key,
					    json_integer((json_int_t)now));
	}
	json_decref(last);
	result(c, "monotonic-reads", x.count == 0, "%zu reads%s%s", reads,
	       x.count > 0 ? ": " : ", none went back within a process",
	       x.text);
}

static void check_follower_reads(struct ctx *c)
{
	struct examples x = { 0 };
	size_t reads = 0;
	size_t events = 0;

	for (size_t k = 0; k < c->n_ops; k++) {
		struct op *o = &c->ops[k];
		json_t *v;
		json_t *evs;
		json_t *e;
		size_t i;
		int64_t expect;
		if (o->type != OP_OK || strcmp(o->f, "read-all") != 0)
			continue;
		reads++;
		v = json_object_get(o->done, "value");
		evs = json_object_get(v, "events");
		expect = int_field(v, "from", 1);
		json_array_foreach(evs, i, e)
		{
			int64_t pos = json_integer_value(json_array_get(e, 0));
			const char *id =
				json_string_value(json_array_get(e, 1));
			events++;
			if (pos != expect) {
				example(&x,
					"line %zu: position %" PRId64
					" where %" PRId64 " was due",
					o->line_done, pos, expect);
				break;
			}
			expect++;
			if (c->ref < 0)
				continue;
			struct dump *d = &c->dumps[c->ref];
			if (pos < 1 || (uint64_t)pos > d->n) {
				example(&x,
					"line %zu: node %" PRId64
					" served position %" PRId64
					" beyond the final log (%zu)",
					o->line_done, int_field(v, "node", 0),
					pos, d->n);
				break;
			}
			if (id == NULL || strcmp(d->evs[pos - 1].id, id) != 0) {
				example(&x,
					"line %zu: node %" PRId64
					" served %s at position %" PRId64
					", the final log holds %s",
					o->line_done, int_field(v, "node", 0),
					id != NULL ? id : "?", pos,
					d->evs[pos - 1].id);
				break;
			}
		}
	}
	result(c, "follower-reads", x.count == 0 && (reads == 0 || c->ref >= 0),
	       "%zu reads, %zu events%s%s", reads, events,
	       x.count > 0 ? ": " : ", all as in the final log", x.text);
}

static void check_staleness(struct ctx *c)
{
	/* Acknowledged positions in completion order. */
	uint64_t max_lag = 0;
	double sum = 0;
	size_t n = 0;
	uint64_t per_node[CHK_NODES_MAX + 1] = { 0 };
	size_t i;
	json_t *line;
	int64_t acked = 0;
	json_t *acked_at = json_object(); /* op invoke line -> acked then */

	json_array_foreach(c->history, i, line)
	{
		const char *type = str_field(line, "type");
		const char *f = str_field(line, "f");
		if (type == NULL || f == NULL)
			continue;
		if (strcmp(type, "ok") == 0) {
			int64_t p = int_field(line, "position", -1);
			if (p > acked)
				acked = p;
		}
		if (strcmp(type, "invoke") == 0 && strcmp(f, "read-all") == 0) {
			char key[32];
			snprintf(key, sizeof key, "%zu", i);
			json_object_set_new(acked_at, key,
					    json_integer((json_int_t)acked));
		}
	}
	for (size_t k = 0; k < c->n_ops; k++) {
		struct op *o = &c->ops[k];
		json_t *v;
		json_t *evs;
		char key[32];
		int64_t seen;
		int64_t then;
		if (o->type != OP_OK || strcmp(o->f, "read-all") != 0)
			continue;
		v = json_object_get(o->done, "value");
		if (json_object_get(v, "end") != json_true())
			continue;
		evs = json_object_get(v, "events");
		seen = json_array_size(evs) > 0
			       ? json_integer_value(json_array_get(
					 json_array_get(
						 evs, json_array_size(evs) - 1),
					 0))
			       : int_field(v, "from", 1) - 1;
		snprintf(key, sizeof key, "%zu", o->line_inv);
		then = json_integer_value(json_object_get(acked_at, key));
		uint64_t lag = then > seen ? (uint64_t)(then - seen) : 0;
		int64_t node = int_field(v, "node", 0);
		if (lag > max_lag)
			max_lag = lag;
		if (node >= 1 && node <= CHK_NODES_MAX && lag > per_node[node])
			per_node[node] = lag;
		sum += (double)lag;
		n++;
	}
	json_decref(acked_at);
	char nodes[128] = "";
	for (unsigned k = 1; k <= c->in->n_nodes && k <= CHK_NODES_MAX; k++) {
		size_t used = strlen(nodes);
		snprintf(nodes + used, sizeof nodes - used, "%sn%u %" PRIu64,
			 used > 0 ? ", " : "", k, per_node[k]);
	}
	result(c, "follower-staleness", true,
	       "%zu reads to the end: lag behind acknowledged appends max "
	       "%" PRIu64
	       " mean %.1f positions (per node max: %s); a report, "
	       "not a check: consistency any may lag",
	       n, max_lag, n > 0 ? sum / (double)n : 0.0, nodes);
}

static const char *const bad_patterns[] = {
	"Assertion",     "assertion failed", "Aborted",
	"core dumped",   "AddressSanitizer", "runtime error:",
	"LeakSanitizer", "Segmentation",     "jepsen: node exited unexpectedly",
};

static void check_logs(struct ctx *c)
{
	struct examples x = { 0 };
	struct examples allowed = { 0 };
	unsigned scanned = 0;

	for (unsigned i = 0; i < c->in->n_nodes; i++) {
		const char *path = c->in->log_paths[i];
		FILE *f;
		char *line = NULL;
		size_t cap = 0;
		size_t lineno = 0;
		if (path == NULL)
			continue;
		f = fopen(path, "r");
		if (f == NULL) {
			example(&x, "node %u: cannot open %s", i + 1, path);
			continue;
		}
		scanned++;
		while (getline(&line, &cap, f) != -1) {
			lineno++;
			for (size_t p = 0;
			     p < sizeof bad_patterns / sizeof bad_patterns[0];
			     p++) {
				if (strstr(line, bad_patterns[p]) == NULL)
					continue;
				line[strcspn(line, "\n")] = '\0';
				if (strlen(line) > 160)
					line[160] = '\0';
				if (c->in->allow_missing[i])
					example(&allowed, "node %u:%zu: %s",
						i + 1, lineno, line);
				else
					example(&x, "node %u:%zu: %s", i + 1,
						lineno, line);
				break;
			}
		}
		free(line);
		fclose(f);
	}
	if (x.count == 0)
		result(c, "node-logs", true,
		       "%u logs scanned: no assertion, abort, sanitizer report "
		       "or unexpected exit%s%s",
		       scanned,
		       allowed.count > 0 ? "; on nodes whose files were "
					   "corrupted (allowed): "
					 : "",
		       allowed.text);
	else
		result(c, "node-logs", false, "%u findings: %s", x.count,
		       x.text);
}

/* ---- subscriptions ---- */

/* Subscribers of one history at most. */
#define CHK_SUBS_MAX 16

/* One event a subscriber received. */
struct sub_ev {
	int64_t pos;
	const char *stream; /* borrowed */
	int64_t version;
	const char *id; /* borrowed */
	size_t line;    /* of its sub-next completion */
};

/* One subscriber, over every subscription it opened. */
struct subscriber {
	const char *name;   /* borrowed */
	bool category;      /* a category, else the global log */
	const char *target; /* borrowed: the category */
	int64_t node;       /* seeded first with it */
	struct sub_ev *evs; /* owned */
	size_t n;
	size_t cap;
	unsigned subscriptions; /* opened */
	unsigned lives;         /* live markers, all subscriptions */
	unsigned lives_now;     /* of the current subscription */
	unsigned extra_lives;   /* a second one within a subscription */
	unsigned ended;         /* subscriptions that ended for good */
	bool closed;            /* its sub-close was recorded */
};

/* True when @stream's category (its name before the first '-') is @cat. */
static bool in_category(const char *stream, const char *cat)
{
	const char *dash = strchr(stream, '-');
	size_t len = dash != NULL ? (size_t)(dash - stream) : strlen(stream);
	return strlen(cat) == len && strncmp(stream, cat, len) == 0;
}

static struct subscriber *sub_get(struct subscriber *subs, size_t *n,
				  const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(subs[i].name, name) == 0)
			return &subs[i];
	if (*n == CHK_SUBS_MAX)
		return NULL;
	memset(&subs[*n], 0, sizeof subs[*n]);
	subs[*n].name = name;
	subs[*n].target = "";
	return &subs[(*n)++];
}

/* The reference dump's event at @pos, or NULL. */
static const struct ev *ref_at(struct ctx *c, int64_t pos)
{
	const struct dump *d;
	if (c->ref < 0 || pos < 1)
		return NULL;
	d = &c->dumps[c->ref];
	if ((uint64_t)pos <= d->n && d->evs[pos - 1].position == (uint64_t)pos)
		return &d->evs[pos - 1];
	for (size_t i = 0; i < d->n; i++)
		if (d->evs[i].position == (uint64_t)pos)
			return &d->evs[i];
	return NULL;
}

static bool sub_matches(const struct subscriber *s, const struct ev *e)
{
	return !s->category || in_category(e->stream, s->target);
}

/* The first position after @after the subscriber's filter matches in the
 * reference dump, or 0 when none. */
static int64_t next_match(struct ctx *c, const struct subscriber *s,
			  int64_t after)
{
	const struct dump *d = &c->dumps[c->ref];
	for (size_t i = 0; i < d->n; i++) {
		const struct ev *e = &d->evs[i];
		if ((int64_t)e->position > after && sub_matches(s, e))
			return (int64_t)e->position;
	}
	return 0;
}

static size_t load_subs(struct ctx *c, struct subscriber *subs)
{
	size_t n = 0;
	size_t i;
	json_t *line;

	json_array_foreach(c->history, i, line)
	{
		const char *type = str_field(line, "type");
		const char *f = str_field(line, "f");
		json_t *v = json_object_get(line, "value");
		const char *name =
			json_is_object(v) ? str_field(v, "sub") : NULL;
		struct subscriber *s;
		if (type == NULL || f == NULL || name == NULL)
			continue;
		if (strcmp(f, "subscribe") != 0 && strcmp(f, "sub-next") != 0 &&
		    strcmp(f, "sub-close") != 0)
			continue;
		s = sub_get(subs, &n, name);
		if (s == NULL)
			continue;
		if (strcmp(f, "subscribe") == 0) {
			if (strcmp(type, "ok") != 0)
				continue;
			const char *kind = str_field(v, "kind");
			s->category =
				kind != NULL && strcmp(kind, "category") == 0;
			if (str_field(v, "target") != NULL)
				s->target = str_field(v, "target");
			s->node = int_field(v, "node", 0);
			s->subscriptions++;
			s->lives_now = 0;
		} else if (strcmp(f, "sub-close") == 0) {
			if (strcmp(type, "ok") == 0)
				s->closed = true;
		} else if (strcmp(type, "fail") == 0) {
			s->ended++;
		} else if (strcmp(type, "ok") == 0) {
			json_t *evs = json_object_get(v, "events");
			size_t j;
			json_t *e;
			json_array_foreach(evs, j, e)
			{
				struct sub_ev *se;
				if (s->n == s->cap) {
					s->cap = s->cap > 0 ? s->cap * 2 : 64;
					s->evs = realloc(
						s->evs,
						s->cap * sizeof *s->evs);
				}
				se = &s->evs[s->n++];
				se->pos = json_integer_value(
					json_array_get(e, 0));
				se->stream =
					json_string_value(json_array_get(e, 1));
				se->version = json_integer_value(
					json_array_get(e, 2));
				se->id =
					json_string_value(json_array_get(e, 3));
				if (se->stream == NULL)
					se->stream = "";
				if (se->id == NULL)
					se->id = "";
				se->line = i;
			}
			if (json_object_get(v, "live") != NULL) {
				s->lives++;
				if (++s->lives_now > 1)
					s->extra_lives++;
			}
		}
	}
	return n;
}

/* subscriptions-gapless, -no-duplicates, -match-log, -complete, -live. */
static void check_subscriptions(struct ctx *c)
{
	struct subscriber subs[CHK_SUBS_MAX];
	size_t n = load_subs(c, subs);
	struct examples gap = { 0 };
	struct examples dup = { 0 };
	struct examples bad = { 0 };
	struct examples tail = { 0 };
	struct examples live = { 0 };
	size_t events = 0;
	unsigned resubs = 0;
	bool have_ref = c->ref >= 0;
	char summary[256];

	for (size_t k = 0; k < n; k++) {
		struct subscriber *s = &subs[k];
		int64_t prev = 0;
		unsigned gaps = 0;
		unsigned dups = 0;
		unsigned bads = 0;
		events += s->n;
		if (s->subscriptions > 1)
			resubs += s->subscriptions - 1;
		for (size_t i = 0; i < s->n; i++) {
			const struct sub_ev *e = &s->evs[i];
			const struct ev *r = ref_at(c, e->pos);
			if (e->pos <= prev) {
				if (dups++ == 0)
					example(&dup,
						"%s got position %" PRId64
						" again (or out of order) at "
						"line %zu, after %" PRId64,
						s->name, e->pos, e->line, prev);
				continue;
			}
			if (r == NULL) {
				if (bads++ == 0)
					example(&bad,
						"%s got position %" PRId64
						" (line %zu), not in the "
						"final log",
						s->name, e->pos, e->line);
			} else if (strcmp(r->id, e->id) != 0 ||
				   strcmp(r->stream, e->stream) != 0 ||
				   r->version != (uint64_t)e->version) {
				if (bads++ == 0)
					example(&bad,
						"%s got %s %s@%" PRId64
						" at position %" PRId64
						" (line %zu), the final log "
						"holds %s %s@%" PRIu64,
						s->name, e->id, e->stream,
						e->version, e->pos, e->line,
						r->id, r->stream, r->version);
			} else if (!sub_matches(s, r)) {
				if (bads++ == 0)
					example(&bad,
						"%s (category %s) got %s at "
						"position %" PRId64
						" (line %zu)",
						s->name, s->target, r->stream,
						e->pos, e->line);
			}
			int64_t want = !s->category ? prev + 1
				       : have_ref   ? next_match(c, s, prev)
						    : e->pos;
			if (e->pos != want && gaps++ == 0)
				example(&gap,
					"%s got position %" PRId64
					" (line %zu) where %" PRId64 " was due",
					s->name, e->pos, e->line, want);
			prev = e->pos;
		}
		/* Nothing unseen: by the end it had everything its filter
		 * matches in the final log. */
		if (have_ref) {
			int64_t last = 0;
			size_t unseen = 0;
			const struct dump *d = &c->dumps[c->ref];
			for (size_t i = 0; i < d->n; i++) {
				if (!sub_matches(s, &d->evs[i]))
					continue;
				last = (int64_t)d->evs[i].position;
				if (last > prev)
					unseen++;
			}
			if (prev < last)
				example(&tail,
					"%s (node %" PRId64
					" first, %s%s) stopped at "
					"position %" PRId64
					", the final log's last it should "
					"see is %" PRId64 " (%zu unseen)",
					s->name, s->node,
					s->category ? "category " : "all",
					s->category ? s->target : "", prev,
					last, unseen);
		}
		if (s->extra_lives > 0)
			example(&live,
				"%s: %u live markers in one subscription",
				s->name, s->extra_lives + 1);
		else if (s->n > 0 && s->lives == 0)
			example(&live, "%s: never went live", s->name);
	}
	snprintf(summary, sizeof summary,
		 "%zu subscribers, %zu events delivered, %u resubscriptions", n,
		 events, resubs);
	if (n == 0) {
		result(c, "subscriptions-gapless", true,
		       "no subscribers in this history");
		result(c, "subscriptions-no-duplicates", true,
		       "no subscribers in this history");
		result(c, "subscriptions-match-log", true,
		       "no subscribers in this history");
		result(c, "subscriptions-complete", true,
		       "no subscribers in this history");
		result(c, "subscriptions-live", true,
		       "no subscribers in this history");
	} else {
		result(c, "subscriptions-gapless", gap.count == 0, "%s%s%s",
		       summary, gap.count > 0 ? ": " : ", none skipped one",
		       gap.text);
		result(c, "subscriptions-no-duplicates", dup.count == 0, "%s%s",
		       dup.count > 0 ? "" : "no event delivered twice",
		       dup.text);
		result(c, "subscriptions-match-log", have_ref && bad.count == 0,
		       "%s%s",
		       !have_ref       ? "no final dump to compare with"
		       : bad.count > 0 ? ""
				       : "every event delivered is the final "
					 "log's at its position",
		       bad.text);
		result(c, "subscriptions-complete", have_ref && tail.count == 0,
		       "%s%s",
		       !have_ref ? "no final dump to compare with"
		       : tail.count > 0
			       ? ""
			       : "every subscriber received all its filter "
				 "matches in the final log",
		       tail.text);
		result(c, "subscriptions-live", live.count == 0, "%s%s",
		       live.count > 0 ? ""
				      : "one live marker per subscription that "
					"delivered",
		       live.text);
	}
	for (size_t k = 0; k < n; k++)
		free(subs[k].evs);
}

/* ---- entry ---- */

int chk_run(const struct chk_input *in, struct chk_report *out, char *errmsg,
	    size_t errmsg_len)
{
	struct ctx c = { .in = in, .rep = out, .ref = -1 };
	int rv;

	memset(out, 0, sizeof *out);
	c.anomalies = json_object();
	c.cycles = json_object();
	rv = load_history(&c, errmsg, errmsg_len);
	if (rv != 0)
		goto err_after_anomalies;
	for (unsigned i = 0; i < in->n_nodes && i < CHK_NODES_MAX; i++)
		load_dump(&c, i);

	check_dumps(&c);
	check_dense(&c);
	check_identical(&c);
	check_stream_versions(&c);
	check_unique(&c);
	check_acked(&c);
	check_failed(&c);
	check_retry(&c);
	check_one_success(&c);
	check_list_append(&c);
	check_monotonic(&c);
	check_follower_reads(&c);
	check_staleness(&c);
	check_subscriptions(&c);
	check_logs(&c);

	{
		const char *cls;
		json_t *list;
		json_object_foreach(c.anomalies, cls, list)
		{
			size_t used = strlen(out->anomalies);
			snprintf(out->anomalies + used,
				 sizeof out->anomalies - used, "%s%s",
				 used > 0 ? " " : "", cls);
		}
	}
	if (in->anomalies_path != NULL) {
		json_dump_file(c.anomalies, in->anomalies_path,
			       JSON_INDENT(1) | JSON_SORT_KEYS);
	}

	for (size_t g = 0; g < c.n_g; g++)
		free(c.g[g].out);
	free(c.g);
	for (unsigned i = 0; i < CHK_NODES_MAX; i++) {
		free(c.dumps[i].evs);
		json_decref(c.dumps[i].lines);
	}
	free(c.ops);
	json_decref(c.history);
	json_decref(c.anomalies);
	json_decref(c.cycles);
	return 0;

err_after_anomalies:
	json_decref(c.cycles);
	json_decref(c.anomalies);
	return rv;
}

const struct chk_result *chk_find(const struct chk_report *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->results[i].name, name) == 0)
			return &r->results[i];
	return NULL;
}

bool chk_all_passed(const struct chk_report *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (!r->results[i].pass)
			return false;
	return r->n > 0;
}

void chk_print(const struct chk_report *r, FILE *f)
{
	unsigned passed = 0;
	unsigned failed = 0;

	for (size_t i = 0; i < r->n; i++) {
		fprintf(f, "%s %s: %s\n", r->results[i].pass ? "PASS" : "FAIL",
			r->results[i].name, r->results[i].detail);
		if (r->results[i].pass)
			passed++;
		else
			failed++;
	}
	fprintf(f, "checks: %u passed, %u failed\n", passed, failed);
}
