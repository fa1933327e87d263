/* node/disk.c: the free-space guard of the data directory (see disk.h for
 * what it does and who uses it).
 *
 * The running guard is a timer on the node's loop. Its state is one bit,
 * low or not, moved by each check:
 *
 *   OK --free < reserve--> LOW (log disk_low; a leader starts a leadership
 *   transfer, retried at every check while it still leads)
 *   LOW --free >= reserve--> OK (log disk_ok)
 *
 * The start-up wait runs before anything else is on the loop: a timer, the
 * two signal handles and an optional listener that answers every HTTP
 * request with 503; it ends when there is room or a signal arrives. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "disk.h"
#include "node.h"

/* The running guard. */
struct disk {
	struct node *node;                  /* borrowed: the owner */
	uv_timer_t timer;                   /* the periodic check */
	uint64_t free_bytes;                /* at the last check */
	bool low;                           /* free_bytes < reserve */
	bool checked;                       /* a check succeeded once */
	bool stat_failed;                   /* the last statvfs failed */
	bool transfer_inflight;             /* transfer's callback is due */
	bool transfer_logged;               /* a refusal was logged */
	bool closing;                       /* disk_close was called */
	struct consensus_transfer transfer; /* while transfer_inflight */
};

int disk_free_bytes_of(const char *path, uint64_t *free_bytes)
{
	struct statvfs st;

	if (statvfs(path, &st) != 0)
		return errno;
	*free_bytes = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
	return 0;
}

/* ------------------------------------------------------------------------
 * The running guard
 * ------------------------------------------------------------------------ */

static void on_transfer(struct consensus_transfer *req, int status)
{
	struct disk *d = req->data;

	d->transfer_inflight = false;
	if (status == 0)
		log_info("disk_low_leadership_moved", "leader=%" PRIu64,
			 req->new_leader);
	else
		log_warn("disk_low_transfer_failed", "reason=\"%s\"",
			 consensus_strerror(status));
}

/* A leader whose disk is low hands leadership to the most caught-up
 * voter. */
static void hand_over(struct disk *d)
{
	struct node *n = d->node;
	int rv;

	if (d->transfer_inflight || !n->cons_open || n->state != NODE_RUNNING ||
	    !consensus_is_leader(&n->cons))
		return;
	memset(&d->transfer, 0, sizeof d->transfer);
	d->transfer.id = 0;
	d->transfer.data = d;
	rv = consensus_transfer(&n->cons, &d->transfer, on_transfer);
	if (rv == 0) {
		d->transfer_inflight = true;
		log_info("disk_low_transfer",
			 "reason=\"free space below the "
			 "reserve\"");
		return;
	}
	/* A single voter, or a change in progress: retried at the next
	 * check; said once per low period. */
	if (!d->transfer_logged)
		log_warn("disk_low_transfer_failed", "reason=\"%s: %s\"",
			 consensus_strerror(rv), n->cons.errmsg);
	d->transfer_logged = true;
}

static void check(struct disk *d)
{
	struct node *n = d->node;
	uint64_t reserve = n->cfg->disk_reserve;
	uint64_t free_bytes = 0;
	int rv;

	rv = disk_free_bytes_of(n->cfg->data_dir, &free_bytes);
	if (rv != 0) {
		/* Keep the last verdict; say so once. */
		if (!d->stat_failed)
			log_warn("disk_check_failed",
				 "path=\"%s\" error=\"%s\"", n->cfg->data_dir,
				 strerror(rv));
		d->stat_failed = true;
		return;
	}
	d->stat_failed = false;
	d->checked = true;
	d->free_bytes = free_bytes;
	if (!d->low && free_bytes < reserve) {
		d->low = true;
		d->transfer_logged = false;
		log_warn("disk_low",
			 "free_bytes=%" PRIu64 " reserve_bytes=%" PRIu64
			 " action=\"appends refused, leadership handed over\"",
			 free_bytes, reserve);
	} else if (d->low && free_bytes >= reserve) {
		d->low = false;
		log_info("disk_ok",
			 "free_bytes=%" PRIu64 " reserve_bytes=%" PRIu64,
			 free_bytes, reserve);
	}
	if (d->low)
		hand_over(d);
}

