/* Subscriptions on one 3-node cluster of real cairnd processes, through
 * libcairn, the cairn CLI and raw sockets:
 *
 * - category and type filters deliver exactly the matching events, in
 *   position order, and nothing else;
 * - a subscription from now delivers only what commits after it is live;
 * - refused subscriptions get their error (bad names, a repeated id, the
 *   per-connection and per-node limits), a malformed body closes the
 *   connection, UNSUBSCRIBE ends with its SUB_END; with the node full of
 *   subscriptions (16,384) a writer's appends complete and each
 *   subscription gets exactly the one event its credit allows;
 * - `cairn tail` prints a stream's events and refuses a bad category;
 * - a subscriber that grants credit but never reads its socket is cut off
 *   at the node's bound (SUB_END reason SLOW) while a writer completes its
 *   appends. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_subscribe_util.h"

/* This program's block of ports (see CMakeLists.txt). */
#define PORT_BASE 23000

/* An upper bound on every wait (they poll). */
#define WAIT_MS 60000

/* The node-side limits these tests reach (node/node.h). */
#define SUBS_PER_CONN_MAX 1024
#define SUBS_MAX          16384

static struct cluster cl_;

/* Tests that ran to their end: the cluster's logs are printed at the end
 * unless every one did. */
static int passed_;
static int tests_run_;

static cairn_client *writer(void)
{
	return cluster_client(&cl_, -1, false, 30000);
}

/* Appends one event of @type to @stream; returns its position. */
static uint64_t append(cairn_client *c, const char *stream, const char *type,
		       uint8_t id[16])
{
	struct cairn_event_in ev = { .id = id,
				     .type = type,
				     .data = "{}",
				     .data_len = 2 };
	struct cairn_part_result res;
	struct cairn_error err;

	if (cairn_append_one(c, stream, CAIRN_EXPECT_ANY, 0, &ev, 1, &res,
			     &err) != 0)
		fail_msg("append to %s: %s", stream, err.message);
	return res.last_position;
}

/* Takes the next event from @sub (LIVE items skipped). */
static void next_event(struct cairn_subscription *sub,
		       struct cairn_sub_item *item)
{
	uint64_t deadline = cluster_now_ms() + WAIT_MS;

	for (;;) {
		struct cairn_error err;
		int rv;

		if (cluster_now_ms() > deadline)
			fail_msg("no event within %d ms", WAIT_MS);
		rv = cairn_subscription_next(sub, 500, item, &err);
		if (rv == CAIRN_ETIMEOUT)
			continue;
		if (rv != 0)
			fail_msg("subscription ended: %s", err.message);
		if (item->what == CAIRN_SUB_EVENTS)
			return;
	}
}

/* Subscribes with @o and checks that the events at @positions (@n of
 * them, ascending) arrive and nothing else: after them comes the event of
 * a sentinel appended to @sentinel_stream (which must match @o). */
static void expect_exactly(const struct cairn_subscribe_options *o,
			   const uint64_t *positions, size_t n,
			   const char *sentinel_stream,
			   const char *sentinel_type)
{
	struct cairn_subscription *sub;
	struct cairn_sub_item item;
	struct cairn_error err;
	cairn_client *sc = cluster_client(&cl_, -1, false, 30000);
	cairn_client *wc = writer();
	uint8_t id[16];
	uint64_t sentinel;

	assert_int_equal(cairn_subscribe(sc, o, NULL, NULL, &sub, &err), 0);
	for (size_t i = 0; i < n; i++) {
		next_event(sub, &item);
		if (item.event.position != positions[i])
			fail_msg("event %zu at position %" PRIu64
				 ", expected %" PRIu64,
				 i, item.event.position, positions[i]);
	}
	cairn_uuid(id);
	sentinel = append(wc, sentinel_stream, sentinel_type, id);
	next_event(sub, &item);
	if (item.event.position != sentinel)
		fail_msg("an extra event at position %" PRIu64
			 " before the sentinel at %" PRIu64,
			 item.event.position, sentinel);
	assert_memory_equal(item.event.id, id, 16);
	cairn_subscription_close(sub);
	cairn_close(sc);
	cairn_close(wc);
}

