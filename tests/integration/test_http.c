/* The HTTP gateway on a real 3-node cluster (docs/http-api.md): the
 * operations endpoints, appends with conflicts, idempotent retries and the
 * follower's redirect, paged reads at every consistency, every error case,
 * Server-Sent Events resumed with Last-Event-ID, and /sync replayed.
 *
 * The requests are written by hand over a socket (HTTP/1.1, Connection:
 * close) so that the test sees exactly what a client gets, status line and
 * headers included. Ports 23600-23629. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster.h"

#define PORT_BASE 23600

/* Longest wait for one reply or one SSE line. */
#define IO_TIMEOUT_MS 20000

static struct cluster cl;

/* ------------------------------------------------------------------------
 * A minimal HTTP client
 * ------------------------------------------------------------------------ */

struct reply {
	int status;
	char headers[8192]; /* the header block, NUL-terminated */
	char *body;         /* owned, NUL-terminated */
	size_t body_len;
	json_t *json; /* the body parsed, when it is JSON */
};

static void reply_free(struct reply *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof *r);
}

static int dial(const char *address)
{
	char host[64];
	const char *colon = strrchr(address, ':');
	struct sockaddr_in sa;
	int fd;

	assert_non_null(colon);
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return; /* the server may close early (413): fine */
		p += n;
		len -= (size_t)n;
	}
}

/* Reads up to @cap bytes within IO_TIMEOUT_MS; 0 at EOF. */
static ssize_t recv_some(int fd, char *buf, size_t cap)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	int rv;

	rv = poll(&pfd, 1, IO_TIMEOUT_MS);
	assert_true(rv == 1);
	return recv(fd, buf, cap, 0);
}

/* Sends @method @path with extra header lines @hdrs ("" or lines ending
 * in \r\n) and @body (NULL: none) to node @k, reads the whole reply. */
static void request_n(unsigned k, const char *method, const char *path,
		      const char *hdrs, const char *body, size_t body_len,
		      struct reply *r)
{
	char head[4096];
	char *raw = NULL;
	size_t len = 0;
	size_t cap = 0;
	char *end;
	int fd;
	int n;

	memset(r, 0, sizeof *r);
	fd = dial(cl.nodes[k].http_address);
	if (body != NULL)
		n = snprintf(head, sizeof head,
			     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: "
			     "close\r\n%sContent-Length: %zu\r\n\r\n",
			     method, path, hdrs, body_len);
	else
		n = snprintf(head, sizeof head,
			     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: "
			     "close\r\n%s\r\n",
			     method, path, hdrs);
	assert_true(n > 0 && (size_t)n < sizeof head);
	send_all(fd, head, (size_t)n);
	if (body != NULL)
		send_all(fd, body, body_len);
	for (;;) {
		ssize_t got;

		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			raw = realloc(raw, cap);
			assert_non_null(raw);
		}
		got = recv_some(fd, raw + len, cap - len - 1);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	assert_true(len > 0);
	raw[len] = '\0';
	assert_int_equal(sscanf(raw, "HTTP/1.1 %d", &r->status), 1);
	end = strstr(raw, "\r\n\r\n");
	assert_non_null(end);
	assert_true((size_t)(end - raw) < sizeof r->headers);
	memcpy(r->headers, raw, (size_t)(end - raw));
	r->headers[end - raw] = '\0';
	r->body_len = len - (size_t)(end + 4 - raw);
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, end + 4, r->body_len);
	r->body[r->body_len] = '\0';
	free(raw);
	r->json = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
}

static void request(unsigned k, const char *method, const char *path,
		    const char *hdrs, const char *body, struct reply *r)
{
	request_n(k, method, path, hdrs, body, body ? strlen(body) : 0, r);
}

#define JSON_HDR "Content-Type: application/json\r\n"

/* The error code of an error reply. */
static const char *err_code(const struct reply *r)
{
	const char *c = json_string_value(
		json_object_get(json_object_get(r->json, "error"), "code"));

	return c != NULL ? c : "(none)";
}

