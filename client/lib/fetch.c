/* libcairn: cairn_fetch_state, the receiving side of a store copy
 * (docs/protocol.md, "Copying a node's store"; docs/backup.md). `cairn
 * backup` and a node that fetches its state from a peer use it.
 *
 * The call runs on the caller's thread over a connection of its own (a
 * blocking socket with poll(2) deadlines), not on the client's I/O thread:
 * a copy moves gigabytes and must not hold up the client's other requests,
 * and its replies are consumed straight into files. It asks the node for a
 * checkpoint (STATE_BEGIN), then fetches each listed file in chunks of at
 * most WIRE_STATE_CHUNK_BYTES_MAX with FETCH_IN_FLIGHT requests in flight,
 * checks each chunk's CRC-32 and writes it with pwrite into NAME.part;
 * a file whose bytes all arrived is fsynced and renamed to NAME. Memory:
 * one frame buffer of a chunk's size, whatever the store's size (and the
 * listing, once).
 *
 * The directory's states, so an interrupted copy is never taken for a
 * complete one:
 *   - CAIRN-COPY.partial (the source's identity) is written before the
 *     first file; CAIRN-COPY is removed first if it was there;
 *   - NAME.part: a file being fetched; NAME: a file complete and fsynced;
 *   - CAIRN-COPY, written last (temporary name, fsync, rename, directory
 *     fsync), then CAIRN-COPY.partial removed: the copy is complete.
 * Resuming keeps NAME files of an SST (immutable once written) that the new
 * listing names with the same size, when the identity recorded by the
 * earlier attempt (either file) is the listing's. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "client_int.h"

/* Chunk requests in flight: enough to keep a LAN link busy while the node
 * reads from disk, few enough that the node's and the receiver's memory
 * stay a few MiB. */
#define FETCH_IN_FLIGHT 4

/* Round trip deadline when the options give none. */
#define FETCH_TIMEOUT_MS_DEFAULT 30000

/* NOT_LEADER redirects followed before giving up. */
#define FETCH_HOPS_MAX 3

#define COPY_FILE         "CAIRN-COPY"
#define COPY_PARTIAL_FILE "CAIRN-COPY.partial"
#define COPY_TMP_FILE     "CAIRN-COPY.tmp"
#define PART_SUFFIX       ".part"

/* One copy in progress. */
struct fetch {
	const char *dir;                     /* borrowed: the destination */
	const struct cairn_fetch_options *o; /* borrowed */
	struct cairn_error *err;             /* borrowed, may be NULL */
	int timeout_ms;                      /* per round trip */
	int fd;                              /* the socket, -1 when closed */
	uint64_t next_id;                    /* request ids */
	uint8_t *frame;                      /* owned: one reply's body */
	size_t frame_cap;                    /* bytes allocated for frame */
	struct wire_buf out;                 /* owned: a request being sent */
	uint8_t *listing_buf;                /* owned: the listing's bytes */
	struct wire_state_listing l;         /* owned once listed; views into
					      * listing_buf */
	char identity[WIRE_STATE_IDENTITY_MAX + 1]; /* of the listing */
	bool *keep;                    /* owned: per file, kept as is */
	struct cairn_fetch_progress p; /* reported to o->progress */
	uint64_t bytes_fetched;        /* moved over the wire */
};

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

static int fail(struct fetch *f, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct fetch *f, int code, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	client_set_error(f->err, code, "fetch state: %s", msg);
	return code;
}