static void category_and_type_filters_deliver_only_matching_events(void **state)
{
	static const struct {
		const char *stream;
		const char *type;
	} appends[] = {
		{ "shop-1", "Placed" },  { "shopline-1", "Placed" },
		{ "shop-2", "Paid" },    { "user-1", "Paid" },
		{ "shop-1", "Paid" },    { "shop", "Placed" },
		{ "shop-3", "Shipped" }, { "user-2", "Placed" },
	};
	enum { N = sizeof appends / sizeof appends[0] };
	struct cairn_subscribe_options o;
	uint64_t pos[N];
	uint64_t want[N];
	size_t n;
	cairn_client *wc = writer();

	(void)state;
	for (size_t i = 0; i < N; i++)
		pos[i] = append(wc, appends[i].stream, appends[i].type, NULL);
	cairn_close(wc);

	/* Category "shop": shop-1, shop-2, shop-1, shop-3; not shopline-1
	 * (another category) nor "shop" (no category at all). */
	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_CATEGORY;
	o.target = "shop";
	n = 0;
	for (size_t i = 0; i < N; i++)
		if (strncmp(appends[i].stream, "shop-", 5) == 0)
			want[n++] = pos[i];
	assert_int_equal(n, 4);
	expect_exactly(&o, want, n, "shop-9", "Any");

	/* Type "Paid" over the whole log. */
	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_ALL;
	o.type = "Paid";
	n = 0;
	for (size_t i = 0; i < N; i++)
		if (strcmp(appends[i].type, "Paid") == 0)
			want[n++] = pos[i];
	assert_int_equal(n, 3);
	expect_exactly(&o, want, n, "other-1", "Paid");

	/* Category and type together. */
	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_CATEGORY;
	o.target = "user";
	o.type = "Placed";
	want[0] = pos[7];
	expect_exactly(&o, want, 1, "user-3", "Placed");

	/* One stream with a type. */
	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_STREAM;
	o.target = "shop-1";
	o.type = "Paid";
	want[0] = pos[4];
	expect_exactly(&o, want, 1, "shop-1", "Paid");
	passed_++;
}

static void subscription_from_now_delivers_only_later_events(void **state)
{
	struct cairn_subscribe_options o;
	struct cairn_subscription *sub;
	struct cairn_sub_item item;
	struct cairn_error err;
	cairn_client *wc = writer();
	cairn_client *sc;
	uint8_t ids[3][16];
	uint64_t deadline;
	int rv;

	(void)state;
	for (int i = 0; i < 5; i++)
		append(wc, "later-1", "Before", NULL);
	cluster_wait_converged(&cl_, 0);
	sc = cluster_client(&cl_, -1, false, 30000);
	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_STREAM;
	o.target = "later-1";
	o.from_now = true;
	assert_int_equal(cairn_subscribe(sc, &o, NULL, NULL, &sub, &err), 0);
	/* The first item is LIVE, at version 6: nothing before it. */
	deadline = cluster_now_ms() + WAIT_MS;
	do {
		assert_true(cluster_now_ms() < deadline);
		rv = cairn_subscription_next(sub, 500, &item, &err);
	} while (rv == CAIRN_ETIMEOUT);
	assert_int_equal(rv, 0);
	assert_int_equal(item.what, CAIRN_SUB_LIVE);
	assert_int_equal(item.next, 6);
	for (int i = 0; i < 3; i++) {
		cairn_uuid(ids[i]);
		append(wc, "later-1", "After", ids[i]);
	}
	for (int i = 0; i < 3; i++) {
		next_event(sub, &item);
		assert_int_equal(item.event.version, 6 + i);
		assert_memory_equal(item.event.id, ids[i], 16);
	}
	cairn_subscription_close(sub);
	cairn_close(sc);
	cairn_close(wc);
	passed_++;
}

/* Encodes and sends a SUBSCRIBE. */
static void raw_subscribe(int fd, struct wire_buf *b, uint64_t id, uint8_t kind,
			  const char *target, uint8_t from_kind, uint64_t from,
			  uint32_t credit)
{
	struct wire_subscribe s;

	memset(&s, 0, sizeof s);
	s.kind = kind;
	s.from_kind = from_kind;
	s.from = from;
	s.target.len = (uint32_t)strlen(target);
	s.target.p = s.target.len > 0 ? (const uint8_t *)target : NULL;
	s.credit = credit;
	assert_int_equal(wire_encode_subscribe(b, id, &s), 0);
	raw_send_buf(fd, b);
}

