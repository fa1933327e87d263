/* http: the HTTP/JSON gateway (see http.h and docs/http-api.md).
 *
 * The request life cycle, as libmicrohttpd drives it:
 * 1. on_access with *con_cls NULL: the headers are in; the route is
 *    chosen and a struct http_req made; a body that announces more than
 *    the limits is refused before it is read;
 * 2. on_access with body bytes: they are buffered (bounded per request and
 *    over the node);
 * 3. on_access with nothing more: the request is served. A synchronous
 *    answer is queued at once; a request that must wait stores what it
 *    needs, suspends the connection and returns; when its answer is ready
 *    (consensus callback, applied position, timer) it is stored in the
 *    request and the connection resumed, and MHD calls on_access again,
 *    which queues it;
 * 4. on_completed frees the request.
 *
 * Server-Sent Events use a response whose body comes from sse_read: it
 * reads the next page of events from the store after the last one sent;
 * when there is nothing new it suspends the connection until the next
 * applied entry (or the keepalive timer). Nothing is buffered but the page
 * being written, so a slow reader costs one page. */
#include "http.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netdb.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "disk.h"
#include "http_json.h"
#include "metrics.h"
#include "node.h"
#include "uuid.h"
#ifdef CAIRN_HAVE_WEB
#include "web.h"
#endif

/* Bytes of a request target kept for redirects; a longer one is
 * answered 414. */
#define HTTP_URI_MAX 4096

/* How often waiting reads are checked against their deadline and idle SSE
 * connections against their keepalive. */
#define HTTP_TICK_MS 250

enum route {
	ROUTE_NOT_FOUND = 0,
	ROUTE_BAD_METHOD, /* known path, other method */
	ROUTE_HEALTH,
	ROUTE_READY,
	ROUTE_CLUSTER,
	ROUTE_METRICS,
	ROUTE_APPEND,         /* POST /streams/{s} */
	ROUTE_READ_STREAM,    /* GET /streams/{s} */
	ROUTE_READ_ALL,       /* GET /all */
	ROUTE_LIST,           /* GET /streams: categories or streams */
	ROUTE_CHECKPOINT,     /* PUT /checkpoints/{name} */
	ROUTE_CHECKPOINT_GET, /* GET /checkpoints/{name} */
	ROUTE_SNAPSHOT,       /* PUT /snapshots/{stream} */
	ROUTE_SNAPSHOT_GET,   /* GET /snapshots/{stream} */
	ROUTE_SUBSCRIBE,      /* GET /subscribe */
	ROUTE_SYNC,           /* POST /sync */
	ROUTE_WEB,            /* a web page or asset */
	ROUTE_PREFLIGHT,      /* OPTIONS: a browser's CORS preflight */
};

/* What a request is waiting for, if anything. */
enum wait_kind {
	WAIT_NONE = 0,
	WAIT_APPEND,   /* a consensus append */
	WAIT_BARRIER,  /* a leader read's barrier */
	WAIT_POSITION, /* an at-least read */
	WAIT_EVENTS,   /* an SSE connection with nothing to send */
};

/* SSE: what a subscription follows. */
enum sse_kind {
	SSE_ALL = 0,
	SSE_CATEGORY,
	SSE_STREAM,
};

/* Where a request is in its life cycle. */
enum phase {
	PHASE_NEW = 0, /* headers only */
	PHASE_BODY,    /* routed; taking the body */
	PHASE_SERVED,  /* served: answered or waiting */
};

struct http_req {
	struct http *h; /* borrowed */
	enum phase phase;
	struct MHD_Connection *conn; /* borrowed from MHD */
	enum route route;
	char raw_uri[HTTP_URI_MAX + 1]; /* the request target as sent */
	char *path;                     /* owned: the decoded path suffix */
	size_t path_len;                /* bytes in path */
	const char *allow;              /* Allow header for ROUTE_BAD_METHOD */
	char *body;                     /* owned: the request body */
	size_t body_len;                /* bytes in body */
	size_t body_cap;                /* allocated */
	size_t body_counted;            /* counted in h->body_bytes */
	int refuse;                     /* an HTTP status to answer with at
					 * the end, the body skipped */
	const char *refuse_code;        /* its error code */
	const char *refuse_msg;         /* its message */
	bool suspended;                 /* MHD_suspend_connection in effect */
	enum wait_kind wait;            /* what it waits for */
	uint64_t deadline_ms;           /* WAIT_POSITION: uv_now() bound */
	uint64_t min_position;          /* WAIT_POSITION: wanted position */
	struct MHD_Response *response;  /* owned until queued */
	unsigned status;                /* for response */
	uint64_t start_us;              /* for the latency histogram */

	/* appends and /sync */
	struct http_body parsed;           /* the body's transactions */
	struct store_part_result *results; /* owned: parts of a batch */
	struct consensus_append ca;        /* the batch in Raft */
	uint32_t next_batch;               /* /sync: the next to submit */
	json_t *sync_results;              /* /sync: results so far */
	struct consensus_barrier barrier;  /* leader reads */

	/* SSE */
	enum sse_kind sse;    /* what it follows */
	char *sse_name;       /* owned: stream or category */
	size_t sse_name_len;  /* bytes in sse_name */
	char *sse_type;       /* owned: type filter or NULL */
	size_t sse_type_len;  /* bytes in sse_type */
	uint64_t sse_next;    /* next position (all, category) or version
			       * (stream) to send */
	bool sse_live;        /* the live marker was sent */
	bool sse_end;         /* the stream ends (node stopping) */
	uint64_t sse_last_ms; /* uv_now() of the last bytes produced */
	char *snapshot_text;  /* owned: PUT /snapshots data, as stored */
	char *out;            /* owned: bytes produced, not yet taken */
	size_t out_len;       /* bytes in out */
	size_t out_off;       /* bytes of out already taken */
	size_t out_cap;       /* allocated */

	struct http_req *prev; /* in h->reqs */
	struct http_req *next;
};

