/* node/transfer.c: state transfer in bounded memory, cairnd's side (see
 * transfer.h and docs/state-transfer.md). Two halves:
 *
 * - at run time, transfer_on_state_needed (consensus's on_state_needed
 *   hook) writes the marker DATA/transfer (the lowest Raft index the copy
 *   must hold, the peers' client addresses) durably and stops the node;
 *   main() then re-executes cairnd;
 * - at start-up, transfer_startup runs before the store is opened. With a
 *   marker it fetches a peer's store into DATA/store.incoming through
 *   libcairn's cairn_fetch_state (resumable: immutable files already
 *   there are kept), on a worker thread, trying followers first, then the
 *   leader, forever with backoff; the main thread waits for SIGTERM or
 *   SIGINT and libmicrohttpd answers /health (200, progress) and /ready
 *   (503) on its own thread. The copy is verified (store_open, applied
 *   index, CAIRN-COPY) and swapped in:
 *
 *     rename store -> store.old, rename store.incoming -> store,
 *     fsync DATA, remove store.old, remove the marker, fsync DATA.
 *
 *   Every crash point leaves a state the next start-up finishes (the
 *   table is in docs/state-transfer.md and in finish_swap below).
 *
 * Used by main.c only. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cairn.h"
#include "log.h"
#include "node.h"
#include "transfer.h"

/* File names inside the data directory. */
#define TRANSFER_MARKER        "transfer"
#define TRANSFER_MARKER_TMP    "transfer.tmp"
#define TRANSFER_STORE         "store"
#define TRANSFER_STORE_OLD     "store.old"
#define TRANSFER_INCOMING      "store.incoming"
#define TRANSFER_COPY_MANIFEST "CAIRN-COPY"

/* First line of the marker (format 1). */
#define TRANSFER_MARKER_MAGIC "cairn-transfer 1"

/* The marker is small: a header and one line per member. */
#define TRANSFER_MARKER_BYTES_MAX 16384

/* Backoff between rounds over every peer. */
#define TRANSFER_BACKOFF_MIN_MS 250
#define TRANSFER_BACKOFF_MAX_MS 5000

/* Deadline of the status call that tells a leader from a follower. */
#define TRANSFER_STATUS_DEADLINE_MS 2000

/* How often the main thread looks at the worker while it waits for a
 * signal. */
#define TRANSFER_POLL_MS 200

/* Bytes of a verification failure's reason. */
#define TRANSFER_WHY_MAX 512

/* The CAIRN-COPY file is small; more than this is not ours. */
#define TRANSFER_COPY_MANIFEST_MAX (1u << 20)

struct transfer_peer {
	uint64_t id;                                /* member id */
	char client_address[CONSENSUS_ADDRESS_MAX]; /* host:port */
};

/* What DATA/transfer says. */
struct transfer_marker {
	uint64_t min_applied_index; /* the copy must hold at least this */
	unsigned n_peers;           /* in peers */
	struct transfer_peer peers[CONSENSUS_MEMBERS_MAX];
};

/* The transfer phase, shared by the main thread, the worker and the HTTP
 * thread. */
struct transfer_run {
	const struct node_config *cfg; /* borrowed */
	struct transfer_marker marker; /* from DATA/transfer */
	char incoming[PATH_MAX];       /* DATA/store.incoming */
	_Atomic uint64_t bytes_done;   /* progress of the current try */
	_Atomic uint64_t bytes_total;  /* 0 until a listing arrived */
	_Atomic uint32_t files_done;   /* progress of the current try */
	_Atomic uint32_t files_total;  /* in the listing */
	_Atomic uint64_t peer_id;      /* the peer being tried, 0: none */
	_Atomic unsigned attempts;     /* tries so far */
	_Atomic bool stop;             /* a signal came: give up */
	_Atomic bool done;             /* the worker has finished */
	bool ok;                       /* verified copy in incoming */
	uint64_t applied_index;        /* of the verified copy */
	uint64_t started_ms;           /* monotonic, at the phase start */
};

