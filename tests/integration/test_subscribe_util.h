/* Helpers the subscription tests share (test_subscribe.c,
 * test_subscribe_failover.c): a collector of what a libcairn subscription
 * delivers in callback mode, and raw protocol access for tests that must
 * misbehave as a client (a socket nobody reads, malformed frames). Header
 * only, static inline functions: each test program includes it once. */
#ifndef CAIRN_TESTS_INTEGRATION_TEST_SUBSCRIBE_UTIL_H
#define CAIRN_TESTS_INTEGRATION_TEST_SUBSCRIBE_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster.h"
#include "wire.h"

/* ---- what a callback-mode subscription delivered ---- */

struct collector {
	pthread_mutex_t mu;
	uint64_t *positions; /* owned: in delivery order */
	uint64_t *versions;  /* owned */
	uint8_t (*ids)[16];  /* owned */
	char (*types)[32];   /* owned: first bytes of each type */
	char (*streams)[64]; /* owned: first bytes of each stream */
	size_t n;
	size_t cap;
	bool live;      /* LIVE arrived */
	int end_status; /* END's status + 1; 0 while running */
};

static inline void collector_init(struct collector *k)
{
	memset(k, 0, sizeof *k);
	pthread_mutex_init(&k->mu, NULL);
}

static inline void collector_free(struct collector *k)
{
	free(k->positions);
	free(k->versions);
	free(k->ids);
	free(k->types);
	free(k->streams);
	pthread_mutex_destroy(&k->mu);
}

static inline void copy_name(char *dst, size_t cap, const char *s, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* The cairn_subscription_cb of a collector. */
static inline void collector_cb(void *arg, const struct cairn_sub_update *u)
{
	struct collector *k = arg;

	pthread_mutex_lock(&k->mu);
	if (u->what == CAIRN_SUB_EVENTS) {
		for (size_t i = 0; i < u->n; i++) {
			const struct cairn_event *e = &u->events[i];

			if (k->n == k->cap) {
				size_t cap = k->cap > 0 ? 2 * k->cap : 1024;

				k->positions =
					realloc(k->positions,
						cap * sizeof *k->positions);
				k->versions = realloc(
					k->versions, cap * sizeof *k->versions);
				k->ids = realloc(k->ids, cap * sizeof *k->ids);
				k->types = realloc(k->types,
						   cap * sizeof *k->types);
				k->streams = realloc(k->streams,
						     cap * sizeof *k->streams);
				if (k->positions == NULL ||
				    k->versions == NULL || k->ids == NULL ||
				    k->types == NULL || k->streams == NULL)
					abort();
				k->cap = cap;
			}
			k->positions[k->n] = e->position;
			k->versions[k->n] = e->version;
			memcpy(k->ids[k->n], e->id, 16);
			copy_name(k->types[k->n], sizeof k->types[0], e->type,
				  e->type_len);
			copy_name(k->streams[k->n], sizeof k->streams[0],
				  e->stream, e->stream_len);
			k->n++;
		}
	} else if (u->what == CAIRN_SUB_LIVE) {
		k->live = true;
	} else {
		k->end_status = u->status + 1;
	}
	pthread_mutex_unlock(&k->mu);
}

static inline size_t collector_count(struct collector *k)
{
	size_t n;

	pthread_mutex_lock(&k->mu);
	n = k->n;
	pthread_mutex_unlock(&k->mu);
	return n;
}

/* Waits until the collector holds @n events (fails after @timeout_ms, or
 * when the subscription ended). */
static inline void collector_wait(struct collector *k, size_t n,
				  unsigned timeout_ms)
{
	uint64_t deadline = cluster_now_ms() + timeout_ms;

	for (;;) {
		size_t got;
		int end;

		pthread_mutex_lock(&k->mu);
		got = k->n;
		end = k->end_status;
		pthread_mutex_unlock(&k->mu);
		if (got >= n)
			return;
		if (end != 0)
			fail_msg(
				"subscription ended with %s after %zu of %zu "
				"events",
				cairn_strerror(end - 1), got, n);
		if (cluster_now_ms() > deadline)
			fail_msg("%zu of %zu events delivered within %u ms",
				 got, n, timeout_ms);
		cluster_sleep_ms(10);
	}
}

/* ---- raw protocol ---- */

enum { RAW_FRAME = 0, RAW_TIMEOUT = 1, RAW_CLOSED = 2 };

static inline int raw_connect(const char *address)
{
	char host[64];
	const char *colon = strrchr(address, ':');
	struct sockaddr_in sa;
	int fd;

	assert_non_null(colon);
	assert_true((size_t)(colon - address) < sizeof host);
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		fail_msg("connect %s: %s", address, strerror(errno));
	return fd;
}

static inline void raw_send_buf(int fd, struct wire_buf *b)
{
	const uint8_t *p = b->p;
	size_t n = b->len;

	while (n > 0) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_msg("send: %s", strerror(errno));
		p += r;
		n -= (size_t)r;
	}
	wire_buf_reset(b);
}

