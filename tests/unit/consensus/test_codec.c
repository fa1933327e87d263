/* Tests of consensus/'s encodings and helpers that need no network: member
 * entries and snapshot manifests round-trip and every malformed or
 * truncated input is refused without reading outside it; stored member
 * values; the hash map; configuration errors at start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consensus_int.h"
#include "testutil.h"

static void fill_record(struct member_record *r, uint64_t id, uint8_t op)
{
	memset(r, 0, sizeof *r);
	r->id = id;
	r->op = op;
	if (op == CONSENSUS_MEMBER_SET) {
		snprintf(r->raft_address, sizeof r->raft_address,
			 "10.0.0.%llu:9001", (unsigned long long)id);
		snprintf(r->client_address, sizeof r->client_address,
			 "node-%llu.cairn.svc:7001", (unsigned long long)id);
		if (id % 2 == 0)
			snprintf(r->http_address, sizeof r->http_address,
				 "10.0.0.%llu:8001", (unsigned long long)id);
	}
}

static void member_entry_round_trips(void **state)
{
	struct member_record in[3];
	struct member_record out[CONSENSUS_MEMBERS_MAX];
	uint8_t buf[2048];
	size_t len;
	unsigned n;
	unsigned k;

	(void)state;
	fill_record(&in[0], 1, CONSENSUS_MEMBER_SET);
	fill_record(&in[1], 2, CONSENSUS_MEMBER_SET);
	fill_record(&in[2], 7, CONSENSUS_MEMBER_DELETE);
	len = member_entry_size(in, 3);
	assert_true(len <= sizeof buf);
	assert_int_equal(len % 8, 0);
	assert_int_equal(member_entry_encode(in, 3, buf), len);
	/* The first bytes are the kind: "CRNM". */
	assert_memory_equal(buf, "CRNM", 4);
	assert_int_equal(member_entry_decode(buf, len, out, &n), 0);
	assert_int_equal(n, 3);
	for (k = 0; k < 3; k++) {
		assert_int_equal(out[k].id, in[k].id);
		assert_int_equal(out[k].op, in[k].op);
		assert_string_equal(out[k].raft_address, in[k].raft_address);
		assert_string_equal(out[k].client_address,
				    in[k].client_address);
		assert_string_equal(out[k].http_address, in[k].http_address);
	}
}

static void member_entry_refuses_every_truncation(void **state)
{
	struct member_record in[2];
	struct member_record out[CONSENSUS_MEMBERS_MAX];
	uint8_t buf[1024];
	size_t len;
	size_t cut;
	unsigned n;

	(void)state;
	fill_record(&in[0], 1, CONSENSUS_MEMBER_SET);
	fill_record(&in[1], 2, CONSENSUS_MEMBER_SET);
	len = member_entry_encode(in, 2, buf);
	for (cut = 0; cut < len; cut++) {
		/* A copy of exactly @cut bytes, so a read past it is caught
		 * by the sanitizer build. */
		uint8_t *p = malloc(cut > 0 ? cut : 1);

		assert_non_null(p);
		memcpy(p, buf, cut);
		assert_int_equal(member_entry_decode(p, cut, out, &n), -1);
		assert_int_equal(n, 0);
		free(p);
	}
}

static void member_entry_refuses_malformed_fields(void **state)
{
	struct member_record in[1];
	struct member_record out[CONSENSUS_MEMBERS_MAX];
	uint8_t good[512];
	uint8_t buf[512];
	size_t len;
	unsigned n;

	(void)state;
	fill_record(&in[0], 3, CONSENSUS_MEMBER_SET);
	len = member_entry_encode(in, 1, good);

#define MUTATE(off, val)                                                      \
	do {                                                                  \
		memcpy(buf, good, len);                                       \
		buf[off] = (uint8_t)(val);                                    \
		assert_int_equal(member_entry_decode(buf, len, out, &n), -1); \
	} while (0)

	MUTATE(0, 'X');     /* magic */
	MUTATE(4, 2);       /* format */
	MUTATE(5, 1);       /* reserved */
	MUTATE(6, 0);       /* count 0 */
	MUTATE(6, 2);       /* count beyond the records */
	MUTATE(7, 1);       /* count 257 */
	MUTATE(8, 0xff);    /* body length */
	MUTATE(11, 0x80);   /* body length huge */
	MUTATE(12, 1);      /* reserved */
	MUTATE(16, 0);      /* id 0 (id is 3: low byte) */
	MUTATE(24, 3);      /* unknown op */
	MUTATE(25, 1);      /* reserved */
	MUTATE(26, 0xff);   /* raft length past the body */
	MUTATE(27, 0x01);   /* raft length 256+: past the limit */
	MUTATE(32, '\0');   /* a NUL inside an address */
	MUTATE(len - 1, 1); /* padding not zero */
#undef MUTATE

	/* A SET needs a raft address; a DELETE carries no addresses. */
	memset(&in[0], 0, sizeof in[0]);
	in[0].id = 4;
	in[0].op = CONSENSUS_MEMBER_SET;
	len = member_entry_encode(in, 1, buf);
	assert_int_equal(member_entry_decode(buf, len, out, &n), -1);
	fill_record(&in[0], 4, CONSENSUS_MEMBER_SET);
	in[0].op = CONSENSUS_MEMBER_DELETE;
	len = member_entry_encode(in, 1, buf);
	assert_int_equal(member_entry_decode(buf, len, out, &n), -1);
}