struct http {
	struct node *node;     /* borrowed */
	struct MHD_Daemon *d;  /* owned */
	uv_poll_t poll;        /* MHD's epoll descriptor */
	uv_timer_t run_timer;  /* MHD_get_timeout, or at once */
	uv_timer_t tick;       /* deadlines and keepalives */
	bool stopping;         /* http_stop ran */
	size_t body_bytes;     /* request bodies buffered */
	struct http_req *reqs; /* every live request (list) */
	uint64_t last_leader;  /* for the leader change counter */
	bool in_run;           /* inside MHD_run */
	unsigned open_handles; /* closing: handles not yet closed */
	bool run_again;        /* a resume happened inside MHD_run */
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------------------
 * Driving MHD from the loop
 * ------------------------------------------------------------------------ */

static void run_mhd(struct http *h);

static void on_run_timer(uv_timer_t *t)
{
	run_mhd(t->data);
}

/* Sets the timer to MHD's next deadline (0: run again at once). */
static void schedule(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	if (h->d == NULL)
		return;
	if (MHD_get_timeout(h->d, &ms) != MHD_YES)
		ms = 1000; /* no deadline: look again now and then */
	if (ms > 1000)
		ms = 1000;
	uv_timer_start(&h->run_timer, on_run_timer, ms, 0);
}

static void run_mhd(struct http *h)
{
	if (h->d == NULL)
		return;
	h->in_run = true;
	do {
		h->run_again = false;
		MHD_run(h->d);
	} while (h->run_again && h->d != NULL);
	h->in_run = false;
	schedule(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	run_mhd(p->data);
}

/* Asks MHD to look at resumed connections soon. */
static void kick(struct http *h)
{
	if (h->in_run)
		h->run_again = true;
	else if (h->d != NULL)
		uv_timer_start(&h->run_timer, on_run_timer, 0, 0);
}

static void resume(struct http_req *r)
{
	if (!r->suspended)
		return;
	r->suspended = false;
	r->wait = WAIT_NONE;
	MHD_resume_connection(r->conn);
	kick(r->h);
}

static void suspend(struct http_req *r, enum wait_kind wait)
{
	assert(!r->suspended);
	r->wait = wait;
	r->suspended = true;
	MHD_suspend_connection(r->conn);
}

/* ------------------------------------------------------------------------
 * Responses
 * ------------------------------------------------------------------------ */

/* Stores a response for @r with @body (owned by the response). */
static void set_response(struct http_req *r, unsigned status, char *body,
			 size_t len, const char *content_type)
{
	struct MHD_Response *resp;

	if (r->response != NULL)
		MHD_destroy_response(r->response);
	resp = MHD_create_response_from_buffer(len, body,
					       MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		r->response = NULL;
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"no-store");
	r->response = resp;
	r->status = status;
}

/* Stores the JSON text of @v (a reference that is taken) as the response. */
static void set_json(struct http_req *r, unsigned status, json_t *v)
{
	char *buf = NULL;
	size_t len = 0;
	size_t cap = 0;

	if (v == NULL || http_json_dump_append(v, &buf, &len, &cap) != 0 ||
	    http_json_dump_append(json_null(), &buf, &len, &cap) != 0) {
		json_decref(v);
		free(buf);
		buf =
			strdup("{\"error\":{\"code\":\"internal\","
			       "\"message\":\"out of memory\"}}");
		set_response(r, 500, buf, buf ? strlen(buf) : 0,
			     "application/json");
		return;
	}
	json_decref(v);
	/* The second dump was only there to reserve a byte: a newline. */
	len -= 4;
	buf[len++] = '\n';
	set_response(r, status, buf, len, "application/json");
}

/* A new error object {"error": {"code", "message", ...@extra}}; @extra
 * (an object or NULL) is taken. */
static json_t *error_json(const char *code, json_t *extra, const char *fmt,
			  va_list ap) __attribute__((format(printf, 3, 0)));

static json_t *error_json(const char *code, json_t *extra, const char *fmt,
			  va_list ap)
{
	char msg[512];
	json_t *e;

	vsnprintf(msg, sizeof msg, fmt, ap);
	e = extra != NULL ? extra : json_object();
	json_object_set_new(e, "code", json_string(code));
	json_object_set_new(e, "message", json_string(msg));
	return json_pack("{s:o}", "error", e);
}

static void set_error_extra(struct http_req *r, unsigned status,
			    const char *code, json_t *extra, const char *fmt,
			    ...) __attribute__((format(printf, 5, 6)));

static void set_error_extra(struct http_req *r, unsigned status,
			    const char *code, json_t *extra, const char *fmt,
			    ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_json(r, status, error_json(code, extra, fmt, ap));
	va_end(ap);
}

#define set_error(r, status, code, ...) \
	set_error_extra(r, status, code, NULL, __VA_ARGS__)

static enum MHD_Result queue(struct http_req *r)
{
	enum MHD_Result rv;

	if (r->response == NULL)
		return MHD_NO; /* out of memory: close the connection */
	if (r->route == ROUTE_BAD_METHOD && r->allow != NULL)
		MHD_add_response_header(r->response, MHD_HTTP_HEADER_ALLOW,
					r->allow);
	/* The API is meant for pages of any origin (a web app writing to
	 * the leader while it was loaded from another node): CORS allows
	 * every origin; there are no credentials to protect. */
	MHD_add_response_header(r->response, "Access-Control-Allow-Origin",
				"*");
	MHD_add_response_header(r->response, "Access-Control-Expose-Headers",
				"Location");
	if (r->route == ROUTE_PREFLIGHT) {
		MHD_add_response_header(r->response,
					"Access-Control-Allow-Methods",
					"GET, HEAD, POST, PUT, OPTIONS");
		MHD_add_response_header(r->response,
					"Access-Control-Allow-Headers",
					"Content-Type, Cairn-Expected-Version, "
					"Cairn-Client-Id, "
					"Cairn-Client-Seq, Last-Event-ID");
		MHD_add_response_header(r->response, "Access-Control-Max-Age",
					"600");
	}
	rv = MHD_queue_response(r->conn, r->status, r->response);
	MHD_destroy_response(r->response);
	r->response = NULL;
	metrics_http_response(r->status);
	return rv;
}

/* ------------------------------------------------------------------------
 * Query parameters and headers
 * ------------------------------------------------------------------------ */

static const char *arg(struct http_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result find_key(void *cls, enum MHD_ValueKind kind,
				const char *key, const char *value)
{
	const char **want = cls;

	(void)kind;
	(void)value;
	if (strcmp(key, *want) == 0) {
		*want = NULL; /* found */
		return MHD_NO;
	}
	return MHD_YES;
}

/* True when the query has @key, with or without a value (`?all`). */
static bool has_arg(struct http_req *r, const char *key)
{
	const char *want = key;

	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, find_key,
				  &want);
	return want == NULL;
}

static const char *header(struct http_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}

/* Reads an optional u64 parameter; false after setting a 400. */
static bool arg_u64(struct http_req *r, const char *key, uint64_t *out)
{
	const char *v = arg(r, key);

	if (v == NULL)
		return true;
	if (http_parse_u64(v, out) != 0) {
		set_error(r, 400, "invalid_request",
			  "parameter %s must be a non-negative integer", key);
		return false;
	}
	return true;
}

/* The page limit; false after setting a 400. */
static bool arg_limit(struct http_req *r, uint32_t *limit)
{
	uint64_t v = HTTP_PAGE_LIMIT_DEFAULT;

	if (!arg_u64(r, "limit", &v))
		return false;
	if (v < 1 || v > HTTP_PAGE_LIMIT_MAX) {
		set_error(r, 400, "invalid_request", "limit must be 1..%u",
			  HTTP_PAGE_LIMIT_MAX);
		return false;
	}
	*limit = (uint32_t)v;
	return true;
}

/* A string parameter that must be a valid name part (category, type,
 * prefix): at most STORE_STREAM_NAME_MAX bytes. */
static bool arg_text(struct http_req *r, const char *key, const char **out,
		     size_t *len)
{
	const char *v = arg(r, key);

	*out = NULL;
	*len = 0;
	if (v == NULL || *v == '\0')
		return true;
	if (strlen(v) > STORE_STREAM_NAME_MAX) {
		set_error(r, 400, "invalid_request",
			  "parameter %s is longer than %u bytes", key,
			  STORE_STREAM_NAME_MAX);
		return false;
	}
	*out = v;
	*len = strlen(v);
	return true;
}

static bool content_type_json(struct http_req *r)
{
	const char *ct = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n = strlen("application/json");

	return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* ------------------------------------------------------------------------
 * Cluster, health, readiness, metrics
 * ------------------------------------------------------------------------ */

static const char *role_name(uint8_t role)
{
	switch (role) {
	case CONSENSUS_LEADER:
		return "leader";
	case CONSENSUS_CANDIDATE:
		return "candidate";
	case CONSENSUS_FOLLOWER:
		return "follower";
	default:
		return "unavailable";
	}
}

static const char *member_role_name(uint8_t role)
{
	switch (role) {
	case 1:
		return "voter";
	case 2:
		return "spare";
	default:
		return "standby";
	}
}

static bool is_member(const struct consensus_status *s)
{
	for (unsigned i = 0; i < s->n_members; i++) {
		if (s->members[i].id == s->id)
			return true;
	}
	return false;
}

static void serve_cluster(struct http_req *r)
{
	struct consensus_status s;
	json_t *members = json_array();
	json_t *o;

	consensus_status(&r->h->node->cons, &s);
	for (unsigned i = 0; i < s.n_members; i++) {
		const struct consensus_member *m = &s.members[i];

		json_array_append_new(
			members, json_pack("{s:I,s:s,s:s,s:s,s:s,s:b}", "id",
					   (json_int_t)m->id, "raft_address",
					   m->raft_address, "client_address",
					   m->client_address, "http_address",
					   m->http_address, "role",
					   member_role_name(m->role), "leader",
					   m->id == s.leader_id));
	}
	o = json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:o}", "node",
		      (json_int_t)s.id, "role", role_name(s.role), "term",
		      (json_int_t)s.term, "leader", (json_int_t)s.leader_id,
		      "commit_index", (json_int_t)s.commit_index,
		      "applied_index", (json_int_t)s.applied_index,
		      "last_position", (json_int_t)s.last_position, "members",
		      members);
	set_json(r, 200, o);
}

static void serve_ready(struct http_req *r)
{
	struct consensus_status s;
	const char *reason = NULL;

	consensus_status(&r->h->node->cons, &s);
	if (r->h->stopping)
		reason = "shutting down";
	else if (!is_member(&s))
		reason = "not a member of the cluster yet";
	else if (s.leader_id == 0)
		reason = "no known leader";
	else if (s.commit_index > s.applied_index + HTTP_READY_LAG_MAX)
		reason = "catching up";
	if (reason != NULL) {
		set_json(r, 503,
			 json_pack("{s:s,s:s,s:I,s:I}", "status", "not_ready",
				   "reason", reason, "commit_index",
				   (json_int_t)s.commit_index, "applied_index",
				   (json_int_t)s.applied_index));
		return;
	}
	set_json(r, 200,
		 json_pack("{s:s,s:s,s:I,s:I}", "status", "ready", "role",
			   role_name(s.role), "leader", (json_int_t)s.leader_id,
			   "applied_index", (json_int_t)s.applied_index));
}

static void serve_metrics(struct http_req *r)
{
	struct consensus_status s;
	struct metrics_node mn;
	char *text;
	size_t len;

	consensus_status(&r->h->node->cons, &s);
	memset(&mn, 0, sizeof mn);
	mn.status = &s;
	mn.store = &r->h->node->store;
	mn.http_connections = 0;
	for (struct http_req *q = r->h->reqs; q != NULL; q = q->next) {
		mn.http_connections++;
		if (q->route == ROUTE_SUBSCRIBE) {
			mn.sse_subscribers++;
			if (s.last_position >= q->sse_next &&
			    q->sse != SSE_STREAM &&
			    s.last_position - q->sse_next + 1 > mn.sse_max_lag)
				mn.sse_max_lag =
					s.last_position - q->sse_next + 1;
		}
	}
	subs_stats(r->h->node, &mn.subscribers, &mn.subscribers_max_lag);
	mn.disk_free_bytes = disk_free_bytes(r->h->node);
	mn.disk_low = disk_low(r->h->node);
	if (metrics_render(&mn, &text, &len) != 0) {
		set_error(r, 500, "internal", "out of memory");
		return;
	}
	set_response(r, 200, text, len, "text/plain; version=0.0.4");
}

/* ------------------------------------------------------------------------
 * Appends and /sync
 * ------------------------------------------------------------------------ */

/* The leader's HTTP address from the member table, or false. */
static bool leader_http(struct http *h, char *out, size_t len)
{
	struct consensus_status s;

	consensus_status(&h->node->cons, &s);
	for (unsigned i = 0; i < s.n_members; i++) {
		if (s.members[i].id == s.leader_id && s.leader_id != 0 &&
		    s.members[i].http_address[0] != '\0') {
			snprintf(out, len, "%s", s.members[i].http_address);
			return true;
		}
	}
	return false;
}

/* 307 to the same URL on the leader, or 503 when there is none known. */
static void redirect_to_leader(struct http_req *r)
{
	char addr[CONSENSUS_ADDRESS_MAX];
	char location[CONSENSUS_ADDRESS_MAX + HTTP_URI_MAX + 16];
	json_t *extra;

	if (!leader_http(r->h, addr, sizeof addr)) {
		set_error(r, 503, "unavailable",
			  "this node is not the leader and knows no leader "
			  "with an HTTP address; retry");
		return;
	}
	snprintf(location, sizeof location, "http://%s%s", addr, r->raw_uri);
	extra = json_pack("{s:s+}", "leader", "http://", addr);
	set_error_extra(r, 307, "not_leader", extra,
			"this node is not the leader; the leader is at "
			"http://%s",
			addr);
	if (r->response != NULL)
		MHD_add_response_header(r->response, MHD_HTTP_HEADER_LOCATION,
					location);
}

/* Maps a store_txn_validate code to a response; true when it was one. */
static bool set_validation_error(struct http_req *r, int code, const char *msg)
{
	switch (code) {
	case 0:
		return false;
	case STORE_EINVALID_STREAM:
		set_error(r, 400, "invalid_stream", "%s", msg);
		break;
	case STORE_EDATA_TOO_LARGE:
	case STORE_EMETADATA_TOO_LARGE:
	case STORE_ETOO_MANY_EVENTS:
	case STORE_ETXN_TOO_LARGE:
	case STORE_EENTRY_TOO_LARGE:
		set_error(r, 413, "too_large", "%s", msg);
		break;
	default:
		set_error(r, 400, "invalid_request", "%s", msg);
		break;
	}
	return true;
}

/* The JSON result of a committed or duplicate batch. */
static json_t *batch_result(struct http_req *r, const struct http_batch *bt,
			    bool duplicate)
{
	const struct store_part_result *first = &r->results[0];
	const struct store_part_result *last =
		&r->results[bt->txn.n_parts ? bt->txn.n_parts - 1 : 0];
	json_t *positions;

	if (r->route == ROUTE_CHECKPOINT || r->route == ROUTE_SNAPSHOT) {
		const struct store_op *op = &bt->txn.ops[0];

		return json_pack(
			"{s:s%,s:I}",
			r->route == ROUTE_CHECKPOINT ? "name" : "stream",
			op->name, (size_t)op->name_len,
			r->route == ROUTE_CHECKPOINT ? "value" : "version",
			(json_int_t)op->value);
	}
	if (r->route == ROUTE_APPEND)
		return json_pack(
			"{s:s%,s:I,s:I,s:I,s:I,s:b}", "stream",
			bt->txn.parts[0].stream,
			(size_t)bt->txn.parts[0].stream_len, "version",
			(json_int_t)last->last_version, "position",
			(json_int_t)last->last_position, "first_version",
			(json_int_t)first->first_version, "first_position",
			(json_int_t)first->first_position, "duplicate",
			duplicate);
	positions = json_array();
	for (uint32_t k = 0; k < bt->txn.n_parts; k++) {
		const struct store_part_result *p = &r->results[k];

		for (uint64_t pos = p->first_position; pos <= p->last_position;
		     pos++)
			json_array_append_new(positions,
					      json_integer((json_int_t)pos));
	}
	return json_pack("{s:I,s:b,s:o}", "seq", (json_int_t)bt->seq,
			 "duplicate", duplicate, "positions", positions);
}

static json_t *make_error(const char *code, json_t *extra, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static json_t *make_error(const char *code, json_t *extra, const char *fmt, ...)
{
	va_list ap;
	json_t *e;

	va_start(ap, fmt);
	e = error_json(code, extra, fmt, ap);
	va_end(ap);
	return e;
}

/* The error of an append outcome that is not a success (@status 0), or of
 * a consensus failure: its HTTP status in *http_status and the error
 * object. CONSENSUS_ENOT_LEADER is the caller's (a redirect). */
static json_t *append_error(const struct http_batch *bt,
			    const struct consensus_append *ca, int status,
			    unsigned *http_status)
{
	*http_status = 503;
	if (status == 0) {
		switch (ca->outcome) {
		case STORE_WRONG_EXPECTED_VERSION: {
			if (ca->conflict_part >= bt->txn.n_parts &&
			    ca->conflict_part - bt->txn.n_parts <
				    bt->txn.n_ops) {
				const struct store_op *op =
					&bt->txn.ops[ca->conflict_part -
						     bt->txn.n_parts];
				bool snap = op->kind == STORE_OP_SNAPSHOT_PUT;

				*http_status = 409;
				return make_error(
					snap ? "wrong_expected_version"
					     : "wrong_expected_value",
					json_pack(
						"{s:I}",
						snap ? "actual_version"
						     : "actual_value",
						(json_int_t)ca->actual_version),
					snap ? "stream %.*s is at version "
					       "%" PRIu64
					       ": a snapshot must not "
					       "be ahead of it"
					     : "checkpoint %.*s is at %" PRIu64,
					(int)op->name_len, op->name,
					ca->actual_version);
			}
			const struct store_part *p =
				ca->conflict_part < bt->txn.n_parts
					? &bt->txn.parts[ca->conflict_part]
					: &bt->txn.parts[0];

			metrics_append_outcome(METRICS_CONFLICT, 0);
			*http_status = 409;
			return make_error(
				"wrong_expected_version",
				json_pack("{s:I,s:s%}", "actual_version",
					  (json_int_t)ca->actual_version,
					  "stream", p->stream,
					  (size_t)p->stream_len),
				"stream %.*s is at version %" PRIu64,
				(int)p->stream_len, p->stream,
				ca->actual_version);
		}
		case STORE_STALE_SEQUENCE:
			metrics_append_outcome(METRICS_STALE, 0);
			*http_status = 409;
			return make_error(
				"stale_sequence",
				json_pack("{s:I}", "high_water_mark",
					  (json_int_t)ca->actual_version),
				"client sequence %" PRIu64
				" is at or below the writer's high-water mark "
				"%" PRIu64 " and never committed",
				bt->txn.client_seq, ca->actual_version);
		case STORE_REJECTED:
			metrics_append_outcome(METRICS_ERROR, 0);
			*http_status = 400;
			return make_error("invalid_request", NULL, "%s",
					  store_strerror(ca->reject_code));
		default:
			break;
		}
	}
	metrics_append_outcome(METRICS_ERROR, 0);
	switch (status) {
	case CONSENSUS_EUNKNOWN_OUTCOME:
		return make_error(
			"unavailable", NULL,
			"leadership was lost while the append was in flight: "
			"its outcome is unknown; retry with the same "
			"Cairn-Client-Id and Cairn-Client-Seq");
	case CONSENSUS_ESHUTDOWN:
		return make_error("unavailable", NULL,
				  "the node is shutting down");
	case CONSENSUS_EUNAVAILABLE:
		return make_error("unavailable", NULL, "no leader; retry");
	default:
		return make_error("unavailable", NULL, "%s",
				  consensus_strerror(status));
	}
}

static void submit_batch(struct http_req *r);

/* The HTTP status of an http_json error. */
static unsigned json_status(int code)
{
	switch (code) {
	case HTTP_JSON_TOO_LARGE:
		return 413;
	case HTTP_JSON_NOMEM:
		return 503;
	default:
		return 400;
	}
}

/* A batch finished (at once or from the callback) with @status. Sets the
 * response, or moves /sync on to its next batch. Returns true when the
 * request is answered. */
static bool batch_done(struct http_req *r, int status)
{
	const struct http_batch *bt = &r->parsed.batches[r->next_batch];
	bool ok = status == 0 && (r->ca.outcome == STORE_COMMITTED ||
				  r->ca.outcome == STORE_DUPLICATE);

	if (ok) {
		bool dup = r->ca.outcome == STORE_DUPLICATE;
		json_t *res = batch_result(r, bt, dup);

		metrics_append_outcome(
			dup ? METRICS_DUPLICATE : METRICS_COMMITTED,
			now_us() - r->start_us);
		if (r->route == ROUTE_APPEND) {
			set_json(r, 201, res);
			return true;
		}
		if (r->route == ROUTE_CHECKPOINT ||
		    r->route == ROUTE_SNAPSHOT) {
			set_json(r, 200, res);
			return true;
		}
		json_array_append_new(r->sync_results, res);
		r->next_batch++;
		if (r->next_batch < r->parsed.n_batches)
			return false;
		set_json(r, 200,
			 json_pack("{s:O}", "results", r->sync_results));
		return true;
	}
	if (status == CONSENSUS_ENOT_LEADER) {
		/* Leadership moved before anything was proposed: nothing of
		 * this batch committed; the client resends to the leader. */
		redirect_to_leader(r);
		return true;
	}
	{
		unsigned code;
		json_t *e = append_error(bt, &r->ca, status, &code);

		if (r->route == ROUTE_SYNC && e != NULL) {
			/* What committed so far, and where it stopped. */
			json_object_set_new(json_object_get(e, "error"), "seq",
					    json_integer((json_int_t)bt->seq));
			json_object_set(e, "results", r->sync_results);
		}
		set_json(r, code, e);
	}
	return true;
}

static void on_append_done(struct consensus_append *ca, int status)
{
	struct http_req *r = ca->data;

	if (batch_done(r, status)) {
		resume(r);
		return;
	}
	submit_batch(r);
	if (r->response != NULL)
		resume(r);
}

/* Submits batches from r->next_batch until one waits in Raft or the
 * request is answered. Leaves the request suspended while it waits. */
static void submit_batch(struct http_req *r)
{
	struct node *n = r->h->node;

	if (r->next_batch == 0 && disk_low(n) &&
	    consensus_is_leader(&n->cons)) {
		/* Free space below the reserve (disk.h): nothing proposed. */
		set_error(r, 507, "no_space",
			  "disk full on this node: free space below the "
			  "reserve; retry on the new leader");
		return;
	}
	for (;;) {
		struct http_batch *bt = &r->parsed.batches[r->next_batch];
		char msg[STORE_ERRMSG_SIZE];
		int rv;

		rv = store_txn_validate(&bt->txn, msg);
		if (set_validation_error(r, rv, msg))
			return;
		free(r->results);
		r->results = calloc(bt->txn.n_parts ? bt->txn.n_parts : 1,
				    sizeof *r->results);
		if (r->results == NULL) {
			set_error(r, 500, "internal", "out of memory");
			return;
		}
		memset(&r->ca, 0, sizeof r->ca);
		r->ca.txn = bt->txn;
		r->ca.parts = r->results;
		r->ca.data = r;
		r->start_us = now_us();
		rv = consensus_append(&n->cons, &r->ca, on_append_done);
		server_check_pipeline(n);
		if (rv == 0) {
			if (!r->suspended)
				suspend(r, WAIT_APPEND);
			return;
		}
		if (rv == CONSENSUS_EINVALID) {
			set_error(r, 400, "invalid_request", "%s",
				  n->cons.errmsg);
			return;
		}
		if (batch_done(r, rv == CONSENSUS_EDONE ? 0 : rv))
			return;
	}
}

static void serve_append(struct http_req *r)
{
	const char *ev = header(r, "Cairn-Expected-Version");
	const char *cid = header(r, "Cairn-Client-Id");
	const char *cseq = header(r, "Cairn-Client-Seq");
	struct store_expect expect = { STORE_EXPECT_ANY, 0 };
	char err[512];
	int rv;

	if (!consensus_is_leader(&r->h->node->cons)) {
		redirect_to_leader(r);
		return;
	}
	if (ev != NULL && http_parse_expected(ev, &expect) != 0) {
		set_error(r, 400, "invalid_request",
			  "Cairn-Expected-Version must be any, no-stream, "
			  "exists or a version number");
		return;
	}
	if ((cid == NULL) != (cseq == NULL)) {
		set_error(r, 400, "invalid_request",
			  "Cairn-Client-Id and Cairn-Client-Seq go together");
		return;
	}
	rv = http_parse_append(r->body, r->body_len, r->path, r->path_len,
			       &r->parsed, err, sizeof err);
	if (rv != 0) {
		set_error(r, json_status(rv), http_json_code(rv), "%s", err);
		return;
	}
	r->parsed.parts[0].expect = expect;
	if (cid != NULL) {
		struct store_txn *t = &r->parsed.batches[0].txn;

		if (uuid_parse(cid, strlen(cid), t->client_id) != 0 ||
		    http_parse_u64(cseq, &t->client_seq) != 0 ||
		    t->client_seq == 0) {
			set_error(r, 400, "invalid_request",
				  "Cairn-Client-Id must be a UUID and "
				  "Cairn-Client-Seq an integer >= 1");
			return;
		}
		t->has_client = true;
	}
	r->next_batch = 0;
	submit_batch(r);
}

static void serve_sync(struct http_req *r)
{
	char err[512];
	int rv;

	if (!consensus_is_leader(&r->h->node->cons)) {
		redirect_to_leader(r);
		return;
	}
	rv = http_parse_sync(r->body, r->body_len, &r->parsed, err, sizeof err);
	if (rv != 0) {
		set_error(r, json_status(rv), http_json_code(rv), "%s", err);
		return;
	}
	r->sync_results = json_array();
	if (r->sync_results == NULL) {
		set_error(r, 500, "internal", "out of memory");
		return;
	}
	if (r->parsed.n_batches == 0) {
		set_json(r, 200,
			 json_pack("{s:O}", "results", r->sync_results));
		return;
	}
	r->next_batch = 0;
	submit_batch(r);
}

static void set_store_error(struct http_req *r, int rv);

/* PUT /checkpoints/{name} {"value": N[, "expected": M|null]} and PUT
 * /snapshots/{stream} {"version": V, "data": any JSON}: one transaction of
 * one state operation. */
static void serve_op(struct http_req *r)
{
	bool cp = r->route == ROUTE_CHECKPOINT;
	struct store_op *op;
	json_error_t je;
	json_t *body;
	json_t *v;
	char *text = NULL;
	size_t len = 0;
	size_t cap = 0;

	if (!consensus_is_leader(&r->h->node->cons)) {
		redirect_to_leader(r);
		return;
	}
	if (!store_stream_name_valid(r->path, r->path_len)) {
		set_error(r, 400, cp ? "invalid_request" : "invalid_stream",
			  "invalid %s (1..%u bytes of UTF-8, no control "
			  "characters)",
			  cp ? "checkpoint name" : "stream name",
			  STORE_STREAM_NAME_MAX);
		return;
	}
	body = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(body)) {
		json_decref(body);
		set_error(r, 400, "malformed_json",
			  "the body must be a JSON object (%s)", je.text);
		return;
	}
	v = json_object_get(body, cp ? "value" : "version");
	if (!json_is_integer(v) || json_integer_value(v) < (cp ? 0 : 1) ||
	    json_object_size(body) > 2 ||
	    (json_object_size(body) == 2 &&
	     json_object_get(body, cp ? "expected" : "data") == NULL)) {
		json_decref(body);
		set_error(r, 400, "invalid_request",
			  cp ? "want {\"value\": N} or {\"value\": N, "
			       "\"expected\": M or null}"
			     : "want {\"version\": V, \"data\": any JSON}");
		return;
	}
	/* One batch of one operation, owned like a parsed body. */
	r->parsed.batches = calloc(1, sizeof *r->parsed.batches);
	op = calloc(1, sizeof *op);
	r->parsed.arena = (char *)op; /* freed with the body */
	if (r->parsed.batches == NULL || op == NULL) {
		json_decref(body);
		free(r->parsed.batches);
		r->parsed.batches = NULL;
		free(op);
		r->parsed.arena = NULL;
		set_error(r, 500, "internal", "out of memory");
		return;
	}
	r->parsed.n_batches = 1;
	op->name = r->path;
	op->name_len = (uint32_t)r->path_len;
	op->value = (uint64_t)json_integer_value(v);
	if (cp) {
		json_t *e = json_object_get(body, "expected");

		op->kind = STORE_OP_CHECKPOINT_SET;
		if (e != NULL) {
			if (!json_is_null(e) && (!json_is_integer(e) ||
						 json_integer_value(e) < 1)) {
				json_decref(body);
				set_error(r, 400, "invalid_request",
					  "expected must be a value >= 1 or "
					  "null (the checkpoint must not "
					  "exist)");
				return;
			}
			op->kind = STORE_OP_CHECKPOINT_CAS;
			op->expected =
				json_is_null(e)
					? 0
					: (uint64_t)json_integer_value(e);
		}
	} else {
		json_t *d = json_object_get(body, "data");

		op->kind = STORE_OP_SNAPSHOT_PUT;
		if (d != NULL &&
		    http_json_dump_append(d, &text, &len, &cap) != 0) {
			json_decref(body);
			set_error(r, 500, "internal", "out of memory");
			return;
		}
		if (len > UINT32_MAX) {
			free(text);
			json_decref(body);
			set_error(r, 413, "too_large", "snapshot too large");
			return;
		}
		op->data = text;
		op->data_len = (uint32_t)len;
		r->snapshot_text = text;
	}
	json_decref(body);
	r->parsed.batches[0].txn.n_ops = 1;
	r->parsed.batches[0].txn.ops = op;
	r->next_batch = 0;
	submit_batch(r);
}

static void serve_checkpoint_get(struct http_req *r)
{
	uint64_t value;
	bool found;
	int rv;

	if (!store_stream_name_valid(r->path, r->path_len)) {
		set_error(r, 400, "invalid_request", "invalid checkpoint name");
		return;
	}
	rv = store_checkpoint_get(&r->h->node->store, r->path, r->path_len,
				  &value, &found);
	if (rv != 0) {
		set_store_error(r, rv);
		return;
	}
	if (!found) {
		set_error(r, 404, "not_found", "no checkpoint named %s",
			  r->path);
		return;
	}
	set_json(r, 200,
		 json_pack("{s:s%,s:I}", "name", r->path, r->path_len, "value",
			   (json_int_t)value));
}

/* The snapshot object {"version", "data"} of @stream at or below
 * @max_version, or JSON null when there is none. Sets a response and
 * returns NULL on an error. */
static json_t *snapshot_json(struct http_req *r, const char *stream, size_t len,
			     uint64_t max_version)
{
	uint64_t version;
	size_t data_len;
	void *data;
	json_t *d;
	int rv;

	rv = store_snapshot_get(&r->h->node->store, stream, len, max_version,
				&version, &data, &data_len);
	if (rv != 0) {
		set_store_error(r, rv);
		return NULL;
	}
	if (version == 0)
		return json_null();
	d = data_len > 0 ? json_loadb(data, data_len, JSON_DECODE_ANY, NULL)
			 : json_null();
	free(data);
	return json_pack("{s:I,s:o}", "version", (json_int_t)version, "data",
			 d != NULL ? d : json_null());
}

static void serve_snapshot_get(struct http_req *r)
{
	json_t *snap;

	if (!store_stream_name_valid(r->path, r->path_len)) {
		set_error(r, 400, "invalid_stream", "invalid stream name");
		return;
	}
	snap = snapshot_json(r, r->path, r->path_len, STORE_VERSION_HEAD);
	if (snap == NULL)
		return;
	if (json_is_null(snap)) {
		set_error(r, 404, "not_found", "stream %s has no snapshot",
			  r->path);
		return;
	}
	json_object_set_new(snap, "stream", json_stringn(r->path, r->path_len));
	set_json(r, 200, snap);
}

/* ------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------ */

struct page {
	json_t *events;   /* the page's events */
	size_t bytes;     /* data + metadata bytes in it */
	bool nomem;       /* an event could not be built */
	const char *type; /* stream reads: type filter, NULL for none */
	size_t type_len;
};

static bool page_visit(void *arg, const struct store_record *rec)
{
	struct page *pg = arg;
	json_t *e = http_event_json(rec);

	if (e == NULL || json_array_append_new(pg->events, e) != 0) {
		pg->nomem = true;
		return false;
	}
	pg->bytes += rec->data_len + rec->metadata_len;
	return pg->bytes < HTTP_PAGE_BYTES_MAX;
}

/* Answers a read that failed in the store. */
static void set_store_error(struct http_req *r, int rv)
{
	if (rv == STORE_EINVALID_STREAM) {
		set_error(r, 400, "invalid_stream",
			  "invalid stream name (1..%u bytes of UTF-8, no "
			  "control characters)",
			  STORE_STREAM_NAME_MAX);
		return;
	}
	log_error("read_failed", "error=\"%s\"", r->h->node->store.errmsg);
	set_error(r, 500, "internal", "%s", store_strerror(rv));
}

static void read_stream_now(struct http_req *r)
{
	struct store *st = &r->h->node->store;
	const char *dir = arg(r, "direction");
	bool backward = dir != NULL && strcmp(dir, "backward") == 0;
	uint64_t from = backward ? STORE_VERSION_HEAD : 1;
	struct store_read_info info;
	struct store_head head;
	struct page pg;
	uint32_t limit;
	json_t *snap = NULL;
	json_t *o;
	int rv;

	if (dir != NULL && !backward && strcmp(dir, "forward") != 0) {
		set_error(r, 400, "invalid_request",
			  "direction must be forward or backward");
		return;
	}
	if (!arg_u64(r, "from", &from) || !arg_limit(r, &limit))
		return;
	rv = store_head(st, r->path, r->path_len, &head);
	if (rv != 0) {
		set_store_error(r, rv);
		return;
	}
	if (has_arg(r, "snapshot")) {
		/* The newest snapshot at or below the head, then the events
		 * after it. */
		if (backward) {
			set_error(r, 400, "invalid_request",
				  "a read with a snapshot reads forward");
			return;
		}
		snap = snapshot_json(r, r->path, r->path_len, head.version);
		if (snap == NULL)
			return;
		if (!json_is_null(snap))
			from = (uint64_t)json_integer_value(
				       json_object_get(snap, "version")) +
			       1;
	}
	memset(&pg, 0, sizeof pg);
	pg.events = json_array();
	rv = store_read_stream(st, r->path, r->path_len, from, backward, limit,
			       page_visit, &pg, &info);
	if (rv != 0 || pg.nomem) {
		json_decref(pg.events);
		json_decref(snap);
		if (rv != 0)
			set_store_error(r, rv);
		else
			set_error(r, 500, "internal", "out of memory");
		return;
	}
	o = json_pack("{s:s%,s:I,s:o}", "stream", r->path, r->path_len, "head",
		      (json_int_t)head.version, "events", pg.events);
	if (o != NULL && snap != NULL)
		json_object_set_new(o, "snapshot", snap);
	else
		json_decref(snap);
	if (o != NULL && !info.end && info.next != 0)
		json_object_set_new(o, "next",
				    json_integer((json_int_t)info.next));
	set_json(r, 200, o);
}

static void read_all_now(struct http_req *r)
{
	struct store *st = &r->h->node->store;
	struct store_read_info info;
	struct store_filter f;
	uint64_t from = 1;
	struct page pg;
	uint32_t limit;
	json_t *o;
	int rv;

	memset(&f, 0, sizeof f);
	if (!arg_u64(r, "from", &from) || !arg_limit(r, &limit) ||
	    !arg_text(r, "category", &f.category, &f.category_len) ||
	    !arg_text(r, "prefix", &f.stream_prefix, &f.stream_prefix_len) ||
	    !arg_text(r, "type", &f.type, &f.type_len))
		return;
	memset(&pg, 0, sizeof pg);
	pg.events = json_array();
	rv = store_read_all(st, from, limit, NODE_READ_ALL_SCAN_MAX, &f,
			    page_visit, &pg, &info);
	if (rv != 0 || pg.nomem) {
		json_decref(pg.events);
		if (rv != 0)
			set_store_error(r, rv);
		else
			set_error(r, 500, "internal", "out of memory");
		return;
	}
	o = json_pack("{s:o,s:I,s:I}", "events", pg.events, "next",
		      (json_int_t)info.next, "last_position",
		      (json_int_t)store_last_position(st));
	set_json(r, 200, o);
}

static void read_now(struct http_req *r)
{
	if (r->route == ROUTE_READ_STREAM)
		read_stream_now(r);
	else
		read_all_now(r);
}

static void on_barrier_done(struct consensus_barrier *b, int status)
{
	struct http_req *r = b->data;

	if (status == 0)
		read_now(r);
	else
		set_error(r, 503, "unavailable",
			  "leadership could not be confirmed (%s); retry",
			  consensus_strerror(status));
	resume(r);
}

/* Serves a read at the consistency its request asks for. */
static void serve_read(struct http_req *r)
{
	struct node *n = r->h->node;
	const char *c = arg(r, "consistency");
	uint64_t pos;
	int rv;

	if (c == NULL || strcmp(c, "any") == 0) {
		read_now(r);
		return;
	}
	if (strcmp(c, "leader") == 0) {
		r->barrier.data = r;
		rv = consensus_barrier(&n->cons, &r->barrier, on_barrier_done);
		if (rv == 0) {
			suspend(r, WAIT_BARRIER);
			return;
		}
		if (rv == CONSENSUS_ENOT_LEADER)
			redirect_to_leader(r);
		else
			set_error(r, 503, "unavailable", "%s",
				  consensus_strerror(rv));
		return;
	}
	if (http_parse_u64(c, &pos) != 0) {
		set_error(r, 400, "invalid_request",
			  "consistency must be any, leader or a position");
		return;
	}
	if (store_last_position(&n->store) >= pos) {
		read_now(r);
		return;
	}
	r->min_position = pos;
	r->deadline_ms = uv_now(n->loop) + n->cfg->read_wait_ms;
	suspend(r, WAIT_POSITION);
}

static bool list_stream_visit(void *arg, const char *stream, size_t len,
			      const struct store_head *hd)
{
	return json_array_append_new(
		       arg, json_pack("{s:s%,s:I,s:I}", "stream", stream, len,
				      "version", (json_int_t)hd->version,
				      "last_position",
				      (json_int_t)hd->last_position)) == 0;
}

static bool list_category_visit(void *arg, const char *category, size_t len)
{
	return json_array_append_new(arg, json_stringn(category, len)) == 0;
}

/* GET /streams: the categories, or with category=C (or prefix=P) the
 * streams, paged by name with after= and limit=. */
static void serve_list(struct http_req *r)
{
	struct store *st = &r->h->node->store;
	const char *category;
	const char *prefix;
	const char *after;
	size_t category_len;
	size_t prefix_len;
	size_t after_len;
	char buf[STORE_STREAM_NAME_MAX + 2];
	uint32_t limit;
	json_t *items = json_array();
	bool more;
	int rv;

	if (!arg_limit(r, &limit) ||
	    !arg_text(r, "category", &category, &category_len) ||
	    !arg_text(r, "prefix", &prefix, &prefix_len) ||
	    !arg_text(r, "after", &after, &after_len)) {
		json_decref(items);
		return;
	}
	if (category == NULL && prefix == NULL) {
		rv = store_list_categories(st, after, after_len, limit,
					   list_category_visit, items, &more);
		if (rv != 0) {
			json_decref(items);
			set_store_error(r, rv);
			return;
		}
		set_json(r, 200,
			 json_pack("{s:o,s:b}", "categories", items, "more",
				   more));
		return;
	}
	if (category != NULL) {
		if (category_len > STORE_STREAM_NAME_MAX - 1) {
			json_decref(items);
			set_error(r, 400, "invalid_request",
				  "category is too long");
			return;
		}
		memcpy(buf, category, category_len);
		buf[category_len] = '-';
		prefix = buf;
		prefix_len = category_len + 1;
	}
	rv = store_list_streams(st, prefix, prefix_len, after, after_len, limit,
				list_stream_visit, items, &more);
	if (rv != 0) {
		json_decref(items);
		set_store_error(r, rv);
		return;
	}
	set_json(r, 200,
		 json_pack("{s:o,s:b}", "streams", items, "more", more));
}

/* ------------------------------------------------------------------------
 * Server-Sent Events
 * ------------------------------------------------------------------------ */

/* Makes room for @n more bytes in r->out. */
static bool out_reserve(struct http_req *r, size_t n)
{
	size_t want;
	char *p;

	if (n <= r->out_cap - r->out_len)
		return true;
	want = r->out_cap ? r->out_cap : 16384;
	while (want - r->out_len < n)
		want *= 2;
	p = realloc(r->out, want);
	if (p == NULL)
		return false;
	r->out = p;
	r->out_cap = want;
	return true;
}

static bool out_printf(struct http_req *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool out_printf(struct http_req *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !out_reserve(r, (size_t)n + 1))
		return false;
	va_start(ap, fmt);
	vsnprintf(r->out + r->out_len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r->out_len += (size_t)n;
	return true;
}

struct sse_fill {
	struct http_req *r;
	size_t bytes; /* payload bytes this fill produced */
	bool nomem;
};

static bool sse_visit(void *arg, const struct store_record *rec)
{
	struct sse_fill *f = arg;
	struct http_req *r = f->r;
	json_t *e;

	if (r->sse == SSE_STREAM)
		r->sse_next = rec->version + 1;
	else
		r->sse_next = rec->position + 1;
	if (r->sse_type != NULL &&
	    (rec->type_len != r->sse_type_len ||
	     memcmp(rec->type, r->sse_type, r->sse_type_len) != 0))
		return true;
	e = http_event_json(rec);
	if (e == NULL ||
	    !out_printf(r, "id: %" PRIu64 "\nevent: event\ndata: ",
			rec->position) ||
	    http_json_dump_append(e, &r->out, &r->out_len, &r->out_cap) != 0 ||
	    !out_printf(r, "\n\n")) {
		json_decref(e);
		f->nomem = true;
		return false;
	}
	json_decref(e);
	f->bytes += rec->data_len + rec->metadata_len;
	return f->bytes < HTTP_PAGE_BYTES_MAX;
}

/* Produces the next page of an SSE connection into r->out. Returns false
 * when the stream must end (store error, out of memory). */
static bool sse_fill(struct http_req *r)
{
	struct store *st = &r->h->node->store;
	struct store_read_info info;
	struct sse_fill f;
	int rv;

	memset(&f, 0, sizeof f);
	f.r = r;
	if (r->sse == SSE_STREAM) {
		rv = store_read_stream(st, r->sse_name, r->sse_name_len,
				       r->sse_next, false, HTTP_SSE_PAGE,
				       sse_visit, &f, &info);
	} else {
		struct store_filter flt;

		memset(&flt, 0, sizeof flt);
		if (r->sse == SSE_CATEGORY) {
			flt.category = r->sse_name;
			flt.category_len = r->sse_name_len;
		}
		flt.type = r->sse_type;
		flt.type_len = r->sse_type_len;
		rv = store_read_all(st, r->sse_next, HTTP_SSE_PAGE,
				    NODE_READ_ALL_SCAN_MAX, &flt, sse_visit, &f,
				    &info);
		if (rv == 0 && info.next > r->sse_next)
			r->sse_next = info.next; /* scanned past non-matches */
	}
	if (rv != 0 || f.nomem) {
		if (rv != 0)
			log_error("subscription_failed", "error=\"%s\"",
				  st->errmsg);
		return false;
	}
	if (info.end && !r->sse_live) {
		r->sse_live = true;
		if (!out_printf(r,
				"event: live\ndata: {\"position\":%" PRIu64
				"}\n\n",
				store_last_position(st)))
			return false;
	}
	return true;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_req *r = cls;
	uint64_t now = uv_now(r->h->node->loop);
	size_t n;

	(void)pos;
	if (r->out_off == r->out_len) {
		r->out_off = 0;
		r->out_len = 0;
		if (r->sse_end || r->h->stopping)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (!sse_fill(r))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (r->out_len == 0 &&
		    now - r->sse_last_ms >= HTTP_SSE_KEEPALIVE_MS &&
		    !out_printf(r, ": keepalive\n\n"))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (r->out_len == 0) {
			suspend(r, WAIT_EVENTS);
			return 0;
		}
		/* A large buffer is not kept once drained. */
	}
	n = r->out_len - r->out_off;
	if (n > max)
		n = max;
	memcpy(buf, r->out + r->out_off, n);
	r->out_off += n;
	r->sse_last_ms = now;
	if (r->out_off == r->out_len && r->out_cap > (1u << 20)) {
		free(r->out);
		r->out = NULL;
		r->out_cap = 0;
		r->out_len = 0;
		r->out_off = 0;
	}
	return (ssize_t)n;
}

static bool dup_text(const char *s, char **out, size_t *len)
{
	*len = strlen(s);
	*out = strdup(s);
	return *out != NULL;
}

/* Finds the version of the event at a position, if it is in a stream. */
struct locate {
	const char *stream;
	size_t stream_len;
	uint64_t position;
	uint64_t version; /* found: its version */
	bool found;
};

static bool locate_visit(void *arg, const struct store_record *rec)
{
	struct locate *l = arg;

	l->found = rec->position == l->position &&
		   rec->stream_len == l->stream_len &&
		   memcmp(rec->stream, l->stream, l->stream_len) == 0;
	l->version = rec->version;
	return false;
}

static void serve_subscribe(struct http_req *r)
{
	struct store *st = &r->h->node->store;
	const char *stream = arg(r, "stream");
	const char *category = arg(r, "category");
	bool all = has_arg(r, "all");
	const char *type = arg(r, "type");
	const char *from = arg(r, "from");
	const char *last_id = header(r, "Last-Event-ID");
	struct MHD_Response *resp;
	uint64_t v;

	if ((stream != NULL) + (category != NULL) + all != 1) {
		set_error(r, 400, "invalid_request",
			  "give exactly one of stream=S, category=C or all");
		return;
	}
	if (stream != NULL) {
		r->sse = SSE_STREAM;
		if (!store_stream_name_valid(stream, strlen(stream))) {
			set_error(r, 400, "invalid_stream",
				  "invalid stream name");
			return;
		}
		if (!dup_text(stream, &r->sse_name, &r->sse_name_len))
			goto nomem;
	} else if (category != NULL) {
		r->sse = SSE_CATEGORY;
		if (*category == '\0' ||
		    strlen(category) > STORE_STREAM_NAME_MAX) {
			set_error(r, 400, "invalid_request",
				  "category must be 1..%u bytes",
				  STORE_STREAM_NAME_MAX);
			return;
		}
		if (!dup_text(category, &r->sse_name, &r->sse_name_len))
			goto nomem;
	} else {
		r->sse = SSE_ALL;
	}
	if (type != NULL && *type != '\0') {
		if (strlen(type) > STORE_EVENT_TYPE_MAX) {
			set_error(r, 400, "invalid_request",
				  "type is longer than %u bytes",
				  STORE_EVENT_TYPE_MAX);
			return;
		}
		if (!dup_text(type, &r->sse_type, &r->sse_type_len))
			goto nomem;
	}

	r->sse_next = 1;
	if (last_id != NULL) {
		/* Resume right after the last position the client saw. */
		if (http_parse_u64(last_id, &v) != 0) {
			set_error(r, 400, "invalid_request",
				  "Last-Event-ID must be a position");
			return;
		}
		if (r->sse == SSE_STREAM) {
			/* The stream's version at that position. */
			struct locate loc = { r->sse_name, r->sse_name_len, v,
					      0, false };
			struct store_read_info info;

			if (v > 0 &&
			    (store_read_all(st, v, 1, 1, NULL, locate_visit,
					    &loc, &info) != 0 ||
			     !loc.found)) {
				set_error(r, 400, "invalid_request",
					  "Last-Event-ID %" PRIu64
					  " is not an event of stream %s on "
					  "this node",
					  v, r->sse_name);
				return;
			}
			r->sse_next = loc.version + 1;
		} else {
			r->sse_next = v + 1;
		}
	} else if (from != NULL && strcmp(from, "now") == 0) {
		if (r->sse == SSE_STREAM) {
			struct store_head head;

			if (store_head(st, r->sse_name, r->sse_name_len,
				       &head) != 0) {
				set_error(r, 500, "internal", "%s", st->errmsg);
				return;
			}
			r->sse_next = head.version + 1;
		} else {
			r->sse_next = store_last_position(st) + 1;
		}
	} else if (from != NULL) {
		if (http_parse_u64(from, &v) != 0) {
			set_error(r, 400, "invalid_request",
				  "from must be a number or now");
			return;
		}
		r->sse_next = v == 0 ? 1 : v;
	}

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024,
						 sse_read, r, NULL);
	if (resp == NULL)
		goto nomem;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/event-stream");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				"no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	r->response = resp;
	r->status = 200;
	r->sse_last_ms = uv_now(r->h->node->loop);
	return;

nomem:
	set_error(r, 500, "internal", "out of memory");
}

/* ------------------------------------------------------------------------
 * Routing and the request life cycle
 * ------------------------------------------------------------------------ */

static bool method_is(const char *method, const char *want)
{
	return strcmp(method, want) == 0;
}

static bool is_get(const char *method)
{
	return method_is(method, "GET") || method_is(method, "HEAD");
}

/* Chooses the route of @url for @method. */
static void route(struct http_req *r, const char *url, const char *method)
{
	static const struct {
		const char *path;
		enum route get; /* on GET/HEAD; ROUTE_NOT_FOUND: none */
		enum route post;
	} fixed[] = {
		{ "/health", ROUTE_HEALTH, ROUTE_NOT_FOUND },
		{ "/ready", ROUTE_READY, ROUTE_NOT_FOUND },
		{ "/cluster", ROUTE_CLUSTER, ROUTE_NOT_FOUND },
		{ "/metrics", ROUTE_METRICS, ROUTE_NOT_FOUND },
		{ "/all", ROUTE_READ_ALL, ROUTE_NOT_FOUND },
		{ "/streams", ROUTE_LIST, ROUTE_NOT_FOUND },
		{ "/subscribe", ROUTE_SUBSCRIBE, ROUTE_NOT_FOUND },
		{ "/sync", ROUTE_NOT_FOUND, ROUTE_SYNC },
	};
	static const char streams[] = "/streams/";
	size_t i;

	if (method_is(method, "OPTIONS")) {
		r->route = ROUTE_PREFLIGHT;
		return;
	}

	for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		if (strcmp(url, fixed[i].path) != 0)
			continue;
		if (is_get(method) && fixed[i].get != ROUTE_NOT_FOUND) {
			r->route = fixed[i].get;
		} else if (method_is(method, "POST") &&
			   fixed[i].post != ROUTE_NOT_FOUND) {
			r->route = fixed[i].post;
		} else {
			r->route = ROUTE_BAD_METHOD;
			r->allow = fixed[i].get != ROUTE_NOT_FOUND ? "GET, HEAD"
								   : "POST";
		}
		return;
	}
	for (i = 0; i < 2; i++) {
		static const char *const roots[2] = { "/checkpoints/",
						      "/snapshots/" };
		size_t n = strlen(roots[i]);

		if (strncmp(url, roots[i], n) != 0)
			continue;
		r->path_len = strlen(url + n);
		r->path = strdup(url + n);
		if (is_get(method)) {
			r->route = i == 0 ? ROUTE_CHECKPOINT_GET
					  : ROUTE_SNAPSHOT_GET;
		} else if (method_is(method, "PUT")) {
			r->route = i == 0 ? ROUTE_CHECKPOINT : ROUTE_SNAPSHOT;
		} else {
			r->route = ROUTE_BAD_METHOD;
			r->allow = "GET, HEAD, PUT";
		}
		return;
	}
	if (strncmp(url, streams, sizeof streams - 1) == 0) {
		const char *name = url + sizeof streams - 1;

		r->path_len = strlen(name);
		r->path = strdup(name);
		if (is_get(method)) {
			r->route = ROUTE_READ_STREAM;
		} else if (method_is(method, "POST")) {
			r->route = ROUTE_APPEND;
		} else {
			r->route = ROUTE_BAD_METHOD;
			r->allow = "GET, HEAD, POST";
		}
		return;
	}
#ifdef CAIRN_HAVE_WEB
	if (web_asset_find(url) != NULL) {
		r->route = is_get(method) ? ROUTE_WEB : ROUTE_BAD_METHOD;
		r->allow = "GET, HEAD";
		return;
	}
#endif
	r->route = ROUTE_NOT_FOUND;
}

