/* Integration test of backups (docs/backup.md): `cairn backup` of a
 * 3-node cluster under continuous appends, a new 3-node cluster started
 * from it with `cairnd --restore`, and the copy protocol's errors
 * (docs/protocol.md, "Copying a node's store").
 *
 * Ports: 24700-24899 (cluster A at 24700, the restored cluster at 24730,
 * the single node of the error cases at 24760). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "cluster.h"
#include "wire.h"

#define PORT_A        24700
#define PORT_RESTORED 24730
#define PORT_ERRORS   24760

/* Streams the writer spreads its appends over. */
#define STREAMS 5

/* Appends the writer makes at most (a bound on its memory). */
#define WRITES_MAX 100000

/* How long the writer runs before and after the backup begins. */
#define WRITE_BEFORE_MS 1500
#define WRITE_AFTER_MS  500

/* One acknowledged append. */
struct acked {
	uint64_t seq;
	unsigned stream;
	uint64_t version;
	uint64_t position;
};

/* The writer thread's state, shared under mu. */
static struct {
	pthread_mutex_t mu;
	cairn_client *client; /* owned by the test */
	uint8_t client_id[16];
	bool stop;
	size_t n; /* entries of acked */
	struct acked acked[WRITES_MAX];
	int last_error; /* 0 or the last failed call's code */
} w_ = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *writer_main(void *arg)
{
	uint64_t seq = 1;

	(void)arg;
	for (;; seq++) {
		struct cairn_append_part part;
		struct cairn_event_in ev;
		struct cairn_append_key key;
		struct cairn_part_result res;
		struct cairn_error err;
		char stream[32];
		char data[64];
		unsigned s = (unsigned)(seq % STREAMS);
		int rv;

		pthread_mutex_lock(&w_.mu);
		if (w_.stop || w_.n == WRITES_MAX) {
			pthread_mutex_unlock(&w_.mu);
			break;
		}
		pthread_mutex_unlock(&w_.mu);
		snprintf(stream, sizeof stream, "backup-%u", s);
		snprintf(data, sizeof data, "{\"seq\":%" PRIu64 "}", seq);
		memset(&ev, 0, sizeof ev);
		ev.type = "written";
		ev.data = data;
		ev.data_len = strlen(data);
		memset(&part, 0, sizeof part);
		part.stream = stream;
		part.expect_kind = CAIRN_EXPECT_ANY;
		part.events = &ev;
		part.n_events = 1;
		memset(&key, 0, sizeof key);
		key.has_key = true;
		memcpy(key.client_id, w_.client_id, 16);
		key.seq = seq;
		rv = cairn_append(w_.client, &part, 1, &key, &res, NULL, &err);
		pthread_mutex_lock(&w_.mu);
		if (rv == 0) {
			struct acked *a = &w_.acked[w_.n++];

			a->seq = seq;
			a->stream = s;
			a->version = res.last_version;
			a->position = res.last_position;
		} else {
			w_.last_error = rv;
		}
		pthread_mutex_unlock(&w_.mu);
	}
	return NULL;
}

/* The value of "@key": in a one-line JSON object. */
static uint64_t json_u64(const char *json, const char *key)
{
	char pattern[64];
	const char *p;

	snprintf(pattern, sizeof pattern, "\"%s\":", key);
	p = strstr(json, pattern);
	if (p == NULL)
		fail_msg("no %s in %s", key, json);
	return strtoull(p + strlen(pattern), NULL, 10);
}

static void backup_dir_path(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s-%d", cluster_tmp_base(), name, (int)getpid());
}

