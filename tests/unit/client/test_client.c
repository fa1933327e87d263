/* Unit tests of libcairn that need no cluster: UUIDs, seed lists, error
 * texts, deadlines against an address where nothing listens, and the
 * retry rules (redirects, lost connections, UNAVAILABLE, stale sequences,
 * conflicts, close) and subscriptions (resume, credit, refusal) against a
 * fake single-connection server written here with plain sockets and the
 * wire codec. Ports: 21150..21189, and 23480..23489 for subscriptions. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn.h"
#include "wire.h"

/* Checks in code that runs off the test's thread (the fake's thread, the
 * client's callbacks), where cmocka's assertions must not be used. */
#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #x);                                 \
			abort();                                               \
		}                                                              \
	} while (0)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------------
 * A fake node: one connection at a time, frames answered by a script
 * ------------------------------------------------------------------------ */

/* What the fake saw of one APPEND. */
struct seen_append {
	uint8_t client_id[16];
	uint64_t seq;
	uint8_t first_event_id[16];
	uint32_t n_events;
};

enum { FAKE_KEEP = 0, FAKE_CLOSE = 1 };

struct fake;

/* Answers one request frame; returns FAKE_KEEP or FAKE_CLOSE (drop the
 * connection without answering further). @n is the request's ordinal
 * among all requests the fake received (0 first). */
typedef int (*fake_script)(struct fake *f, int fd, const struct wire_header *h,
			   const uint8_t *body, int n);

struct fake {
	int listen_fd;
	int port;
	pthread_t thread;
	atomic_bool stop;
	fake_script script;
	const char *leader; /* for NOT_LEADER scripts */
	pthread_mutex_t mu;
	int n_requests;
	int n_connections;
	int n_appends;
	struct seen_append appends[512];
};

static void send_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = send(fd, b, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the client went away: not the fake's care */
		b += n;
		len -= (size_t)n;
	}
}

static void send_buf(int fd, struct wire_buf *b)
{
	send_all(fd, b->p, b->len);
	wire_buf_close(b);
}

static void reply_error(int fd, uint64_t id, uint32_t code, const char *leader,
			const char *message, uint64_t actual)
{
	struct wire_buf b;
	struct wire_err e;

	memset(&e, 0, sizeof e);
	e.code = code;
	e.actual_version = actual;
	e.leader.p = (const uint8_t *)leader;
	e.leader.len = leader != NULL ? (uint32_t)strlen(leader) : 0;
	e.message.p = (const uint8_t *)message;
	e.message.len = message != NULL ? (uint32_t)strlen(message) : 0;
	wire_buf_init(&b);
	CHECK((wire_encode_error(&b, id, &e)) == (0));
	send_buf(fd, &b);
}

static void reply_append_ok(int fd, uint64_t id, bool duplicate,
			    uint64_t version, uint64_t position)
{
	struct wire_buf b;
	struct wire_part_result r = { version, version, position, position };

	wire_buf_init(&b);
	CHECK((wire_encode_append_ok(&b, id, duplicate, 1, &r)) == (0));
	send_buf(fd, &b);
}

static void record_append(struct fake *f, const uint8_t *body, size_t len)
{
	struct wire_append a;
	struct seen_append *s;

	CHECK((wire_decode_append(body, len, &a)) == (0));
	pthread_mutex_lock(&f->mu);
	CHECK(f->n_appends < 512);
	s = &f->appends[f->n_appends++];
	memcpy(s->client_id, a.client_id, 16);
	s->seq = a.client_seq;
	memcpy(s->first_event_id, a.parts[0].events[0].id, 16);
	s->n_events = a.parts[0].n_events;
	pthread_mutex_unlock(&f->mu);
	wire_append_close(&a);
}

static void serve(struct fake *f, int fd)
{
	uint8_t *buf = malloc(1 << 20);
	size_t len = 0;

	CHECK(buf != NULL);
	while (!atomic_load(&f->stop)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 20) <= 0)
			continue;
		n = recv(fd, buf + len, (1 << 20) - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		for (;;) {
			struct wire_header h;
			size_t frame_len;
			int ord;
			int rv;

			rv = wire_frame_peek(buf, len, &h, &frame_len);
			if (rv == WIRE_NEED_MORE)
				break;
			CHECK((rv) == (0));
			pthread_mutex_lock(&f->mu);
			ord = f->n_requests++;
			pthread_mutex_unlock(&f->mu);
			if (h.type == WIRE_APPEND)
				record_append(f, buf + WIRE_HEADER_BYTES,
					      h.body_len);
			rv = f->script(f, fd, &h, buf + WIRE_HEADER_BYTES, ord);
			memmove(buf, buf + frame_len, len - frame_len);
			len -= frame_len;
			if (rv == FAKE_CLOSE)
				goto out;
		}
	}
out:
	close(fd);
	free(buf);
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = { .fd = f->listen_fd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 20) <= 0)
			continue;
		fd = accept(f->listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&f->mu);
		f->n_connections++;
		pthread_mutex_unlock(&f->mu);
		serve(f, fd);
	}
	return NULL;
}

static void fake_start(struct fake *f, int port, fake_script script,
		       const char *leader)
{
	struct sockaddr_in sin;
	int one = 1;

	memset(f, 0, sizeof *f);
	f->port = port;
	f->script = script;
	f->leader = leader;
	pthread_mutex_init(&f->mu, NULL);
	f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->listen_fd >= 0);
	setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(
		bind(f->listen_fd, (struct sockaddr *)&sin, sizeof sin), 0);
	assert_int_equal(listen(f->listen_fd, 16), 0);
	atomic_store(&f->stop, false);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
	pthread_mutex_destroy(&f->mu);
}

static int fake_appends(struct fake *f)
{
	int n;

	pthread_mutex_lock(&f->mu);
	n = f->n_appends;
	pthread_mutex_unlock(&f->mu);
	return n;
}

static cairn_client *open_client(const char *seeds, unsigned deadline_ms,
				 bool single_node)
{
	struct cairn_options o;
	struct cairn_error err;
	cairn_client *c = NULL;

	memset(&o, 0, sizeof o);
	o.deadline_ms = deadline_ms;
	o.single_node = single_node;
	o.connect_timeout_ms = 500;
	assert_int_equal(cairn_open(seeds, &o, &c, &err), 0);
	assert_non_null(c);
	return c;
}

static const struct cairn_event_in one_event = {
	.type = "thing-happened",
	.data = "{\"n\":1}",
	.data_len = 7,
};

/* ------------------------------------------------------------------------
 * UUIDs, seeds, error texts
 * ------------------------------------------------------------------------ */

static void uuid_format_parse_round_trip(void **state)
{
	uint8_t id[16];
	uint8_t back[16];
	char text[37];
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		cairn_uuid(id);
		cairn_uuid_format(id, text);
		assert_int_equal(strlen(text), 36);
		assert_int_equal(cairn_uuid_parse(text, back), 0);
		assert_memory_equal(id, back, 16);
	}
	cairn_uuid_parse("00112233-4455-6677-8899-AABBCCDDEEFF", back);
	cairn_uuid_format(back, text);
	assert_string_equal(text, "00112233-4455-6677-8899-aabbccddeeff");
}