static void serve_web(struct http_req *r, const char *url)
{
#ifdef CAIRN_HAVE_WEB
	const struct web_asset *a = web_asset_find(url);
	struct MHD_Response *resp;

	if (a != NULL) {
		resp = MHD_create_response_from_buffer(a->len, (void *)a->data,
						       MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					a->content_type);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
					"no-cache");
		r->response = resp;
		r->status = 200;
		return;
	}
#endif
	set_error(r, 404, "not_found", "no page at %s", url);
}

/* Serves a request whose body (if any) is complete. */
static void serve(struct http_req *r, const char *url, const char *method)
{
	if (r->h->stopping) {
		set_error(r, 503, "unavailable", "the node is shutting down");
		return;
	}
	switch (r->route) {
	case ROUTE_NOT_FOUND:
		set_error(r, 404, "not_found", "no route for %s %s", method,
			  url);
		return;
	case ROUTE_BAD_METHOD:
		set_error(r, 405, "method_not_allowed",
			  "%s is not allowed on %s (allowed: %s)", method, url,
			  r->allow);
		return;
	case ROUTE_HEALTH:
		set_json(r, 200, json_pack("{s:s}", "status", "ok"));
		return;
	case ROUTE_READY:
		serve_ready(r);
		return;
	case ROUTE_CLUSTER:
		serve_cluster(r);
		return;
	case ROUTE_METRICS:
		serve_metrics(r);
		return;
	case ROUTE_APPEND:
		serve_append(r);
		return;
	case ROUTE_SYNC:
		serve_sync(r);
		return;
	case ROUTE_READ_STREAM:
		if (!store_stream_name_valid(r->path, r->path_len)) {
			set_error(r, 400, "invalid_stream",
				  "invalid stream name (1..%u bytes of UTF-8, "
				  "no control characters)",
				  STORE_STREAM_NAME_MAX);
			return;
		}
		serve_read(r);
		return;
	case ROUTE_READ_ALL:
		serve_read(r);
		return;
	case ROUTE_LIST:
		serve_list(r);
		return;
	case ROUTE_CHECKPOINT:
	case ROUTE_SNAPSHOT:
		serve_op(r);
		return;
	case ROUTE_CHECKPOINT_GET:
		serve_checkpoint_get(r);
		return;
	case ROUTE_SNAPSHOT_GET:
		serve_snapshot_get(r);
		return;
	case ROUTE_SUBSCRIBE:
		serve_subscribe(r);
		return;
	case ROUTE_WEB:
		serve_web(r, url);
		return;
	case ROUTE_PREFLIGHT:
		set_response(r, 204, NULL, 0, "text/plain");
		return;
	}
}