/* Run-time half. */
static bool restart_requested;  /* the hook ran */
static bool stop_timer_started; /* stop_timer is initialized */
static uv_timer_t stop_timer;   /* defers node_stop out of raft's callback */

/* ------------------------------------------------------------------------
 * Small file-system helpers
 * ------------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Joins @dir and @name into @out (PATH_MAX). Returns 0 or ENAMETOOLONG. */
static int path_join(char *out, const char *dir, const char *name)
{
	int len = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	return len < 0 || len >= PATH_MAX ? ENAMETOOLONG : 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* fsyncs a directory. Returns 0 or an errno value. */
static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rv = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rv = errno;
	close(fd);
	return rv;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		return rmdir(path) != 0 ? errno : 0;
	return unlink(path) != 0 ? errno : 0;
}

/* Removes @path and everything under it (absent: fine). Returns 0 or an
 * errno value. */
static int rm_rf(const char *path)
{
	int rv;

	if (!exists(path))
		return 0;
	rv = nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (rv < 0)
		return errno;
	return rv;
}

/* Reads a whole small file into a NUL-terminated malloc'd buffer (owned by
 * the caller). Returns 0 or an errno value (EFBIG when over @max). */
static int read_small(const char *path, size_t max, char **out)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (f == NULL)
		return errno;
	buf = malloc(max + 1);
	if (buf == NULL) {
		fclose(f);
		return ENOMEM;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		int rv = ferror(f) ? EIO : EFBIG;

		fclose(f);
		free(buf);
		return rv;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	return 0;
}

/* ------------------------------------------------------------------------
 * The marker
 * ------------------------------------------------------------------------ */

/* Writes @m to DATA/transfer: a temporary name, fsync, rename, fsync of
 * DATA. Returns 0 or an errno value. */
static int marker_write(const char *data_dir, const struct transfer_marker *m)
{
	char tmp[PATH_MAX];
	char path[PATH_MAX];
	FILE *f;
	int rv;

	if (path_join(tmp, data_dir, TRANSFER_MARKER_TMP) != 0 ||
	    path_join(path, data_dir, TRANSFER_MARKER) != 0)
		return ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (f == NULL)
		return errno;
	fprintf(f, "%s\nmin_applied_index %" PRIu64 "\n", TRANSFER_MARKER_MAGIC,
		m->min_applied_index);
	for (unsigned k = 0; k < m->n_peers; k++)
		fprintf(f, "peer %" PRIu64 " %s\n", m->peers[k].id,
			m->peers[k].client_address);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		rv = errno;
		fclose(f);
		unlink(tmp);
		return rv;
	}
	if (fclose(f) != 0) {
		rv = errno;
		unlink(tmp);
		return rv;
	}
	if (rename(tmp, path) != 0) {
		rv = errno;
		unlink(tmp);
		return rv;
	}
	return fsync_dir(data_dir);
}