/* Reads exactly @n bytes before @deadline (ms); *got says how many came. */
static inline int raw_read_exact(int fd, void *buf, size_t n, uint64_t deadline,
				 size_t *got)
{
	uint8_t *p = buf;

	*got = 0;
	while (n > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = cluster_now_ms();
		ssize_t r;

		if (now >= deadline)
			return RAW_TIMEOUT;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return RAW_CLOSED;
		p += r;
		n -= (size_t)r;
		*got += (size_t)r;
	}
	return RAW_FRAME;
}

/* Reads one frame; *body is malloc'ed (free it). */
static inline int raw_read_frame(int fd, unsigned timeout_ms,
				 struct wire_header *h, uint8_t **body)
{
	uint64_t deadline = cluster_now_ms() + timeout_ms;
	uint8_t hdr[WIRE_HEADER_BYTES];
	size_t got;
	int rv;

	*body = NULL;
	rv = raw_read_exact(fd, hdr, sizeof hdr, deadline, &got);
	if (rv != RAW_FRAME)
		return rv;
	if (wire_header_decode(hdr, h) != WIRE_OK)
		fail_msg("the node sent an invalid frame header");
	*body = malloc(h->body_len + 1);
	assert_non_null(*body);
	rv = raw_read_exact(fd, *body, h->body_len, deadline, &got);
	if (rv != RAW_FRAME)
		fail_msg("the node sent %zu bytes of a %u-byte frame body (%s)",
			 got, h->body_len,
			 rv == RAW_CLOSED ? "then closed" : "then nothing");
	return RAW_FRAME;
}

/* Reads frames until one of @type for @id arrives (others are skipped);
 * fails after @timeout_ms. Returns its body (free it). */
static inline uint8_t *raw_expect(int fd, uint16_t type, uint64_t id,
				  unsigned timeout_ms, struct wire_header *h)
{
	uint64_t deadline = cluster_now_ms() + timeout_ms;

	for (;;) {
		uint64_t now = cluster_now_ms();
		uint8_t *body;
		int rv;

		if (now >= deadline)
			fail_msg(
				"no frame of type 0x%x for request %llu within "
				"%u ms",
				type, (unsigned long long)id, timeout_ms);
		rv = raw_read_frame(fd, (unsigned)(deadline - now), h, &body);
		if (rv == RAW_CLOSED)
			fail_msg(
				"the node closed the connection while a frame "
				"of type 0x%x was expected",
				type);
		if (rv == RAW_TIMEOUT)
			continue;
		if (h->type == type && h->request_id == id)
			return body;
		free(body);
	}
}

/* Expects ERROR @code for request @id. */
static inline void raw_expect_error(int fd, uint64_t id, uint32_t code)
{
	struct wire_header h;
	struct wire_err e;
	uint8_t *body = raw_expect(fd, WIRE_ERROR, id, 10000, &h);

	assert_int_equal(wire_decode_error(body, h.body_len, &e), WIRE_OK);
	if (e.code != code)
		fail_msg("ERROR %u (%.*s) for request %llu, expected %u",
			 e.code, (int)e.message.len, (const char *)e.message.p,
			 (unsigned long long)id, code);
	free(body);
}

#endif /* CAIRN_TESTS_INTEGRATION_TEST_SUBSCRIBE_UTIL_H */
