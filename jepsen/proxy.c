/* jepsen/proxy.c: a userspace TCP proxy that delays or stalls Raft links,
 * for the delay nemesis of jepsen/run (this kernel has no netem). jepsen/run
 * starts one proxy on the host side of the bridge with one listening port
 * per directed link (node I to node J) and sends each node's Raft
 * connections to it with a DNAT rule in the node's namespace; the proxy
 * forwards every byte to the real peer, after a delay it reads from a
 * control file whenever it gets SIGHUP:
 *
 *   DELAY_MS JITTER_MS          first line: every link
 *   node N DELAY_MS JITTER_MS   links from or to node N
 *   node N stall                links from or to node N forward nothing
 *                               until the file says otherwise
 *
 * Bytes keep their order on each direction of a connection (a chunk is
 * never sent before the one read ahead of it). A direction that holds more
 * than PROXY_QUEUE_HIGH bytes stops reading its source until it drains
 * below PROXY_QUEUE_LOW, so a stalled link never grows memory without
 * bound. An error or end of stream on either side closes both.
 *
 *   proxy --control FILE --link FROM,TO,LISTEN_HOST:PORT,TARGET_HOST:PORT ...
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

/* Links of one proxy at most (5 nodes: 20 directed links). */
#define PROXY_LINKS_MAX 32

/* Bytes queued on one direction before its source stops being read, and
 * the level below which reading resumes. */
#define PROXY_QUEUE_HIGH (8u << 20)
#define PROXY_QUEUE_LOW  (1u << 20)

/* Longest delay the control file may set (a stall is separate). */
#define PROXY_DELAY_MAX_MS 600000u

struct link {
	unsigned from; /* node id the link leaves */
	unsigned to;   /* node id it reaches */
	struct sockaddr_in listen_addr;
	struct sockaddr_in target;
	uv_tcp_t server;
	unsigned delay_ms; /* from the control file */
	unsigned jitter_ms;
	bool stall;
};

struct chunk {
	struct chunk *next;
	uint64_t due_ms; /* loop time at which it may be written */
	uv_buf_t buf;    /* owned */
	uv_write_t req;
	struct dir *dir; /* borrowed: for the write callback */
};

/* One direction of a proxied connection: read from @src, write to @dst. */
struct dir {
	struct pconn *conn; /* borrowed: the owner */
	uv_tcp_t *src;      /* borrowed */
	uv_tcp_t *dst;      /* borrowed */
	struct chunk *head; /* owned: queued, oldest first */
	struct chunk *tail;
	size_t queued;     /* bytes queued or being written */
	uint64_t last_due; /* due time of the newest chunk */
	uv_timer_t timer;
	bool reading;
};

struct pconn {
	struct link *link; /* borrowed */
	uv_tcp_t a;        /* the node that connected */
	uv_tcp_t b;        /* the peer we connected to */
	uv_connect_t connect;
	struct dir ab;
	struct dir ba;
	int open_handles; /* handles not yet closed */
	bool closing;
	struct pconn *next; /* list of live connections */
	struct pconn *prev;
};

static uv_loop_t *loop;
static struct link links[PROXY_LINKS_MAX];
static unsigned n_links;
static const char *control_path;
static struct pconn *conns;
static uint64_t rng = 0x2545F4914F6CDD1Dull;

static unsigned rand_below(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n == 0 ? 0 : (unsigned)(rng % n);
}

static void conn_close(struct pconn *c);

static void on_handle_closed(uv_handle_t *h)
{
	/* Timers carry their direction, sockets their connection. */
	struct pconn *c =
		h->type == UV_TIMER ? ((struct dir *)h->data)->conn : h->data;
	if (--c->open_handles > 0)
		return;
	for (struct dir *d = &c->ab; d != NULL; d = d == &c->ab ? &c->ba : NULL)
		while (d->head != NULL) {
			struct chunk *k = d->head;
			d->head = k->next;
			free(k->buf.base);
			free(k);
		}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
}

static void conn_close(struct pconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->a, on_handle_closed);
	uv_close((uv_handle_t *)&c->b, on_handle_closed);
	uv_close((uv_handle_t *)&c->ab.timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->ba.timer, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(suggested);
	buf->len = buf->base != NULL ? suggested : 0;
}

static void dir_flush(struct dir *d);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void dir_resume(struct dir *d)
{
	if (!d->reading && d->queued < PROXY_QUEUE_LOW && !d->conn->closing) {
		if (uv_read_start((uv_stream_t *)d->src, on_alloc, on_read) ==
		    0)
			d->reading = true;
	}
}

