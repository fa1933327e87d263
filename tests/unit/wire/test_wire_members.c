/* Unit tests of the membership messages of the wire codec (client/wire.c):
 * MEMBER_CHANGE, MEMBERS, LEADER_TRANSFER and LEADER round trips, the
 * encoders' refusals, the decoders' rejection of malformed bodies, and the
 * names and error texts of the new types and codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

static struct wire_bytes text(const char *s)
{
	struct wire_bytes b;

	b.len = (uint32_t)strlen(s);
	b.p = b.len > 0 ? (const uint8_t *)s : NULL;
	return b;
}

static bool same(struct wire_bytes a, const char *s)
{
	return a.len == strlen(s) && (a.len == 0 || memcmp(a.p, s, a.len) == 0);
}

/* The body of the only frame in @b, checked to be of @type. */
static const uint8_t *body_of(const struct wire_buf *b, unsigned type,
			      uint32_t *len)
{
	struct wire_header h;
	size_t frame_len;

	assert_int_equal(wire_frame_peek(b->p, b->len, &h, &frame_len),
			 WIRE_OK);
	assert_int_equal(frame_len, b->len);
	assert_int_equal(h.type, type);
	assert_true(h.request_id == 42);
	*len = h.body_len;
	return b->p + WIRE_HEADER_BYTES;
}

static void member_change_round_trips_every_op(void **state)
{
	const uint8_t ops[] = { WIRE_MEMBER_ADD, WIRE_MEMBER_REMOVE,
				WIRE_MEMBER_PROMOTE, WIRE_MEMBER_DEMOTE };

	(void)state;
	for (size_t k = 0; k < sizeof ops; k++) {
		struct wire_member_change m;
		struct wire_member_change d;
		struct wire_buf b;
		const uint8_t *body;
		uint32_t len;

		memset(&m, 0, sizeof m);
		m.op = ops[k];
		m.id = 1000 + k;
		m.flags = k % 2 ? WIRE_MEMBER_FORCE : 0;
		if (m.op == WIRE_MEMBER_ADD) {
			m.raft_address = text("10.0.0.4:9001");
			m.client_address = text("10.0.0.4:7001");
			m.http_address = text("");
		}
		wire_buf_init(&b);
		assert_int_equal(wire_encode_member_change(&b, 42, &m), 0);
		body = body_of(&b, WIRE_MEMBER_CHANGE, &len);
		assert_int_equal(wire_decode_member_change(body, len, &d),
				 WIRE_OK);
		assert_int_equal(d.op, m.op);
		assert_true(d.id == m.id);
		assert_int_equal(d.flags, m.flags);
		assert_true(same(d.raft_address, m.op == WIRE_MEMBER_ADD
							 ? "10.0.0.4:9001"
							 : ""));
		assert_true(same(d.client_address, m.op == WIRE_MEMBER_ADD
							   ? "10.0.0.4:7001"
							   : ""));
		assert_true(same(d.http_address, ""));
		wire_buf_close(&b);
	}
}

static void member_change_encoder_refuses_what_the_decoder_rejects(void **state)
{
	struct wire_member_change m;
	struct wire_buf b;
	char *big = malloc(WIRE_STRING_MAX + 2);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', WIRE_STRING_MAX + 1);
	big[WIRE_STRING_MAX + 1] = '\0';
	wire_buf_init(&b);
	memset(&m, 0, sizeof m);
	m.op = 0;
	m.id = 1;
	assert_int_equal(wire_encode_member_change(&b, 42, &m),
			 WIRE_ENCODE_INVALID);
	m.op = 5;
	assert_int_equal(wire_encode_member_change(&b, 42, &m),
			 WIRE_ENCODE_INVALID);
	m.op = WIRE_MEMBER_REMOVE;
	m.id = 0;
	assert_int_equal(wire_encode_member_change(&b, 42, &m),
			 WIRE_ENCODE_INVALID);
	m.id = 3;
	m.flags = 0x02;
	assert_int_equal(wire_encode_member_change(&b, 42, &m),
			 WIRE_ENCODE_INVALID);
	m.flags = 0;
	m.raft_address = text("x:1");
	assert_int_equal(wire_encode_member_change(&b, 42, &m),
			 WIRE_ENCODE_INVALID); /* an address on a remove */
	m.op = WIRE_MEMBER_ADD;
	m.raft_address = text("");
	assert_int_equal(wire_encode_member_change(&b, 42, &m),
			 WIRE_ENCODE_INVALID); /* an add without one */
	m.raft_address = text(big);
	assert_int_equal(wire_encode_member_change(&b, 42, &m),
			 WIRE_ENCODE_TOO_LARGE);
	assert_int_equal(b.len, 0);
	wire_buf_close(&b);
	free(big);
}