/* Parses DATA/transfer. Returns 0, or -1 with @why (a static string). */
static int marker_read(const char *path, struct transfer_marker *m,
		       const char **why)
{
	char *buf;
	char *line;
	char *save = NULL;
	bool have_min = false;
	int rv;

	memset(m, 0, sizeof *m);
	rv = read_small(path, TRANSFER_MARKER_BYTES_MAX, &buf);
	if (rv != 0) {
		*why = strerror(rv);
		return -1;
	}
	line = strtok_r(buf, "\n", &save);
	if (line == NULL || strcmp(line, TRANSFER_MARKER_MAGIC) != 0) {
		*why = "not a transfer marker of format 1";
		free(buf);
		return -1;
	}
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		struct transfer_peer *p;
		unsigned long long id;
		char address[CONSENSUS_ADDRESS_MAX];

		if (sscanf(line, "min_applied_index %llu", &id) == 1) {
			m->min_applied_index = id;
			have_min = true;
			continue;
		}
		if (sscanf(line, "peer %llu %255s", &id, address) != 2 ||
		    id == 0) {
			*why = "malformed line";
			free(buf);
			return -1;
		}
		if (m->n_peers == CONSENSUS_MEMBERS_MAX) {
			*why = "too many peers";
			free(buf);
			return -1;
		}
		p = &m->peers[m->n_peers++];
		p->id = id;
		snprintf(p->client_address, sizeof p->client_address, "%s",
			 address);
	}
	free(buf);
	if (!have_min) {
		*why = "no min_applied_index line";
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Run time: the hook
 * ------------------------------------------------------------------------ */

static void on_stop_timer(uv_timer_t *t)
{
	struct node *n = t->data;

	uv_close((uv_handle_t *)t, NULL);
	log_info("shutting_down", "reason=state_transfer");
	node_stop(n);
}

void transfer_on_state_needed(void *arg, uint64_t min_applied_index,
			      const struct consensus_member *members,
			      unsigned n_members)
{
	struct node *n = arg;
	struct transfer_marker m;
	int rv;

	memset(&m, 0, sizeof m);
	m.min_applied_index = min_applied_index;
	for (unsigned k = 0; k < n_members && k < CONSENSUS_MEMBERS_MAX; k++) {
		if (members[k].id == n->cfg->id ||
		    members[k].client_address[0] == '\0' ||
		    strchr(members[k].client_address, ' ') != NULL)
			continue;
		m.peers[m.n_peers].id = members[k].id;
		snprintf(m.peers[m.n_peers].client_address,
			 sizeof m.peers[m.n_peers].client_address, "%s",
			 members[k].client_address);
		m.n_peers++;
	}
	rv = marker_write(n->cfg->data_dir, &m);
	if (rv != 0) {
		log_error("state_transfer_marker_failed",
			  "data_dir=\"%s\" error=\"%s\"", n->cfg->data_dir,
			  strerror(rv));
		exit(EXIT_FAILURE);
	}
	log_warn("state_transfer_needed",
		 "min_applied_index=%" PRIu64 " peers=%u action=restart",
		 min_applied_index, m.n_peers);
	/* A node already stopping exits as asked; its next start finds the
	 * marker. */
	if (n->cons_open && n->state != NODE_RUNNING)
		return;
	restart_requested = true;
	/* Inside consensus_start (cons_open not yet set) main.c stops at
	 * once; otherwise this runs inside a raft callback, where the
	 * consensus must not be closed: the next loop iteration does it. */
	if (!n->cons_open || stop_timer_started)
		return;
	uv_timer_init(n->loop, &stop_timer);
	stop_timer.data = n;
	uv_timer_start(&stop_timer, on_stop_timer, 0, 0);
	stop_timer_started = true;
}

bool transfer_restart_requested(void)
{
	return restart_requested;
}

void transfer_reexec(char *const argv[])
{
	log_info("restarting", "reason=state_transfer");
	execv("/proc/self/exe", argv);
	log_error("restart_failed", "error=\"%s\"", strerror(errno));
}

/* ------------------------------------------------------------------------
 * Start-up: verifying a copy
 * ------------------------------------------------------------------------ */

/* Finds "applied_index" in the CAIRN-COPY text and reads the number after
 * it. Returns 0 or -1 when absent. */
static int copy_manifest_applied(const char *text, uint64_t *out)
{
	const char *p = strstr(text, "applied_index");

	if (p == NULL)
		return -1;
	p += strlen("applied_index");
	while (*p == ' ' || *p == '=' || *p == ':' || *p == '\t' || *p == '"')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	*out = strtoull(p, NULL, 10);
	return 0;
}

/* Verifies the copy in @dir: CAIRN-COPY is there (the copy is complete)
 * and names an applied index >= @min; the store opens read-write and its
 * own applied index is the one CAIRN-COPY names. Returns 0, or -1 with
 * @why (TRANSFER_WHY_MAX bytes). */
static int verify_copy(const char *dir, uint64_t min, uint64_t *applied,
		       char *why)
{
	char path[PATH_MAX];
	struct store *s;
	uint64_t named = 0;
	uint64_t have;
	char *text;
	int rv;

	if (path_join(path, dir, TRANSFER_COPY_MANIFEST) != 0) {
		snprintf(why, TRANSFER_WHY_MAX, "path too long");
		return -1;
	}
	rv = read_small(path, TRANSFER_COPY_MANIFEST_MAX, &text);
	if (rv != 0) {
		snprintf(why, TRANSFER_WHY_MAX, "%s: %s",
			 TRANSFER_COPY_MANIFEST, strerror(rv));
		return -1;
	}
	rv = copy_manifest_applied(text, &named);
	free(text);
	if (rv != 0 || named < min) {
		snprintf(why, TRANSFER_WHY_MAX,
			 "%s names applied index %" PRIu64 ", below %" PRIu64,
			 TRANSFER_COPY_MANIFEST, named, min);
		return -1;
	}
	/* The copy carries its source's RocksDB identity; this store is a
	 * store of its own from now on (it will flush and compact its own
	 * files under names the source may reuse for other contents), so it
	 * gets a new one: RocksDB makes it on open when the file is missing.
	 * A resumed copy is matched by the identity recorded in
	 * CAIRN-COPY, never by this file. */
	if (path_join(path, dir, "IDENTITY") != 0 ||
	    (unlink(path) != 0 && errno != ENOENT)) {
		snprintf(why, TRANSFER_WHY_MAX, "remove IDENTITY: %s",
			 strerror(errno));
		return -1;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		snprintf(why, TRANSFER_WHY_MAX, "out of memory");
		return -1;
	}
	rv = store_open(s, dir, NULL);
	if (rv != 0) {
		snprintf(why, TRANSFER_WHY_MAX, "store_open: %s", s->errmsg);
		free(s);
		return -1;
	}
	have = store_applied_index(s);
	store_close(s);
	free(s);
	if (have < min || have != named) {
		snprintf(why, TRANSFER_WHY_MAX,
			 "the store holds applied index %" PRIu64
			 " (CAIRN-COPY: %" PRIu64 ", needed: %" PRIu64 ")",
			 have, named, min);
		return -1;
	}
	*applied = have;
	return 0;
}

/* The applied index of the store in @dir, opened and closed again, or -1
 * when it does not open. */
static int store_dir_applied(const char *dir, uint64_t *out)
{
	struct store *s = calloc(1, sizeof *s);
	int rv;

	if (s == NULL)
		return -1;
	rv = store_open(s, dir, NULL);
	if (rv != 0) {
		log_warn("state_transfer_store_unreadable",
			 "path=\"%s\" error=\"%s\"", dir, s->errmsg);
		free(s);
		return -1;
	}
	*out = store_applied_index(s);
	store_close(s);
	free(s);
	return 0;
}

/* ------------------------------------------------------------------------
 * Start-up: the worker that fetches
 * ------------------------------------------------------------------------ */

static void on_progress(void *arg, const struct cairn_fetch_progress *p)
{
	struct transfer_run *t = arg;

	atomic_store(&t->bytes_done, p->bytes_done);
	atomic_store(&t->bytes_total, p->bytes_total);
	atomic_store(&t->files_done, p->files_done);
	atomic_store(&t->files_total, p->files_total);
}

/* Orders the marker's peers into @order: followers first, then the leader,
 * then the ones that did not answer (they may be back by the time they
 * are tried). Returns the count. */
static unsigned order_peers(struct transfer_run *t, unsigned *order)
{
	const struct transfer_marker *m = &t->marker;
	int rank[CONSENSUS_MEMBERS_MAX];
	unsigned n = 0;

	for (unsigned k = 0; k < m->n_peers; k++) {
		struct cairn_options o;
		struct cairn_status st;
		struct cairn_error err;
		cairn_client *c = NULL;

		rank[k] = 2;
		if (m->peers[k].id == t->cfg->id)
			continue;
		memset(&o, 0, sizeof o);
		o.single_node = true;
		o.deadline_ms = TRANSFER_STATUS_DEADLINE_MS;
		o.connect_timeout_ms = TRANSFER_STATUS_DEADLINE_MS;
		if (cairn_open(m->peers[k].client_address, &o, &c, &err) == 0) {
			if (cairn_status(c, m->peers[k].client_address, &st,
					 &err) == 0)
				rank[k] = st.role == CAIRN_ROLE_LEADER ? 1 : 0;
			cairn_close(c);
		}
	}
	for (int r = 0; r <= 2; r++)
		for (unsigned k = 0; k < m->n_peers; k++)
			if (rank[k] == r && m->peers[k].id != t->cfg->id)
				order[n++] = k;
	return n;
}

/* One try from peer @p. Returns 0 with a verified copy in t->incoming. */
static int fetch_from(struct transfer_run *t, const struct transfer_peer *p)
{
	struct cairn_fetch_options o;
	struct cairn_fetch_result r;
	struct cairn_options co;
	struct cairn_error err;
	cairn_client *c = NULL;
	uint64_t start = now_ms();
	uint64_t applied = 0;
	char why[TRANSFER_WHY_MAX];
	int rv;

	atomic_store(&t->peer_id, p->id);
	atomic_fetch_add(&t->attempts, 1);
	log_info("state_transfer_try",
		 "attempt=%u peer=%" PRIu64
		 " address=%s min_applied_index=%" PRIu64,
		 atomic_load(&t->attempts), p->id, p->client_address,
		 t->marker.min_applied_index);
	memset(&co, 0, sizeof co);
	co.single_node = true;
	rv = cairn_open(p->client_address, &co, &c, &err);
	if (rv != 0) {
		log_warn("state_transfer_try_failed",
			 "peer=%" PRIu64 " error=\"%s\"", p->id, err.message);
		return -1;
	}
	memset(&o, 0, sizeof o);
	o.min_applied_index = t->marker.min_applied_index;
	o.resume = 1;
	o.progress = on_progress;
	o.progress_arg = t;
	memset(&r, 0, sizeof r);
	rv = cairn_fetch_state(c, p->client_address, t->incoming, &o, &r, &err);
	cairn_close(c);
	if (rv != 0) {
		log_warn("state_transfer_try_failed",
			 "peer=%" PRIu64 " code=%d error=\"%s\"", p->id, rv,
			 err.message);
		return -1;
	}
	if (verify_copy(t->incoming, t->marker.min_applied_index, &applied,
			why) != 0) {
		log_warn("state_transfer_verify_failed",
			 "peer=%" PRIu64 " reason=\"%s\"", p->id, why);
		return -1;
	}
	{
		uint64_t ms = now_ms() - start;

		log_info("state_transfer_fetched",
			 "peer=%" PRIu64 " applied_index=%" PRIu64
			 " last_position=%" PRIu64 " bytes=%" PRIu64
			 " bytes_fetched=%" PRIu64 " ms=%" PRIu64
			 " mb_per_s=%.1f",
			 r.node_id, applied, r.last_position, r.bytes,
			 r.bytes_fetched, ms,
			 ms > 0 ? (double)r.bytes_fetched / 1048576.0 /
					  ((double)ms / 1000.0)
				: 0.0);
	}
	t->applied_index = applied;
	return 0;
}

static void *worker_main(void *arg)
{
	struct transfer_run *t = arg;
	unsigned backoff = TRANSFER_BACKOFF_MIN_MS;
	char why[TRANSFER_WHY_MAX];

	/* A copy completed before a crash needs no second fetch. */
	if (exists(t->incoming) &&
	    verify_copy(t->incoming, t->marker.min_applied_index,
			&t->applied_index, why) == 0) {
		log_info("state_transfer_copy_complete",
			 "applied_index=%" PRIu64, t->applied_index);
		t->ok = true;
		atomic_store(&t->done, true);
		return NULL;
	}
	while (!atomic_load(&t->stop)) {
		unsigned order[CONSENSUS_MEMBERS_MAX];
		unsigned n = order_peers(t, order);

		for (unsigned k = 0; k < n && !atomic_load(&t->stop); k++) {
			if (fetch_from(t, &t->marker.peers[order[k]]) == 0) {
				t->ok = true;
				atomic_store(&t->done, true);
				return NULL;
			}
		}
		log_info("state_transfer_backoff", "ms=%u", backoff);
		for (unsigned waited = 0;
		     waited < backoff && !atomic_load(&t->stop); waited += 50)
			sleep_ms(50);
		backoff = backoff * 2 > TRANSFER_BACKOFF_MAX_MS
				  ? TRANSFER_BACKOFF_MAX_MS
				  : backoff * 2;
	}
	atomic_store(&t->done, true);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Start-up: HTTP while transferring
 * ------------------------------------------------------------------------ */

static enum MHD_Result http_reply(struct MHD_Connection *conn, unsigned status,
				  const char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
					       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *conn,
			       const char *url, const char *method,
			       const char *version, const char *upload_data,
			       size_t *upload_data_size, void **req_cls)
{
	struct transfer_run *t = cls;
	char body[512];

	(void)method;
	(void)version;
	(void)upload_data;
	/* A body is read and dropped; the answer comes once it is in. */
	if (*req_cls == NULL) {
		*req_cls = t;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/health") == 0) {
		snprintf(
			body, sizeof body,
			"{\"status\":\"ok\",\"state\":\"transferring\","
			"\"node_id\":%" PRIu64 ",\"min_applied_index\":%" PRIu64
			",\"peer_id\":%" PRIu64
			",\"attempts\":%u,"
			"\"bytes_done\":%" PRIu64 ",\"bytes_total\":%" PRIu64
			",\"files_done\":%u,\"files_total\":%u,"
			"\"elapsed_ms\":%" PRIu64 "}\n",
			t->cfg->id, t->marker.min_applied_index,
			atomic_load(&t->peer_id), atomic_load(&t->attempts),
			atomic_load(&t->bytes_done),
			atomic_load(&t->bytes_total),
			atomic_load(&t->files_done),
			atomic_load(&t->files_total), now_ms() - t->started_ms);
		return http_reply(conn, MHD_HTTP_OK, body);
	}
	if (strcmp(url, "/ready") == 0)
		return http_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "{\"ready\":false,\"state\":\"transferring\","
				  "\"reason\":\"a state transfer is in "
				  "progress\"}\n");
	return http_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			  "{\"error\":{\"code\":\"state_transfer\","
			  "\"message\":\"a state transfer is in progress: this "
			  "node serves nothing until its store is "
			  "consistent\"}}\n");
}