/* ------------------------------------------------------------------------
 * The connection
 * ------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until @fd is ready for @events or @deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p;
	int rv;

	for (;;) {
		int64_t left = deadline - now_ms();

		if (left <= 0)
			return ETIMEDOUT;
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		rv = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rv > 0)
			return 0;
		if (rv < 0 && errno != EINTR)
			return errno;
	}
}

static int fetch_connect(struct fetch *f, const char *address)
{
	char host[CLIENT_ADDRESS_LEN_MAX + 1];
	char port_text[16];
	struct addrinfo hints;
	struct addrinfo *res;
	struct addrinfo *ai;
	int64_t deadline;
	int last = ECONNREFUSED;
	int port;
	int rv;

	if (client_address_split(address, host, &port) != 0)
		return fail(f, CAIRN_EARG, "malformed address \"%s\"", address);
	snprintf(port_text, sizeof port_text, "%d", port);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rv = getaddrinfo(host, port_text, &hints, &res);
	if (rv != 0)
		return fail(f, CAIRN_ECONNECT, "resolve %s: %s", address,
			    gai_strerror(rv));
	deadline = now_ms() + f->timeout_ms;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
				ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);
		socklen_t len = sizeof last;
		int one = 1;

		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			if (errno != EINPROGRESS) {
				last = errno;
				close(fd);
				continue;
			}
			rv = wait_fd(fd, POLLOUT, deadline);
			if (rv == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &rv,
						  &len) != 0)
				rv = errno;
			if (rv != 0) {
				last = rv;
				close(fd);
				continue;
			}
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		f->fd = fd;
		freeaddrinfo(res);
		return 0;
	}
	freeaddrinfo(res);
	return fail(f, CAIRN_ECONNECT, "connect %s: %s", address,
		    strerror(last));
}

static void fetch_disconnect(struct fetch *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* Sends what f->out holds, then empties it. */
static int send_out(struct fetch *f)
{
	int64_t deadline = now_ms() + f->timeout_ms;
	size_t done = 0;

	while (done < f->out.len) {
		ssize_t n = send(f->fd, f->out.p + done, f->out.len - done,
				 MSG_NOSIGNAL);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rv = wait_fd(f->fd, POLLOUT, deadline);

			if (rv != 0)
				return fail(f,
					    rv == ETIMEDOUT ? CAIRN_ETIMEOUT
							    : CAIRN_ECONNECT,
					    "send: %s", strerror(rv));
			continue;
		}
		return fail(f, CAIRN_ECONNECT, "send: %s",
			    n < 0 ? strerror(errno) : "connection closed");
	}
	wire_buf_reset(&f->out);
	return 0;
}

static int recv_all(struct fetch *f, void *buf, size_t len, int64_t deadline)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(f->fd, p + done, len - done, 0);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return fail(f, CAIRN_ECONNECT,
				    "the node closed the connection");
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int rv = wait_fd(f->fd, POLLIN, deadline);

			if (rv != 0)
				return fail(f,
					    rv == ETIMEDOUT ? CAIRN_ETIMEOUT
							    : CAIRN_ECONNECT,
					    "receive: %s", strerror(rv));
			continue;
		}
		return fail(f, CAIRN_ECONNECT, "receive: %s", strerror(errno));
	}
	return 0;
}

/* Reads one reply frame into f->frame; at most @max body bytes are
 * accepted (the header is checked before anything is allocated). */
static int recv_frame(struct fetch *f, struct wire_header *h, size_t max)
{
	uint8_t head[WIRE_HEADER_BYTES];
	int64_t deadline = now_ms() + f->timeout_ms;
	int rv;

	rv = recv_all(f, head, sizeof head, deadline);
	if (rv != 0)
		return rv;
	if (wire_header_decode(head, h) != WIRE_OK)
		return fail(f, CAIRN_EPROTOCOL, "malformed frame header");
	if (h->type == WIRE_ERROR && max < WIRE_HEADER_BYTES + 2 * 1024 + 64)
		max = WIRE_HEADER_BYTES + 2 * 1024 + 64;
	if (h->body_len > max)
		return fail(f, CAIRN_EPROTOCOL,
			    "reply of %" PRIu32 " bytes, expected at most %zu",
			    h->body_len, max);
	if (h->body_len > f->frame_cap) {
		void *p = realloc(f->frame, h->body_len);

		if (p == NULL)
			return fail(f, CAIRN_ENOMEM, "out of memory");
		f->frame = p;
		f->frame_cap = h->body_len;
	}
	return recv_all(f, f->frame, h->body_len, deadline);
}

/* Turns an ERROR reply into the call's error; fills @leader (256 bytes)
 * for NOT_LEADER when the node named one. */
static int reply_error(struct fetch *f, const struct wire_header *h,
		       const char *what, char *leader)
{
	struct wire_err e;

	if (wire_decode_error(f->frame, h->body_len, &e) != WIRE_OK)
		return fail(f, CAIRN_EPROTOCOL, "%s: malformed error reply",
			    what);
	if (leader != NULL && e.code == WIRE_ENOT_LEADER && e.leader.len > 0 &&
	    e.leader.len < 256) {
		memcpy(leader, e.leader.p, e.leader.len);
		leader[e.leader.len] = '\0';
	}
	return fail(f, (int)e.code, "%s: %.*s", what, (int)e.message.len,
		    e.message.len > 0 ? (const char *)e.message.p : "");
}