static bool takes_body(const struct http_req *r)
{
	return r->route == ROUTE_APPEND || r->route == ROUTE_SYNC ||
	       r->route == ROUTE_CHECKPOINT || r->route == ROUTE_SNAPSHOT;
}

/* First call for a request: checks what can be checked before the body is
 * read. Sets r->refuse to answer at the end without reading the body. */
static void check_headers(struct http_req *r)
{
	const char *cl = header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t len = 0;

	if (r->raw_uri[0] == '\0') {
		r->refuse = 414;
		r->refuse_code = "invalid_request";
		r->refuse_msg = "the request target is too long";
		return;
	}
	if (!takes_body(r))
		return;
	if (!content_type_json(r)) {
		r->refuse = 415;
		r->refuse_code = "unsupported_media_type";
		r->refuse_msg = "the body must be application/json";
		return;
	}
	if (cl != NULL && http_parse_u64(cl, &len) == 0) {
		if (len > HTTP_BODY_BYTES_MAX) {
			r->refuse = 413;
			r->refuse_code = "too_large";
			r->refuse_msg = "the body is larger than 17 MiB";
			return;
		}
		if (len > HTTP_BODY_BYTES_TOTAL_MAX - r->h->body_bytes) {
			r->refuse = 503;
			r->refuse_code = "unavailable";
			r->refuse_msg =
				"the node holds too many request bodies; "
				"retry";
		}
	}
}