/* Listens on host:port (SO_REUSEADDR). Returns the socket or -1. */
static int http_listen(const char *address)
{
	char host[CONSENSUS_ADDRESS_MAX];
	const char *colon = strrchr(address, ':');
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	int one = 1;
	int fd;

	if (colon == NULL || (size_t)(colon - address) >= sizeof host)
		return -1;
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(host[0] != '\0' ? host : NULL, colon + 1, &hints,
			&res) != 0 ||
	    res == NULL)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC,
		    res->ai_protocol);
	if (fd >= 0 &&
	    (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	     bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	     listen(fd, 64) != 0)) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static struct MHD_Daemon *http_begin(struct transfer_run *t)
{
	const char *address = t->cfg->http_address;
	struct MHD_Daemon *d;
	int fd;

	if (address == NULL || address[0] == '\0')
		return NULL;
	fd = http_listen(address);
	if (fd < 0) {
		log_warn("state_transfer_http_failed",
			 "http_address=%s error=\"cannot listen\"", address);
		return NULL;
	}
	d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
		NULL, on_http, t, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT,
		30u, MHD_OPTION_END);
	if (d == NULL) {
		log_warn("state_transfer_http_failed",
			 "http_address=%s error=\"libmicrohttpd would not "
			 "start\"",
			 address);
		close(fd);
		return NULL;
	}
	log_info("state_transfer_http_listening", "http_address=%s", address);
	return d;
}