/* ------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------ */

static int path_of(struct fetch *f, char *out, const char *name,
		   const char *suffix)
{
	if (snprintf(out, PATH_MAX, "%s/%s%s", f->dir, name, suffix) >=
	    PATH_MAX)
		return fail(f, CAIRN_EARG, "path of %s too long", name);
	return 0;
}

static int fsync_dir(struct fetch *f)
{
	int fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rv = 0;

	if (fd < 0 || fsync(fd) != 0)
		rv = fail(f, CAIRN_EIO, "fsync %s: %s", f->dir,
			  strerror(errno));
	if (fd >= 0)
		close(fd);
	return rv;
}

/* Creates @dir and its missing parents. */
static int make_dir(struct fetch *f)
{
	char buf[PATH_MAX];
	size_t len = strlen(f->dir);
	size_t k;

	if (len == 0 || len >= sizeof buf)
		return fail(f, CAIRN_EARG, "bad directory name");
	memcpy(buf, f->dir, len + 1);
	for (k = 1; k <= len; k++) {
		if (buf[k] != '/' && buf[k] != '\0')
			continue;
		buf[k] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return fail(f, CAIRN_EIO, "create %s: %s", buf,
				    strerror(errno));
		buf[k] = k < len ? '/' : '\0';
	}
	return 0;
}

/* Reads the identity an earlier attempt recorded (CAIRN-COPY's
 * "identity" line or CAIRN-COPY.partial) into @out ("" if none). */
static void earlier_identity(struct fetch *f, char *out, size_t cap)
{
	static const char *const names[] = { COPY_FILE, COPY_PARTIAL_FILE };
	char path[PATH_MAX];
	char line[512];
	size_t k;

	out[0] = '\0';
	for (k = 0; k < 2; k++) {
		FILE *fp;

		if (path_of(f, path, names[k], "") != 0)
			return;
		fp = fopen(path, "r");
		if (fp == NULL)
			continue;
		while (fgets(line, sizeof line, fp) != NULL) {
			size_t n;

			if (strncmp(line, "identity ", 9) != 0)
				continue;
			n = strcspn(line + 9, "\r\n");
			if (n < cap) {
				memcpy(out, line + 9, n);
				out[n] = '\0';
			}
			break;
		}
		fclose(fp);
		if (out[0] != '\0')
			return;
	}
}

static bool is_sst(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcmp(name + n - 4, ".sst") == 0;
}

/* Index of @name in the listing, or -1. */
static long listed(const struct fetch *f, const char *name)
{
	size_t n = strlen(name);
	uint32_t k;

	for (k = 0; k < f->l.n_files; k++)
		if (f->l.files[k].name.len == n &&
		    memcmp(f->l.files[k].name.p, name, n) == 0)
			return (long)k;
	return -1;
}

/* Decides which files stay, and removes everything else from the
 * directory, CAIRN-COPY first. */
