/* node/state_send.c: the sending side of a store copy (docs/protocol.md,
 * "Copying a node's store"; docs/backup.md). A receiver (libcairn's
 * cairn_fetch_state, used by `cairn backup` and by a node that fetches its
 * state) sends STATE_BEGIN; the node takes a RocksDB checkpoint of its
 * store in DATA/copies/<session> and answers with its listing; STATE_CHUNK
 * reads up to 1 MiB of one listed file on libuv's thread pool and answers
 * it with its CRC-32; STATE_END deletes the checkpoint. handlers.c
 * dispatches the three requests here; main.c calls state_send_init() once
 * the store is open and state_send_close() when consensus has closed.
 *
 * A session's states:
 *
 *   (STATE_BEGIN) BARRIER --barrier ok--> CHECKPOINT (leader flag only)
 *                 CHECKPOINT --work done--> LIVE (listing sent)
 *   LIVE --STATE_END, 60 s without a request, shutdown--> DEAD
 *   DEAD --last reference gone--> freed (its directory removed)
 *
 * Memory is bounded whatever the store's size: at most
 * STATE_SEND_SESSIONS_MAX sessions, STATE_SEND_READS_MAX reads of at most
 * WIRE_STATE_CHUNK_BYTES_MAX in flight over the node, and a connection gets
 * no new read while its reads in flight plus the chunk replies it has not
 * yet written reach STATE_SEND_CONN_CHUNKS_MAX; waiting chunk requests are
 * small, and at most STATE_SEND_QUEUE_MAX of them wait. The queue is
 * pumped after every loop iteration while it holds requests (a uv_check
 * handle), so a connection resumes as soon as its socket took its
 * replies. File names are never taken from a request: a chunk names a file
 * by its index in the session's own listing. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "node.h"

/* Copy sessions at once: each pins a checkpoint (hard links, so old SST
 * files stay on disk while it lives) and a few reads. Past it STATE_BEGIN
 * is answered WIRE_EBUSY. */
#define STATE_SEND_SESSIONS_MAX 2

/* A session nobody asked anything of for this long is dropped with its
 * checkpoint: a receiver that vanished must not pin disk space. */
#define STATE_SEND_IDLE_MS 60000

/* How often idle sessions are looked for. */
#define STATE_SEND_SWEEP_MS 1000

/* Chunk reads in flight over the node, each with a buffer of at most
 * WIRE_STATE_CHUNK_BYTES_MAX: 8 MiB at most. */
#define STATE_SEND_READS_MAX 8

/* Reads in flight plus unsent chunk replies (in MiB, rounded up) one
 * connection may have before its next read waits: a receiver that does
 * not read its socket costs the node at most this many chunks. */
#define STATE_SEND_CONN_CHUNKS_MAX 4

/* Chunk requests waiting for a read slot, over the node; past it a chunk
 * is answered WIRE_EBUSY (a receiver keeps a few in flight). */
#define STATE_SEND_QUEUE_MAX 256

enum session_state {
	SESSION_BARRIER = 1,    /* waiting for the leader's barrier */
	SESSION_CHECKPOINT = 2, /* checkpoint being made (thread pool) */
	SESSION_LIVE = 3,       /* listing sent; serves chunks */
	SESSION_DEAD = 4,       /* ended; freed with its last reference */
};

struct session {
	struct state_send *ss;            /* borrowed: the owner */
	enum session_state state;         /* see the file comment */
	uint64_t id;                      /* random, not 0 */
	char dir[PATH_MAX];               /* DATA/copies/<id> */
	struct store_copy_info info;      /* owned once LIVE */
	int *fds;                         /* owned: per file, -1 if not open */
	unsigned refs;                    /* chunk requests holding it, and
					   * the list while not DEAD */
	uint64_t last_used_ms;            /* uv_now of the last request */
	int work_rv;                      /* CHECKPOINT: the work's result */
	char work_err[STORE_ERRMSG_SIZE]; /* CHECKPOINT: its message */
	struct node_conn *begin_conn;     /* BARRIER, CHECKPOINT: referenced
					   * (conn_request_begin) */
	uint64_t begin_request_id;        /* of the STATE_BEGIN */
	uint64_t min_applied_index;       /* asked by the STATE_BEGIN */
	struct consensus_barrier barrier; /* BARRIER */
	uv_work_t work;                   /* CHECKPOINT */
	struct session *next;             /* in ss->sessions */
};