/* ------------------------------------------------------------------------
 * Start-up: the swap and its crash states
 * ------------------------------------------------------------------------ */

/* Paths of one data directory. */
struct transfer_paths {
	char data[PATH_MAX];
	char marker[PATH_MAX];
	char marker_tmp[PATH_MAX];
	char store[PATH_MAX];
	char old[PATH_MAX];
	char incoming[PATH_MAX];
};

static int paths_init(struct transfer_paths *p, const char *data_dir)
{
	if (snprintf(p->data, sizeof p->data, "%s", data_dir) >=
		    (int)sizeof p->data ||
	    path_join(p->marker, data_dir, TRANSFER_MARKER) != 0 ||
	    path_join(p->marker_tmp, data_dir, TRANSFER_MARKER_TMP) != 0 ||
	    path_join(p->store, data_dir, TRANSFER_STORE) != 0 ||
	    path_join(p->old, data_dir, TRANSFER_STORE_OLD) != 0 ||
	    path_join(p->incoming, data_dir, TRANSFER_INCOMING) != 0)
		return -1;
	return 0;
}

/* Logs a failed file-system step; returns 1 (the exit status). */
static int fs_failed(const char *step, const char *path, int err)
{
	log_error("state_transfer_failed", "step=%s path=\"%s\" error=\"%s\"",
		  step, path, strerror(err));
	return EXIT_FAILURE;
}