/* Takes a piece of the body. */
static void take_body(struct http_req *r, const char *data, size_t len)
{
	struct http *h = r->h;

	if (r->refuse != 0 || !takes_body(r))
		return; /* discarded */
	if (len > HTTP_BODY_BYTES_MAX - r->body_len) {
		r->refuse = 413;
		r->refuse_code = "too_large";
		r->refuse_msg = "the body is larger than 17 MiB";
		goto drop;
	}
	if (len > HTTP_BODY_BYTES_TOTAL_MAX - h->body_bytes) {
		r->refuse = 503;
		r->refuse_code = "unavailable";
		r->refuse_msg = "the node holds too many request bodies; retry";
		goto drop;
	}
	if (r->body_len + len > r->body_cap) {
		size_t want = r->body_cap ? r->body_cap : 4096;
		char *p;

		while (want < r->body_len + len)
			want *= 2;
		if (want > HTTP_BODY_BYTES_MAX)
			want = HTTP_BODY_BYTES_MAX;
		p = realloc(r->body, want);
		if (p == NULL) {
			r->refuse = 503;
			r->refuse_code = "unavailable";
			r->refuse_msg = "out of memory";
			goto drop;
		}
		r->body = p;
		r->body_cap = want;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	h->body_bytes += len;
	r->body_counted += len;
	return;

drop:
	h->body_bytes -= r->body_counted;
	r->body_counted = 0;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->body_cap = 0;
}

/* Releases the body once it is parsed (the parse keeps what it needs). */
static void drop_body(struct http_req *r)
{
	r->h->body_bytes -= r->body_counted;
	r->body_counted = 0;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->body_cap = 0;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http *h = cls;
	struct http_req *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->h = h;
	r->conn = conn;
	if (strlen(uri) <= HTTP_URI_MAX)
		strcpy(r->raw_uri, uri);
	r->next = h->reqs;
	if (h->reqs != NULL)
		h->reqs->prev = r;
	h->reqs = r;
	return r;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct http_req *r = *con_cls;

	(void)cls;
	(void)conn; /* r->conn, from on_uri */
	(void)version;
	if (r == NULL)
		return MHD_NO; /* on_uri could not allocate: close */
	if (r->phase == PHASE_NEW) {
		route(r, url, method);
		r->phase = PHASE_BODY;
		check_headers(r);
		if (r->refuse == 413 || r->refuse == 503 || r->refuse == 414) {
			/* Answer now, without reading a body that is refused
			 * for its size: MHD closes the connection after. */
			r->phase = PHASE_SERVED;
			set_error(r, (unsigned)r->refuse, r->refuse_code, "%s",
				  r->refuse_msg);
			return queue(r);
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		take_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->response != NULL)
		return queue(r); /* ready: after a resume, or at once */
	if (r->phase != PHASE_BODY)
		return MHD_YES; /* served already: nothing more to queue */
	r->phase = PHASE_SERVED;
	if (r->refuse != 0) {
		set_error(r, (unsigned)r->refuse, r->refuse_code, "%s",
			  r->refuse_msg);
		return queue(r);
	}
	if (r->path == NULL &&
	    (r->route == ROUTE_APPEND || r->route == ROUTE_READ_STREAM ||
	     r->route == ROUTE_CHECKPOINT || r->route == ROUTE_SNAPSHOT ||
	     r->route == ROUTE_CHECKPOINT_GET ||
	     r->route == ROUTE_SNAPSHOT_GET)) {
		set_error(r, 500, "internal", "out of memory");
		return queue(r);
	}
	serve(r, url, method);
	if (takes_body(r))
		drop_body(r);
	if (r->response != NULL)
		return queue(r);
	return MHD_YES; /* suspended: resumed with a response */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct http_req *r = *con_cls;

	(void)conn;
	(void)toe;
	if (r == NULL)
		return;
	assert(!r->suspended);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		h->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	h->body_bytes -= r->body_counted;
	free(r->body);
	free(r->path);
	http_body_free(&r->parsed);
	free(r->results);
	json_decref(r->sync_results);
	free(r->sse_name);
	free(r->sse_type);
	free(r->out);
	free(r->snapshot_text);
	if (r->response != NULL)
		MHD_destroy_response(r->response);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	for (char *p = msg; *p != '\0'; p++) {
		if (*p == '"')
			*p = '\'';
	}
	log_warn("http_server", "message=\"%s\"", msg);
}

/* ------------------------------------------------------------------------
 * Applied entries, deadlines, keepalives
 * ------------------------------------------------------------------------ */

void http_applied(struct node *n, uint64_t last_position)
{
	struct http *h = n->http;

	if (h == NULL)
		return;
	for (struct http_req *r = h->reqs; r != NULL; r = r->next) {
		if (!r->suspended)
			continue;
		if (r->wait == WAIT_EVENTS) {
			resume(r);
		} else if (r->wait == WAIT_POSITION &&
			   last_position >= r->min_position) {
			read_now(r);
			resume(r);
		}
	}
}

static void on_tick(uv_timer_t *t)
{
	struct http *h = t->data;
	uint64_t now = uv_now(h->node->loop);
	struct consensus_status s;

	consensus_status(&h->node->cons, &s);
	if (s.leader_id != h->last_leader) {
		if (s.leader_id != 0)
			metrics_leader_change();
		h->last_leader = s.leader_id;
	}
	for (struct http_req *r = h->reqs; r != NULL; r = r->next) {
		if (!r->suspended)
			continue;
		if (r->wait == WAIT_POSITION && now >= r->deadline_ms) {
			set_error(r, 504, "timeout",
				  "position %" PRIu64
				  " was not applied on this node within %u ms",
				  r->min_position, h->node->cfg->read_wait_ms);
			resume(r);
		} else if (r->wait == WAIT_EVENTS &&
			   now - r->sse_last_ms >= HTTP_SSE_KEEPALIVE_MS) {
			resume(r);
		}
	}
}

/* ------------------------------------------------------------------------
 * Start and stop
 * ------------------------------------------------------------------------ */

/* Binds a listening socket on @address (HOST:PORT, names resolved).
 * Returns the descriptor or -1 after logging why. */
static int listen_on(const char *address)
{
	char host[CONSENSUS_ADDRESS_MAX];
	const char *colon = strrchr(address, ':');
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	size_t len;
	int one = 1;
	int fd;
	int rv;

	if (colon == NULL || colon == address || colon[1] == '\0') {
		log_error("http_listen_failed",
			  "address=%s error=\"want HOST:PORT\"", address);
		return -1;
	}
	len = (size_t)(colon - address);
	if (address[0] == '[' && len >= 2 && address[len - 1] == ']') {
		address++;
		len -= 2;
	}
	if (len >= sizeof host) {
		log_error("http_listen_failed",
			  "address=%s error=\"host too long\"", address);
		return -1;
	}
	memcpy(host, address, len);
	host[len] = '\0';
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rv = getaddrinfo(host, colon + 1, &hints, &res);
	if (rv != 0) {
		log_error("http_listen_failed", "address=%s error=\"%s\"",
			  address, gai_strerror(rv));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(fd, NODE_LISTEN_BACKLOG) != 0) {
		log_error("http_listen_failed", "address=%s error=\"%s\"",
			  address, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

int http_start(struct node *n)
{
	const char *address = n->cfg->http_address;
	const union MHD_DaemonInfo *info;
	struct http *h;
	int fd;

	if (address == NULL || address[0] == '\0')
		return 0;
	http_json_init();
	h = calloc(1, sizeof *h);
	if (h == NULL) {
		log_error("http_start_failed", "error=\"out of memory\"");
		return -1;
	}
	h->node = n;
	fd = listen_on(address);
	if (fd < 0)
		goto err_after_alloc;
	h->d = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
		NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER,
		on_mhd_log, h, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_END);
	if (h->d == NULL) {
		log_error("http_start_failed", "address=%s error=\"%s\"",
			  address, "libmicrohttpd would not start");
		close(fd);
		goto err_after_alloc;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL ||
	    uv_poll_init(n->loop, &h->poll, info->epoll_fd) != 0) {
		log_error("http_start_failed", "error=\"no epoll descriptor\"");
		MHD_stop_daemon(h->d);
		goto err_after_alloc;
	}
	h->poll.data = h;
	uv_timer_init(n->loop, &h->run_timer);
	h->run_timer.data = h;
	uv_timer_init(n->loop, &h->tick);
	h->tick.data = h;
	uv_poll_start(&h->poll, UV_READABLE, on_poll);
	uv_timer_start(&h->tick, on_tick, HTTP_TICK_MS, HTTP_TICK_MS);
	n->http = h;
	schedule(h);
	log_info("http_listening", "http_address=%s", address);
	return 0;

err_after_alloc:
	free(h);
	return -1;
}

void http_stop(struct node *n)
{
	struct http *h = n->http;

	if (h == NULL || h->stopping)
		return;
	h->stopping = true;
	for (struct http_req *r = h->reqs; r != NULL; r = r->next) {
		if (!r->suspended)
			continue;
		if (r->wait == WAIT_EVENTS) {
			r->sse_end = true;
			resume(r);
		} else if (r->wait == WAIT_POSITION) {
			set_error(r, 503, "unavailable",
				  "the node is shutting down");
			resume(r);
		}
	}
}

static void on_handle_closed(uv_handle_t *handle)
{
	struct http *h = handle->data;

	if (--h->open_handles == 0)
		free(h);
}

void http_close(struct node *n)
{
	struct http *h = n->http;

	if (h == NULL)
		return;
	http_stop(n);
	/* Appends and barriers were answered by consensus_close. */
	for (struct http_req *r = h->reqs; r != NULL; r = r->next)
		resume(r);
	MHD_run(h->d);
	MHD_stop_daemon(h->d);
	h->d = NULL;
	/* The handles live in h: it is freed once the loop closed them. */
	h->open_handles = 3;
	uv_close((uv_handle_t *)&h->poll, on_handle_closed);
	uv_close((uv_handle_t *)&h->run_timer, on_handle_closed);
	uv_close((uv_handle_t *)&h->tick, on_handle_closed);
	n->http = NULL;
}