static int prepare_dir(struct fetch *f)
{
	char identity[WIRE_STATE_IDENTITY_MAX + 1];
	char path[PATH_MAX];
	struct dirent *de;
	bool resume_ok;
	DIR *d;
	int rv;

	rv = make_dir(f);
	if (rv != 0)
		return rv;
	earlier_identity(f, identity, sizeof identity);
	resume_ok = f->o->resume && f->identity[0] != '\0' &&
		    strcmp(identity, f->identity) == 0;
	rv = path_of(f, path, COPY_FILE, "");
	if (rv != 0)
		return rv;
	if (unlink(path) != 0 && errno != ENOENT)
		return fail(f, CAIRN_EIO, "remove %s: %s", path,
			    strerror(errno));
	d = opendir(f->dir);
	if (d == NULL)
		return fail(f, CAIRN_EIO, "list %s: %s", f->dir,
			    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		long k;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		rv = path_of(f, path, de->d_name, "");
		if (rv != 0)
			break;
		if (lstat(path, &st) != 0) {
			rv = fail(f, CAIRN_EIO, "stat %s: %s", path,
				  strerror(errno));
			break;
		}
		k = listed(f, de->d_name);
		if (k >= 0 && resume_ok && S_ISREG(st.st_mode) &&
		    is_sst(de->d_name) &&
		    (uint64_t)st.st_size == f->l.files[k].size) {
			f->keep[k] = true;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			rv = fail(f, CAIRN_EIO,
				  "%s holds a directory (%s): not a copy",
				  f->dir, de->d_name);
			break;
		}
		if (unlink(path) != 0) {
			rv = fail(f, CAIRN_EIO, "remove %s: %s", path,
				  strerror(errno));
			break;
		}
	}
	closedir(d);
	if (rv != 0)
		return rv;
	/* Record where the files come from before fetching any. */
	{
		FILE *fp;

		rv = path_of(f, path, COPY_PARTIAL_FILE, "");
		if (rv != 0)
			return rv;
		fp = fopen(path, "w");
		if (fp == NULL)
			return fail(f, CAIRN_EIO, "create %s: %s", path,
				    strerror(errno));
		fprintf(fp, "identity %s\n", f->identity);
		if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
			fclose(fp);
			return fail(f, CAIRN_EIO, "write %s: %s", path,
				    strerror(errno));
		}
		fclose(fp);
	}
	return fsync_dir(f);
}

static void report(struct fetch *f)
{
	if (f->o->progress != NULL)
		f->o->progress(f->o->progress_arg, &f->p);
}

/* ------------------------------------------------------------------------
 * Fetching
 * ------------------------------------------------------------------------ */

/* One chunk request in flight. */
struct slot {
	bool used;
	uint64_t id;     /* request id */
	uint64_t offset; /* first byte asked for */
	uint32_t length; /* bytes asked for */
};

static int fetch_file(struct fetch *f, uint32_t k)
{
	const struct wire_state_file *file = &f->l.files[k];
	struct slot slots[FETCH_IN_FLIGHT];
	char name[WIRE_STATE_NAME_MAX + 1];
	char part[PATH_MAX];
	char final[PATH_MAX];
	uint64_t issued = 0;
	uint64_t received = 0;
	unsigned in_flight = 0;
	int fd;
	int rv;

	memcpy(name, file->name.p, file->name.len);
	name[file->name.len] = '\0';
	rv = path_of(f, part, name, PART_SUFFIX);
	if (rv == 0)
		rv = path_of(f, final, name, "");
	if (rv != 0)
		return rv;
	fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(f, CAIRN_EIO, "create %s: %s", part,
			    strerror(errno));
	memset(slots, 0, sizeof slots);
	while (received < file->size) {
		struct wire_state_chunk ch;
		struct wire_header h;
		struct wire_bytes data;
		uint32_t crc;
		unsigned j;

		/* Fill the pipeline. */
		while (in_flight < FETCH_IN_FLIGHT && issued < file->size) {
			uint64_t left = file->size - issued;

			for (j = 0; slots[j].used; j++)
				;
			slots[j].used = true;
			slots[j].id = f->next_id++;
			slots[j].offset = issued;
			slots[j].length = left > WIRE_STATE_CHUNK_BYTES_MAX
						  ? WIRE_STATE_CHUNK_BYTES_MAX
						  : (uint32_t)left;
			ch.session = f->l.session;
			ch.file = k;
			ch.offset = issued;
			ch.length = slots[j].length;
			if (wire_encode_state_chunk(&f->out, slots[j].id,
						    &ch) != 0) {
				rv = fail(f, CAIRN_ENOMEM, "out of memory");
				goto err_after_open;
			}
			issued += slots[j].length;
			in_flight++;
		}
		if (f->out.len > 0) {
			rv = send_out(f);
			if (rv != 0)
				goto err_after_open;
		}
		rv = recv_frame(f, &h, 8 + WIRE_STATE_CHUNK_BYTES_MAX);
		if (rv != 0)
			goto err_after_open;
		for (j = 0; j < FETCH_IN_FLIGHT; j++)
			if (slots[j].used && slots[j].id == h.request_id)
				break;
		if (j == FETCH_IN_FLIGHT) {
			rv = fail(f, CAIRN_EPROTOCOL,
				  "reply to unknown request %" PRIu64,
				  h.request_id);
			goto err_after_open;
		}
		if (h.type == WIRE_ERROR) {
			rv = reply_error(f, &h, name, NULL);
			goto err_after_open;
		}
		if (h.type != WIRE_STATE_DATA ||
		    wire_decode_state_data(f->frame, h.body_len, &crc, &data) !=
			    WIRE_OK) {
			rv = fail(f, CAIRN_EPROTOCOL,
				  "%s: malformed chunk reply", name);
			goto err_after_open;
		}
		if (data.len != slots[j].length) {
			rv = fail(f, CAIRN_EPROTOCOL,
				  "%s: chunk at %" PRIu64 " has %" PRIu32
				  " bytes, asked %" PRIu32,
				  name, slots[j].offset, data.len,
				  slots[j].length);
			goto err_after_open;
		}
		if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), data.p, data.len) !=
		    crc) {
			rv = fail(f, CAIRN_EPROTOCOL,
				  "%s: chunk at %" PRIu64 " fails its checksum",
				  name, slots[j].offset);
			goto err_after_open;
		}
		{
			size_t done = 0;

			while (done < data.len) {
				ssize_t n = pwrite(
					fd, data.p + done, data.len - done,
					(off_t)(slots[j].offset + done));

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					rv = fail(f, CAIRN_EIO, "write %s: %s",
						  part, strerror(errno));
					goto err_after_open;
				}
				done += (size_t)n;
			}
		}
		slots[j].used = false;
		in_flight--;
		received += data.len;
		f->bytes_fetched += data.len;
		f->p.bytes_done += data.len;
		report(f);
	}
	/* The file is whole: its size is the listing's. */
	{
		struct stat st;

		if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != file->size) {
			rv = fail(f, CAIRN_EIO,
				  "%s: %" PRIu64
				  " bytes written, listed %" PRIu64,
				  name, (uint64_t)st.st_size, file->size);
			goto err_after_open;
		}
	}
	if (fsync(fd) != 0) {
		rv = fail(f, CAIRN_EIO, "fsync %s: %s", part, strerror(errno));
		goto err_after_open;
	}
	close(fd);
	if (rename(part, final) != 0)
		return fail(f, CAIRN_EIO, "rename %s: %s", part,
			    strerror(errno));
	f->p.files_done++;
	report(f);
	return 0;