/* Ends the transfer: removes the marker, fsyncs DATA. */
static int finish(const struct transfer_paths *p)
{
	int rv;

	if (unlink(p->marker) != 0 && errno != ENOENT)
		return fs_failed("remove_marker", p->marker, errno);
	rv = fsync_dir(p->data);
	if (rv != 0)
		return fs_failed("fsync", p->data, rv);
	log_info("state_transfer_done", NULL);
	return TRANSFER_CONTINUE;
}

/* The states a crash can leave with the marker present (S store, O
 * store.old, I store.incoming), and what happens:
 *   S, I partial or absent     fetch again (resumed), then swap;
 *   S, I complete              verify, swap (no fetch);
 *   O, I, no S                 (crash between the renames) I is verified
 *                              already: rename I -> S, then as below;
 *   O, S, no I                 (after the renames) remove O, the marker;
 *   S at or past the index, no I, no O
 *                              (after removing O) remove the marker.
 * Returns TRANSFER_CONTINUE when the transfer is over, 0 when it must
 * (still) fetch, or an exit status. */
static int finish_swap(const struct transfer_paths *p, uint64_t min)
{
	uint64_t applied = 0;
	int rv;

	if (!exists(p->store) && exists(p->old)) {
		if (exists(p->incoming)) {
			log_info("state_transfer_swap_resumed",
				 "step=rename_incoming");
			if (rename(p->incoming, p->store) != 0)
				return fs_failed("rename", p->incoming, errno);
		} else {
			/* Not a state the swap makes: keep the old store
			 * and fetch again. */
			log_warn("state_transfer_swap_resumed",
				 "step=restore_old");
			if (rename(p->old, p->store) != 0)
				return fs_failed("rename", p->old, errno);
		}
		rv = fsync_dir(p->data);
		if (rv != 0)
			return fs_failed("fsync", p->data, rv);
	}
	if (exists(p->old)) {
		log_info("state_transfer_swap_resumed", "step=remove_old");
		rv = rm_rf(p->old);
		if (rv != 0)
			return fs_failed("remove", p->old, rv);
		rv = fsync_dir(p->data);
		if (rv != 0)
			return fs_failed("fsync", p->data, rv);
	}
	if (!exists(p->incoming) && exists(p->store) &&
	    store_dir_applied(p->store, &applied) == 0 && applied >= min) {
		log_info("state_transfer_not_needed",
			 "store_applied_index=%" PRIu64
			 " min_applied_index=%" PRIu64,
			 applied, min);
		return finish(p);
	}
	return 0;
}