/* A chunk request, from intake to its reply. */
struct chunk {
	struct node_conn *conn;  /* referenced (conn_request_begin) */
	uint64_t request_id;     /* of the STATE_CHUNK */
	struct session *session; /* referenced (refs) */
	uint32_t file;           /* index in the listing, checked */
	uint64_t offset;         /* first byte */
	uint32_t length;         /* bytes to send, clamped to the file */
	uint32_t done;           /* bytes read so far */
	uint8_t *buf;            /* owned while reading */
	size_t bytes;            /* counted against the connection */
	bool reading;            /* a read slot is taken */
	uv_fs_t fs;              /* the open or read in flight */
	struct chunk *next;      /* in ss->queue */
};

struct state_send {
	struct node *node;              /* borrowed */
	char copies_dir[PATH_MAX - 64]; /* DATA/copies */
	char store_dir[PATH_MAX];       /* DATA/store: its IDENTITY */
	struct session *sessions;       /* owned: not DEAD (list) */
	unsigned n_sessions;            /* in sessions */
	struct chunk *queue;            /* owned: waiting for a read (FIFO) */
	struct chunk *queue_tail;       /* borrowed: last of queue */
	unsigned n_queued;              /* in queue */
	unsigned n_reads;               /* reads in flight */
	struct chunk *reading[STATE_SEND_READS_MAX]; /* borrowed: the chunks
						      * of those reads */
	unsigned n_work;                             /* checkpoints in flight */
	uv_check_t pump;  /* runs the queue after each iteration */
	uv_timer_t sweep; /* drops idle sessions */
	int handles_open; /* pump and sweep not yet closed */
	bool closing;     /* state_send_close ran */
};

static void ss_maybe_free(struct state_send *ss);

/* ------------------------------------------------------------------------
 * Directories
 * ------------------------------------------------------------------------ */

/* Removes the files of @dir and @dir itself (a checkpoint is flat). */
static void remove_flat_dir(const char *dir)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (unlink(path) != 0 && errno != ENOENT)
			log_warn("copy_remove_failed",
				 "path=\"%s\" error=\"%s\"", path,
				 strerror(errno));
	}
	closedir(d);
	if (rmdir(dir) != 0 && errno != ENOENT)
		log_warn("copy_remove_failed", "path=\"%s\" error=\"%s\"", dir,
			 strerror(errno));
}

/* Removes every session directory left in DATA/copies by an earlier
 * process (a crash or kill leaves them). */
static void remove_stale(const char *copies_dir)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d = opendir(copies_dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", copies_dir, de->d_name);
		log_info("copy_stale_removed", "path=\"%s\"", path);
		remove_flat_dir(path);
	}
	closedir(d);
}

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

static void session_free(struct session *s)
{
	struct state_send *ss = s->ss;
	uint32_t k;

	assert(s->refs == 0);
	if (s->fds != NULL)
		for (k = 0; k < s->info.n_files; k++)
			if (s->fds[k] >= 0)
				close(s->fds[k]);
	free(s->fds);
	store_copy_info_close(&s->info);
	remove_flat_dir(s->dir);
	free(s);
	(void)ss;
}

static void session_unref(struct session *s)
{
	assert(s->refs > 0);
	if (--s->refs == 0)
		session_free(s);
}