static json_int_t int_of(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static unsigned leader_index(void)
{
	return cluster_wait_leader(&cl, CLUSTER_LEADER_WAIT_MS);
}

static unsigned follower_index(void)
{
	unsigned l = leader_index();

	return (l + 1) % cl.n;
}

/* Waits until node @k reports /ready. */
static void wait_ready(unsigned k)
{
	for (int i = 0; i < 600; i++) {
		struct reply r;

		request(k, "GET", "/ready", "", NULL, &r);
		if (r.status == 200) {
			reply_free(&r);
			return;
		}
		reply_free(&r);
		usleep(100000);
	}
	fail_msg("node %u never became ready", k + 1);
}

/* Appends @n events of @type to @stream through the leader. */
static void append_events(const char *stream, const char *type, int n)
{
	char path[256];
	char body[65536];
	size_t len = 0;
	struct reply r;

	len += (size_t)snprintf(body + len, sizeof body - len, "[");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(
			body + len, sizeof body - len,
			"%s{\"type\":\"%s\",\"data\":{\"i\":%d}}", i ? "," : "",
			type, i);
	snprintf(body + len, sizeof body - len, "]");
	snprintf(path, sizeof path, "/streams/%s", stream);
	request(leader_index(), "POST", path, JSON_HDR, body, &r);
	assert_int_equal(r.status, 201);
	reply_free(&r);
}

/* ------------------------------------------------------------------------
 * Cases
 * ------------------------------------------------------------------------ */

static void ops_endpoints_report_the_cluster(void **state)
{
	unsigned leader = leader_index();
	struct reply r;

	(void)state;
	for (unsigned k = 0; k < cl.n; k++) {
		request(k, "GET", "/health", "", NULL, &r);
		assert_int_equal(r.status, 200);
		assert_string_equal(
			json_string_value(json_object_get(r.json, "status")),
			"ok");
		reply_free(&r);
		wait_ready(k);

		request(k, "GET", "/cluster", "", NULL, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(int_of(r.json, "node"), k + 1);
		assert_int_equal(
			json_array_size(json_object_get(r.json, "members")), 3);
		assert_int_equal(int_of(r.json, "leader"), leader + 1);
		reply_free(&r);
	}
	request(leader, "GET", "/metrics", "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body, "\ncairn_raft_leader 1\n"));
	assert_non_null(strstr(r.body, "# TYPE cairn_appends_total counter"));
	assert_non_null(strstr(r.body, "cairn_rocksdb_sst_bytes{cf=\"log\"}"));
	assert_non_null(strstr(r.body,
			       "cairn_append_latency_seconds_bucket{"
			       "interface=\"http\",le=\"+Inf\"}"));
	reply_free(&r);
}

static void appends_conflict_dedup_and_redirect(void **state)
{
	unsigned leader = leader_index();
	unsigned follower = follower_index();
	const char *key =
		"Cairn-Client-Id: 6f1c8a52-3f0e-4b8e-9d7c-"
		"2b5a1f0e9c11\r\nCairn-Client-Seq: 7\r\n" JSON_HDR;
	char location[256];
	const char *loc;
	struct reply r;
	json_int_t pos;

	(void)state;
	request(leader, "POST", "/streams/acct-1",
		"Cairn-Expected-Version: no-stream\r\n" JSON_HDR,
		"[{\"type\":\"Opened\",\"data\":{\"owner\":\"ann\"}},"
		"{\"type\":\"Deposited\",\"data\":10}]",
		&r);
	assert_int_equal(r.status, 201);
	assert_int_equal(int_of(r.json, "version"), 2);
	assert_int_equal(int_of(r.json, "first_version"), 1);
	assert_false(json_is_true(json_object_get(r.json, "duplicate")));
	reply_free(&r);

	/* A stale expected version: 409 with the actual version. */
	request(leader, "POST", "/streams/acct-1",
		"Cairn-Expected-Version: 1\r\n" JSON_HDR,
		"{\"type\":\"Deposited\",\"data\":5}", &r);
	assert_int_equal(r.status, 409);
	assert_string_equal(err_code(&r), "wrong_expected_version");
	assert_int_equal(
		int_of(json_object_get(r.json, "error"), "actual_version"), 2);
	reply_free(&r);

	/* The same idempotency key twice: one event, the same answer. */
	request(leader, "POST", "/streams/acct-1", key,
		"{\"type\":\"Deposited\",\"data\":5}", &r);
	assert_int_equal(r.status, 201);
	pos = int_of(r.json, "position");
	assert_int_equal(int_of(r.json, "version"), 3);
	reply_free(&r);
	request(leader, "POST", "/streams/acct-1", key,
		"{\"type\":\"Deposited\",\"data\":5}", &r);
	assert_int_equal(r.status, 201);
	assert_int_equal(int_of(r.json, "position"), pos);
	assert_true(json_is_true(json_object_get(r.json, "duplicate")));
	reply_free(&r);
	request(leader, "GET", "/streams/acct-1", "", NULL, &r);
	assert_int_equal(int_of(r.json, "head"), 3);
	reply_free(&r);

	/* A follower redirects to the leader's HTTP address. */
	request(follower, "POST", "/streams/acct-1?x=1",
		"Cairn-Expected-Version: 3\r\n" JSON_HDR,
		"{\"type\":\"Closed\"}", &r);
	assert_int_equal(r.status, 307);
	assert_string_equal(err_code(&r), "not_leader");
	loc = strstr(r.headers, "Location: ");
	assert_non_null(loc);
	snprintf(location, sizeof location,
		 "Location: http://%s/streams/acct-1?x=1",
		 cl.nodes[leader].http_address);
	assert_memory_equal(loc, location, strlen(location));
	reply_free(&r);
	request(leader, "POST", "/streams/acct-1?x=1",
		"Cairn-Expected-Version: 3\r\n" JSON_HDR,
		"{\"type\":\"Closed\"}", &r);
	assert_int_equal(r.status, 201);
	assert_int_equal(int_of(r.json, "version"), 4);
	reply_free(&r);
}

static void reads_page_and_wait(void **state)
{
	unsigned follower = follower_index();
	struct reply r;
	json_t *ev;
	char path[256];
	json_int_t last;

	(void)state;
	append_events("page-1", "Tick", 5);
	append_events("other-1", "Tock", 2);
	request(leader_index(), "GET", "/all?limit=1", "", NULL, &r);
	last = int_of(r.json, "last_position");
	reply_free(&r);

	/* Read-your-writes on a follower: wait for the last position. */
	snprintf(path, sizeof path,
		 "/streams/page-1?limit=2&consistency=%" PRId64, (int64_t)last);
	request(follower, "GET", path, "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(int_of(r.json, "head"), 5);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 2);
	assert_int_equal(int_of(r.json, "next"), 3);
	ev = json_array_get(json_object_get(r.json, "events"), 1);
	assert_int_equal(int_of(ev, "version"), 2);
	assert_int_equal(int_of(json_object_get(ev, "data"), "i"), 1);
	reply_free(&r);

	request(follower, "GET",
		"/streams/"
		"page-1?direction=backward&limit=10&consistency=leader",
		"", NULL, &r);
	/* A follower cannot confirm leadership: it redirects. */
	assert_int_equal(r.status, 307);
	reply_free(&r);
	request(leader_index(), "GET",
		"/streams/"
		"page-1?direction=backward&limit=10&consistency=leader",
		"", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 5);
	ev = json_array_get(json_object_get(r.json, "events"), 0);
	assert_int_equal(int_of(ev, "version"), 5);
	assert_null(json_object_get(r.json, "next"));
	reply_free(&r);

	request(follower, "GET", "/all?category=other&type=Tock&limit=10", "",
		NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 2);
	reply_free(&r);

	/* A position never reached: 504 after --read-wait-ms. */
	request(follower, "GET", "/all?consistency=999999999", "", NULL, &r);
	assert_int_equal(r.status, 504);
	assert_string_equal(err_code(&r), "timeout");
	reply_free(&r);

	/* An unknown stream reads as empty. */
	request(follower, "GET", "/streams/nothing-here", "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(int_of(r.json, "head"), 0);
	reply_free(&r);
}

static void expect_error(unsigned k, const char *method, const char *path,
			 const char *hdrs, const char *body, int status,
			 const char *code)
{
	struct reply r;

	request(k, method, path, hdrs, body, &r);
	if (r.status != status || strcmp(err_code(&r), code) != 0)
		fail_msg("%s %s: got %d %s, want %d %s (body %s)", method, path,
			 r.status, err_code(&r), status, code, r.body);
	assert_non_null(strstr(r.headers, "application/json"));
	reply_free(&r);
}

static void every_error_is_json_with_its_status(void **state)
{
	unsigned leader = leader_index();
	struct reply r;
	char *big;
	int fd;

	(void)state;
	expect_error(leader, "POST", "/streams/e-1", JSON_HDR,
		     "[{\"type\":", 400, "malformed_json");
	expect_error(leader, "POST", "/streams/e-1", JSON_HDR, "\"\xff\"", 400,
		     "malformed_json");
	expect_error(leader, "POST", "/streams/e-1",
		     "Content-Type: text/plain\r\n", "[{\"type\":\"A\"}]", 415,
		     "unsupported_media_type");
	expect_error(leader, "POST", "/streams/e-1", "", "[{\"type\":\"A\"}]",
		     415, "unsupported_media_type");
	expect_error(leader, "POST", "/streams/e-1", JSON_HDR, "[]", 400,
		     "invalid_request");
	expect_error(leader, "POST", "/streams/e-1", JSON_HDR, "[{\"data\":1}]",
		     400, "invalid_request");
	expect_error(leader, "POST", "/streams/e-1", JSON_HDR,
		     "[{\"type\":\"A\",\"bogus\":1}]", 400, "invalid_request");
	expect_error(leader, "POST", "/streams/e%01x", JSON_HDR,
		     "[{\"type\":\"A\"}]", 400, "invalid_stream");
	expect_error(leader, "GET", "/streams/e%01x", "", NULL, 400,
		     "invalid_stream");
	expect_error(leader, "POST", "/streams/e-1",
		     "Cairn-Expected-Version: soon\r\n" JSON_HDR,
		     "[{\"type\":\"A\"}]", 400, "invalid_request");
	expect_error(
		leader, "POST", "/streams/e-1",
		"Cairn-Client-Id: nope\r\nCairn-Client-Seq: 1\r\n" JSON_HDR,
		"[{\"type\":\"A\"}]", 400, "invalid_request");
	expect_error(leader, "POST", "/streams/e-1",
		     "Cairn-Client-Seq: 1\r\n" JSON_HDR, "[{\"type\":\"A\"}]",
		     400, "invalid_request");
	expect_error(leader, "GET", "/streams/e-1?limit=0", "", NULL, 400,
		     "invalid_request");
	expect_error(leader, "GET", "/all?from=-1", "", NULL, 400,
		     "invalid_request");
	expect_error(leader, "GET", "/subscribe?stream=a&all", "", NULL, 400,
		     "invalid_request");
	expect_error(leader, "GET", "/nowhere", "", NULL, 404, "not_found");

	/* CORS: a preflight from any origin is answered, and every reply
	 * allows any origin. */
	request(leader, "OPTIONS", "/sync",
		"Origin: http://elsewhere\r\nAccess-Control-Request-Method: "
		"POST\r\n",
		NULL, &r);
	assert_int_equal(r.status, 204);
	assert_non_null(strstr(r.headers, "Access-Control-Allow-Origin: *"));
	assert_non_null(strstr(r.headers,
			       "Access-Control-Allow-Headers: "
			       "Content-Type, Cairn-Expected-"));
	reply_free(&r);
	expect_error(leader, "DELETE", "/streams/e-1", "", NULL, 405,
		     "method_not_allowed");
	expect_error(leader, "GET", "/sync", "", NULL, 405,
		     "method_not_allowed");
	expect_error(leader, "POST", "/sync", JSON_HDR,
		     "{\"client_id\":\"x\",\"batches\":[]}", 400,
		     "invalid_request");

	/* A body over the limit is refused from its Content-Length, before
	 * it is read. */
	big = calloc(1, 18u << 20);
	assert_non_null(big);
	request_n(leader, "POST", "/streams/e-1", JSON_HDR, big, 18u << 20, &r);
	free(big);
	assert_int_equal(r.status, 413);
	assert_string_equal(err_code(&r), "too_large");
	reply_free(&r);
	/* An event over the store's data limit: 413 as well. */
	big = malloc((1u << 20) + 64);
	memset(big, 'x', (1u << 20) + 64);
	memcpy(big, "[{\"type\":\"A\",\"data\":\"", 21);
	memcpy(big + (1u << 20) + 60, "\"}]", 4);
	request(leader, "POST", "/streams/e-1", JSON_HDR, big, &r);
	assert_int_equal(r.status, 413);
	reply_free(&r);
	free(big);

	/* Garbage on the socket: the node survives. */
	fd = dial(cl.nodes[leader].http_address);
	send_all(fd, "\x01\x02 GARBAGE\r\n\r\n\r\n", 17);
	close(fd);
	request(leader, "GET", "/health", "", NULL, &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	request(leader, "GET", "/streams/e-1", "", NULL, &r);
	assert_int_equal(int_of(r.json, "head"), 0); /* nothing appended */
	reply_free(&r);
	cluster_check_alive(&cl);
}

/* An SSE reader: the positions it received, in order. */
struct sse {
	int fd;
	char buf[1 << 16];
	size_t len;
	bool live;
	uint64_t ids[512];
	unsigned n_ids;
};

static void sse_open(struct sse *s, unsigned k, const char *path,
		     const char *hdrs)
{
	char head[1024];
	int n;

	memset(s, 0, sizeof *s);
	s->fd = dial(cl.nodes[k].http_address);
	n = snprintf(head, sizeof head,
		     "GET %s HTTP/1.1\r\nHost: x\r\nAccept: "
		     "text/event-stream\r\n%s\r\n",
		     path, hdrs);
	send_all(s->fd, head, (size_t)n);
}

/* Reads SSE lines until @until_id was received (0: until live). */
static void sse_read_until(struct sse *s, uint64_t until_id)
{
	for (;;) {
		char *nl;

		while ((nl = memchr(s->buf, '\n', s->len)) != NULL) {
			size_t line = (size_t)(nl - s->buf) + 1;
			uint64_t id;

			*nl = '\0';
			if (sscanf(s->buf, "id: %" SCNu64, &id) == 1) {
				assert_true(s->n_ids < 512);
				s->ids[s->n_ids++] = id;
			} else if (strcmp(s->buf, "event: live") == 0) {
				s->live = true;
			}
			memmove(s->buf, s->buf + line, s->len - line);
			s->len -= line;
			if (until_id == 0
				    ? s->live
				    : s->n_ids > 0 &&
					      s->ids[s->n_ids - 1] >= until_id)
				return;
		}
		ssize_t got = recv_some(s->fd, s->buf + s->len,
					sizeof s->buf - s->len);
		assert_true(got > 0);
		s->len += (size_t)got;
	}
}

static void sse_resume_loses_and_repeats_nothing(void **state)
{
	unsigned follower = follower_index();
	struct reply r;
	struct sse s;
	char hdr[64];
	uint64_t first;
	uint64_t last;
	uint64_t cut;

	(void)state;
	request(leader_index(), "GET", "/all?limit=1", "", NULL, &r);
	first = (uint64_t)int_of(r.json, "last_position") + 1;
	reply_free(&r);
	append_events("sse-1", "A", 10);

	/* Catch up from the first new position, stop in the middle. */
	char path[128];

	snprintf(path, sizeof path, "/subscribe?category=sse&from=%" PRIu64,
		 first);
	sse_open(&s, follower, path, "");
	cut = first + 4;
	sse_read_until(&s, cut);
	close(s.fd);
	assert_int_equal(s.ids[0], first);
	for (unsigned i = 1; i < s.n_ids; i++)
		assert_int_equal(s.ids[i], s.ids[i - 1] + 1);
	cut = s.ids[s.n_ids - 1];

	/* More events while disconnected; resume after the last one seen. */
	append_events("sse-1", "A", 10);
	snprintf(hdr, sizeof hdr, "Last-Event-ID: %" PRIu64 "\r\n", cut);
	sse_open(&s, follower, path, hdr);
	last = first + 19;
	/* The follower may mark live before it applied the last append:
	 * live means caught up with this node. Read to the last event. */
	sse_read_until(&s, last);
	if (!s.live)
		sse_read_until(&s, 0);
	assert_true(s.n_ids >= 1);
	assert_int_equal(s.ids[0], cut + 1);
	for (unsigned i = 1; i < s.n_ids; i++)
		assert_int_equal(s.ids[i], s.ids[i - 1] + 1);
	assert_int_equal(s.ids[s.n_ids - 1], last);

	/* Live: new events arrive, nothing else does. */
	append_events("other-2", "B", 3); /* another category */
	append_events("sse-1", "A", 2);
	sse_read_until(&s, last + 5);
	assert_int_equal(s.ids[s.n_ids - 2], last + 4);
	assert_int_equal(s.ids[s.n_ids - 1], last + 5);
	close(s.fd);

	/* One stream from its start, resumed by position. */
	snprintf(hdr, sizeof hdr, "Last-Event-ID: %" PRIu64 "\r\n", first + 2);
	sse_open(&s, follower, "/subscribe?stream=sse-1", hdr);
	sse_read_until(&s, last + 5);
	assert_int_equal(s.ids[0], first + 3);
	assert_int_equal(s.n_ids, 20 - 3 + 2);
	close(s.fd);
}

static void sync_replayed_twice_is_idempotent(void **state)
{
	unsigned leader = leader_index();
	const char *body =
		"{\"client_id\":\"0c6f8a52-3f0e-4b8e-9d7c-2b5a1f0e9c11\","
		"\"batches\":["
		"{\"seq\":1,\"streams\":[{\"stream\":\"canvas-t\",\"events\":"
		"[{\"type\":\"CellPainted\",\"data\":{\"x\":1,\"y\":1,"
		"\"color\":\"red\"}}]},{\"stream\":\"devlog-t\",\"events\":"
		"[{\"type\":\"Synced\"}]}]},"
		"{\"seq\":2,\"streams\":[{\"stream\":\"canvas-t\",\"events\":"
		"[{\"type\":\"CellPainted\",\"data\":{\"x\":1,\"y\":1,"
		"\"color\":\"blue\"}},{\"type\":\"CellPainted\",\"data\":"
		"{\"x\":2,\"y\":1,\"color\":\"blue\"}}]}]}]}";
	struct reply a;
	struct reply b;
	struct reply r;

	(void)state;
	request(leader, "POST", "/sync", JSON_HDR, body, &a);
	assert_int_equal(a.status, 200);
	request(leader, "POST", "/sync", JSON_HDR, body, &b);
	assert_int_equal(b.status, 200);
	json_t *ra = json_object_get(a.json, "results");
	json_t *rb = json_object_get(b.json, "results");

	assert_int_equal(json_array_size(ra), 2);
	assert_int_equal(json_array_size(rb), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *x = json_array_get(ra, i);
		json_t *y = json_array_get(rb, i);

		assert_false(json_is_true(json_object_get(x, "duplicate")));
		assert_true(json_is_true(json_object_get(y, "duplicate")));
		assert_true(json_equal(json_object_get(x, "positions"),
				       json_object_get(y, "positions")));
	}
	assert_int_equal(json_array_size(json_object_get(json_array_get(ra, 0),
							 "positions")),
			 2);
	assert_int_equal(json_array_size(json_object_get(json_array_get(ra, 1),
							 "positions")),
			 2);
	request(leader, "GET", "/streams/canvas-t", "", NULL, &r);
	assert_int_equal(int_of(r.json, "head"), 3);
	reply_free(&r);
	reply_free(&a);
	reply_free(&b);

	/* The same (client, seq) as a committed batch with other events:
	 * answered from dedup, nothing appended. */
	request(leader, "POST", "/sync", JSON_HDR,
		"{\"client_id\":\"0c6f8a52-3f0e-4b8e-9d7c-2b5a1f0e9c11\","
		"\"batches\":[{\"seq\":2,\"streams\":[{\"stream\":"
		"\"canvas-t\",\"events\":[{\"type\":\"X\"}]}]}]}",
		&r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(
		json_array_get(json_object_get(r.json, "results"), 0),
		"duplicate")));
	reply_free(&r);

	/* A seq below the device's mark that never committed: 409
	 * stale_sequence; the batches before it are in the results. */
	request(leader, "POST", "/sync", JSON_HDR,
		"{\"client_id\":\"0c6f8a52-3f0e-4b8e-9d7c-2b5a1f0e9c12\","
		"\"batches\":[{\"seq\":5,\"streams\":[{\"stream\":"
		"\"canvas-t\",\"events\":[{\"type\":\"X\"}]}]}]}",
		&r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	request(leader, "POST", "/sync", JSON_HDR,
		"{\"client_id\":\"0c6f8a52-3f0e-4b8e-9d7c-2b5a1f0e9c12\","
		"\"batches\":[{\"seq\":5,\"streams\":[{\"stream\":"
		"\"canvas-t\",\"events\":[{\"type\":\"X\"}]}]},"
		"{\"seq\":6,\"streams\":[{\"stream\":"
		"\"canvas-t\",\"events\":[{\"type\":\"Y\"}]}]},"
		"{\"seq\":3,\"streams\":[{\"stream\":"
		"\"canvas-t\",\"events\":[{\"type\":\"Z\"}]}]}]}",
		&r);
	/* Seqs must increase within a request: refused whole. */
	assert_int_equal(r.status, 400);
	reply_free(&r);
	request(leader, "POST", "/sync", JSON_HDR,
		"{\"client_id\":\"0c6f8a52-3f0e-4b8e-9d7c-2b5a1f0e9c12\","
		"\"batches\":[{\"seq\":3,\"streams\":[{\"stream\":"
		"\"canvas-t\",\"events\":[{\"type\":\"Z\"}]}]}]}",
		&r);
	assert_int_equal(r.status, 409);
	assert_string_equal(err_code(&r), "stale_sequence");
	assert_int_equal(int_of(json_object_get(r.json, "error"), "seq"), 3);
	assert_int_equal(json_array_size(json_object_get(r.json, "results")),
			 0);
	reply_free(&r);
	request(leader, "GET", "/streams/canvas-t", "", NULL, &r);
	assert_int_equal(int_of(r.json, "head"), 4);
	reply_free(&r);
}

static void listing_pages_categories_and_streams(void **state)
{
	unsigned follower = follower_index();
	const char *after;
	struct reply r;
	json_t *items;
	char path[128];

	(void)state;
	append_events("zz-1", "A", 1);
	append_events("zz-2", "A", 2);
	append_events("zz", "A", 1);     /* no category */
	append_events("zz.x-1", "A", 1); /* category "zz.x", after "zz" */
	request(leader_index(), "GET",
		"/streams?category=zz&limit=1&"
		"consistency=leader",
		"", NULL, &r);
	reply_free(&r);
	cluster_wait_converged(&cl, 30000);

	request(follower, "GET", "/streams?limit=1000", "", NULL, &r);
	assert_int_equal(r.status, 200);
	items = json_object_get(r.json, "categories");
	/* Sorted, each once: acct canvas devlog other page sse zz zz.x */
	assert_int_equal(json_array_size(items), 8);
	assert_string_equal(json_string_value(json_array_get(items, 0)),
			    "acct");
	assert_string_equal(json_string_value(json_array_get(items, 6)), "zz");
	assert_string_equal(json_string_value(json_array_get(items, 7)),
			    "zz.x");
	assert_false(json_is_true(json_object_get(r.json, "more")));
	reply_free(&r);

	request(follower, "GET", "/streams?limit=2&after=page", "", NULL, &r);
	items = json_object_get(r.json, "categories");
	assert_int_equal(json_array_size(items), 2);
	after = json_string_value(json_array_get(items, 1));
	assert_string_equal(json_string_value(json_array_get(items, 0)), "sse");
	assert_string_equal(after, "zz");
	assert_true(json_is_true(json_object_get(r.json, "more")));
	reply_free(&r);

	request(follower, "GET", "/streams?category=zz", "", NULL, &r);
	items = json_object_get(r.json, "streams");
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(items, 1), "stream")),
			    "zz-2");
	assert_int_equal(int_of(json_array_get(items, 1), "version"), 2);
	reply_free(&r);

	snprintf(path, sizeof path, "/streams?category=zz&after=zz-1");
	request(follower, "GET", path, "", NULL, &r);
	items = json_object_get(r.json, "streams");
	assert_int_equal(json_array_size(items), 1);
	reply_free(&r);
}

static void checkpoints_and_snapshots(void **state)
{
	unsigned leader = leader_index();
	unsigned follower = follower_index();
	struct reply r;
	json_int_t pos_before;
	json_t *ev;

	(void)state;
	/* A checkpoint: CAS from absent, CAS with a stale value, set. */
	request(leader, "PUT", "/checkpoints/billing", JSON_HDR,
		"{\"value\":40,\"expected\":null}", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(int_of(r.json, "value"), 40);
	reply_free(&r);
	request(leader, "PUT", "/checkpoints/billing", JSON_HDR,
		"{\"value\":50,\"expected\":39}", &r);
	assert_int_equal(r.status, 409);
	assert_string_equal(err_code(&r), "wrong_expected_value");
	assert_int_equal(
		int_of(json_object_get(r.json, "error"), "actual_value"), 40);
	reply_free(&r);
	request(leader, "PUT", "/checkpoints/billing", JSON_HDR,
		"{\"value\":50,\"expected\":40}", &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	request(leader, "GET", "/checkpoints/billing?consistency=leader", "",
		NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(int_of(r.json, "value"), 50);
	reply_free(&r);
	expect_error(leader, "GET", "/checkpoints/nobody", "", NULL, 404,
		     "not_found");
	expect_error(follower, "PUT", "/checkpoints/billing", JSON_HDR,
		     "{\"value\":1}", 307, "not_leader");

	/* Snapshots take no positions; a read with the snapshot returns it
	 * and only the events after it. */
	append_events("cart-7", "ItemAdded", 3);
	request(leader, "GET", "/all?limit=1", "", NULL, &r);
	pos_before = int_of(r.json, "last_position");
	reply_free(&r);
	request(leader, "PUT", "/snapshots/cart-7", JSON_HDR,
		"{\"version\":2,\"data\":{\"items\":2}}", &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	expect_error(leader, "PUT", "/snapshots/cart-7", JSON_HDR,
		     "{\"version\":9,\"data\":{}}", 409,
		     "wrong_expected_version");
	append_events("cart-7", "ItemAdded", 2);
	request(leader, "GET", "/all?limit=1", "", NULL, &r);
	assert_int_equal(int_of(r.json, "last_position"), pos_before + 2);
	reply_free(&r);

	request(leader, "GET", "/streams/cart-7?snapshot&consistency=leader",
		"", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(int_of(json_object_get(r.json, "snapshot"), "version"),
			 2);
	assert_int_equal(
		int_of(json_object_get(json_object_get(r.json, "snapshot"),
				       "data"),
		       "items"),
		2);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 3);
	ev = json_array_get(json_object_get(r.json, "events"), 0);
	assert_int_equal(int_of(ev, "version"), 3);
	reply_free(&r);

	/* The newest snapshot wins. */
	request(leader, "PUT", "/snapshots/cart-7", JSON_HDR,
		"{\"version\":5,\"data\":{\"items\":5}}", &r);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	request(leader, "GET", "/streams/cart-7?snapshot&consistency=leader",
		"", NULL, &r);
	assert_int_equal(int_of(json_object_get(r.json, "snapshot"), "version"),
			 5);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 0);
	reply_free(&r);
	request(leader, "GET", "/snapshots/cart-7", "", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(int_of(r.json, "version"), 5);
	reply_free(&r);
}

static int setup(void **state)
{
	static const char *args[] = { "--read-wait-ms", "500", NULL };

	(void)state;
	cluster_start_args(&cl, "http", 3, PORT_BASE, args);
	cluster_wait_leader(&cl, CLUSTER_LEADER_WAIT_MS);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cluster_check_logs(&cl);
	cluster_passed(&cl);
	cluster_teardown(&cl);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ops_endpoints_report_the_cluster),
		cmocka_unit_test(appends_conflict_dedup_and_redirect),
		cmocka_unit_test(reads_page_and_wait),
		cmocka_unit_test(every_error_is_json_with_its_status),
		cmocka_unit_test(sse_resume_loses_and_repeats_nothing),
		cmocka_unit_test(sync_replayed_twice_is_idempotent),
		cmocka_unit_test(listing_pages_categories_and_streams),
		cmocka_unit_test(checkpoints_and_snapshots),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, setup, teardown);
}