err_after_open:
	close(fd);
	return rv;
}

/* Writes CAIRN-COPY (temporary name, fsync, rename, directory fsync) and
 * removes CAIRN-COPY.partial. */
static int write_marker(struct fetch *f)
{
	char tmp[PATH_MAX];
	char path[PATH_MAX];
	uint32_t k;
	FILE *fp;
	int rv;

	rv = path_of(f, tmp, COPY_TMP_FILE, "");
	if (rv == 0)
		rv = path_of(f, path, COPY_FILE, "");
	if (rv != 0)
		return rv;
	fp = fopen(tmp, "w");
	if (fp == NULL)
		return fail(f, CAIRN_EIO, "create %s: %s", tmp,
			    strerror(errno));
	fprintf(fp,
		"cairn-copy 1\nnode_id %" PRIu64
		"\nidentity %s\n"
		"applied_index %" PRIu64 "\nlast_position %" PRIu64
		"\nfiles %" PRIu32 "\n",
		f->l.node_id, f->identity, f->l.applied_index,
		f->l.last_position, f->l.n_files);
	for (k = 0; k < f->l.n_files; k++)
		fprintf(fp, "file %.*s %" PRIu64 "\n",
			(int)f->l.files[k].name.len,
			(const char *)f->l.files[k].name.p, f->l.files[k].size);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		fclose(fp);
		return fail(f, CAIRN_EIO, "write %s: %s", tmp, strerror(errno));
	}
	fclose(fp);
	if (rename(tmp, path) != 0)
		return fail(f, CAIRN_EIO, "rename %s: %s", tmp,
			    strerror(errno));
	rv = fsync_dir(f);
	if (rv != 0)
		return rv;
	rv = path_of(f, path, COPY_PARTIAL_FILE, "");
	if (rv != 0)
		return rv;
	if (unlink(path) != 0 && errno != ENOENT)
		return fail(f, CAIRN_EIO, "remove %s: %s", path,
			    strerror(errno));
	return fsync_dir(f);
}