static void uuid_is_version_4_with_rfc4122_variant(void **state)
{
	uint8_t id[16];
	uint8_t first[16];
	char text[37];
	int i;

	(void)state;
	cairn_uuid(first);
	for (i = 0; i < 1000; i++) {
		cairn_uuid(id);
		assert_int_equal(id[6] >> 4, 4);
		assert_int_equal(id[8] >> 6, 2);
		cairn_uuid_format(id, text);
		assert_int_equal(text[14], '4');
		assert_non_null(strchr("89ab", text[19]));
	}
	assert_memory_not_equal(first, id, 16);
}

static void uuid_parse_rejects_malformed_text(void **state)
{
	static const char *bad[] = {
		"",
		"00112233-4455-6677-8899-aabbccddeef",
		"00112233-4455-6677-8899-aabbccddeeff0",
		"0011223344556677-8899-aabbccddeeff--",
		"00112233-4455-6677-8899_aabbccddeeff",
		"0011223g-4455-6677-8899-aabbccddeeff",
		"00112233-4455-6677-8899-aabbccddee f",
		"{0112233-4455-6677-8899-aabbccddeef}",
	};
	uint8_t out[16];
	uint8_t before[16];
	size_t i;

	(void)state;
	memset(out, 0x5a, sizeof out);
	memcpy(before, out, 16);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(cairn_uuid_parse(bad[i], out), CAIRN_EARG);
		assert_memory_equal(out, before, 16);
	}
	assert_int_equal(cairn_uuid_parse(NULL, out), CAIRN_EARG);
}

static void open_rejects_malformed_seed_lists(void **state)
{
	static const char *bad[] = {
		"",
		",",
		"127.0.0.1",
		"127.0.0.1:",
		":7001",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:70x",
		"127.0.0.1:-1",
		"a:1,,b:2",
		"a:1,",
		"::1:7001",
		"[]:7001",
	};
	char longname[400];
	struct cairn_error err;
	cairn_client *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c = (cairn_client *)&err; /* must be reset to NULL */
		memset(&err, 0, sizeof err);
		assert_int_equal(cairn_open(bad[i], NULL, &c, &err),
				 CAIRN_EARG);
		assert_null(c);
		assert_int_equal(err.code, CAIRN_EARG);
		assert_non_null(strstr(err.message, "open: seeds: "));
	}
	memset(longname, 'h', sizeof longname);
	strcpy(longname + 300, ":7001");
	assert_int_equal(cairn_open(longname, NULL, &c, &err), CAIRN_EARG);
	assert_int_equal(cairn_open(NULL, NULL, &c, &err), CAIRN_EARG);
}

static void open_accepts_names_spaces_and_ipv6(void **state)
{
	static const char *good[] = {
		"127.0.0.1:1",
		" 127.0.0.1:7001 , 127.0.0.1:7002 ",
		"[::1]:7001",
		"localhost:7001,node-2.cairn.svc:7001",
	};
	cairn_client *c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		c = NULL;
		assert_int_equal(cairn_open(good[i], NULL, &c, NULL), 0);
		assert_non_null(c);
		cairn_close(c);
	}
}

static void strerror_names_every_code(void **state)
{
	static const int codes[] = {
#define CODE(name, value, msg) name,
		CAIRN_ERRORS(CODE)
#undef CODE
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		const char *s = cairn_strerror(codes[i]);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
		assert_string_not_equal(s, "unknown error");
	}
	/* The protocol's codes and the library's share their numbers. */
	assert_int_equal(CAIRN_EWRONG_EXPECTED_VERSION,
			 WIRE_EWRONG_EXPECTED_VERSION);
	assert_int_equal(CAIRN_EINTERNAL, WIRE_EINTERNAL);
	assert_string_equal(cairn_strerror(9999), "unknown error");
}

static void client_id_is_random_unless_given(void **state)
{
	struct cairn_options o;
	cairn_client *a;
	cairn_client *b;
	uint8_t ida[16];
	uint8_t idb[16];

	(void)state;
	assert_int_equal(cairn_open("127.0.0.1:21189", NULL, &a, NULL), 0);
	assert_int_equal(cairn_open("127.0.0.1:21189", NULL, &b, NULL), 0);
	cairn_client_id(a, ida);
	cairn_client_id(b, idb);
	assert_memory_not_equal(ida, idb, 16);
	cairn_close(b);
	memset(&o, 0, sizeof o);
	memset(o.client_id, 7, 16);
	assert_int_equal(cairn_open("127.0.0.1:21189", &o, &b, NULL), 0);
	cairn_client_id(b, idb);
	assert_memory_equal(idb, o.client_id, 16);
	cairn_close(b);
	cairn_close(a);
}

/* ------------------------------------------------------------------------
 * Deadlines and arguments
 * ------------------------------------------------------------------------ */

static void call_without_listener_fails_within_its_deadline(void **state)
{
	struct cairn_error err;
	cairn_client *c;
	uint64_t version;
	uint64_t t0;
	uint64_t took;
	int rv;

	(void)state;
	/* Nothing listens on 21188 or 21187 (this range is ours). */
	c = open_client("127.0.0.1:21188,127.0.0.1:21187", 400, false);
	t0 = now_ms();
	rv = cairn_head(c, "order-1", NULL, &version, NULL, &err);
	took = now_ms() - t0;
	assert_true(rv == CAIRN_ECONNECT || rv == CAIRN_ETIMEOUT);
	assert_int_equal(err.code, rv);
	assert_non_null(strstr(err.message, "head: "));
	assert_true(took >= 390);
	assert_true(took < 400 + 1600);

	t0 = now_ms();
	rv = cairn_append_one(c, "order-1", CAIRN_EXPECT_ANY, 0, &one_event, 1,
			      NULL, &err);
	took = now_ms() - t0;
	assert_true(rv == CAIRN_ECONNECT || rv == CAIRN_ETIMEOUT);
	assert_true(took < 400 + 1600);
	cairn_close(c);
}

static void status_probe_of_a_dead_node_fails_fast(void **state)
{
	struct cairn_status s;
	struct cairn_error err;
	cairn_client *c;
	uint64_t t0;
	int rv;

	(void)state;
	c = open_client("127.0.0.1:21186", 5000, false);
	t0 = now_ms();
	rv = cairn_status(c, "127.0.0.1:21185", &s, &err);
	assert_int_equal(rv, CAIRN_ECONNECT);
	assert_non_null(strstr(err.message, "127.0.0.1:21185"));
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(cairn_status(c, "nonsense", &s, &err), CAIRN_EARG);
	cairn_close(c);
}