static void member_change_decoder_rejects_malformed_bodies(void **state)
{
	struct wire_member_change m;
	/* op remove, id 7, three empty strings, flags 0: 16 bytes. */
	uint8_t ok[16] = { 2, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t bad[17];

	(void)state;
	assert_int_equal(wire_decode_member_change(ok, sizeof ok, &m), WIRE_OK);
	assert_true(m.id == 7);
	/* Truncated, trailing bytes, unknown op, id 0, unknown flag, an
	 * address length past the end. */
	assert_int_equal(wire_decode_member_change(ok, sizeof ok - 1, &m),
			 WIRE_DECODE_MALFORMED);
	memcpy(bad, ok, sizeof ok);
	bad[16] = 0;
	assert_int_equal(wire_decode_member_change(bad, sizeof bad, &m),
			 WIRE_DECODE_MALFORMED);
	memcpy(bad, ok, sizeof ok);
	bad[0] = 9;
	assert_int_equal(wire_decode_member_change(bad, sizeof ok, &m),
			 WIRE_DECODE_MALFORMED);
	memcpy(bad, ok, sizeof ok);
	bad[1] = 0;
	assert_int_equal(wire_decode_member_change(bad, sizeof ok, &m),
			 WIRE_DECODE_MALFORMED);
	memcpy(bad, ok, sizeof ok);
	bad[15] = 0x80;
	assert_int_equal(wire_decode_member_change(bad, sizeof ok, &m),
			 WIRE_DECODE_MALFORMED);
	memcpy(bad, ok, sizeof ok);
	bad[9] = 200;
	assert_int_equal(wire_decode_member_change(bad, sizeof ok, &m),
			 WIRE_DECODE_MALFORMED);
}

static void members_round_trip_and_limits(void **state)
{
	struct wire_member ms[WIRE_MEMBERS_MAX + 1];
	struct wire_member d[WIRE_MEMBERS_MAX];
	struct wire_buf b;
	const uint8_t *body;
	uint32_t len;
	uint32_t n;
	/* A count of 17 and nothing after it. */
	uint8_t over[4] = { WIRE_MEMBERS_MAX + 1, 0, 0, 0 };

	(void)state;
	memset(ms, 0, sizeof ms);
	for (unsigned k = 0; k <= WIRE_MEMBERS_MAX; k++) {
		ms[k].id = k + 1;
		ms[k].role = k % 3;
		ms[k].raft_address = text("127.0.0.1:9001");
		ms[k].client_address = text(k == 1 ? "" : "127.0.0.1:7001");
		ms[k].http_address = text("127.0.0.1:8001");
	}
	wire_buf_init(&b);
	assert_int_equal(wire_encode_members(&b, 42, 3, ms), 0);
	body = body_of(&b, WIRE_MEMBERS, &len);
	assert_int_equal(wire_decode_members(body, len, &n, d), WIRE_OK);
	assert_int_equal(n, 3);
	for (unsigned k = 0; k < 3; k++) {
		assert_true(d[k].id == k + 1);
		assert_int_equal(d[k].role, k % 3);
		assert_true(same(d[k].client_address,
				 k == 1 ? "" : "127.0.0.1:7001"));
	}
	wire_buf_reset(&b);
	assert_int_equal(wire_encode_members(&b, 42, WIRE_MEMBERS_MAX + 1, ms),
			 WIRE_ENCODE_TOO_LARGE);
	ms[0].role = 3;
	assert_int_equal(wire_encode_members(&b, 42, 1, ms),
			 WIRE_ENCODE_INVALID);
	assert_int_equal(b.len, 0);
	assert_int_equal(wire_decode_members(over, sizeof over, &n, d),
			 WIRE_DECODE_MALFORMED);
	assert_int_equal(n, 0);
	wire_buf_close(&b);
}

static void leader_transfer_and_leader_round_trip(void **state)
{
	struct wire_buf b;
	const uint8_t *body;
	uint32_t len;
	uint64_t v = 0;
	uint8_t short_body[7] = { 0 };

	(void)state;
	wire_buf_init(&b);
	assert_int_equal(wire_encode_leader_transfer(&b, 42, 0), 0);
	body = body_of(&b, WIRE_LEADER_TRANSFER, &len);
	v = 99;
	assert_int_equal(wire_decode_leader_transfer(body, len, &v), WIRE_OK);
	assert_true(v == 0);
	wire_buf_reset(&b);
	assert_int_equal(wire_encode_leader(&b, 42, 5), 0);
	body = body_of(&b, WIRE_LEADER, &len);
	assert_int_equal(wire_decode_leader(body, len, &v), WIRE_OK);
	assert_true(v == 5);
	assert_int_equal(wire_decode_leader(short_body, sizeof short_body, &v),
			 WIRE_DECODE_MALFORMED);
	wire_buf_close(&b);
}

static void membership_types_and_codes_are_named(void **state)
{
	(void)state;
	assert_string_equal(wire_type_name(WIRE_MEMBER_CHANGE),
			    "MEMBER_CHANGE");
	assert_string_equal(wire_type_name(WIRE_LEADER_TRANSFER),
			    "LEADER_TRANSFER");
	assert_string_equal(wire_type_name(WIRE_MEMBERS), "MEMBERS");
	assert_string_equal(wire_type_name(WIRE_LEADER), "LEADER");
	assert_true(wire_type_is_request(WIRE_MEMBER_CHANGE));
	assert_true(wire_type_is_request(WIRE_LEADER_TRANSFER));
	assert_false(wire_type_is_request(WIRE_MEMBERS));
	assert_false(wire_type_is_request(WIRE_LEADER));
	assert_int_equal(WIRE_ECHANGE_IN_PROGRESS, 13);
	assert_int_equal(WIRE_EBELOW_MIN_VOTERS, 14);
	assert_int_equal(WIRE_ENO_SUCH_MEMBER, 15);
	assert_int_equal(WIRE_EALREADY_MEMBER, 16);
	assert_string_equal(wire_strerror(WIRE_ENO_SUCH_MEMBER),
			    "no such member");
	assert_string_equal(wire_strerror(WIRE_EALREADY_MEMBER),
			    "already a member");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(member_change_round_trips_every_op),
		cmocka_unit_test(
			member_change_encoder_refuses_what_the_decoder_rejects),
		cmocka_unit_test(
			member_change_decoder_rejects_malformed_bodies),
		cmocka_unit_test(members_round_trip_and_limits),
		cmocka_unit_test(leader_transfer_and_leader_round_trip),
		cmocka_unit_test(membership_types_and_codes_are_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