static void manifest_round_trips(void **state)
{
	struct manifest in;
	struct manifest out;
	char errmsg[256];
	uint8_t *buf;
	size_t len;
	unsigned k;

	(void)state;
	memset(&in, 0, sizeof in);
	in.applied_index = 123456789;
	in.last_position = 987654321;
	in.n_members = 3;
	for (k = 0; k < 3; k++) {
		in.members[k].id = k + 1;
		snprintf(in.members[k].raft_address,
			 sizeof in.members[k].raft_address, "h%u:9001", k);
		snprintf(in.members[k].client_address,
			 sizeof in.members[k].client_address, "h%u:7001", k);
	}
	len = manifest_size(&in);
	assert_int_equal(len % 8, 0);
	buf = malloc(len);
	assert_non_null(buf);
	assert_int_equal(manifest_encode(&in, buf), len);
	assert_memory_equal(buf, "CRNS", 4);
	assert_int_equal(manifest_decode(buf, len, &out, errmsg), 0);
	assert_int_equal(out.applied_index, in.applied_index);
	assert_int_equal(out.last_position, in.last_position);
	assert_int_equal(out.n_members, 3);
	for (k = 0; k < 3; k++) {
		assert_int_equal(out.members[k].id, k + 1);
		assert_string_equal(out.members[k].raft_address,
				    in.members[k].raft_address);
		assert_string_equal(out.members[k].client_address,
				    in.members[k].client_address);
		assert_string_equal(out.members[k].http_address, "");
	}
	free(buf);

	/* An empty table is a valid manifest too. */
	in.n_members = 0;
	len = manifest_size(&in);
	buf = malloc(len);
	assert_non_null(buf);
	manifest_encode(&in, buf);
	assert_int_equal(manifest_decode(buf, len, &out, errmsg), 0);
	assert_int_equal(out.n_members, 0);
	free(buf);
}

static void manifest_refuses_truncated_and_malformed(void **state)
{
	struct manifest in;
	struct manifest out;
	char errmsg[256];
	uint8_t good[1024];
	uint8_t buf[1024];
	size_t len;
	size_t cut;

	(void)state;
	memset(&in, 0, sizeof in);
	in.applied_index = 5;
	in.n_members = 1;
	in.members[0].id = 1;
	snprintf(in.members[0].raft_address, sizeof in.members[0].raft_address,
		 "a:1");
	len = manifest_encode(&in, good);
	for (cut = 0; cut < len; cut++) {
		uint8_t *p = malloc(cut > 0 ? cut : 1);

		assert_non_null(p);
		memcpy(p, good, cut);
		errmsg[0] = '\0';
		assert_int_equal(manifest_decode(p, cut, &out, errmsg), -1);
		assert_true(strlen(errmsg) > 0);
		free(p);
	}

#define MUTATE(off, val)                                                       \
	do {                                                                   \
		memcpy(buf, good, len);                                        \
		buf[off] = (uint8_t)(val);                                     \
		assert_int_equal(manifest_decode(buf, len, &out, errmsg), -1); \
	} while (0)

	MUTATE(0, 'X');     /* magic */
	MUTATE(4, 9);       /* format */
	MUTATE(5, 1);       /* reserved */
	MUTATE(24, 17);     /* more members than a table holds */
	MUTATE(24, 2);      /* more members than the body */
	MUTATE(27, 0xff);   /* a huge count */
	MUTATE(28, 0xff);   /* body length */
	MUTATE(32, 0);      /* member id 0 */
	MUTATE(40, 2);      /* a DELETE in a manifest */
	MUTATE(len - 1, 7); /* padding */
#undef MUTATE
}