/* STATE_BEGIN at @address: on success f->l holds the listing. Fills
 * @leader when the node answered NOT_LEADER with the leader's address. */
static int begin(struct fetch *f, const char *address, char *leader)
{
	struct wire_state_begin sb;
	struct wire_header h;
	uint64_t id = f->next_id++;
	int rv;

	wire_buf_reset(&f->out);
	rv = fetch_connect(f, address);
	if (rv != 0)
		return rv;
	sb.min_applied_index = f->o->min_applied_index;
	sb.flags = f->o->leader ? WIRE_STATE_LEADER : 0;
	if (wire_encode_state_begin(&f->out, id, &sb) != 0)
		return fail(f, CAIRN_ENOMEM, "out of memory");
	rv = send_out(f);
	if (rv == 0)
		rv = recv_frame(f, &h, WIRE_BODY_BYTES_MAX);
	if (rv != 0)
		return rv;
	if (h.request_id != id)
		return fail(f, CAIRN_EPROTOCOL, "reply to unknown request");
	if (h.type == WIRE_ERROR)
		return reply_error(f, &h, address, leader);
	if (h.type != WIRE_STATE_LISTING)
		return fail(f, CAIRN_EPROTOCOL, "unexpected reply type %#x",
			    (unsigned)h.type);
	/* The listing keeps a buffer of its own: the frame buffer is
	 * reused by every chunk (and shrinks back to a chunk's size). */
	f->listing_buf = malloc(h.body_len > 0 ? h.body_len : 1);
	if (f->listing_buf == NULL)
		return fail(f, CAIRN_ENOMEM, "out of memory");
	memcpy(f->listing_buf, f->frame, h.body_len);
	free(f->frame);
	f->frame = NULL;
	f->frame_cap = 0;
	rv = wire_decode_state_listing(f->listing_buf, h.body_len, &f->l);
	if (rv == WIRE_DECODE_NOMEM)
		return fail(f, CAIRN_ENOMEM, "out of memory");
	if (rv != WIRE_OK)
		return fail(f, CAIRN_EPROTOCOL, "malformed listing");
	for (uint32_t k = 0; k < f->l.n_files; k++) {
		struct wire_bytes n = f->l.files[k].name;
		size_t sl = strlen(PART_SUFFIX);

		/* The codec checked that the name stays in the directory;
		 * it must not collide with the copy's own files either. */
		if ((n.len >= strlen(COPY_FILE) &&
		     memcmp(n.p, COPY_FILE, strlen(COPY_FILE)) == 0) ||
		    (n.len >= sl &&
		     memcmp(n.p + n.len - sl, PART_SUFFIX, sl) == 0))
			return fail(f, CAIRN_EPROTOCOL,
				    "listing names a reserved file \"%.*s\"",
				    (int)n.len, (const char *)n.p);
	}
	memcpy(f->identity, f->l.identity.p, f->l.identity.len);
	f->identity[f->l.identity.len] = '\0';
	return 0;
}

/* Finds the address to ask when the caller gave none. */
static int pick_address(cairn_client *c, const struct fetch *f, char *out,
			struct cairn_error *err)
{
	struct cairn_status st;
	size_t k;
	int rv;

	rv = cairn_status(c, NULL, &st, err);
	if (rv != 0)
		return rv;
	if (f->o->leader && st.leader_client_address[0] != '\0') {
		snprintf(out, 256, "%s", st.leader_client_address);
		return 0;
	}
	for (k = 0; k < st.n_members; k++) {
		if (st.members[k].id == st.node_id &&
		    st.members[k].client_address[0] != '\0') {
			snprintf(out, 256, "%s", st.members[k].client_address);
			return 0;
		}
	}
	client_set_error(err, CAIRN_EUNAVAILABLE,
			 "fetch state: no client address known for node "
			 "%" PRIu64,
			 st.node_id);
	return CAIRN_EUNAVAILABLE;
}

CAIRN_API int cairn_fetch_state(cairn_client *c, const char *address,
				const char *dir,
				const struct cairn_fetch_options *o,
				struct cairn_fetch_result *r,
				struct cairn_error *err)
{
	struct cairn_fetch_options defaults;
	char target[256];
	struct fetch f;
	unsigned hops;
	uint32_t k;
	int rv;