static void refused_subscriptions_get_their_error_and_limits_hold(void **state)
{
	const char *address = cl_.nodes[0].client_address;
	struct wire_buf b;
	struct wire_header h;
	struct wire_sub_end e;
	uint8_t *body;
	int fds[SUBS_MAX / SUBS_PER_CONN_MAX];
	static bool got[SUBS_PER_CONN_MAX + 1];
	cairn_client *wc;
	uint64_t first;
	int fd;
	int extra;

	(void)state;
	wire_buf_init(&b);
	fd = raw_connect(address);
	raw_subscribe(fd, &b, 1, WIRE_SUB_STREAM, "", 0, 0, 10);
	raw_expect_error(fd, 1, WIRE_EINVALID);
	raw_subscribe(fd, &b, 2, WIRE_SUB_ALL, "x", 0, 0, 10);
	raw_expect_error(fd, 2, WIRE_EINVALID);
	raw_subscribe(fd, &b, 3, WIRE_SUB_CATEGORY, "a-b", 0, 0, 10);
	raw_expect_error(fd, 3, WIRE_EINVALID);
	raw_subscribe(fd, &b, 4, WIRE_SUB_ALL, "", WIRE_SUB_FROM_NOW, 5, 10);
	raw_expect_error(fd, 4, WIRE_EINVALID);

	/* A live subscription; its id again is refused; UNSUBSCRIBE ends
	 * it; CREDIT for an id that names none is ignored. */
	raw_subscribe(fd, &b, 5, WIRE_SUB_ALL, "", WIRE_SUB_FROM_NOW, 0, 10);
	free(raw_expect(fd, WIRE_SUB_LIVE, 5, 10000, &h));
	raw_subscribe(fd, &b, 5, WIRE_SUB_ALL, "", WIRE_SUB_FROM_NOW, 0, 10);
	raw_expect_error(fd, 5, WIRE_EINVALID);
	assert_int_equal(wire_encode_unsubscribe(&b, 5), 0);
	assert_int_equal(wire_encode_credit(&b, 77, 10), 0);
	assert_int_equal(wire_encode_status(&b, 6), 0);
	raw_send_buf(fd, &b);
	body = raw_expect(fd, WIRE_SUB_END, 5, 10000, &h);
	assert_int_equal(wire_decode_sub_end(body, h.body_len, &e), WIRE_OK);
	assert_int_equal(e.reason, WIRE_SUB_END_UNSUBSCRIBED);
	free(body);
	assert_int_equal(raw_read_frame(fd, 10000, &h, &body), RAW_FRAME);
	assert_int_equal(h.type, WIRE_STATUS_OK); /* nothing for the CREDIT */
	free(body);

	/* NODE_SUBS_PER_CONN_MAX on one connection, then ETOO_LARGE. */
	for (uint64_t id = 100; id < 100 + SUBS_PER_CONN_MAX; id++) {
		struct wire_subscribe s = { .kind = WIRE_SUB_ALL,
					    .from_kind = WIRE_SUB_FROM_NOW };

		assert_int_equal(wire_encode_subscribe(&b, id, &s), 0);
	}
	raw_send_buf(fd, &b);
	raw_subscribe(fd, &b, 99, WIRE_SUB_ALL, "", WIRE_SUB_FROM_NOW, 0, 0);
	raw_expect_error(fd, 99, WIRE_ETOO_LARGE);

	/* NODE_SUBS_MAX on the node, then EBUSY. These have a credit of
	 * one event each. */
	for (size_t k = 0; k + 1 < sizeof fds / sizeof fds[0]; k++) {
		fds[k] = raw_connect(address);
		for (uint64_t id = 1; id <= SUBS_PER_CONN_MAX; id++) {
			struct wire_subscribe s = {
				.kind = WIRE_SUB_ALL,
				.from_kind = WIRE_SUB_FROM_NOW,
				.credit = 1,
			};

			assert_int_equal(wire_encode_subscribe(&b, id, &s), 0);
		}
		assert_int_equal(wire_encode_status(&b, 9999), 0);
		raw_send_buf(fds[k], &b);
		/* Taken in order: once STATUS is answered every SUBSCRIBE
		 * before it was. */
		free(raw_expect(fds[k], WIRE_STATUS_OK, 9999, 30000, &h));
	}
	extra = raw_connect(address);
	raw_subscribe(extra, &b, 1, WIRE_SUB_ALL, "", WIRE_SUB_FROM_NOW, 0, 0);
	raw_expect_error(extra, 1, WIRE_EBUSY);
	close(extra);

	/* With every one of them woken by each append, a writer still
	 * completes its appends, and each subscription of the first
	 * connection gets exactly its one event: the first appended. */
	wc = writer();
	first = append(wc, "crowd-1", "Crowd", NULL);
	for (int i = 1; i < 20; i++)
		append(wc, "crowd-1", "Crowd", NULL);
	cairn_close(wc);
	memset(got, 0, sizeof got);
	for (unsigned n = 0; n < SUBS_PER_CONN_MAX;) {
		struct wire_events_reader rd;
		struct wire_event ev;

		assert_int_equal(raw_read_frame(fds[0], WAIT_MS, &h, &body),
				 RAW_FRAME);
		if (h.type == WIRE_SUB_EVENTS) {
			assert_true(h.request_id >= 1 &&
				    h.request_id <= SUBS_PER_CONN_MAX);
			assert_false(got[h.request_id]);
			got[h.request_id] = true;
			assert_int_equal(
				wire_events_open(body, h.body_len, &rd),
				WIRE_OK);
			assert_int_equal(rd.count, 1);
			assert_true(wire_events_next(&rd, &ev));
			assert_int_equal(ev.position, first);
			n++;
		} else {
			assert_int_equal(h.type, WIRE_SUB_LIVE);
		}
		free(body);
	}
	for (size_t k = 0; k + 1 < sizeof fds / sizeof fds[0]; k++)
		close(fds[k]);

	/* A body that does not decode closes the connection. */
	assert_int_equal(wire_encode_credit(&b, 5, 1), 0);
	b.p[WIRE_HEADER_BYTES] = 0; /* credit 0 is malformed */
	raw_send_buf(fd, &b);
	raw_expect_error(fd, 5, WIRE_EMALFORMED);
	assert_int_equal(raw_read_frame(fd, 10000, &h, &body), RAW_CLOSED);
	close(fd);
	wire_buf_close(&b);
	cluster_check_alive(&cl_);
	passed_++;
}