/* Swaps the verified copy in. */
static int swap(const struct transfer_paths *p)
{
	int rv;

	if (exists(p->store) && rename(p->store, p->old) != 0)
		return fs_failed("rename", p->store, errno);
	if (rename(p->incoming, p->store) != 0)
		return fs_failed("rename", p->incoming, errno);
	rv = fsync_dir(p->data);
	if (rv != 0)
		return fs_failed("fsync", p->data, rv);
	rv = rm_rf(p->old);
	if (rv != 0)
		return fs_failed("remove", p->old, rv);
	return finish(p);
}

/* Outside a transfer: leftovers no state of the swap leaves are tidied. */
static int tidy(const struct transfer_paths *p)
{
	int rv;

	if (exists(p->old)) {
		if (exists(p->store)) {
			rv = rm_rf(p->old);
		} else {
			rv = rename(p->old, p->store) != 0 ? errno : 0;
		}
		if (rv != 0)
			return fs_failed("tidy", p->old, rv);
	}
	if (exists(p->incoming)) {
		rv = rm_rf(p->incoming);
		if (rv != 0)
			return fs_failed("tidy", p->incoming, rv);
	}
	return TRANSFER_CONTINUE;
}

int transfer_startup(const struct node_config *cfg)
{
	static struct transfer_run t; /* the HTTP thread points at it */
	struct transfer_paths p;
	struct MHD_Daemon *d;
	const char *why = NULL;
	sigset_t set;
	sigset_t old_set;
	pthread_t worker;
	int rv;

	if (paths_init(&p, cfg->data_dir) != 0) {
		log_error("state_transfer_failed", "error=\"path too long\"");
		return EXIT_FAILURE;
	}
	if (unlink(p.marker_tmp) != 0 && errno != ENOENT)
		return fs_failed("remove", p.marker_tmp, errno);
	if (!exists(p.marker))
		return tidy(&p);

	memset(&t, 0, sizeof t);
	t.cfg = cfg;
	t.started_ms = now_ms();
	snprintf(t.incoming, sizeof t.incoming, "%s", p.incoming);
	if (marker_read(p.marker, &t.marker, &why) != 0) {
		log_error("state_transfer_failed", "path=\"%s\" error=\"%s\"",
			  p.marker, why);
		return EXIT_FAILURE;
	}
	log_info("state_transfer_start",
		 "min_applied_index=%" PRIu64 " peers=%u",
		 t.marker.min_applied_index, t.marker.n_peers);
	rv = finish_swap(&p, t.marker.min_applied_index);
	if (rv != 0)
		return rv;

	/* Signals wait for the main thread; the threads started below
	 * inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &old_set);
	d = http_begin(&t);
	rv = pthread_create(&worker, NULL, worker_main, &t);
	if (rv != 0) {
		if (d != NULL)
			MHD_stop_daemon(d);
		pthread_sigmask(SIG_SETMASK, &old_set, NULL);
		log_error("state_transfer_failed", "step=thread error=\"%s\"",
			  strerror(rv));
		return EXIT_FAILURE;
	}
	while (!atomic_load(&t.done)) {
		struct timespec ts = { 0, TRANSFER_POLL_MS * 1000000L };
		int sig = sigtimedwait(&set, NULL, &ts);

		if (sig != SIGTERM && sig != SIGINT)
			continue;
		/* The fetch cannot be interrupted mid-call; what it left
		 * in store.incoming is resumed at the next start (the
		 * marker stays), so the process ends here. */
		log_info("shutting_down",
			 "signal=%s phase=state_transfer bytes_done=%" PRIu64
			 " bytes_total=%" PRIu64,
			 sig == SIGTERM ? "SIGTERM" : "SIGINT",
			 atomic_load(&t.bytes_done),
			 atomic_load(&t.bytes_total));
		atomic_store(&t.stop, true);
		if (d != NULL)
			MHD_stop_daemon(d);
		log_info("stopped", "exit_status=0");
		_exit(EXIT_SUCCESS);
	}
	pthread_join(worker, NULL);
	if (d != NULL)
		MHD_stop_daemon(d);
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	if (!t.ok)
		return EXIT_FAILURE;
	log_info("state_transfer_swap", "applied_index=%" PRIu64,
		 t.applied_index);
	return swap(&p);
}