static void on_written(uv_write_t *req, int status)
{
	struct chunk *k = req->data;
	struct dir *d = k->dir;
	d->queued -= k->buf.len;
	free(k->buf.base);
	free(k);
	if (status < 0) {
		conn_close(d->conn);
		return;
	}
	dir_resume(d);
}

static void on_timer(uv_timer_t *t)
{
	dir_flush(t->data);
}

/* Writes every chunk that is due, then arms the timer for the next. */
static void dir_flush(struct dir *d)
{
	uint64_t now = uv_now(loop);

	if (d->conn->closing)
		return;
	if (d->conn->link->stall)
		return;
	while (d->head != NULL && d->head->due_ms <= now) {
		struct chunk *k = d->head;
		d->head = k->next;
		if (d->head == NULL)
			d->tail = NULL;
		k->req.data = k;
		k->dir = d;
		if (uv_write(&k->req, (uv_stream_t *)d->dst, &k->buf, 1,
			     on_written) != 0) {
			d->queued -= k->buf.len;
			free(k->buf.base);
			free(k);
			conn_close(d->conn);
			return;
		}
	}
	if (d->head != NULL)
		uv_timer_start(&d->timer, on_timer, d->head->due_ms - now, 0);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct pconn *c = s->data;
	struct dir *d = s == (uv_stream_t *)&c->a ? &c->ab : &c->ba;
	struct link *l = c->link;
	struct chunk *k;

	if (n <= 0) {
		free(buf->base);
		if (n < 0)
			conn_close(c);
		return;
	}
	k = calloc(1, sizeof *k);
	if (k == NULL) {
		free(buf->base);
		conn_close(c);
		return;
	}
	k->buf = uv_buf_init(buf->base, (unsigned)n);
	k->due_ms = uv_now(loop) + l->delay_ms + rand_below(l->jitter_ms + 1);
	if (k->due_ms < d->last_due)
		k->due_ms = d->last_due;
	d->last_due = k->due_ms;
	if (d->tail != NULL)
		d->tail->next = k;
	else
		d->head = k;
	d->tail = k;
	d->queued += (size_t)n;
	if (d->queued > PROXY_QUEUE_HIGH && d->reading) {
		uv_read_stop(s);
		d->reading = false;
	}
	dir_flush(d);
}

static void on_connected(uv_connect_t *req, int status)
{
	struct pconn *c = req->data;
	if (status < 0 || c->closing) {
		conn_close(c);
		return;
	}
	dir_resume(&c->ab);
	dir_resume(&c->ba);
}

static void on_accept(uv_stream_t *server, int status)
{
	struct link *l = server->data;
	struct pconn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return;
	c->link = l;
	c->ab.conn = c;
	c->ab.src = &c->a;
	c->ab.dst = &c->b;
	c->ba.conn = c;
	c->ba.src = &c->b;
	c->ba.dst = &c->a;
	uv_tcp_init(loop, &c->a);
	uv_tcp_init(loop, &c->b);
	uv_timer_init(loop, &c->ab.timer);
	uv_timer_init(loop, &c->ba.timer);
	c->open_handles = 4;
	c->a.data = c;
	c->b.data = c;
	c->ab.timer.data = &c->ab;
	c->ba.timer.data = &c->ba;
	c->next = conns;
	if (conns != NULL)
		conns->prev = c;
	conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->a) != 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->a, 1);
	uv_tcp_nodelay(&c->b, 1);
	c->connect.data = c;
	if (uv_tcp_connect(&c->connect, &c->b,
			   (const struct sockaddr *)&l->target,
			   on_connected) != 0)
		conn_close(c);
}

/* Reads the control file into the links; a malformed line is ignored
 * with a message, a missing file leaves everything as it was. */