	if (err != NULL)
		memset(err, 0, sizeof *err);
	if (r != NULL)
		memset(r, 0, sizeof *r);
	if (dir == NULL || dir[0] == '\0') {
		client_set_error(err, CAIRN_EARG,
				 "fetch state: no directory given");
		return CAIRN_EARG;
	}
	if (o == NULL) {
		memset(&defaults, 0, sizeof defaults);
		o = &defaults;
	}
	memset(&f, 0, sizeof f);
	f.dir = dir;
	f.o = o;
	f.err = err;
	f.fd = -1;
	f.next_id = 1;
	f.timeout_ms = o->timeout_ms > 0 && o->timeout_ms < INT32_MAX
			       ? (int)o->timeout_ms
			       : FETCH_TIMEOUT_MS_DEFAULT;
	wire_buf_init(&f.out);

	if (address != NULL) {
		if (strlen(address) >= sizeof target) {
			client_set_error(err, CAIRN_EARG,
					 "fetch state: address too long");
			return CAIRN_EARG;
		}
		snprintf(target, sizeof target, "%s", address);
	} else {
		if (c == NULL) {
			client_set_error(err, CAIRN_EARG,
					 "fetch state: no client and no "
					 "address");
			return CAIRN_EARG;
		}
		rv = pick_address(c, &f, target, err);
		if (rv != 0)
			return rv;
	}

	for (hops = 0;; hops++) {
		char leader[256] = "";

		rv = begin(&f, target, leader);
		if (rv == 0)
			break;
		fetch_disconnect(&f);
		if (rv != CAIRN_ENOT_LEADER || !o->leader ||
		    leader[0] == '\0' || hops + 1 >= FETCH_HOPS_MAX)
			goto err_after_init;
		snprintf(target, sizeof target, "%s", leader);
	}

	f.keep = calloc(f.l.n_files > 0 ? f.l.n_files : 1, sizeof *f.keep);
	if (f.keep == NULL) {
		rv = fail(&f, CAIRN_ENOMEM, "out of memory");
		goto err_after_begin;
	}
	rv = prepare_dir(&f);
	if (rv != 0)
		goto err_after_begin;
	f.p.files_total = f.l.n_files;
	for (k = 0; k < f.l.n_files; k++) {
		f.p.bytes_total += f.l.files[k].size;
		if (f.keep[k]) {
			f.p.bytes_done += f.l.files[k].size;
			f.p.files_done++;
		}
	}
	report(&f);
	for (k = 0; k < f.l.n_files; k++) {
		if (f.keep[k])
			continue;
		rv = fetch_file(&f, k);
		if (rv != 0)
			goto err_after_begin;
	}
	rv = fsync_dir(&f);
	if (rv == 0)
		rv = write_marker(&f);
	if (rv != 0)
		goto err_after_begin;

	/* The node drops the checkpoint; an error here changes nothing. */
	{
		struct wire_header h;

		if (wire_encode_state_end(&f.out, f.next_id++, f.l.session) ==
			    0 &&
		    send_out(&f) == 0 && recv_frame(&f, &h, 64 * 1024) == 0)
			(void)h;
		if (err != NULL)
			memset(err, 0, sizeof *err);
	}
	if (r != NULL) {
		r->node_id = f.l.node_id;
		r->applied_index = f.l.applied_index;
		r->last_position = f.l.last_position;
		r->bytes = f.p.bytes_total;
		r->bytes_fetched = f.bytes_fetched;
	}
	rv = 0;

err_after_begin:
	if (rv != 0 && f.fd >= 0) {
		/* Tell the node the checkpoint is no longer needed. */
		struct cairn_error keep;

		if (err != NULL)
			keep = *err;
		wire_buf_reset(&f.out);
		if (wire_encode_state_end(&f.out, f.next_id++, f.l.session) ==
		    0) {
			f.timeout_ms = 1000;
			(void)send_out(&f);
		}
		if (err != NULL)
			*err = keep;
	}
	fetch_disconnect(&f);
	free(f.keep);
	wire_state_listing_close(&f.l);
err_after_init:
	free(f.listing_buf);
	fetch_disconnect(&f);
	free(f.frame);
	wire_buf_close(&f.out);
	return rv;
}