static void on_timer(uv_timer_t *t)
{
	check(t->data);
}

int disk_start(struct node *n)
{
	struct disk *d;
	int rv;

	d = calloc(1, sizeof *d);
	if (d == NULL)
		return UV_ENOMEM;
	d->node = n;
	rv = uv_timer_init(n->loop, &d->timer);
	if (rv != 0) {
		free(d);
		return rv;
	}
	d->timer.data = d;
	n->disk = d;
	check(d);
	uv_timer_start(&d->timer, on_timer, DISK_CHECK_MS, DISK_CHECK_MS);
	log_info("disk_guard_started",
		 "path=\"%s\" free_bytes=%" PRIu64 " reserve_bytes=%" PRIu64
		 " check_ms=%d",
		 n->cfg->data_dir, d->free_bytes, n->cfg->disk_reserve,
		 DISK_CHECK_MS);
	return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void disk_close(struct node *n)
{
	struct disk *d = n->disk;

	if (d == NULL)
		return;
	n->disk = NULL;
	d->closing = true;
	uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

bool disk_low(const struct node *n)
{
	return n->disk != NULL && n->disk->low;
}

uint64_t disk_free_bytes(const struct node *n)
{
	return n->disk != NULL ? n->disk->free_bytes : 0;
}

/* ------------------------------------------------------------------------
 * The start-up wait
 * ------------------------------------------------------------------------ */

/* The answer to every request while waiting. */
static const char wait_reply[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: application/json\r\n"
	"Connection: close\r\n"
	"Content-Length: 63\r\n"
	"\r\n"
	"{\"status\":\"disk_low\",\"error\":\"waiting for free space on "
	"disk\"}\n";

/* One connection to the waiting listener. */
struct wait_conn {
	uv_tcp_t tcp;     /* the socket */
	uv_write_t write; /* the one reply */
	bool answered;    /* the reply was queued */
	char buf[512];    /* request bytes: read and dropped */
};

/* The start-up wait's handles. */
struct wait {
	const struct node_config *cfg; /* borrowed */
	uv_timer_t timer;              /* the periodic check */
	uv_signal_t sigterm;           /* stops the wait: exit 0 */
	uv_signal_t sigint;            /* the same */
	uv_tcp_t listener;             /* GET /health and the rest: 503 */
	bool listening;                /* listener initialized */
	int result;                    /* 0 room, 1 signal; -1 running */
	uint64_t next_log_ms;          /* when to log disk_wait again */
};

static void wait_conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void wait_written(uv_write_t *w, int status)
{
	struct wait_conn *wc = w->data;

	(void)status;
	uv_close((uv_handle_t *)&wc->tcp, wait_conn_closed);
}

static void wait_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct wait_conn *wc = h->data;

	(void)hint;
	*buf = uv_buf_init(wc->buf, sizeof wc->buf);
}

static void wait_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct wait_conn *wc = s->data;
	uv_buf_t out = uv_buf_init((char *)wait_reply, sizeof wait_reply - 1);

	(void)buf;
	if (nread == 0)
		return;
	uv_read_stop(s);
	if (nread < 0 || wc->answered ||
	    uv_write(&wc->write, s, &out, 1, wait_written) != 0) {
		uv_close((uv_handle_t *)&wc->tcp, wait_conn_closed);
		return;
	}
	wc->answered = true;
}

static void wait_accept(uv_stream_t *listener, int status)
{
	struct wait_conn *wc;

	if (status != 0)
		return;
	wc = calloc(1, sizeof *wc);
	if (wc == NULL)
		return;
	uv_tcp_init(listener->loop, &wc->tcp);
	wc->tcp.data = wc;
	wc->write.data = wc;
	if (uv_accept(listener, (uv_stream_t *)&wc->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)&wc->tcp, wait_alloc, wait_read) != 0)
		uv_close((uv_handle_t *)&wc->tcp, wait_conn_closed);
}

/* Listens on cfg->http_address; a failure only means no /health while
 * waiting. */
