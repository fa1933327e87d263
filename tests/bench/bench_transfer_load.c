/* bench_transfer_load: fills a running cluster with incompressible events
 * through libcairn, for tests/bench/bench_transfer.sh (which builds it
 * against the build tree's libcairn and runs it). RocksDB compresses with
 * LZ4, so the data are pseudo-random bytes: the store's size on disk is
 * about the bytes written.
 *
 *   bench_transfer_load SEEDS TOTAL_MB [EVENT_BYTES [EVENTS_PER_APPEND
 *                       [WRITERS]]]
 *
 * Defaults: 64 KiB events, 16 per append (1 MiB transactions), 4 writer
 * threads, each with its own client and streams. Prints the bytes written,
 * the time and MB/s; exits 1 on the first failed append. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"

#define LOAD_WRITERS_MAX 64
#define LOAD_EVENTS_MAX  1024

struct load_writer {
	const char *seeds;          /* borrowed */
	unsigned index;             /* 0-based */
	uint64_t appends;           /* to do */
	unsigned event_bytes;       /* per event */
	unsigned events_per_append; /* per transaction */
	int failed;                 /* a CAIRN_E* code, or 0 */
	pthread_t thread;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *writer_main(void *arg)
{
	struct load_writer *w = arg;
	struct cairn_event_in ev[LOAD_EVENTS_MAX];
	struct cairn_options o;
	struct cairn_error err;
	struct cairn_part_result r;
	cairn_client *c = NULL;
	size_t bytes = (size_t)w->event_bytes * w->events_per_append;
	uint8_t *data = malloc(bytes);
	uint64_t x = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->index << 32);
	char stream[64];

	if (data == NULL) {
		w->failed = CAIRN_ENOMEM;
		return NULL;
	}
	memset(&o, 0, sizeof o);
	o.deadline_ms = 60000;
	if (cairn_open(w->seeds, &o, &c, &err) != 0) {
		fprintf(stderr, "open: %s\n", err.message);
		w->failed = err.code;
		free(data);
		return NULL;
	}
	for (uint64_t i = 0; i < w->appends; i++) {
		int rv;

		for (size_t b = 0; b + 8 <= bytes; b += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(data + b, &x, 8);
		}
		for (unsigned e = 0; e < w->events_per_append; e++) {
			memset(&ev[e], 0, sizeof ev[e]);
			ev[e].type = "Blob";
			ev[e].data = data + (size_t)e * w->event_bytes;
			ev[e].data_len = w->event_bytes;
		}
		snprintf(stream, sizeof stream, "load-%u-%" PRIu64, w->index,
			 i % 64);
		rv = cairn_append_one(c, stream, CAIRN_EXPECT_ANY, 0, ev,
				      w->events_per_append, &r, &err);
		if (rv != 0) {
			fprintf(stderr, "writer %u append %" PRIu64 ": %s\n",
				w->index, i, err.message);
			w->failed = rv;
			break;
		}
	}
	cairn_close(c);
	free(data);
	return NULL;
}

int main(int argc, char **argv)
{
	struct load_writer w[LOAD_WRITERS_MAX];
	unsigned event_bytes = 64u << 10;
	unsigned per_append = 16;
	unsigned writers = 4;
	uint64_t total_mb;
	uint64_t appends;
	double t0, t;
	int status = 0;

	if (argc < 3) {
		fprintf(stderr,
			"usage: %s SEEDS TOTAL_MB [EVENT_BYTES "
			"[EVENTS_PER_APPEND [WRITERS]]]\n",
			argv[0]);
		return 2;
	}
	total_mb = strtoull(argv[2], NULL, 10);
	if (argc > 3)
		event_bytes = (unsigned)strtoul(argv[3], NULL, 10);
	if (argc > 4)
		per_append = (unsigned)strtoul(argv[4], NULL, 10);
	if (argc > 5)
		writers = (unsigned)strtoul(argv[5], NULL, 10);
	if (event_bytes < 8 || event_bytes > (1u << 20) || per_append == 0 ||
	    per_append > LOAD_EVENTS_MAX || writers == 0 ||
	    writers > LOAD_WRITERS_MAX || total_mb == 0) {
		fprintf(stderr, "bad arguments\n");
		return 2;
	}
	appends = (total_mb << 20) / ((uint64_t)event_bytes * per_append) /
			  writers +
		  1;
	t0 = now_s();
	for (unsigned k = 0; k < writers; k++) {
		memset(&w[k], 0, sizeof w[k]);
		w[k].seeds = argv[1];
		w[k].index = k;
		w[k].appends = appends;
		w[k].event_bytes = event_bytes;
		w[k].events_per_append = per_append;
		if (pthread_create(&w[k].thread, NULL, writer_main, &w[k]) !=
		    0) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
	}
	for (unsigned k = 0; k < writers; k++) {
		pthread_join(w[k].thread, NULL);
		if (w[k].failed != 0)
			status = 1;
	}
	t = now_s() - t0;
	{
		double mb = (double)appends * writers * event_bytes *
			    per_append / 1048576.0;

		printf("loaded %.0f MB in %.1f s: %.1f MB/s (%u writers, "
		       "%u x %u bytes per append)\n",
		       mb, t, mb / t, writers, per_append, event_bytes);
	}
	return status;
}