static void load_control(void)
{
	FILE *f = fopen(control_path, "r");
	char line[256];
	bool first = true;

	if (f == NULL) {
		fprintf(stderr, "proxy: cannot read %s: %s\n", control_path,
			strerror(errno));
		return;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		unsigned node, ms, jitter;
		char word[16];
		if (first) {
			first = false;
			if (sscanf(line, "%u %u", &ms, &jitter) != 2 ||
			    ms > PROXY_DELAY_MAX_MS ||
			    jitter > PROXY_DELAY_MAX_MS) {
				fprintf(stderr, "proxy: bad first line\n");
				break;
			}
			for (unsigned i = 0; i < n_links; i++) {
				links[i].delay_ms = ms;
				links[i].jitter_ms = jitter;
				links[i].stall = false;
			}
			continue;
		}
		if (sscanf(line, "node %u %15s", &node, word) != 2)
			continue;
		for (unsigned i = 0; i < n_links; i++) {
			struct link *l = &links[i];
			if (l->from != node && l->to != node)
				continue;
			if (strcmp(word, "stall") == 0) {
				l->stall = true;
			} else if (sscanf(line, "node %u %u %u", &node, &ms,
					  &jitter) == 3 &&
				   ms <= PROXY_DELAY_MAX_MS &&
				   jitter <= PROXY_DELAY_MAX_MS) {
				l->delay_ms = ms;
				l->jitter_ms = jitter;
			}
		}
	}
	fclose(f);
	for (unsigned i = 0; i < n_links; i++)
		fprintf(stderr, "proxy: link %u->%u delay %u jitter %u%s\n",
			links[i].from, links[i].to, links[i].delay_ms,
			links[i].jitter_ms, links[i].stall ? " stalled" : "");
	/* Chunks held by a stall, or due earlier now, go out. */
	for (struct pconn *c = conns; c != NULL; c = c->next) {
		for (struct chunk *k = c->ab.head; k != NULL; k = k->next)
			if (!c->link->stall &&
			    k->due_ms > uv_now(loop) + c->link->delay_ms)
				k->due_ms = uv_now(loop) + c->link->delay_ms;
		for (struct chunk *k = c->ba.head; k != NULL; k = k->next)
			if (!c->link->stall &&
			    k->due_ms > uv_now(loop) + c->link->delay_ms)
				k->due_ms = uv_now(loop) + c->link->delay_ms;
		c->ab.last_due = c->ab.tail != NULL ? c->ab.tail->due_ms : 0;
		c->ba.last_due = c->ba.tail != NULL ? c->ba.tail->due_ms : 0;
		dir_flush(&c->ab);
		dir_flush(&c->ba);
	}
}

static void on_hup(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	load_control();
}

static void on_term(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	uv_stop(loop);
}

static int parse_addr(const char *text, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	size_t len;
	if (colon == NULL)
		return -1;
	len = (size_t)(colon - text);
	if (len == 0 || len >= sizeof host)
		return -1;
	memcpy(host, text, len);
	host[len] = '\0';
	return uv_ip4_addr(host, atoi(colon + 1), out);
}

static int parse_link(const char *arg, struct link *l)
{
	char copy[256];
	char *save = NULL;
	char *from, *to, *listen_at, *target;

	snprintf(copy, sizeof copy, "%s", arg);
	from = strtok_r(copy, ",", &save);
	to = strtok_r(NULL, ",", &save);
	listen_at = strtok_r(NULL, ",", &save);
	target = strtok_r(NULL, ",", &save);
	if (from == NULL || to == NULL || listen_at == NULL || target == NULL)
		return -1;
	l->from = (unsigned)atoi(from);
	l->to = (unsigned)atoi(to);
	if (parse_addr(listen_at, &l->listen_addr) != 0 ||
	    parse_addr(target, &l->target) != 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	uv_signal_t hup, term, intr;

	loop = uv_default_loop();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
			control_path = argv[++i];
		} else if (strcmp(argv[i], "--link") == 0 && i + 1 < argc &&
			   n_links < PROXY_LINKS_MAX) {
			if (parse_link(argv[++i], &links[n_links]) != 0) {
				fprintf(stderr, "proxy: bad link '%s'\n",
					argv[i]);
				return 2;
			}
			n_links++;
		} else {
			fprintf(stderr,
				"usage: proxy --control FILE --link "
				"FROM,TO,LISTEN_HOST:PORT,TARGET_HOST:PORT "
				"...\n");
			return 2;
		}
	}
	if (control_path == NULL || n_links == 0) {
		fprintf(stderr, "proxy: --control and a --link are needed\n");
		return 2;
	}
	for (unsigned i = 0; i < n_links; i++) {
		struct link *l = &links[i];
		int rv;
		uv_tcp_init(loop, &l->server);
		l->server.data = l;
		rv = uv_tcp_bind(&l->server,
				 (const struct sockaddr *)&l->listen_addr, 0);
		if (rv == 0)
			rv = uv_listen((uv_stream_t *)&l->server, 64,
				       on_accept);
		if (rv != 0) {
			fprintf(stderr, "proxy: listen for link %u->%u: %s\n",
				l->from, l->to, uv_strerror(rv));
			return 1;
		}
	}
	load_control();
	uv_signal_init(loop, &hup);
	uv_signal_start(&hup, on_hup, SIGHUP);
	uv_signal_init(loop, &term);
	uv_signal_start(&term, on_term, SIGTERM);
	uv_signal_init(loop, &intr);
	uv_signal_start(&intr, on_term, SIGINT);
	fprintf(stderr, "proxy: %u links\n", n_links);
	uv_run(loop, UV_RUN_DEFAULT);
	return 0;
}
