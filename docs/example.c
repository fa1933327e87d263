/* example.c: libcairn in one page.
 *
 * Opens a client, reads a stream's head, appends an event expecting exactly
 * that version, shows what a conflicting writer sees (and how it recovers),
 * then reads the stream back and prints it. docs/client.md walks through
 * it; the integration tests run it against a live cluster.
 *
 *   cc example.c $(pkg-config --cflags --libs cairn) -o example
 *   ./example 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
 *
 * Exits 0 on success, 1 with a message on stderr otherwise (2 when the
 * seeds are missing). */
#include <stdio.h>
#include <string.h>

#include <cairn.h>

/* Prints "what: message" for a failed call. */
static void report(const char *what, const struct cairn_error *err)
{
	fprintf(stderr, "example: %s: %s (%s)\n", what, err->message,
		cairn_strerror(err->code));
}

int main(int argc, char **argv)
{
	struct cairn_options opts;
	struct cairn_read_options ro;
	struct cairn_error err;
	struct cairn_part_result res;
	struct cairn_page page;
	struct cairn_event_in ev;
	cairn_client *c;
	char stream[64];
	char id[37];
	uint8_t run[16];
	uint64_t version;
	uint64_t position;
	size_t i;
	int rv;
	int status = 1; /* the exit code until everything worked */

	if (argc != 2) {
		fprintf(stderr, "usage: %s HOST:PORT[,HOST:PORT...]\n",
			argv[0]);
		return 2;
	}

	/* 1. Open a client. Nothing connects yet: the first call finds the
	 * leader among the seeds. Every call below gets 10 s, retries
	 * included. */
	memset(&opts, 0, sizeof opts);
	opts.deadline_ms = 10000;
	if (cairn_open(argv[1], &opts, &c, &err) != 0) {
		report("open", &err);
		return 1;
	}

	/* A fresh stream per run: "account-<8 hex digits>", in category
	 * "account". */
	cairn_uuid(run);
	cairn_uuid_format(run, id);
	snprintf(stream, sizeof stream, "account-%.8s", id);

	/* 2. Read the stream's head. A stream that does not exist yet has
	 * version 0. LEADER consistency: the answer reflects every append
	 * acknowledged before it. */
	memset(&ro, 0, sizeof ro);
	ro.consistency = CAIRN_CONSISTENCY_LEADER;
	rv = cairn_head(c, stream, &ro, &version, &position, &err);
	if (rv != 0) {
		report("head", &err);
		goto out;
	}
	printf("%s is at version %llu\n", stream, (unsigned long long)version);

	/* 3. Append one event, expecting exactly that version. The library
	 * makes the event id and the idempotency key; should the leader
	 * change or the connection drop, it retries with both unchanged, so
	 * the event is never appended twice. */
	memset(&ev, 0, sizeof ev);
	ev.type = "AccountOpened";
	ev.data = "{\"owner\":\"ada\"}";
	ev.data_len = strlen(ev.data);
	rv = cairn_append_one(c, stream, CAIRN_EXPECT_EXACT, version, &ev, 1,
			      &res, &err);
	if (rv != 0) {
		report("append AccountOpened", &err);
		goto out;
	}
	printf("appended AccountOpened: version %llu position %llu\n",
	       (unsigned long long)res.last_version,
	       (unsigned long long)res.last_position);

	/* 4. A writer that read the head before step 3 still believes the
	 * stream is at `version`. Its append conflicts: nothing is written,
	 * and the error says where the stream really is. The usual recovery
	 * is to re-read the stream, decide again, and retry with the actual
	 * version. */
	ev.type = "DepositMade";
	ev.data = "{\"amount\":100}";
	ev.data_len = strlen(ev.data);
	rv = cairn_append_one(c, stream, CAIRN_EXPECT_EXACT, version, &ev, 1,
			      &res, &err);
	if (rv != CAIRN_EWRONG_EXPECTED_VERSION) {
		fprintf(stderr,
			"example: stale append: expected a conflict, "
			"got %s\n",
			rv == 0 ? "success" : err.message);
		goto out;
	}
	printf("conflict as expected: %s (stream at version %llu)\n",
	       err.message, (unsigned long long)err.actual_version);
	rv = cairn_append_one(c, stream, CAIRN_EXPECT_EXACT, err.actual_version,
			      &ev, 1, &res, &err);
	if (rv != 0) {
		report("append DepositMade", &err);
		goto out;
	}
	printf("appended DepositMade: version %llu position %llu\n",
	       (unsigned long long)res.last_version,
	       (unsigned long long)res.last_position);

	/* 5. Read the stream back from version 1. AT_LEAST the last position
	 * we wrote: whichever node answers has applied our appends
	 * (read-your-writes without going to the leader). A page holds at
	 * most `limit` events; page.next and page.end say how to go on. */
	ro.consistency = CAIRN_CONSISTENCY_AT_LEAST;
	ro.min_position = res.last_position;
	ro.limit = 100;
	rv = cairn_read_stream(c, stream, 1, false, &ro, &page, &err);
	if (rv != 0) {
		report("read", &err);
		goto out;
	}
	for (i = 0; i < page.n; i++) {
		const struct cairn_event *e = &page.events[i];

		/* Strings in a page are not NUL-terminated: print them with
		 * their lengths. */
		cairn_uuid_format(e->id, id);
		printf("%llu %.*s@%llu %.*s %s %.*s\n",
		       (unsigned long long)e->position, (int)e->stream_len,
		       e->stream, (unsigned long long)e->version,
		       (int)e->type_len, e->type, id, (int)e->data_len,
		       (const char *)e->data);
	}
	if (page.n != 2 || page.events[1].version != 2) {
		fprintf(stderr, "example: read back %zu events, expected 2\n",
			page.n);
		cairn_page_free(&page);
		goto out;
	}
	status = 0;

	/* 6. Pages are the caller's to free (closing the client does not free
	 * them); close the client once no call is in progress. */
	cairn_page_free(&page);
out:
	cairn_close(c);
	return status;
}