static void member_value_round_trips_and_refuses_garbage(void **state)
{
	struct consensus_member in;
	struct consensus_member out;
	uint8_t buf[1024];
	size_t len;
	char key[CONSENSUS_MEMBER_KEY_SIZE];

	(void)state;
	memset(&in, 0, sizeof in);
	snprintf(in.raft_address, sizeof in.raft_address, "r:1");
	snprintf(in.client_address, sizeof in.client_address, "c:2");
	snprintf(in.http_address, sizeof in.http_address, "h:3");
	len = member_value_encode(&in, buf, sizeof buf);
	assert_true(len > 0);
	assert_int_equal(member_value_decode(9, buf, len, &out), 0);
	assert_int_equal(out.id, 9);
	assert_string_equal(out.raft_address, "r:1");
	assert_string_equal(out.client_address, "c:2");
	assert_string_equal(out.http_address, "h:3");
	assert_int_equal(member_value_decode(9, buf, len - 1, &out), -1);
	assert_int_equal(member_value_decode(9, buf, 3, &out), -1);
	buf[0] = 2;
	assert_int_equal(member_value_decode(9, buf, len, &out), -1);
	/* Too small a buffer: nothing written. */
	assert_int_equal(member_value_encode(&in, buf, 5), 0);

	member_key(key, 42);
	assert_string_equal(key, "member/00000000000000000042");
	member_key(key, UINT64_MAX);
	assert_string_equal(key, "member/18446744073709551615");
}

static void map_inserts_finds_and_removes(void **state)
{
	struct cmap m;
	struct cmap_node *n;
	char key[32];
	unsigned k;

	(void)state;
	cmap_init(&m);
	assert_null(cmap_get(&m, "a", 1));
	for (k = 0; k < 1000; k++) {
		snprintf(key, sizeof key, "stream-%u", k);
		n = cmap_insert(&m, key, strlen(key));
		assert_non_null(n);
		n->pending = k;
	}
	assert_int_equal(m.n, 1000);
	for (k = 0; k < 1000; k++) {
		snprintf(key, sizeof key, "stream-%u", k);
		n = cmap_get(&m, key, strlen(key));
		assert_non_null(n);
		assert_int_equal(n->pending, k);
		assert_int_equal(n->refs, 0);
		if (k % 2 == 0)
			cmap_remove(&m, n);
	}
	assert_int_equal(m.n, 500);
	for (k = 0; k < 1000; k++) {
		snprintf(key, sizeof key, "stream-%u", k);
		n = cmap_get(&m, key, strlen(key));
		if (k % 2 == 0)
			assert_null(n);
		else
			assert_non_null(n);
	}
	/* A key that is a prefix of another is a different key. */
	assert_null(cmap_get(&m, "stream-1", 7));
	cmap_close(&m);
	assert_int_equal(m.n, 0);
}

static void start_refuses_bad_configuration(void **state)
{
	struct consensus_member peers[2];
	struct consensus_config cfg;
	struct consensus c;
	uv_loop_t loop;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	memset(peers, 0, sizeof peers);
	peers[0].id = 1;
	snprintf(peers[0].raft_address, sizeof peers[0].raft_address,
		 "127.0.0.1:20490");
	peers[1].id = 2;
	snprintf(peers[1].raft_address, sizeof peers[1].raft_address,
		 "127.0.0.1:20491");
	memset(&cfg, 0, sizeof cfg);
	cfg.id = 1;
	cfg.dir = "/nonexistent/never-created";
	cfg.raft_address = "127.0.0.1:20490";
	cfg.peers = peers;
	cfg.n_peers = 2;

	cfg.id = 0;
	assert_int_equal(consensus_start(&c, &loop, NULL, &cfg),
			 CONSENSUS_ECONFIG);
	assert_non_null(strstr(c.errmsg, "id"));
	cfg.id = 3; /* not in the peer list, not joining */
	assert_int_equal(consensus_start(&c, &loop, NULL, &cfg),
			 CONSENSUS_ECONFIG);
	assert_non_null(strstr(c.errmsg, "peer list"));
	cfg.id = 1;
	cfg.election_timeout_ms = 100;
	cfg.heartbeat_timeout_ms = 100;
	assert_int_equal(consensus_start(&c, &loop, NULL, &cfg),
			 CONSENSUS_ECONFIG);
	assert_non_null(strstr(c.errmsg, "heartbeat"));
	cfg.election_timeout_ms = 0;
	cfg.heartbeat_timeout_ms = 0;
	peers[1].id = 1;
	assert_int_equal(consensus_start(&c, &loop, NULL, &cfg),
			 CONSENSUS_ECONFIG);
	assert_non_null(strstr(c.errmsg, "twice"));
	peers[1].id = 2;
	cfg.raft_address = "";
	assert_int_equal(consensus_start(&c, &loop, NULL, &cfg),
			 CONSENSUS_ECONFIG);
	assert_null(c.i);
	assert_string_equal(consensus_strerror(CONSENSUS_ENOT_LEADER),
			    "not the leader");
	assert_string_equal(consensus_strerror(9999), "unknown error");
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(member_entry_round_trips),
		cmocka_unit_test(member_entry_refuses_every_truncation),
		cmocka_unit_test(member_entry_refuses_malformed_fields),
		cmocka_unit_test(manifest_round_trips),
		cmocka_unit_test(manifest_refuses_truncated_and_malformed),
		cmocka_unit_test(member_value_round_trips_and_refuses_garbage),
		cmocka_unit_test(map_inserts_finds_and_removes),
		cmocka_unit_test(start_refuses_bad_configuration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