static void rm_backup(const char *dir)
{
	char cmd[1200];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------------
 * Backup and restore
 * ------------------------------------------------------------------------ */

static void restored_cluster_holds_everything_acknowledged_before_the_backup(
	void **state)
{
	static struct cluster a;
	static struct cluster b;
	static struct cluster_dump d;
	char dir[CLUSTER_PATH_MAX];
	char out[4096];
	char err[4096];
	const char *restore_args[3];
	pthread_t writer;
	size_t n_before;
	size_t n_all;
	uint64_t last;
	uint64_t head[STREAMS] = { 0 };
	int rv;

	(void)state;
	backup_dir_path(dir, sizeof dir, "backup");
	rm_backup(dir);

	cluster_start(&a, "backup-a", 3, PORT_A);
	cluster_wait_leader(&a, 0);
	w_.client = cluster_client(&a, -1, false, 10000);
	cairn_uuid(w_.client_id);
	assert_int_equal(pthread_create(&writer, NULL, writer_main, NULL), 0);
	cluster_sleep_ms(WRITE_BEFORE_MS);

	/* Everything acknowledged so far must be in the backup. */
	pthread_mutex_lock(&w_.mu);
	n_before = w_.n;
	pthread_mutex_unlock(&w_.mu);
	assert_true(n_before > 0);
	{
		char *argv[] = { CAIRN_CLI_PATH, "--seeds", a.seeds, "--json",
				 "backup",       dir,       NULL };

		rv = cluster_run(argv, NULL, out, sizeof out, err, sizeof err,
				 60000);
		if (rv != 0)
			fail_msg("cairn backup exited %d: %s", rv, err);
	}
	cluster_sleep_ms(WRITE_AFTER_MS);
	pthread_mutex_lock(&w_.mu);
	w_.stop = true;
	pthread_mutex_unlock(&w_.mu);
	assert_int_equal(pthread_join(writer, NULL), 0);
	cairn_close(w_.client);
	n_all = w_.n;
	last = json_u64(out, "last_position");
	print_message(
		"backup: %s acked before=%zu all=%zu last_position="
		"%" PRIu64 "\n",
		out, n_before, n_all, last);
	assert_true(last >= w_.acked[n_before - 1].position);
	cluster_stop_clean(&a);
	cluster_passed(&a);
	cluster_teardown(&a);

	/* A new cluster from the backup: every node with --restore. */
	restore_args[0] = "--restore";
	restore_args[1] = dir;
	restore_args[2] = NULL;
	cluster_start_args(&b, "backup-b", 3, PORT_RESTORED, restore_args);
	cluster_wait_leader(&b, 0);
	cluster_dump_node(&b, 0, last, &d);
	/* Nothing after the backup's last position. */
	assert_int_equal(d.n, last);
	/* Every pre-backup acknowledgment, at its position and version. */
	for (size_t k = 0; k < n_before; k++) {
		const struct acked *ak = &w_.acked[k];
		const struct cluster_event *e = &d.events[ak->position - 1];
		char stream[32];

		snprintf(stream, sizeof stream, "backup-%u", ak->stream);
		assert_string_equal(e->stream, stream);
		assert_int_equal(e->version, ak->version);
		assert_true(e->has_client);
		assert_int_equal(e->client_seq, ak->seq);
	}
	for (size_t k = 0; k < d.n; k++) {
		unsigned s;

		if (sscanf(d.events[k].stream, "backup-%u", &s) == 1 &&
		    s < STREAMS && d.events[k].version > head[s])
			head[s] = d.events[k].version;
	}

	{
		cairn_client *c = cluster_client(&b, -1, false, 10000);
		struct cairn_append_part part;
		struct cairn_event_in ev;
		struct cairn_append_key key;
		struct cairn_part_result res;
		struct cairn_error e;
		const struct acked *old = &w_.acked[n_before / 2];
		char stream[32];
		bool dup = false;

		/* A new append takes the next position and version. */
		memset(&ev, 0, sizeof ev);
		ev.type = "after-restore";
		ev.data = "{}";
		ev.data_len = 2;
		rv = cairn_append_one(c, "backup-0", CAIRN_EXPECT_ANY, 0, &ev,
				      1, &res, &e);
		if (rv != 0)
			fail_msg("append after restore: %s", e.message);
		assert_int_equal(res.last_position, last + 1);
		assert_int_equal(res.last_version, head[0] + 1);

		/* A retry of a pre-backup append is a duplicate, with its
		 * original result. */
		snprintf(stream, sizeof stream, "backup-%u", old->stream);
		memset(&part, 0, sizeof part);
		part.stream = stream;
		part.expect_kind = CAIRN_EXPECT_ANY;
		part.events = &ev;
		part.n_events = 1;
		memset(&key, 0, sizeof key);
		key.has_key = true;
		memcpy(key.client_id, w_.client_id, 16);
		key.seq = old->seq;
		rv = cairn_append(c, &part, 1, &key, &res, &dup, &e);
		if (rv != 0)
			fail_msg("retry after restore: %s", e.message);
		assert_true(dup);
		assert_int_equal(res.last_position, old->position);
		assert_int_equal(res.last_version, old->version);
		cairn_close(c);
	}
	cluster_dump_free(&d);

	/* A restart with the same flags (as a supervisor does) finds the
	 * backup restored already and carries on with the node's state. */
	cluster_node_stop(&b, 2);
	cluster_node_start(&b, 2);
	cluster_wait_leader(&b, 0);
	assert_int_equal(cluster_wait_converged(&b, 0), last + 1);
	assert_int_equal(cluster_log_count(&b, 2, "event=restore_skipped"), 1);
	assert_int_equal(cluster_log_count(&b, 2, "event=restore_done"), 1);
	cluster_stop_clean(&b);
	cluster_passed(&b);
	cluster_teardown(&b);
	rm_backup(dir);
}

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

static int raw_connect(const char *address)
{
	const char *colon = strrchr(address, ':');
	struct sockaddr_in sa;
	struct timeval tv = { 15, 0 };
	int fd;

	assert_non_null(colon);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

static void raw_send(int fd, struct wire_buf *b)
{
	assert_int_equal(send(fd, b->p, b->len, MSG_NOSIGNAL), (ssize_t)b->len);
	wire_buf_reset(b);
}

static void raw_read(int fd, void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = recv(fd, (uint8_t *)buf + done, n - done, 0);

		if (k <= 0)
			fail_msg("recv: %s",
				 k == 0 ? "closed" : strerror(errno));
		done += (size_t)k;
	}
}

/* Reads one frame; the body is malloc'ed. */
static uint8_t *raw_frame(int fd, struct wire_header *h)
{
	uint8_t head[WIRE_HEADER_BYTES];
	uint8_t *body;

	raw_read(fd, head, sizeof head);
	assert_int_equal(wire_header_decode(head, h), WIRE_OK);
	body = malloc(h->body_len > 0 ? h->body_len : 1);
	assert_non_null(body);
	raw_read(fd, body, h->body_len);
	return body;
}

static void expect_error(int fd, uint64_t id, uint32_t code)
{
	struct wire_header h;
	struct wire_err e;
	uint8_t *body = raw_frame(fd, &h);

	assert_int_equal(h.request_id, id);
	assert_int_equal(h.type, WIRE_ERROR);
	assert_int_equal(wire_decode_error(body, h.body_len, &e), WIRE_OK);
	print_message("error %u: %.*s\n", e.code, (int)e.message.len,
		      (const char *)e.message.p);
	assert_int_equal(e.code, code);
	assert_true(e.message.len > 0);
	free(body);
}

static void bad_chunks_extra_sessions_and_a_full_backup_dir_are_refused(
	void **state)
{
	static struct cluster c;
	struct wire_state_listing l;
	struct wire_state_begin sb;
	struct wire_state_chunk ch;
	struct wire_header h;
	struct wire_buf b;
	char dir[CLUSTER_PATH_MAX];
	char path[CLUSTER_PATH_MAX + 32];
	char err[4096];
	uint8_t *body;
	uint32_t crc;
	struct wire_bytes data;
	cairn_client *cl;
	int fd;
	int rv;

	(void)state;
	cluster_start(&c, "backup-errors", 1, PORT_ERRORS);
	cluster_wait_leader(&c, 0);
	wire_buf_init(&b);
	fd = raw_connect(c.nodes[0].client_address);

	/* A session of the node's own. */
	sb.min_applied_index = 0;
	sb.flags = WIRE_STATE_LEADER;
	assert_int_equal(wire_encode_state_begin(&b, 1, &sb), 0);
	raw_send(fd, &b);
	body = raw_frame(fd, &h);
	assert_int_equal(h.type, WIRE_STATE_LISTING);
	assert_int_equal(wire_decode_state_listing(body, h.body_len, &l),
			 WIRE_OK);
	assert_true(l.n_files > 0);

	/* A file index past the listing. */
	ch.session = l.session;
	ch.file = l.n_files;
	ch.offset = 0;
	ch.length = 1;
	assert_int_equal(wire_encode_state_chunk(&b, 2, &ch), 0);
	raw_send(fd, &b);
	expect_error(fd, 2, WIRE_EINVALID);

	/* An offset past the end of a file. */
	ch.file = 0;
	ch.offset = l.files[0].size + 1;
	assert_int_equal(wire_encode_state_chunk(&b, 3, &ch), 0);
	raw_send(fd, &b);
	expect_error(fd, 3, WIRE_EINVALID);

	/* A session nobody began. */
	ch.session = l.session ^ 0x5a5a5a5a5a5a5a5aull;
	ch.offset = 0;
	assert_int_equal(wire_encode_state_chunk(&b, 4, &ch), 0);
	raw_send(fd, &b);
	expect_error(fd, 4, WIRE_ETRANSFER_GONE);

	/* The session still serves a good chunk, with its checksum. */
	ch.session = l.session;
	ch.length = 16;
	assert_int_equal(wire_encode_state_chunk(&b, 5, &ch), 0);
	raw_send(fd, &b);
	{
		uint8_t *reply = raw_frame(fd, &h);
		uint32_t want =
			(uint32_t)(l.files[0].size < 16 ? l.files[0].size : 16);

		assert_int_equal(h.type, WIRE_STATE_DATA);
		assert_int_equal(
			wire_decode_state_data(reply, h.body_len, &crc, &data),
			WIRE_OK);
		assert_int_equal(data.len, want);
		assert_int_equal(crc, (uint32_t)crc32(crc32(0L, Z_NULL, 0),
						      data.p, data.len));
		free(reply);
	}

	/* Ended, it is gone. */
	assert_int_equal(wire_encode_state_end(&b, 6, l.session), 0);
	raw_send(fd, &b);
	free(raw_frame(fd, &h));
	assert_int_equal(h.type, WIRE_STATE_ENDED);
	ch.length = 1;
	assert_int_equal(wire_encode_state_chunk(&b, 7, &ch), 0);
	raw_send(fd, &b);
	expect_error(fd, 7, WIRE_ETRANSFER_GONE);
	wire_state_listing_close(&l);
	free(body);

	/* At most 2 sessions: a third STATE_BEGIN is busy. */
	{
		struct wire_state_listing ls[2];
		uint64_t sessions[2];

		sb.flags = 0;
		for (unsigned k = 0; k < 2; k++) {
			assert_int_equal(
				wire_encode_state_begin(&b, 10 + k, &sb), 0);
			raw_send(fd, &b);
			body = raw_frame(fd, &h);
			assert_int_equal(h.type, WIRE_STATE_LISTING);
			assert_int_equal(wire_decode_state_listing(
						 body, h.body_len, &ls[k]),
					 WIRE_OK);
			/* Only the session is kept. */
			sessions[k] = ls[k].session;
			wire_state_listing_close(&ls[k]);
			free(body);
		}
		assert_int_equal(wire_encode_state_begin(&b, 12, &sb), 0);
		raw_send(fd, &b);
		expect_error(fd, 12, WIRE_EBUSY);

		/* A burst of chunk requests past the node's queue: every
		 * one is answered, the ones over the bound with EBUSY. */
		{
			enum { BURST = 3000 };
			unsigned data_replies = 0;
			unsigned busy = 0;

			ch.session = sessions[0];
			ch.file = 0;
			ch.offset = 0;
			ch.length = WIRE_STATE_CHUNK_BYTES_MAX;
			for (unsigned k = 0; k < BURST; k++)
				assert_int_equal(wire_encode_state_chunk(
							 &b, 1000 + k, &ch),
						 0);
			raw_send(fd, &b);
			for (unsigned k = 0; k < BURST; k++) {
				uint8_t *reply = raw_frame(fd, &h);
				struct wire_err e;

				if (h.type == WIRE_STATE_DATA) {
					data_replies++;
				} else {
					assert_int_equal(h.type, WIRE_ERROR);
					assert_int_equal(
						wire_decode_error(
							reply, h.body_len, &e),
						WIRE_OK);
					assert_int_equal(e.code, WIRE_EBUSY);
					busy++;
				}
				free(reply);
			}
			print_message(
				"burst of %d chunks: %u answered, %u "
				"busy\n",
				BURST, data_replies, busy);
			assert_true(data_replies >= 1);
			assert_true(busy >= 1);
		}
		for (unsigned k = 0; k < 2; k++) {
			assert_int_equal(
				wire_encode_state_end(&b, 20 + k, sessions[k]),
				0);
			raw_send(fd, &b);
			free(raw_frame(fd, &h));
			assert_int_equal(h.type, WIRE_STATE_ENDED);
		}
	}
	close(fd);
	wire_buf_close(&b);

	/* The node still serves. */
	cl = cluster_client(&c, 0, false, 10000);
	{
		struct cairn_event_in ev;
		struct cairn_part_result res;
		struct cairn_error e;

		memset(&ev, 0, sizeof ev);
		ev.type = "t";
		rv = cairn_append_one(cl, "still-serving", CAIRN_EXPECT_ANY, 0,
				      &ev, 1, &res, &e);
		if (rv != 0)
			fail_msg("append: %s", e.message);
	}
	cairn_close(cl);

	/* A backup directory that is not empty is refused. */
	backup_dir_path(dir, sizeof dir, "backup-full");
	rm_backup(dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/something", dir);
	{
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs("x\n", f);
		fclose(f);
	}
	{
		char *argv[] = { CAIRN_CLI_PATH, "--seeds", c.seeds,
				 "backup",       dir,       NULL };

		rv = cluster_run(argv, NULL, NULL, 0, err, sizeof err, 30000);
	}
	assert_int_equal(rv, 1);
	assert_non_null(strstr(err, "not empty"));
	assert_int_equal(access(path, F_OK), 0); /* untouched */
	rm_backup(dir);

	cluster_check_alive(&c);
	cluster_stop_clean(&c);
	cluster_passed(&c);
	cluster_teardown(&c);
}

/* ------------------------------------------------------------------------
 * Restore's refusals
 * ------------------------------------------------------------------------ */

/* Runs cairnd with @extra (NULL terminated) after the required flags and
 * returns its exit status; @err gets its stderr. */
static int run_cairnd(const char *data_dir, const char *const *extra, char *err,
		      size_t err_cap)
{
	char *argv[24];
	size_t n = 0;

	argv[n++] = CAIRN_CAIRND_PATH;
	argv[n++] = "--id";
	argv[n++] = "1";
	argv[n++] = "--data-dir";
	argv[n++] = (char *)data_dir;
	argv[n++] = "--raft-address";
	argv[n++] = "127.0.0.1:24791";
	argv[n++] = "--client-address";
	argv[n++] = "127.0.0.1:24792";
	for (size_t k = 0; extra[k] != NULL; k++)
		argv[n++] = (char *)extra[k];
	argv[n] = NULL;
	return cluster_run(argv, NULL, NULL, 0, err, err_cap, 30000);
}

static void restore_refuses_a_used_data_dir_a_partial_backup_and_join(
	void **state)
{
	char root[CLUSTER_PATH_MAX];
	char data[CLUSTER_PATH_MAX + 16];
	char backup[CLUSTER_PATH_MAX + 16];
	char path[CLUSTER_PATH_MAX + 64];
	char err[4096];
	const char *peers = "--peers";
	const char *peer_list = "1=127.0.0.1:24791/127.0.0.1:24792/";
	FILE *f;

	(void)state;
	backup_dir_path(root, sizeof root, "backup-refusals");
	rm_backup(root);
	assert_int_equal(mkdir(root, 0755), 0);
	snprintf(data, sizeof data, "%s/data", root);
	snprintf(backup, sizeof backup, "%s/backup", root);
	assert_int_equal(mkdir(backup, 0755), 0);

	/* A backup without CAIRN-COPY is not complete. */
	{
		const char *extra[] = { peers, peer_list, "--restore", backup,
					NULL };

		assert_int_equal(run_cairnd(data, extra, err, sizeof err), 2);
		assert_non_null(strstr(err, "not a complete backup"));
	}
	/* A data directory that holds anything is never overwritten. */
	assert_int_equal(mkdir(data, 0755), 0);
	snprintf(path, sizeof path, "%s/raft", data);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/CAIRN-COPY", backup);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("cairn-copy 1\n", f);
	fclose(f);
	{
		const char *extra[] = { peers, peer_list, "--restore", backup,
					NULL };

		assert_int_equal(run_cairnd(data, extra, err, sizeof err), 2);
		assert_non_null(strstr(err, "is not empty"));
	}
	/* Not with --join. */
	{
		const char *extra[] = { "--join", "127.0.0.1:24793",
					"--restore", backup, NULL };

		assert_int_equal(run_cairnd(data, extra, err, sizeof err), 2);
		assert_non_null(strstr(err, "--join"));
	}
	rm_backup(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			restored_cluster_holds_everything_acknowledged_before_the_backup),
		cmocka_unit_test(
			bad_chunks_extra_sessions_and_a_full_backup_dir_are_refused),
		cmocka_unit_test(
			restore_refuses_a_used_data_dir_a_partial_backup_and_join),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