static void cli_tail_prints_a_stream_and_refuses_a_bad_category(void **state)
{
	char out[8192];
	char err[2048];
	char *argv_ok[] = { CAIRN_CLI_PATH, "--seeds", cl_.seeds,
			    "tail",         "tail-1",  "--json",
			    "--limit",      "2",       NULL };
	char *argv_bad[] = { CAIRN_CLI_PATH, "--seeds", cl_.seeds, "tail",
			     "--category",   "a-b",     NULL };
	cairn_client *wc = writer();
	int rv;

	(void)state;
	append(wc, "tail-1", "First", NULL);
	append(wc, "tail-2", "Other", NULL);
	append(wc, "tail-1", "Second", NULL);
	cairn_close(wc);
	rv = cluster_run(argv_ok, NULL, out, sizeof out, err, sizeof err,
			 WAIT_MS);
	if (rv != 0)
		fail_msg("cairn tail exited %d: %s", rv, err);
	assert_non_null(strstr(out, "\"type\":\"First\""));
	assert_non_null(strstr(out, "\"type\":\"Second\""));
	assert_null(strstr(out, "Other"));
	rv = cluster_run(argv_bad, NULL, out, sizeof out, err, sizeof err,
			 WAIT_MS);
	assert_int_equal(rv, 5);
	assert_non_null(strstr(err, "category"));
	passed_++;
}

/* Events of 64 KiB appended before the stalled subscriber comes: more
 * than the node's bound (16 MiB) plus what the kernel's socket buffers
 * hold, so the node has to stop somewhere. */
#define STALL_EVENT_BYTES (64u << 10)
#define STALL_EVENTS      100
#define STALL_APPENDS     8

/* Appends the writer completes while the subscriber is stalled. */
#define STALL_WRITER_APPENDS 200