/* Takes @s off the list: new requests no longer find it. */
static void session_end(struct session *s, const char *why)
{
	struct state_send *ss = s->ss;
	struct session **p;

	if (s->state == SESSION_DEAD)
		return;
	for (p = &ss->sessions; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	assert(ss->n_sessions > 0);
	ss->n_sessions--;
	s->state = SESSION_DEAD;
	log_info("copy_session_ended", "session=%016" PRIx64 " reason=%s",
		 s->id, why);
	session_unref(s); /* the list's */
}

static struct session *session_find(struct state_send *ss, uint64_t id)
{
	struct session *s;

	for (s = ss->sessions; s != NULL; s = s->next)
		if (s->id == id && s->state == SESSION_LIVE)
			return s;
	return NULL;
}

static struct wire_bytes text_bytes(const char *t)
{
	struct wire_bytes b;

	b.len = (uint32_t)strlen(t);
	b.p = b.len > 0 ? (const uint8_t *)t : NULL;
	return b;
}

/* Ends the STATE_BEGIN of @s with an error: the session goes. */
static void begin_fail(struct session *s, uint32_t code, const char *msg)
{
	struct node_conn *c = s->begin_conn;

	conn_reply_error(c, s->begin_request_id, code, msg);
	s->begin_conn = NULL;
	conn_request_end(c, sizeof *s);
	session_end(s, "refused");
}

static void not_leader(struct session *s)
{
	struct node *n = s->ss->node;
	char address[CONSENSUS_ADDRESS_MAX];
	struct node_conn *c = s->begin_conn;
	struct wire_buf *b;
	struct wire_err e;
	uint64_t id;

	if (!n->cons_open || !consensus_leader(&n->cons, &id, address)) {
		begin_fail(s, WIRE_EUNAVAILABLE, "no leader known");
		return;
	}
	b = conn_out(c);
	if (b != NULL) {
		memset(&e, 0, sizeof e);
		e.code = WIRE_ENOT_LEADER;
		e.leader = text_bytes(address);
		e.message = text_bytes("not the leader");
		if (wire_encode_error(b, s->begin_request_id, &e) != 0)
			log_error("reply_failed", "type=ERROR code=%u",
				  (unsigned)WIRE_ENOT_LEADER);
		conn_flush(c);
	}
	s->begin_conn = NULL;
	conn_request_end(c, sizeof *s);
	session_end(s, "not_leader");
}

/* Runs on the thread pool: RocksDB handles are thread-safe, and the store
 * is not closed while work is in flight (the loop runs until it is
 * done). */
static void checkpoint_work(uv_work_t *w)
{
	struct session *s = CONTAINER_OF(w, struct session, work);
	struct store *st = &s->ss->node->store;

	s->work_rv = store_checkpoint(st, s->dir);
	if (s->work_rv != 0) {
		snprintf(s->work_err, sizeof s->work_err, "%s", st->errmsg);
		return;
	}
	s->work_rv = store_copy_info(s->dir, s->ss->store_dir, &s->info,
				     s->work_err);
}

static void checkpoint_done(uv_work_t *w, int status)
{
	struct session *s = CONTAINER_OF(w, struct session, work);
	struct state_send *ss = s->ss;
	struct wire_state_listing l;
	struct wire_state_file *files = NULL;
	struct node_conn *c = s->begin_conn;
	struct wire_buf *b;
	uint32_t k;
	int rv;

	assert(ss->n_work > 0);
	ss->n_work--;
	if (status != 0 || s->work_rv != 0) {
		log_error("copy_checkpoint_failed",
			  "session=%016" PRIx64 " error=\"%s\"", s->id,
			  status != 0 ? uv_strerror(status) : s->work_err);
		begin_fail(s, WIRE_EINTERNAL, "cannot make a checkpoint");
		if (ss->closing)
			ss_maybe_free(ss);
		return;
	}
	if (ss->closing) {
		begin_fail(s, WIRE_EUNAVAILABLE, "node shutting down");
		ss_maybe_free(ss);
		return;
	}
	s->fds = malloc((s->info.n_files > 0 ? s->info.n_files : 1) *
			sizeof *s->fds);
	if (s->info.n_files > 0)
		files = calloc(s->info.n_files, sizeof *files);
	if (s->fds == NULL || (s->info.n_files > 0 && files == NULL)) {
		free(files);
		begin_fail(s, WIRE_EINTERNAL, "out of memory");
		return;
	}
	for (k = 0; k < s->info.n_files; k++) {
		s->fds[k] = -1;
		files[k].name = text_bytes(s->info.files[k].name);
		files[k].size = s->info.files[k].size;
	}
	memset(&l, 0, sizeof l);
	l.session = s->id;
	l.node_id = ss->node->cfg->id;
	l.identity = text_bytes(s->info.identity);
	l.applied_index = s->info.applied_index;
	l.last_position = s->info.last_position;
	l.n_files = s->info.n_files;
	l.files = files;
	b = conn_out(c);
	rv = 0;
	if (b != NULL) {
		rv = wire_encode_state_listing(b, s->begin_request_id, &l);
		if (rv == 0)
			conn_flush(c);
	}
	free(files);
	if (rv != 0) {
		begin_fail(s,
			   rv == WIRE_ENCODE_TOO_LARGE ? WIRE_ETOO_LARGE
						       : WIRE_EINTERNAL,
			   "cannot encode the listing");
		return;
	}
	if (b == NULL) {
		/* The receiver is gone: nobody will ask for this copy. */
		s->begin_conn = NULL;
		conn_request_end(c, sizeof *s);
		session_end(s, "receiver_gone");
		return;
	}
	s->state = SESSION_LIVE;
	s->begin_conn = NULL;
	s->last_used_ms = uv_now(ss->node->loop);
	conn_request_end(c, sizeof *s);
	log_info("copy_session_started",
		 "session=%016" PRIx64 " files=%u applied_index=%" PRIu64
		 " last_position=%" PRIu64,
		 s->id, s->info.n_files, s->info.applied_index,
		 s->info.last_position);
}

/* The barrier passed (or was not needed): checks the index asked for and
 * makes the checkpoint. */
static void begin_checkpoint(struct session *s)
{
	struct state_send *ss = s->ss;
	struct node *n = ss->node;
	uint64_t applied = store_applied_index(&n->store);
	char msg[128];
	int rv;

	if (applied < s->min_applied_index) {
		snprintf(msg, sizeof msg,
			 "applied index %" PRIu64 " is below %" PRIu64, applied,
			 s->min_applied_index);
		begin_fail(s, WIRE_EBEHIND, msg);
		return;
	}
	if (mkdir(ss->copies_dir, 0755) != 0 && errno != EEXIST) {
		log_error("copy_checkpoint_failed", "path=\"%s\" error=\"%s\"",
			  ss->copies_dir, strerror(errno));
		begin_fail(s, WIRE_EINTERNAL, "cannot make a checkpoint");
		return;
	}
	s->state = SESSION_CHECKPOINT;
	rv = uv_queue_work(n->loop, &s->work, checkpoint_work, checkpoint_done);
	if (rv != 0) {
		begin_fail(s, WIRE_EINTERNAL, uv_strerror(rv));
		return;
	}
	ss->n_work++;
}

static void on_barrier(struct consensus_barrier *b, int status)
{
	struct session *s = b->data;

	assert(s->state == SESSION_BARRIER);
	switch (status) {
	case 0:
		begin_checkpoint(s);
		break;
	case CONSENSUS_ESHUTDOWN:
		begin_fail(s, WIRE_EUNAVAILABLE, "node shutting down");
		break;
	default:
		not_leader(s);
		break;
	}
}

static void handle_begin(struct node_conn *c, const struct wire_header *h,
			 const struct wire_state_begin *sb)
{
	struct node *n = c->node;
	struct state_send *ss = n->state_send;
	struct session *s;
	int rv;

	if (ss == NULL || ss->closing || n->state != NODE_RUNNING) {
		conn_reply_error(c, h->request_id, WIRE_EUNAVAILABLE,
				 "node shutting down");
		return;
	}
	if (ss->n_sessions >= STATE_SEND_SESSIONS_MAX) {
		conn_reply_error(c, h->request_id, WIRE_EBUSY,
				 "too many copy sessions");
		return;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL) {
		conn_reply_error(c, h->request_id, WIRE_EINTERNAL,
				 "out of memory");
		return;
	}
	s->ss = ss;
	do {
		if (getrandom(&s->id, sizeof s->id, 0) != sizeof s->id)
			s->id = uv_hrtime() ^ (uint64_t)(uintptr_t)s;
	} while (s->id == 0);
	snprintf(s->dir, sizeof s->dir, "%s/%016" PRIx64, ss->copies_dir,
		 s->id);
	s->refs = 1; /* the list's */
	s->begin_conn = c;
	s->begin_request_id = h->request_id;
	s->min_applied_index = sb->min_applied_index;
	s->next = ss->sessions;
	ss->sessions = s;
	ss->n_sessions++;
	conn_request_begin(c, sizeof *s);

	if ((sb->flags & WIRE_STATE_LEADER) == 0) {
		begin_checkpoint(s);
		return;
	}
	if (!n->cons_open) {
		begin_fail(s, WIRE_EUNAVAILABLE, "node shutting down");
		return;
	}
	s->state = SESSION_BARRIER;
	s->barrier.data = s;
	rv = consensus_barrier(&n->cons, &s->barrier, on_barrier);
	switch (rv) {
	case 0:
		break;
	case CONSENSUS_ENOT_LEADER:
		not_leader(s);
		break;
	case CONSENSUS_ESHUTDOWN:
		begin_fail(s, WIRE_EUNAVAILABLE, "node shutting down");
		break;
	case CONSENSUS_EUNAVAILABLE:
		begin_fail(s, WIRE_EUNAVAILABLE, "no leader");
		break;
	default:
		begin_fail(s, WIRE_EINTERNAL, consensus_strerror(rv));
		break;
	}
}

/* ------------------------------------------------------------------------
 * Chunks
 * ------------------------------------------------------------------------ */

static void pump(struct state_send *ss);
static void on_pump(uv_check_t *h);
static void ss_after(struct state_send *ss);

static void chunk_free(struct chunk *k)
{
	struct state_send *ss = k->session->ss;
	struct node_conn *c = k->conn;
	size_t bytes = k->bytes;

	if (k->reading) {
		unsigned j;

		for (j = 0; j < STATE_SEND_READS_MAX; j++)
			if (ss->reading[j] == k)
				ss->reading[j] = NULL;
		assert(ss->n_reads > 0);
		ss->n_reads--;
	}
	free(k->buf);
	session_unref(k->session);
	free(k);
	conn_request_end(c, bytes);
}

static void chunk_reply_error(struct chunk *k, uint32_t code, const char *msg)
{
	conn_reply_error(k->conn, k->request_id, code, msg);
	chunk_free(k);
}

static void chunk_read_next(struct chunk *k);

static void on_chunk_read(uv_fs_t *req)
{
	struct chunk *k = CONTAINER_OF(req, struct chunk, fs);
	struct state_send *ss = k->session->ss;
	ssize_t n = req->result;
	struct wire_buf *b;
	struct wire_bytes data;
	uint32_t crc;

	uv_fs_req_cleanup(req);
	if (n < 0) {
		log_error("copy_read_failed",
			  "session=%016" PRIx64 " file=%s error=\"%s\"",
			  k->session->id, k->session->info.files[k->file].name,
			  uv_strerror((int)n));
		chunk_reply_error(k, WIRE_EINTERNAL, "cannot read the copy");
		ss_after(ss);
		return;
	}
	if (n == 0 && k->done < k->length) {
		chunk_reply_error(k, WIRE_EINTERNAL,
				  "file shorter than its listing");
		ss_after(ss);
		return;
	}
	k->done += (uint32_t)n;
	if (k->done < k->length) {
		chunk_read_next(k);
		return;
	}
	crc = (uint32_t)crc32(0L, Z_NULL, 0);
	if (k->length > 0)
		crc = (uint32_t)crc32(crc, k->buf, k->length);
	data.p = k->length > 0 ? k->buf : NULL;
	data.len = k->length;
	b = conn_out(k->conn);
	if (b != NULL) {
		if (wire_encode_state_data(b, k->request_id, crc, data) != 0)
			log_error("reply_failed", "type=STATE_DATA");
		conn_flush(k->conn);
	}
	k->session->last_used_ms = uv_now(ss->node->loop);
	chunk_free(k);
	ss_after(ss);
}

static void chunk_read_next(struct chunk *k)
{
	struct session *s = k->session;
	uv_buf_t buf =
		uv_buf_init((char *)k->buf + k->done, k->length - k->done);
	int rv;

	rv = uv_fs_read(s->ss->node->loop, &k->fs, s->fds[k->file], &buf, 1,
			(int64_t)(k->offset + k->done), on_chunk_read);
	if (rv != 0) {
		struct state_send *ss = s->ss;

		chunk_reply_error(k, WIRE_EINTERNAL, uv_strerror(rv));
		ss_after(ss);
	}
}

static void on_chunk_open(uv_fs_t *req)
{
	struct chunk *k = CONTAINER_OF(req, struct chunk, fs);
	struct session *s = k->session;
	ssize_t fd = req->result;

	uv_fs_req_cleanup(req);
	if (fd < 0) {
		log_error("copy_open_failed",
			  "session=%016" PRIx64 " file=%s error=\"%s\"", s->id,
			  s->info.files[k->file].name, uv_strerror((int)fd));
		struct state_send *ss = s->ss;

		chunk_reply_error(k, WIRE_EINTERNAL, "cannot open the copy");
		ss_after(ss);
		return;
	}
	if (s->fds[k->file] >= 0)
		close((int)fd); /* another chunk opened it meanwhile */
	else
		s->fds[k->file] = (int)fd;
	chunk_read_next(k);
}

/* Takes a read slot for @k. */
static void chunk_take_slot(struct chunk *k)
{
	struct state_send *ss = k->session->ss;
	unsigned j;

	for (j = 0; j < STATE_SEND_READS_MAX; j++) {
		if (ss->reading[j] == NULL) {
			ss->reading[j] = k;
			break;
		}
	}
	assert(j < STATE_SEND_READS_MAX);
	k->reading = true;
	ss->n_reads++;
}

static void chunk_start(struct chunk *k)
{
	struct session *s = k->session;
	struct state_send *ss = s->ss;
	char path[PATH_MAX + 256];
	struct wire_buf *b;
	int rv;

	if (k->length == 0) {
		/* At the end of the file: nothing to read. */
		b = conn_out(k->conn);
		if (b != NULL) {
			struct wire_bytes none = { NULL, 0 };

			if (wire_encode_state_data(
				    b, k->request_id,
				    (uint32_t)crc32(0L, Z_NULL, 0), none) != 0)
				log_error("reply_failed", "type=STATE_DATA");
			conn_flush(k->conn);
		}
		chunk_free(k);
		return;
	}
	k->buf = malloc(k->length);
	if (k->buf == NULL) {
		chunk_reply_error(k, WIRE_EINTERNAL, "out of memory");
		return;
	}
	k->bytes += conn_request_grow(k->conn, k->length);
	chunk_take_slot(k);
	if (s->fds[k->file] >= 0) {
		chunk_read_next(k);
		return;
	}
	snprintf(path, sizeof path, "%s/%s", s->dir,
		 s->info.files[k->file].name);
	rv = uv_fs_open(ss->node->loop, &k->fs, path, O_RDONLY | O_CLOEXEC, 0,
			on_chunk_open);
	if (rv != 0)
		chunk_reply_error(k, WIRE_EINTERNAL, uv_strerror(rv));
}

/* Reads in flight and unsent replies of @c, in chunks: what it costs the
 * node now. */
static unsigned conn_chunks(const struct state_send *ss,
			    const struct node_conn *c)
{
	size_t unsent = c->out.len + c->wbuf.len;
	unsigned n = (unsigned)((unsent + WIRE_STATE_CHUNK_BYTES_MAX - 1) /
				WIRE_STATE_CHUNK_BYTES_MAX);
	unsigned j;

	for (j = 0; j < STATE_SEND_READS_MAX; j++)
		if (ss->reading[j] != NULL && ss->reading[j]->conn == c)
			n++;
	return n;
}

/* Starts the reads the bounds allow, oldest first; a connection over its
 * bound does not hold up the others. While requests wait, the pump runs
 * again after the next loop iteration (a write completing wakes the
 * loop). */
static void pump(struct state_send *ss)
{
	struct chunk **p = &ss->queue;
	struct chunk *prev = NULL;

	while (*p != NULL && ss->n_reads < STATE_SEND_READS_MAX) {
		struct chunk *k = *p;
		bool dead = k->session->state == SESSION_DEAD;
		bool gone = conn_out(k->conn) == NULL;

		if (!dead && !gone &&
		    conn_chunks(ss, k->conn) >= STATE_SEND_CONN_CHUNKS_MAX) {
			prev = k;
			p = &k->next;
			continue;
		}
		*p = k->next;
		if (ss->queue_tail == k)
			ss->queue_tail = prev;
		k->next = NULL;
		ss->n_queued--;
		if (dead)
			chunk_reply_error(k, WIRE_ETRANSFER_GONE,
					  "copy session ended");
		else if (gone)
			chunk_free(k);
		else
			chunk_start(k);
	}
	if (ss->queue != NULL)
		uv_check_start(&ss->pump, on_pump);
}

/* The end of every callback that may have released something: pumps the
 * queue, or frees @ss once closed and idle. @ss must not be used after. */
static void ss_after(struct state_send *ss)
{
	if (!ss->closing)
		pump(ss);
	else
		ss_maybe_free(ss);
}

static void on_pump(uv_check_t *h)
{
	struct state_send *ss = h->data;

	uv_check_stop(h);
	pump(ss);
}

static void handle_chunk(struct node_conn *c, const struct wire_header *h,
			 const struct wire_state_chunk *ch)
{
	struct state_send *ss = c->node->state_send;
	struct session *s;
	struct chunk *k;
	uint64_t size;
	char msg[128];

	s = ss != NULL && !ss->closing ? session_find(ss, ch->session) : NULL;
	if (s == NULL) {
		conn_reply_error(c, h->request_id, WIRE_ETRANSFER_GONE,
				 "copy session expired or unknown");
		return;
	}
	s->last_used_ms = uv_now(c->node->loop);
	if (ch->file >= s->info.n_files) {
		snprintf(msg, sizeof msg,
			 "file index %u out of range (%u files)", ch->file,
			 s->info.n_files);
		conn_reply_error(c, h->request_id, WIRE_EINVALID, msg);
		return;
	}
	size = s->info.files[ch->file].size;
	if (ch->offset > size) {
		snprintf(msg, sizeof msg,
			 "offset %" PRIu64 " past the end of the file (%" PRIu64
			 " bytes)",
			 ch->offset, size);
		conn_reply_error(c, h->request_id, WIRE_EINVALID, msg);
		return;
	}
	if (ss->n_queued >= STATE_SEND_QUEUE_MAX) {
		conn_reply_error(c, h->request_id, WIRE_EBUSY,
				 "too many chunk requests waiting");
		return;
	}
	k = calloc(1, sizeof *k);
	if (k == NULL) {
		conn_reply_error(c, h->request_id, WIRE_EINTERNAL,
				 "out of memory");
		return;
	}
	k->conn = c;
	k->request_id = h->request_id;
	k->session = s;
	s->refs++;
	k->file = ch->file;
	k->offset = ch->offset;
	k->length = ch->length;
	if ((uint64_t)k->length > size - ch->offset)
		k->length = (uint32_t)(size - ch->offset);
	k->bytes = sizeof *k;
	conn_request_begin(c, k->bytes);
	if (ss->queue_tail != NULL)
		ss->queue_tail->next = k;
	else
		ss->queue = k;
	ss->queue_tail = k;
	ss->n_queued++;
	pump(ss);
}

static void handle_end(struct node_conn *c, const struct wire_header *h,
		       uint64_t session)
{
	struct state_send *ss = c->node->state_send;
	struct session *s = ss != NULL ? session_find(ss, session) : NULL;
	struct wire_buf *b;

	if (s == NULL) {
		conn_reply_error(c, h->request_id, WIRE_ETRANSFER_GONE,
				 "copy session expired or unknown");
		return;
	}
	session_end(s, "end");
	b = conn_out(c);
	if (b == NULL)
		return;
	if (wire_encode_state_ended(b, h->request_id) != 0)
		log_error("reply_failed", "type=STATE_ENDED");
	conn_flush(c);
}

int state_send_handle(struct node_conn *c, const struct wire_header *h,
		      const uint8_t *body)
{
	union {
		struct wire_state_begin begin;
		struct wire_state_chunk chunk;
		uint64_t session;
	} u;

	switch (h->type) {
	case WIRE_STATE_BEGIN:
		if (wire_decode_state_begin(body, h->body_len, &u.begin) !=
		    WIRE_OK)
			return WIRE_EMALFORMED;
		handle_begin(c, h, &u.begin);
		return 0;
	case WIRE_STATE_CHUNK:
		if (wire_decode_state_chunk(body, h->body_len, &u.chunk) !=
		    WIRE_OK)
			return WIRE_EMALFORMED;
		handle_chunk(c, h, &u.chunk);
		return 0;
	case WIRE_STATE_END:
		if (wire_decode_state_end(body, h->body_len, &u.session) !=
		    WIRE_OK)
			return WIRE_EMALFORMED;
		handle_end(c, h, u.session);
		return 0;
	default:
		assert(false);
		return WIRE_EMALFORMED;
	}
}

/* ------------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------------ */

static void on_sweep(uv_timer_t *t)
{
	struct state_send *ss = t->data;
	uint64_t now = uv_now(ss->node->loop);
	struct session *s = ss->sessions;

	while (s != NULL) {
		struct session *next = s->next;

		/* Only a session nobody is reading from can be idle. */
		if (s->state == SESSION_LIVE && s->refs == 1 &&
		    now - s->last_used_ms >= STATE_SEND_IDLE_MS)
			session_end(s, "idle");
		s = next;
	}
}

int state_send_init(struct node *n)
{
	struct state_send *ss = calloc(1, sizeof *ss);
	int rv;

	if (ss == NULL)
		return UV_ENOMEM;
	ss->node = n;
	snprintf(ss->copies_dir, sizeof ss->copies_dir, "%s/copies",
		 n->cfg->data_dir);
	snprintf(ss->store_dir, sizeof ss->store_dir, "%s/store",
		 n->cfg->data_dir);
	remove_stale(ss->copies_dir);
	rv = uv_check_init(n->loop, &ss->pump);
	if (rv != 0) {
		free(ss);
		return rv;
	}
	ss->pump.data = ss;
	uv_unref((uv_handle_t *)&ss->pump);
	rv = uv_timer_init(n->loop, &ss->sweep);
	if (rv != 0) {
		uv_close((uv_handle_t *)&ss->pump, NULL);
		return rv; /* freed with the loop's handles: a startup
			    * failure closes the process */
	}
	ss->sweep.data = ss;
	uv_timer_start(&ss->sweep, on_sweep, STATE_SEND_SWEEP_MS,
		       STATE_SEND_SWEEP_MS);
	uv_unref((uv_handle_t *)&ss->sweep);
	ss->handles_open = 2;
	n->state_send = ss;
	return 0;
}

static void ss_maybe_free(struct state_send *ss)
{
	if (!ss->closing || ss->handles_open > 0 || ss->sessions != NULL ||
	    ss->n_reads > 0 || ss->n_work > 0 || ss->queue != NULL)
		return;
	free(ss);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct state_send *ss = h->data;

	ss->handles_open--;
	ss_maybe_free(ss);
}

void state_send_close(struct node *n)
{
	struct state_send *ss = n->state_send;

	if (ss == NULL)
		return;
	n->state_send = NULL;
	ss->closing = true;
	/* Waiting chunk requests are answered now; reads in flight finish
	 * and reply (or drop) on their own. */
	while (ss->queue != NULL) {
		struct chunk *k = ss->queue;

		ss->queue = k->next;
		ss->n_queued--;
		conn_reply_error(k->conn, k->request_id, WIRE_EUNAVAILABLE,
				 "node shutting down");
		chunk_free(k);
	}
	ss->queue_tail = NULL;
	/* Sessions still taking their checkpoint end when it is done
	 * (checkpoint_done sees closing); consensus has closed, so none
	 * waits for a barrier. */
	{
		struct session *s = ss->sessions;

		while (s != NULL) {
			struct session *next = s->next;

			if (s->state == SESSION_LIVE)
				session_end(s, "shutdown");
			s = next;
		}
	}
	uv_close((uv_handle_t *)&ss->pump, on_handle_closed);
	uv_close((uv_handle_t *)&ss->sweep, on_handle_closed);
}