static void wait_listen(struct wait *w, uv_loop_t *loop)
{
	char host[CONSENSUS_ADDRESS_MAX];
	const char *colon = strrchr(w->cfg->http_address, ':');
	struct sockaddr_storage sa;
	size_t len;
	int port;
	int rv;

	if (colon == NULL)
		return;
	len = (size_t)(colon - w->cfg->http_address);
	if (len >= sizeof host)
		return;
	memcpy(host, w->cfg->http_address, len);
	host[len] = '\0';
	port = atoi(colon + 1);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		memmove(host, host + 1, len - 2);
		host[len - 2] = '\0';
		rv = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa);
	} else {
		rv = uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
	}
	if (rv != 0)
		return;
	uv_tcp_init(loop, &w->listener);
	w->listener.data = w;
	w->listening = true;
	rv = uv_tcp_bind(&w->listener, (struct sockaddr *)&sa, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&w->listener, 64, wait_accept);
	if (rv != 0)
		log_warn("disk_wait_listen_failed", "address=%s error=\"%s\"",
			 w->cfg->http_address, uv_strerror(rv));
}

static void wait_stop(struct wait *w, int result)
{
	if (w->result >= 0)
		return;
	w->result = result;
	uv_timer_stop(&w->timer);
	uv_signal_stop(&w->sigterm);
	uv_signal_stop(&w->sigint);
	uv_close((uv_handle_t *)&w->timer, NULL);
	uv_close((uv_handle_t *)&w->sigterm, NULL);
	uv_close((uv_handle_t *)&w->sigint, NULL);
	if (w->listening)
		uv_close((uv_handle_t *)&w->listener, NULL);
}

static void wait_check(uv_timer_t *t)
{
	struct wait *w = t->data;
	uint64_t free_bytes = 0;
	int rv;

	rv = disk_free_bytes_of(w->cfg->data_dir, &free_bytes);
	if (rv == 0 && free_bytes >= w->cfg->disk_reserve) {
		log_info("disk_ok",
			 "free_bytes=%" PRIu64 " reserve_bytes=%" PRIu64
			 " action=\"starting\"",
			 free_bytes, w->cfg->disk_reserve);
		wait_stop(w, 0);
		return;
	}
	if (uv_now(t->loop) >= w->next_log_ms) {
		w->next_log_ms = uv_now(t->loop) + DISK_WAIT_LOG_MS;
		log_warn("disk_wait",
			 "free_bytes=%" PRIu64 " reserve_bytes=%" PRIu64
			 " reason=\"free space below the reserve: not "
			 "starting until there is room\"",
			 free_bytes, w->cfg->disk_reserve);
	}
}

static void wait_signal(uv_signal_t *s, int signum)
{
	struct wait *w = s->data;

	log_info("shutting_down",
		 "signal=%s reason=\"while waiting for "
		 "disk space\"",
		 signum == SIGTERM ? "SIGTERM" : "SIGINT");
	wait_stop(w, 1);
}

int disk_wait_for_space(uv_loop_t *loop, const struct node_config *cfg)
{
	struct wait w;
	uint64_t free_bytes = 0;
	int rv;

	rv = disk_free_bytes_of(cfg->data_dir, &free_bytes);
	if (rv != 0)
		return -1;
	if (free_bytes >= cfg->disk_reserve)
		return 0;
	memset(&w, 0, sizeof w);
	w.cfg = cfg;
	w.result = -1;
	uv_timer_init(loop, &w.timer);
	w.timer.data = &w;
	uv_signal_init(loop, &w.sigterm);
	uv_signal_init(loop, &w.sigint);
	w.sigterm.data = &w;
	w.sigint.data = &w;
	uv_signal_start(&w.sigterm, wait_signal, SIGTERM);
	uv_signal_start(&w.sigint, wait_signal, SIGINT);
	if (cfg->http_address != NULL && cfg->http_address[0] != '\0')
		wait_listen(&w, loop);
	/* The first check logs at once. */
	uv_timer_start(&w.timer, wait_check, 0, DISK_CHECK_MS);
	/* Runs until wait_stop closed the handles (connections being
	 * answered finish too). */
	uv_run(loop, UV_RUN_DEFAULT);
	return w.result < 0 ? 1 : w.result;
}