static void stalled_subscriber_is_cut_off_while_a_writer_appends(void **state)
{
	unsigned k = (cluster_wait_leader(&cl_, 0) + 1) % 3; /* a follower */
	struct cairn_event_in *events = calloc(STALL_EVENTS, sizeof *events);
	char *data = malloc(STALL_EVENT_BYTES);
	cairn_client *wc = writer();
	struct wire_buf b;
	struct wire_header h;
	struct wire_sub_end e;
	uint64_t deadline;
	uint64_t next = 1;
	uint8_t *body;
	int fd;

	(void)state;
	assert_non_null(events);
	assert_non_null(data);
	memset(data, 'x', STALL_EVENT_BYTES);
	for (int i = 0; i < STALL_EVENTS; i++) {
		events[i].type = "Big";
		events[i].data = data;
		events[i].data_len = STALL_EVENT_BYTES;
	}
	for (int i = 0; i < STALL_APPENDS; i++) {
		struct cairn_part_result res;
		struct cairn_error err;

		if (cairn_append_one(wc, "big-1", CAIRN_EXPECT_ANY, 0, events,
				     STALL_EVENTS, &res, &err) != 0)
			fail_msg("append: %s", err.message);
	}

	/* A subscriber with all the credit there is, that never reads. */
	fd = raw_connect(cl_.nodes[k].client_address);
	wire_buf_init(&b);
	raw_subscribe(fd, &b, 1, WIRE_SUB_ALL, "", WIRE_SUB_FROM_POSITION, 1,
		      UINT32_MAX);

	/* The writer goes on regardless. */
	for (int i = 0; i < STALL_WRITER_APPENDS; i++)
		append(wc, "after-stall-1", "Small", NULL);

	deadline = cluster_now_ms() + WAIT_MS;
	while (cluster_log_count(&cl_, k, "subscriber_too_slow") == 0) {
		if (cluster_now_ms() > deadline)
			fail_msg(
				"node %u did not cut the stalled subscriber "
				"off within %d ms",
				k + 1, WAIT_MS);
		cluster_sleep_ms(50);
	}

	/* Now read: pushes from position 1 without a gap, then SUB_END. */
	for (;;) {
		struct wire_events_reader rd;
		struct wire_event ev;

		assert_int_equal(raw_read_frame(fd, WAIT_MS, &h, &body),
				 RAW_FRAME);
		assert_int_equal(h.request_id, 1);
		if (h.type == WIRE_SUB_END)
			break;
		assert_int_equal(h.type, WIRE_SUB_EVENTS);
		assert_int_equal(wire_events_open(body, h.body_len, &rd),
				 WIRE_OK);
		while (wire_events_next(&rd, &ev)) {
			assert_int_equal(ev.position, next);
			next++;
		}
		free(body);
	}
	assert_int_equal(wire_decode_sub_end(body, h.body_len, &e), WIRE_OK);
	assert_int_equal(e.reason, WIRE_SUB_END_SLOW);
	assert_int_equal(e.next, next);
	assert_true(e.message.len >= 4);
	assert_memory_equal(e.message.p, "slow", 4);
	free(body);
	close(fd);
	wire_buf_close(&b);
	cairn_close(wc);
	free(events);
	free(data);
	cluster_check_alive(&cl_);
	passed_++;
}

static int started(void **state)
{
	(void)state;
	tests_run_++;
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	cluster_start(&cl_, "subscribe", 3, PORT_BASE);
	cluster_wait_leader(&cl_, 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cluster_stop_clean(&cl_);
	if (passed_ > 0 && passed_ == tests_run_)
		cluster_passed(&cl_);
	cluster_teardown(&cl_);
	return 0;
}

/* argv[1], when given, is a cmocka test filter. */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(
			category_and_type_filters_deliver_only_matching_events,
			started),
		cmocka_unit_test_setup(
			subscription_from_now_delivers_only_later_events,
			started),
		cmocka_unit_test_setup(
			refused_subscriptions_get_their_error_and_limits_hold,
			started),
		cmocka_unit_test_setup(
			cli_tail_prints_a_stream_and_refuses_a_bad_category,
			started),
		cmocka_unit_test_setup(
			stalled_subscriber_is_cut_off_while_a_writer_appends,
			started),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