static void append_rejects_bad_arguments_before_sending(void **state)
{
	struct cairn_event_in ev = one_event;
	struct cairn_append_part part;
	struct cairn_part_result res;
	struct cairn_error err;
	cairn_client *c;

	(void)state;
	c = open_client("127.0.0.1:21184", 300, false);
	assert_int_equal(cairn_append(c, NULL, 0, NULL, &res, NULL, &err),
			 CAIRN_EARG);
	ev.type = NULL;
	assert_int_equal(cairn_append_one(c, "s", CAIRN_EXPECT_ANY, 0, &ev, 1,
					  &res, &err),
			 CAIRN_EARG);
	assert_int_equal(
		cairn_append_one(c, "s", 9, 0, &one_event, 1, &res, &err),
		CAIRN_EARG);
	/* An empty part is refused by the encoder as invalid. */
	memset(&part, 0, sizeof part);
	part.stream = "s";
	assert_int_equal(cairn_append(c, &part, 1, NULL, &res, NULL, &err),
			 CAIRN_EINVALID);
	cairn_close(c);
}

/* ------------------------------------------------------------------------
 * Retries against the fake node
 * ------------------------------------------------------------------------ */

static int script_redirect(struct fake *f, int fd, const struct wire_header *h,
			   const uint8_t *body, int n)
{
	(void)body;
	(void)n;
	reply_error(fd, h->request_id, WIRE_ENOT_LEADER, f->leader,
		    "not the leader", 0);
	return FAKE_KEEP;
}

static int script_ok(struct fake *f, int fd, const struct wire_header *h,
		     const uint8_t *body, int n)
{
	(void)f;
	(void)body;
	(void)n;
	reply_append_ok(fd, h->request_id, false, 1, 42);
	return FAKE_KEEP;
}

static void append_follows_not_leader_with_the_same_key(void **state)
{
	struct fake follower;
	struct fake leader;
	struct cairn_part_result res;
	struct cairn_error err;
	cairn_client *c;
	uint8_t id[16];

	(void)state;
	fake_start(&leader, 21152, script_ok, NULL);
	fake_start(&follower, 21151, script_redirect, "127.0.0.1:21152");
	c = open_client("127.0.0.1:21151", 3000, false);
	assert_int_equal(cairn_append_one(c, "order-1", CAIRN_EXPECT_NO_STREAM,
					  0, &one_event, 1, &res, &err),
			 0);
	assert_int_equal(res.last_version, 1);
	assert_int_equal(res.last_position, 42);
	assert_int_equal(fake_appends(&follower), 1);
	assert_int_equal(fake_appends(&leader), 1);
	cairn_client_id(c, id);
	assert_memory_equal(follower.appends[0].client_id, id, 16);
	assert_memory_equal(leader.appends[0].client_id, id, 16);
	assert_int_equal(follower.appends[0].seq, leader.appends[0].seq);
	assert_memory_equal(follower.appends[0].first_event_id,
			    leader.appends[0].first_event_id, 16);

	/* The next append goes to the leader straight away. */
	assert_int_equal(cairn_append_one(c, "order-1", CAIRN_EXPECT_ANY, 0,
					  &one_event, 1, &res, &err),
			 0);
	assert_int_equal(fake_appends(&follower), 1);
	assert_int_equal(fake_appends(&leader), 2);
	assert_true(leader.appends[1].seq > leader.appends[0].seq);
	assert_memory_not_equal(leader.appends[1].first_event_id,
				leader.appends[0].first_event_id, 16);
	cairn_close(c);
	fake_stop(&follower);
	fake_stop(&leader);
}

struct appender {
	cairn_client *c;
	int failures;
	pthread_t thread;
};

static void *appender_run(void *arg)
{
	struct appender *a = arg;
	struct cairn_part_result res;
	struct cairn_error err;
	int i;

	for (i = 0; i < 40; i++) {
		if (cairn_append_one(a->c, "order-11", CAIRN_EXPECT_ANY, 0,
				     &one_event, 1, &res, &err) != 0)
			a->failures++;
	}
	return NULL;
}

static void concurrent_appends_arrive_in_sequence_order(void **state)
{
	struct fake f;
	struct appender threads[8];
	cairn_client *c;
	int i;

	(void)state;
	fake_start(&f, 21163, script_ok, NULL);
	c = open_client("127.0.0.1:21163", 5000, false);
	for (i = 0; i < 8; i++) {
		threads[i].c = c;
		threads[i].failures = 0;
		assert_int_equal(pthread_create(&threads[i].thread, NULL,
						appender_run, &threads[i]),
				 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(threads[i].thread, NULL);
		assert_int_equal(threads[i].failures, 0);
	}
	assert_int_equal(fake_appends(&f), 320);
	/* One writer id, and sequences in the order they reach the node:
	 * a later one never overtakes an earlier one. */
	for (i = 1; i < 320; i++) {
		assert_memory_equal(f.appends[i].client_id,
				    f.appends[0].client_id, 16);
		assert_true(f.appends[i].seq > f.appends[i - 1].seq);
	}
	cairn_close(c);
	fake_stop(&f);
}

static int script_drop_then_duplicate(struct fake *f, int fd,
				      const struct wire_header *h,
				      const uint8_t *body, int n)
{
	(void)f;
	(void)body;
	if (n == 0)
		return FAKE_CLOSE; /* as if the node died after committing */
	reply_append_ok(fd, h->request_id, true, 5, 77);
	return FAKE_KEEP;
}

static void lost_connection_retry_reports_the_original_as_duplicate(
	void **state)
{
	struct fake f;
	struct cairn_part_result res;
	struct cairn_append_part part;
	struct cairn_event_in ev = one_event;
	struct cairn_error err;
	cairn_client *c;
	bool dup = false;
	uint8_t given_id[16];

	(void)state;
	fake_start(&f, 21153, script_drop_then_duplicate, NULL);
	c = open_client("127.0.0.1:21153", 3000, false);
	cairn_uuid(given_id);
	ev.id = given_id;
	memset(&part, 0, sizeof part);
	part.stream = "order-2";
	part.expect_kind = CAIRN_EXPECT_EXACT;
	part.expect_version = 4;
	part.events = &ev;
	part.n_events = 1;
	assert_int_equal(cairn_append(c, &part, 1, NULL, &res, &dup, &err), 0);
	assert_true(dup);
	assert_int_equal(res.last_version, 5);
	assert_int_equal(res.last_position, 77);
	assert_int_equal(fake_appends(&f), 2);
	assert_int_equal(f.n_connections, 2);
	assert_int_equal(f.appends[0].seq, f.appends[1].seq);
	assert_memory_equal(f.appends[0].client_id, f.appends[1].client_id, 16);
	assert_memory_equal(f.appends[0].first_event_id, given_id, 16);
	assert_memory_equal(f.appends[1].first_event_id, given_id, 16);
	cairn_close(c);
	fake_stop(&f);
}

static int script_busy_connection_then_ok(struct fake *f, int fd,
					  const struct wire_header *h,
					  const uint8_t *body, int n)
{
	(void)f;
	(void)body;
	if (n == 0) {
		/* As a node at --max-connections does, but without closing:
		 * the client must drop the connection on its own. */
		reply_error(fd, 0, WIRE_EBUSY, NULL, "too many connections", 0);
		return FAKE_KEEP;
	}
	reply_append_ok(fd, h->request_id, false, 1, 9);
	return FAKE_KEEP;
}

static void connection_wide_busy_error_is_retried(void **state)
{
	struct fake f;
	struct cairn_part_result res;
	struct cairn_error err;
	cairn_client *c;

	(void)state;
	fake_start(&f, 21162, script_busy_connection_then_ok, NULL);
	c = open_client("127.0.0.1:21162", 3000, false);
	assert_int_equal(cairn_append_one(c, "order-10", CAIRN_EXPECT_ANY, 0,
					  &one_event, 1, &res, &err),
			 0);
	assert_int_equal(res.last_position, 9);
	assert_int_equal(fake_appends(&f), 2);
	assert_int_equal(f.n_connections, 2);
	assert_int_equal(f.appends[0].seq, f.appends[1].seq);
	cairn_close(c);
	fake_stop(&f);
}

static int script_unavailable(struct fake *f, int fd,
			      const struct wire_header *h, const uint8_t *body,
			      int n)
{
	(void)f;
	(void)body;
	(void)n;
	reply_error(fd, h->request_id, WIRE_EUNAVAILABLE, NULL,
		    "no leader elected yet", 0);
	return FAKE_KEEP;
}

static void unavailable_is_retried_until_the_deadline(void **state)
{
	struct fake f;
	struct cairn_error err;
	cairn_client *c;
	uint64_t t0;
	uint64_t took;
	int rv;

	(void)state;
	fake_start(&f, 21154, script_unavailable, NULL);
	c = open_client("127.0.0.1:21154", 600, false);
	t0 = now_ms();
	rv = cairn_append_one(c, "order-3", CAIRN_EXPECT_ANY, 0, &one_event, 1,
			      NULL, &err);
	took = now_ms() - t0;
	assert_int_equal(rv, CAIRN_ETIMEOUT);
	assert_non_null(strstr(err.message, "append: "));
	assert_non_null(strstr(err.message, "no leader elected yet"));
	assert_true(took >= 590);
	assert_true(took < 600 + 1600);
	/* Backoff 25, 50, 100, 200 ms: several attempts, not hundreds. */
	assert_true(fake_appends(&f) >= 3);
	assert_true(fake_appends(&f) <= 8);
	cairn_close(c);
	fake_stop(&f);
}

static int script_conflict(struct fake *f, int fd, const struct wire_header *h,
			   const uint8_t *body, int n)
{
	(void)f;
	(void)body;
	(void)n;
	reply_error(fd, h->request_id, WIRE_EWRONG_EXPECTED_VERSION, NULL,
		    "stream order-4 is at version 7", 7);
	return FAKE_KEEP;
}

static void conflict_reports_the_actual_version_without_retry(void **state)
{
	struct fake f;
	struct cairn_error err;
	cairn_client *c;

	(void)state;
	fake_start(&f, 21155, script_conflict, NULL);
	c = open_client("127.0.0.1:21155", 3000, false);
	assert_int_equal(cairn_append_one(c, "order-4", CAIRN_EXPECT_EXACT, 3,
					  &one_event, 1, NULL, &err),
			 CAIRN_EWRONG_EXPECTED_VERSION);
	assert_int_equal(err.code, CAIRN_EWRONG_EXPECTED_VERSION);
	assert_int_equal(err.actual_version, 7);
	assert_string_equal(err.message,
			    "append: stream order-4 is at version 7");
	assert_int_equal(fake_appends(&f), 1);
	cairn_close(c);
	fake_stop(&f);
}

static int script_stale_then_ok(struct fake *f, int fd,
				const struct wire_header *h,
				const uint8_t *body, int n)
{
	(void)f;
	(void)body;
	if (n == 0)
		reply_error(fd, h->request_id, WIRE_ESTALE_SEQUENCE, NULL, NULL,
			    1000);
	else
		reply_append_ok(fd, h->request_id, false, 1, 1);
	return FAKE_KEEP;
}

static void stale_sequence_of_own_key_takes_a_new_sequence(void **state)
{
	struct fake f;
	struct cairn_error err;
	cairn_client *c;

	(void)state;
	fake_start(&f, 21156, script_stale_then_ok, NULL);
	c = open_client("127.0.0.1:21156", 3000, false);
	assert_int_equal(cairn_append_one(c, "order-5", CAIRN_EXPECT_ANY, 0,
					  &one_event, 1, NULL, &err),
			 0);
	assert_int_equal(fake_appends(&f), 2);
	assert_true(f.appends[1].seq > f.appends[0].seq);
	assert_memory_equal(f.appends[0].first_event_id,
			    f.appends[1].first_event_id, 16);
	cairn_close(c);
	fake_stop(&f);
}

static void stale_sequence_of_caller_key_is_reported(void **state)
{
	struct fake f;
	struct cairn_append_part part;
	struct cairn_append_key key;
	struct cairn_part_result res;
	struct cairn_error err;
	cairn_client *c;

	(void)state;
	fake_start(&f, 21157, script_stale_then_ok, NULL);
	c = open_client("127.0.0.1:21157", 3000, false);
	memset(&part, 0, sizeof part);
	part.stream = "order-6";
	part.events = &one_event;
	part.n_events = 1;
	memset(&key, 0, sizeof key);
	key.has_key = true;
	memset(key.client_id, 0xab, 16);
	key.seq = 3;
	assert_int_equal(cairn_append(c, &part, 1, &key, &res, NULL, &err),
			 CAIRN_ESTALE_SEQUENCE);
	assert_int_equal(err.actual_version, 1000);
	assert_int_equal(fake_appends(&f), 1);
	assert_memory_equal(f.appends[0].client_id, key.client_id, 16);
	assert_int_equal(f.appends[0].seq, 3);
	cairn_close(c);
	fake_stop(&f);
}

static void single_node_does_not_follow_redirects(void **state)
{
	struct fake f;
	struct cairn_error err;
	cairn_client *c;

	(void)state;
	fake_start(&f, 21158, script_redirect, "127.0.0.1:21159");
	c = open_client("127.0.0.1:21158", 3000, true);
	assert_int_equal(cairn_append_one(c, "order-7", CAIRN_EXPECT_ANY, 0,
					  &one_event, 1, NULL, &err),
			 CAIRN_ENOT_LEADER);
	assert_string_equal(err.leader, "127.0.0.1:21159");
	assert_int_equal(fake_appends(&f), 1);
	cairn_close(c);
	fake_stop(&f);
}

static int script_silent(struct fake *f, int fd, const struct wire_header *h,
			 const uint8_t *body, int n)
{
	(void)f;
	(void)fd;
	(void)h;
	(void)body;
	(void)n;
	return FAKE_KEEP;
}

struct cb_record {
	atomic_int calls;
	atomic_int status;
	atomic_int sync_status;
	cairn_client *c;
};

static void record_cb(void *arg, int status,
		      const struct cairn_part_result *results, size_t n_parts,
		      bool duplicate, const struct cairn_error *err)
{
	struct cb_record *r = arg;
	struct cairn_error e2;
	uint64_t v;

	(void)results;
	(void)duplicate;
	CHECK((n_parts) == (1));
	CHECK(err != NULL);
	CHECK((err->code) == (status));
	/* Synchronous calls are refused from a callback. */
	atomic_store(&r->sync_status,
		     cairn_head(r->c, "x", NULL, &v, NULL, &e2));
	atomic_store(&r->status, status);
	atomic_fetch_add(&r->calls, 1);
}

static void close_fails_pending_async_append_with_eclosed(void **state)
{
	struct fake f;
	struct cairn_append_part part;
	struct cb_record rec;
	cairn_client *c;
	uint64_t t0;

	(void)state;
	fake_start(&f, 21160, script_silent, NULL);
	c = open_client("127.0.0.1:21160", 30000, false);
	memset(&rec, 0, sizeof rec);
	rec.c = c;
	memset(&part, 0, sizeof part);
	part.stream = "order-8";
	part.events = &one_event;
	part.n_events = 1;
	assert_int_equal(cairn_append_async(c, &part, 1, NULL, record_cb, &rec),
			 0);
	t0 = now_ms();
	while (fake_appends(&f) == 0 && now_ms() - t0 < 5000)
		usleep(1000);
	assert_int_equal(fake_appends(&f), 1);
	assert_int_equal(atomic_load(&rec.calls), 0);
	cairn_close(c);
	assert_int_equal(atomic_load(&rec.calls), 1);
	assert_int_equal(atomic_load(&rec.status), CAIRN_ECLOSED);
	assert_int_equal(atomic_load(&rec.sync_status), CAIRN_EARG);
	fake_stop(&f);
}

static int script_events(struct fake *f, int fd, const struct wire_header *h,
			 const uint8_t *body, int n)
{
	struct wire_read_stream rs;
	struct wire_events_writer w;
	struct wire_event e;
	struct wire_buf b;
	uint64_t v;

	(void)f;
	(void)n;
	CHECK((h->type) == (WIRE_READ_STREAM));
	CHECK((wire_decode_read_stream(body, h->body_len, &rs)) == (0));
	CHECK((rs.from_version) == (1));
	CHECK((rs.limit) == (2));
	CHECK((rs.consistency.kind) == (WIRE_CONSISTENCY_AT_LEAST));
	CHECK((rs.consistency.min_position) == (9));
	wire_buf_init(&b);
	CHECK((wire_events_begin(&b, h->request_id, &w)) == (0));
	for (v = 1; v <= 2; v++) {
		memset(&e, 0, sizeof e);
		e.position = 10 + v;
		e.version = v;
		e.stream = rs.stream;
		memset(e.id, (int)v, 16);
		e.type.p = (const uint8_t *)"t";
		e.type.len = 1;
		e.commit_time_us = 1700000000000000ull;
		e.data.p = (const uint8_t *)"abc";
		e.data.len = 3;
		CHECK((wire_events_add(&b, &w, &e)) == (0));
	}
	wire_events_end(&b, &w, 3, false);
	send_buf(fd, &b);
	return FAKE_KEEP;
}

static void read_stream_returns_a_page_that_owns_its_bytes(void **state)
{
	struct fake f;
	struct cairn_read_options ro;
	struct cairn_page page;
	struct cairn_error err;
	cairn_client *c;

	(void)state;
	fake_start(&f, 21161, script_events, NULL);
	c = open_client("127.0.0.1:21161", 3000, false);
	memset(&ro, 0, sizeof ro);
	ro.consistency = CAIRN_CONSISTENCY_AT_LEAST;
	ro.min_position = 9;
	ro.limit = 2;
	assert_int_equal(
		cairn_read_stream(c, "order-9", 1, false, &ro, &page, &err), 0);
	/* The page outlives the client. */
	cairn_close(c);
	fake_stop(&f);
	assert_int_equal(page.n, 2);
	assert_int_equal(page.next, 3);
	assert_false(page.end);
	assert_int_equal(page.events[1].version, 2);
	assert_int_equal(page.events[1].position, 12);
	assert_int_equal(page.events[0].stream_len, 7);
	assert_memory_equal(page.events[0].stream, "order-9", 7);
	assert_int_equal(page.events[0].data_len, 3);
	assert_memory_equal(page.events[0].data, "abc", 3);
	assert_int_equal(page.events[0].commit_time_us, 1700000000000000ull);
	cairn_page_free(&page);
	assert_null(page.events);
	cairn_page_free(&page); /* twice is harmless */
}

/* ------------------------------------------------------------------------
 * Subscriptions (fake node on ports 23480..23489)
 * ------------------------------------------------------------------------ */

/* What the fake saw of subscriptions. */
static struct {
	pthread_mutex_t mu;
	uint64_t from[8];     /* each SUBSCRIBE's from */
	uint8_t from_kind[8]; /* and from_kind */
	uint32_t credit[8];   /* and initial credit */
	int n_subscribes;
	uint64_t credit_granted; /* sum of CREDIT frames */
	int n_unsubscribes;
} subseen = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void push_events(int fd, uint64_t id, uint64_t first, uint64_t last,
			uint64_t next)
{
	struct wire_events_writer w;
	struct wire_event e;
	struct wire_buf b;

	wire_buf_init(&b);
	CHECK(wire_sub_events_begin(&b, id, &w) == 0);
	for (uint64_t p = first; p <= last; p++) {
		memset(&e, 0, sizeof e);
		e.position = p;
		e.version = p;
		e.stream.p = (const uint8_t *)"s-1";
		e.stream.len = 3;
		memset(e.id, (int)p, 16);
		e.type.p = (const uint8_t *)"t";
		e.type.len = 1;
		CHECK(wire_events_add(&b, &w, &e) == 0);
	}
	wire_events_end(&b, &w, next, false);
	send_buf(fd, &b);
}

static void push_live(int fd, uint64_t id, uint64_t next, uint64_t last)
{
	struct wire_buf b;

	wire_buf_init(&b);
	CHECK(wire_encode_sub_live(&b, id, next, last) == 0);
	send_buf(fd, &b);
}

/* Records SUBSCRIBE, CREDIT and UNSUBSCRIBE; returns the SUBSCRIBE's
 * ordinal, or -1 for the others. */
static int record_sub(const struct wire_header *h, const uint8_t *body)
{
	struct wire_subscribe s;
	uint32_t n;
	int k = -1;

	pthread_mutex_lock(&subseen.mu);
	if (h->type == WIRE_SUBSCRIBE) {
		CHECK(wire_decode_subscribe(body, h->body_len, &s) == 0);
		CHECK(subseen.n_subscribes < 8);
		k = subseen.n_subscribes++;
		subseen.from[k] = s.from;
		subseen.from_kind[k] = s.from_kind;
		subseen.credit[k] = s.credit;
	} else if (h->type == WIRE_CREDIT) {
		CHECK(wire_decode_credit(body, h->body_len, &n) == 0);
		subseen.credit_granted += n;
	} else {
		CHECK(h->type == WIRE_UNSUBSCRIBE);
		subseen.n_unsubscribes++;
	}
	pthread_mutex_unlock(&subseen.mu);
	return k;
}

static void subseen_reset(void)
{
	pthread_mutex_lock(&subseen.mu);
	subseen.n_subscribes = 0;
	subseen.credit_granted = 0;
	subseen.n_unsubscribes = 0;
	pthread_mutex_unlock(&subseen.mu);
}

/* First connection: events 1..3, then the connection drops. Second: 3
 * again (a node must not, the client must drop it), 4, 5, LIVE. */
static int script_sub_drop(struct fake *f, int fd, const struct wire_header *h,
			   const uint8_t *body, int n)
{
	int k = record_sub(h, body);

	(void)f;
	(void)n;
	if (k == 0) {
		push_events(fd, h->request_id, 1, 3, 4);
		return FAKE_CLOSE;
	}
	if (k == 1) {
		push_events(fd, h->request_id, 3, 5, 6);
		push_live(fd, h->request_id, 6, 5);
	}
	return FAKE_KEEP;
}

static int take_item(struct cairn_subscription *sub,
		     struct cairn_sub_item *item)
{
	struct cairn_error err;
	uint64_t deadline = now_ms() + 10000;
	int rv;

	do {
		rv = cairn_subscription_next(sub, 200, item, &err);
	} while (rv == CAIRN_ETIMEOUT && now_ms() < deadline);
	return rv;
}

static void subscription_resumes_after_a_lost_connection_without_duplicates(
	void **state)
{
	struct cairn_subscribe_options o = { .kind = CAIRN_SUB_ALL };
	struct cairn_subscription *sub;
	struct cairn_sub_item item;
	struct cairn_error err;
	struct fake f;
	cairn_client *c;

	(void)state;
	subseen_reset();
	fake_start(&f, 23480, script_sub_drop, NULL);
	c = open_client("127.0.0.1:23480", 5000, false);
	assert_int_equal(cairn_subscribe(c, &o, NULL, NULL, &sub, &err), 0);
	for (uint64_t p = 1; p <= 5; p++) {
		assert_int_equal(take_item(sub, &item), 0);
		assert_int_equal(item.what, CAIRN_SUB_EVENTS);
		assert_int_equal(item.event.position, p);
		assert_int_equal(item.next, p + 1);
		assert_int_equal(item.event.id[0], p);
	}
	assert_int_equal(take_item(sub, &item), 0);
	assert_int_equal(item.what, CAIRN_SUB_LIVE);
	assert_int_equal(item.next, 6);
	pthread_mutex_lock(&subseen.mu);
	assert_int_equal(subseen.n_subscribes, 2);
	assert_int_equal(subseen.from_kind[0], WIRE_SUB_FROM_POSITION);
	assert_int_equal(subseen.from[0], 1);
	assert_int_equal(subseen.from[1], 4); /* after the last delivered */
	assert_int_equal(subseen.credit[0], 1024);
	pthread_mutex_unlock(&subseen.mu);
	cairn_subscription_close(sub);
	cairn_close(c);
	fake_stop(&f);
}

/* Pushes as many events as the initial credit allows, then whatever each
 * CREDIT grants. */
static int script_sub_credit(struct fake *f, int fd,
			     const struct wire_header *h, const uint8_t *body,
			     int n)
{
	static uint64_t sent;
	int k = record_sub(h, body);

	(void)f;
	(void)n;
	if (k == 0) {
		sent = subseen.credit[0];
		push_events(fd, h->request_id, 1, sent, sent + 1);
	} else if (h->type == WIRE_CREDIT) {
		uint32_t more;

		CHECK(wire_decode_credit(body, h->body_len, &more) == 0);
		push_events(fd, h->request_id, sent + 1, sent + more,
			    sent + more + 1);
		sent += more;
	}
	return FAKE_KEEP;
}

static void subscription_grants_credit_as_the_application_consumes(void **state)
{
	struct cairn_subscribe_options o = { .kind = CAIRN_SUB_STREAM,
					     .target = "s-1",
					     .window = 4 };
	struct cairn_subscription *sub;
	struct cairn_sub_item item;
	struct cairn_error err;
	struct fake f;
	cairn_client *c;
	uint64_t deadline;

	(void)state;
	subseen_reset();
	fake_start(&f, 23481, script_sub_credit, NULL);
	c = open_client("127.0.0.1:23481", 5000, false);
	assert_int_equal(cairn_subscribe(c, &o, NULL, NULL, &sub, &err), 0);
	/* Twelve events through a window of four: only possible when the
	 * library grants credit back as they are taken. */
	for (uint64_t v = 1; v <= 12; v++) {
		assert_int_equal(take_item(sub, &item), 0);
		assert_int_equal(item.event.version, v);
	}
	deadline = now_ms() + 5000;
	for (;;) {
		uint64_t granted;

		pthread_mutex_lock(&subseen.mu);
		granted = subseen.credit_granted;
		pthread_mutex_unlock(&subseen.mu);
		/* The window never grows: at most 4 ahead of what was
		 * taken. */
		assert_true(granted + 4 <= 12 + 4);
		if (granted >= 8)
			break;
		assert_true(now_ms() < deadline);
		usleep(10000);
	}
	pthread_mutex_lock(&subseen.mu);
	assert_int_equal(subseen.credit[0], 4);
	assert_int_equal(subseen.n_subscribes, 1);
	pthread_mutex_unlock(&subseen.mu);
	cairn_subscription_close(sub);
	deadline = now_ms() + 5000;
	for (;;) {
		int unsubs;

		pthread_mutex_lock(&subseen.mu);
		unsubs = subseen.n_unsubscribes;
		pthread_mutex_unlock(&subseen.mu);
		if (unsubs == 1)
			break;
		assert_true(now_ms() < deadline);
		usleep(10000);
	}
	cairn_close(c);
	fake_stop(&f);
}

static int script_sub_invalid(struct fake *f, int fd,
			      const struct wire_header *h, const uint8_t *body,
			      int n)
{
	(void)f;
	(void)body;
	(void)n;
	if (h->type == WIRE_SUBSCRIBE)
		reply_error(fd, h->request_id, WIRE_EINVALID, NULL,
			    "invalid stream name", 0);
	return FAKE_KEEP;
}

struct end_rec {
	atomic_int what;   /* last update's what */
	atomic_int status; /* END's status */
};

static void end_cb(void *arg, const struct cairn_sub_update *u)
{
	struct end_rec *r = arg;

	atomic_store(&r->status, u->status);
	atomic_store(&r->what, u->what);
}

static void refused_subscription_ends_with_the_nodes_error(void **state)
{
	struct cairn_subscribe_options o = { .kind = CAIRN_SUB_STREAM,
					     .target = "bad" };
	struct cairn_subscription *sub;
	struct cairn_sub_item item;
	struct cairn_error err;
	struct end_rec rec = { 0 };
	struct fake f;
	cairn_client *c;
	uint64_t deadline;

	(void)state;
	fake_start(&f, 23482, script_sub_invalid, NULL);
	c = open_client("127.0.0.1:23482", 5000, false);
	/* Iterator: the error comes from next, and stays. */
	assert_int_equal(cairn_subscribe(c, &o, NULL, NULL, &sub, &err), 0);
	assert_int_equal(take_item(sub, &item), CAIRN_EINVALID);
	assert_int_equal(cairn_subscription_next(sub, 0, &item, &err),
			 CAIRN_EINVALID);
	assert_non_null(strstr(err.message, "invalid stream name"));
	cairn_subscription_close(sub);
	/* Callback: one END with the error. */
	assert_int_equal(cairn_subscribe(c, &o, end_cb, &rec, &sub, &err), 0);
	deadline = now_ms() + 5000;
	while (atomic_load(&rec.what) != CAIRN_SUB_END) {
		assert_true(now_ms() < deadline);
		usleep(10000);
	}
	assert_int_equal(atomic_load(&rec.status), CAIRN_EINVALID);
	cairn_subscription_close(sub);
	cairn_close(c);
	fake_stop(&f);
}

struct closing_rec {
	_Atomic(struct cairn_subscription *) sub;
	atomic_int updates;
};

static void close_in_cb(void *arg, const struct cairn_sub_update *u)
{
	struct closing_rec *r = arg;
	struct cairn_subscription *sub;

	(void)u;
	atomic_fetch_add(&r->updates, 1);
	/* The callback may run before cairn_subscribe has returned. */
	while ((sub = atomic_load(&r->sub)) == NULL)
		;
	cairn_subscription_close(sub);
}

static void subscription_closed_from_its_callback_gets_no_more_updates(
	void **state)
{
	struct cairn_subscribe_options o = { .kind = CAIRN_SUB_ALL,
					     .window = 4 };
	struct cairn_subscription *sub;
	struct closing_rec rec;
	struct cairn_error err;
	struct fake f;
	cairn_client *c;
	uint64_t deadline;

	(void)state;
	subseen_reset();
	atomic_store(&rec.sub, NULL);
	atomic_store(&rec.updates, 0);
	fake_start(&f, 23484, script_sub_credit, NULL);
	c = open_client("127.0.0.1:23484", 5000, false);
	assert_int_equal(cairn_subscribe(c, &o, close_in_cb, &rec, &sub, &err),
			 0);
	atomic_store(&rec.sub, sub);
	deadline = now_ms() + 5000;
	for (;;) {
		int unsubs;

		pthread_mutex_lock(&subseen.mu);
		unsubs = subseen.n_unsubscribes;
		pthread_mutex_unlock(&subseen.mu);
		if (unsubs == 1)
			break;
		assert_true(now_ms() < deadline);
		usleep(10000);
	}
	assert_int_equal(atomic_load(&rec.updates), 1);
	cairn_close(c);
	assert_int_equal(atomic_load(&rec.updates), 1);
	fake_stop(&f);
}

static void subscribe_rejects_bad_options_and_unreachable_nodes(void **state)
{
	struct cairn_subscribe_options o;
	struct cairn_subscription *sub;
	struct cairn_sub_item item;
	struct cairn_error err;
	cairn_client *c;
	uint64_t start;

	(void)state;
	c = open_client("127.0.0.1:23483", 600, false);
	memset(&o, 0, sizeof o);
	o.kind = 7;
	assert_int_equal(cairn_subscribe(c, &o, NULL, NULL, &sub, &err),
			 CAIRN_EARG);
	o.kind = CAIRN_SUB_ALL;
	o.target = "x";
	assert_int_equal(cairn_subscribe(c, &o, NULL, NULL, &sub, &err),
			 CAIRN_EARG);
	o.kind = CAIRN_SUB_STREAM;
	o.target = NULL;
	assert_int_equal(cairn_subscribe(c, &o, NULL, NULL, &sub, &err),
			 CAIRN_EARG);
	o.target = "s";
	o.window = 70000;
	assert_int_equal(cairn_subscribe(c, &o, NULL, NULL, &sub, &err),
			 CAIRN_EARG);
	/* Nothing listens: the subscription ends once the client's deadline
	 * passes without a node accepting it. */
	o.window = 0;
	start = now_ms();
	assert_int_equal(cairn_subscribe(c, &o, NULL, NULL, &sub, &err), 0);
	assert_int_equal(take_item(sub, &item), CAIRN_ECONNECT);
	assert_true(now_ms() - start < 5000);
	cairn_subscription_close(sub);
	cairn_close(c);
}

/* ------------------------------------------------------------------------
 * Checkpoints and snapshots against the fake node (ports 23470-23479)
 * ------------------------------------------------------------------------ */

/* The CHECKPOINT_SET frames a script saw, in order. */
static struct wire_checkpoint_set cp_seen[8];
static int cp_n;

/* UNKNOWN_OUTCOME, then STALE_SEQUENCE, then STATE_OK. */
static int script_checkpoint(struct fake *f, int fd,
			     const struct wire_header *h, const uint8_t *body,
			     int n)
{
	struct wire_checkpoint_set cs;
	struct wire_buf b;

	(void)f;
	CHECK(h->type == WIRE_CHECKPOINT_SET);
	CHECK(wire_decode_checkpoint_set(body, h->body_len, &cs) == 0);
	CHECK(cp_n < 8);
	cs.name.p = NULL; /* the body goes away: keep the length only */
	cp_seen[cp_n++] = cs;
	if (n == 0) {
		reply_error(fd, h->request_id, WIRE_EUNKNOWN_OUTCOME, NULL,
			    "leadership lost", 0);
	} else if (n == 1) {
		reply_error(fd, h->request_id, WIRE_ESTALE_SEQUENCE, NULL,
			    "stale", cs.client_seq + 5);
	} else {
		wire_buf_init(&b);
		CHECK(wire_encode_state_ok(&b, h->request_id, n == 3) == 0);
		send_buf(fd, &b);
	}
	return FAKE_KEEP;
}

static void checkpoint_set_retries_with_the_same_key_and_renumbers_its_own(
	void **state)
{
	struct fake f;
	struct cairn_append_key key;
	struct cairn_error err;
	cairn_client *c;
	uint8_t id[16];
	bool dup = true;

	(void)state;
	cp_n = 0;
	fake_start(&f, 23470, script_checkpoint, NULL);
	c = open_client("127.0.0.1:23470", 5000, false);
	assert_int_equal(
		cairn_checkpoint_set(c, "billing", 42, CAIRN_CHECKPOINT_VALUE,
				     41, NULL, &dup, &err),
		0);
	assert_false(dup);
	assert_int_equal(cp_n, 3);
	cairn_client_id(c, id);
	for (int i = 0; i < 3; i++) {
		assert_true(cp_seen[i].has_client);
		assert_memory_equal(cp_seen[i].client_id, id, 16);
		assert_int_equal(cp_seen[i].name.len, strlen("billing"));
		assert_int_equal(cp_seen[i].value, 42);
		assert_int_equal(cp_seen[i].expect_kind, WIRE_CP_EXPECT_VALUE);
		assert_int_equal(cp_seen[i].expected, 41);
	}
	/* Unknown outcome: the same key; stale: a fresh one, higher. */
	assert_int_equal(cp_seen[1].client_seq, cp_seen[0].client_seq);
	assert_true(cp_seen[2].client_seq > cp_seen[1].client_seq);

	/* A caller's key is never renumbered: stale is reported. */
	memset(&key, 0, sizeof key);
	key.has_key = true;
	memset(key.client_id, 7, 16);
	key.seq = 9;
	cp_n = 0;
	cairn_close(c);
	fake_stop(&f);
	fake_start(&f, 23471, script_checkpoint, NULL);
	c = open_client("127.0.0.1:23471", 5000, false);
	assert_int_equal(
		cairn_checkpoint_set(c, "billing", 1, CAIRN_CHECKPOINT_ANY, 0,
				     &key, NULL, &err),
		CAIRN_ESTALE_SEQUENCE);
	assert_int_equal(err.actual_version, 14);
	assert_int_equal(cp_n, 2);
	assert_int_equal(cp_seen[0].client_seq, 9);
	assert_int_equal(cp_seen[1].client_seq, 9);
	assert_memory_equal(cp_seen[1].client_id, key.client_id, 16);

	/* Bad arguments never reach the wire. */
	assert_int_equal(
		cairn_checkpoint_set(c, "billing", 1, CAIRN_CHECKPOINT_VALUE, 0,
				     NULL, NULL, &err),
		CAIRN_EARG);
	assert_int_equal(
		cairn_checkpoint_set(c, "billing", 1, 3, 0, NULL, NULL, &err),
		CAIRN_EARG);
	assert_int_equal(cp_n, 2);
	cairn_close(c);
	fake_stop(&f);
}

/* SNAPSHOT_GET: a snapshot at 3; CHECKPOINT_GET: a malformed reply. */
static int script_state_reads(struct fake *f, int fd,
			      const struct wire_header *h, const uint8_t *body,
			      int n)
{
	struct wire_snapshot_get g;
	struct wire_bytes data = { (const uint8_t *)"abc", 3 };
	struct wire_buf b;
	uint8_t bad[9] = { 0, 5 }; /* not found, yet a value */

	(void)f;
	(void)n;
	wire_buf_init(&b);
	if (h->type == WIRE_SNAPSHOT_GET) {
		CHECK(wire_decode_snapshot_get(body, h->body_len, &g) == 0);
		CHECK(g.max_version == 9);
		CHECK(g.consistency.kind == WIRE_CONSISTENCY_AT_LEAST &&
		      g.consistency.min_position == 77);
		CHECK(wire_encode_snapshot(&b, h->request_id, 3, data) == 0);
	} else {
		CHECK(h->type == WIRE_CHECKPOINT_GET);
		CHECK(wire_encode_checkpoint(&b, h->request_id, true, 5) == 0);
		/* Patch the body: found 0 with value 5 is malformed. */
		memcpy(b.p + WIRE_HEADER_BYTES, bad, sizeof bad);
	}
	send_buf(fd, &b);
	return FAKE_KEEP;
}

static void snapshot_get_copies_the_bytes_and_bad_replies_are_protocol_errors(
	void **state)
{
	struct cairn_read_options ro = { CAIRN_CONSISTENCY_AT_LEAST, 77, 0 };
	struct cairn_snapshot snap;
	struct cairn_error err;
	struct fake f;
	cairn_client *c;
	uint64_t v;
	bool found;

	(void)state;
	fake_start(&f, 23472, script_state_reads, NULL);
	c = open_client("127.0.0.1:23472", 3000, false);
	assert_int_equal(cairn_snapshot_get(c, "order-1", 9, &ro, &snap, &err),
			 0);
	assert_int_equal(snap.version, 3);
	assert_int_equal(snap.len, 3);
	assert_memory_equal(snap.data, "abc", 3);
	cairn_snapshot_free(&snap);
	assert_null(snap.data);
	assert_int_equal(
		cairn_checkpoint_get(c, "billing", NULL, &v, &found, &err),
		CAIRN_EPROTOCOL);
	cairn_close(c);
	fake_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			checkpoint_set_retries_with_the_same_key_and_renumbers_its_own),
		cmocka_unit_test(
			snapshot_get_copies_the_bytes_and_bad_replies_are_protocol_errors),
		cmocka_unit_test(uuid_format_parse_round_trip),
		cmocka_unit_test(
			subscription_resumes_after_a_lost_connection_without_duplicates),
		cmocka_unit_test(
			subscription_grants_credit_as_the_application_consumes),
		cmocka_unit_test(
			refused_subscription_ends_with_the_nodes_error),
		cmocka_unit_test(
			subscribe_rejects_bad_options_and_unreachable_nodes),
		cmocka_unit_test(
			subscription_closed_from_its_callback_gets_no_more_updates),
		cmocka_unit_test(uuid_is_version_4_with_rfc4122_variant),
		cmocka_unit_test(uuid_parse_rejects_malformed_text),
		cmocka_unit_test(open_rejects_malformed_seed_lists),
		cmocka_unit_test(open_accepts_names_spaces_and_ipv6),
		cmocka_unit_test(strerror_names_every_code),
		cmocka_unit_test(client_id_is_random_unless_given),
		cmocka_unit_test(
			call_without_listener_fails_within_its_deadline),
		cmocka_unit_test(status_probe_of_a_dead_node_fails_fast),
		cmocka_unit_test(append_rejects_bad_arguments_before_sending),
		cmocka_unit_test(append_follows_not_leader_with_the_same_key),
		cmocka_unit_test(concurrent_appends_arrive_in_sequence_order),
		cmocka_unit_test(
			lost_connection_retry_reports_the_original_as_duplicate),
		cmocka_unit_test(connection_wide_busy_error_is_retried),
		cmocka_unit_test(unavailable_is_retried_until_the_deadline),
		cmocka_unit_test(
			conflict_reports_the_actual_version_without_retry),
		cmocka_unit_test(
			stale_sequence_of_own_key_takes_a_new_sequence),
		cmocka_unit_test(stale_sequence_of_caller_key_is_reported),
		cmocka_unit_test(single_node_does_not_follow_redirects),
		cmocka_unit_test(close_fails_pending_async_append_with_eclosed),
		cmocka_unit_test(
			read_stream_returns_a_page_that_owns_its_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
