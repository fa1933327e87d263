/* libcairn's membership calls: cairn_member_add/remove/promote/demote and
 * cairn_leader_transfer (MEMBER_CHANGE and LEADER_TRANSFER in
 * docs/protocol.md). They are rare, administrative and synchronous, so they
 * do not go through the client's I/O thread: each call opens its own
 * blocking connection, sends one frame, waits for the reply within the
 * client's deadline, follows NOT_LEADER redirects to the leader (unless the
 * client is single_node), and retries after UNAVAILABLE, BUSY or a refused
 * connection with a backoff, moving through the seeds. Used by the CLI
 * (`cairn members`, `cairn leader transfer`) and by cairnd's --join. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_int.h"

/* Largest reply body these calls accept: a member list is a few KiB. */
#define ADMIN_REPLY_BYTES_MAX (1u << 20)

/* What a call sends and what it expects back. */
struct admin_call {
	const char *op;            /* "member add", ... for messages */
	struct wire_buf frame;     /* owned: the request frame */
	uint16_t want;             /* the reply type */
	struct cairn_members *out; /* MEMBERS: may be NULL */
	uint64_t leader;           /* LEADER: the new leader */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > 60000 ? 60000 : (int)(deadline - now);
}

/* Waits until @fd is ready for @events or @deadline passes. Returns 0,
 * or -1 (timed out or failed). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p;
	int ms;
	int rv;

	for (;;) {
		ms = remaining_ms(deadline);
		if (ms == 0)
			return -1;
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		rv = poll(&p, 1, ms);
		if (rv > 0)
			return 0;
		if (rv == 0)
			return -1;
		if (errno != EINTR)
			return -1;
	}
}

/* Connects to @address by @deadline. Returns the socket or -1 with @why
 * (256 bytes). */
static int dial(const char *address, uint64_t deadline, char *why)
{
	char host[CLIENT_ADDRESS_LEN_MAX + 1];
	char port_text[16];
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	struct addrinfo *ai;
	int port;
	int fd = -1;
	int rv;

	if (client_address_split(address, host, &port) != 0) {
		snprintf(why, 256, "%.200s: not host:port", address);
		return -1;
	}
	snprintf(port_text, sizeof port_text, "%d", port);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rv = getaddrinfo(host, port_text, &hints, &res);
	if (rv != 0) {
		snprintf(why, 256, "%.200s: %s", address, gai_strerror(rv));
		return -1;
	}
	snprintf(why, 256, "%.200s: cannot connect", address);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t len = sizeof soerr;

		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		rv = connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (rv != 0 && errno == EINPROGRESS &&
		    wait_fd(fd, POLLOUT, deadline) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 &&
		    soerr == 0)
			rv = 0;
		else if (rv != 0 && soerr != 0)
			snprintf(why, 256, "%.200s: %s", address,
				 strerror(soerr));
		if (rv == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int send_all(int fd, const uint8_t *p, size_t len, uint64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_fd(fd, POLLOUT, deadline) == 0)
			continue;
		return -1;
	}
	return 0;
}

static int recv_all(int fd, uint8_t *p, size_t len, uint64_t deadline)
{
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_fd(fd, POLLIN, deadline) == 0)
			continue;
		return -1;
	}
	return 0;
}

/* Reads the reply to @request_id (skipping anything else). Returns 0 with
 * *body (malloc'ed, the caller frees) or -1. */
static int recv_reply(int fd, uint64_t request_id, uint64_t deadline,
		      struct wire_header *h, uint8_t **body)
{
	uint8_t head[WIRE_HEADER_BYTES];

	for (;;) {
		*body = NULL;
		if (recv_all(fd, head, sizeof head, deadline) != 0 ||
		    wire_header_decode(head, h) != WIRE_OK ||
		    h->body_len > ADMIN_REPLY_BYTES_MAX)
			return -1;
		*body = malloc(h->body_len > 0 ? h->body_len : 1);
		if (*body == NULL)
			return -1;
		if (recv_all(fd, *body, h->body_len, deadline) != 0) {
			free(*body);
			*body = NULL;
			return -1;
		}
		if (h->request_id == request_id)
			return 0;
		free(*body);
	}
}

static void copy_bytes(char *dst, size_t size, struct wire_bytes s)
{
	size_t n = s.len < size - 1 ? s.len : size - 1;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

/* Decodes the expected reply into @a. Returns 0 or CAIRN_EPROTOCOL. */
static int take_reply(struct admin_call *a, const struct wire_header *h,
		      const uint8_t *body)
{
	struct wire_member wm[WIRE_MEMBERS_MAX];
	uint32_t n = 0;

	if (h->type == WIRE_LEADER)
		return wire_decode_leader(body, h->body_len, &a->leader) == 0
			       ? 0
			       : CAIRN_EPROTOCOL;
	if (wire_decode_members(body, h->body_len, &n, wm) != 0)
		return CAIRN_EPROTOCOL;
	if (a->out == NULL)
		return 0;
	memset(a->out, 0, sizeof *a->out);
	a->out->n = n;
	for (uint32_t k = 0; k < n; k++) {
		struct cairn_member *m = &a->out->members[k];

		m->id = wm[k].id;
		m->voter_role = wm[k].role;
		copy_bytes(m->raft_address, sizeof m->raft_address,
			   wm[k].raft_address);
		copy_bytes(m->client_address, sizeof m->client_address,
			   wm[k].client_address);
		copy_bytes(m->http_address, sizeof m->http_address,
			   wm[k].http_address);
	}
	return 0;
}

/* Outcome of one attempt. */
enum attempt {
	ATTEMPT_DONE,     /* final: status set */
	ATTEMPT_REDIRECT, /* go to @leader at once */
	ATTEMPT_RETRY,    /* back off, then try the next node */
};

/* One attempt at @address. */
static enum attempt attempt(cairn_client *c, struct admin_call *a,
			    const char *address, uint64_t deadline,
			    char *leader, int *status, struct cairn_error *err,
			    char *last)
{
	struct wire_header h;
	struct wire_err e;
	uint8_t *body = NULL;
	char text[WIRE_STRING_MAX + 1];
	uint64_t connect_deadline;
	int fd;

	connect_deadline = now_ms() + c->connect_timeout_ms;
	if (connect_deadline > deadline)
		connect_deadline = deadline;
	fd = dial(address, connect_deadline, last);
	if (fd < 0)
		return ATTEMPT_RETRY;
	if (send_all(fd, a->frame.p, a->frame.len, deadline) != 0 ||
	    recv_reply(fd, 1, deadline, &h, &body) != 0) {
		snprintf(last, 256, "%.200s: no reply", address);
		close(fd);
		return ATTEMPT_RETRY;
	}
	close(fd);
	if (h.type == a->want) {
		*status = take_reply(a, &h, body);
		if (*status != 0)
			client_set_error(err, *status,
					 "%s: malformed reply "
					 "from %s",
					 a->op, address);
		free(body);
		return ATTEMPT_DONE;
	}
	if (h.type != WIRE_ERROR || wire_decode_error(body, h.body_len, &e)) {
		free(body);
		*status = CAIRN_EPROTOCOL;
		client_set_error(err, *status,
				 "%s: unexpected reply type 0x%02x from %s",
				 a->op, h.type, address);
		return ATTEMPT_DONE;
	}
	if (e.message.len > 0)
		copy_bytes(text, sizeof text, e.message);
	else
		snprintf(text, sizeof text, "%s", cairn_strerror((int)e.code));
	leader[0] = '\0';
	if (e.leader.len > 0 && e.leader.len <= CLIENT_ADDRESS_LEN_MAX &&
	    memchr(e.leader.p, '\0', e.leader.len) == NULL)
		copy_bytes(leader, CLIENT_ADDRESS_LEN_MAX + 1, e.leader);
	free(body);
	switch (e.code) {
	case WIRE_ENOT_LEADER:
		snprintf(last, 256, "%.200s: %.50s", address, text);
		if (c->single_node || leader[0] == '\0' ||
		    strcmp(leader, address) == 0) {
			if (c->single_node) {
				*status = CAIRN_ENOT_LEADER;
				client_set_error(err, *status, "%s: %s", a->op,
						 text);
				if (err != NULL)
					snprintf(err->leader,
						 sizeof err->leader, "%s",
						 leader);
				return ATTEMPT_DONE;
			}
			return ATTEMPT_RETRY;
		}
		return ATTEMPT_REDIRECT;
	case WIRE_EUNAVAILABLE:
	case WIRE_EBUSY:
		snprintf(last, 256, "%.200s: %.50s", address, text);
		return ATTEMPT_RETRY;
	default:
		*status = (int)e.code;
		client_set_error(err, *status, "%s: %s", a->op, text);
		return ATTEMPT_DONE;
	}
}

/* Runs @a against the cluster within the client's deadline. */
static int run(cairn_client *c, struct admin_call *a, struct cairn_error *err)
{
	uint64_t deadline = now_ms() + c->deadline_ms;
	char target[CLIENT_ADDRESS_LEN_MAX + 1];
	char leader[CLIENT_ADDRESS_LEN_MAX + 1];
	char last[256];
	unsigned backoff_ms = CLIENT_BACKOFF_MIN_MS;
	unsigned hops = 0;
	size_t next_seed = 0;
	int status = 0;

	if (err != NULL)
		memset(err, 0, sizeof *err);
	snprintf(last, sizeof last, "no node answered");
	/* Seeds are written at open and never change afterwards. */
	snprintf(target, sizeof target, "%s", c->addrs[0]);
	for (;;) {
		switch (attempt(c, a, target, deadline, leader, &status, err,
				last)) {
		case ATTEMPT_DONE:
			return status;
		case ATTEMPT_REDIRECT:
			snprintf(target, sizeof target, "%s", leader);
			if (++hops <= CLIENT_HOPS_MAX)
				continue;
			break;
		case ATTEMPT_RETRY:
			if (!c->single_node) {
				next_seed = (next_seed + 1) % c->n_seeds;
				snprintf(target, sizeof target, "%s",
					 c->addrs[next_seed]);
			}
			break;
		}
		hops = 0;
		if (remaining_ms(deadline) <= (int)backoff_ms) {
			client_set_error(err, CAIRN_ETIMEOUT,
					 "%s: deadline exceeded (%u ms); last: "
					 "%s",
					 a->op, c->deadline_ms, last);
			return CAIRN_ETIMEOUT;
		}
		{
			struct timespec ts = { 0, (long)backoff_ms * 1000000L };

			nanosleep(&ts, NULL);
		}
		backoff_ms *= 2;
		if (backoff_ms > CLIENT_BACKOFF_MAX_MS)
			backoff_ms = CLIENT_BACKOFF_MAX_MS;
	}
}

static int encode_status(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case WIRE_ENCODE_TOO_LARGE:
		return CAIRN_ETOO_LARGE;
	case WIRE_ENCODE_INVALID:
		return CAIRN_EARG;
	default:
		return CAIRN_ENOMEM;
	}
}

static int member_change(cairn_client *c, const char *op, uint8_t wop,
			 uint64_t id, const char *raft, const char *client,
			 const char *http, bool force,
			 struct cairn_members *out, struct cairn_error *err)
{
	struct wire_member_change m;
	struct admin_call a;
	int rv;

	if (c == NULL) {
		client_set_error(err, CAIRN_EARG, "%s: client is NULL", op);
		return CAIRN_EARG;
	}
	if (id == 0) {
		client_set_error(err, CAIRN_EARG, "%s: member id 0", op);
		return CAIRN_EARG;
	}
	memset(&m, 0, sizeof m);
	m.op = wop;
	m.id = id;
	m.flags = force ? WIRE_MEMBER_FORCE : 0;
	if (raft != NULL) {
		m.raft_address.p = (const uint8_t *)raft;
		m.raft_address.len = (uint32_t)strlen(raft);
	}
	if (client != NULL) {
		m.client_address.p = (const uint8_t *)client;
		m.client_address.len = (uint32_t)strlen(client);
	}
	if (http != NULL) {
		m.http_address.p = (const uint8_t *)http;
		m.http_address.len = (uint32_t)strlen(http);
	}
	memset(&a, 0, sizeof a);
	a.op = op;
	a.want = WIRE_MEMBERS;
	a.out = out;
	wire_buf_init(&a.frame);
	rv = encode_status(wire_encode_member_change(&a.frame, 1, &m));
	if (rv != 0) {
		wire_buf_close(&a.frame);
		client_set_error(err, rv, "%s: %s", op,
				 rv == CAIRN_EARG ? "invalid arguments "
						    "(a raft address is "
						    "required to add)"
						  : cairn_strerror(rv));
		return rv;
	}
	rv = run(c, &a, err);
	wire_buf_close(&a.frame);
	return rv;
}

int cairn_member_add(cairn_client *c, uint64_t id, const char *raft_address,
		     const char *client_address, const char *http_address,
		     struct cairn_members *out, struct cairn_error *err)
{
	if (raft_address == NULL || raft_address[0] == '\0') {
		client_set_error(err, CAIRN_EARG,
				 "member add: a raft address is required");
		return CAIRN_EARG;
	}
	return member_change(c, "member add", WIRE_MEMBER_ADD, id, raft_address,
			     client_address, http_address, false, out, err);
}

int cairn_member_remove(cairn_client *c, uint64_t id, bool force,
			struct cairn_members *out, struct cairn_error *err)
{
	return member_change(c, "member remove", WIRE_MEMBER_REMOVE, id, NULL,
			     NULL, NULL, force, out, err);
}

int cairn_member_promote(cairn_client *c, uint64_t id,
			 struct cairn_members *out, struct cairn_error *err)
{
	return member_change(c, "member promote", WIRE_MEMBER_PROMOTE, id, NULL,
			     NULL, NULL, false, out, err);
}

int cairn_member_demote(cairn_client *c, uint64_t id, bool force,
			struct cairn_members *out, struct cairn_error *err)
{
	return member_change(c, "member demote", WIRE_MEMBER_DEMOTE, id, NULL,
			     NULL, NULL, force, out, err);
}

int cairn_leader_transfer(cairn_client *c, uint64_t id, uint64_t *new_leader,
			  struct cairn_error *err)
{
	struct admin_call a;
	int rv;

	if (c == NULL) {
		client_set_error(err, CAIRN_EARG,
				 "leader transfer: client is NULL");
		return CAIRN_EARG;
	}
	memset(&a, 0, sizeof a);
	a.op = "leader transfer";
	a.want = WIRE_LEADER;
	wire_buf_init(&a.frame);
	rv = encode_status(wire_encode_leader_transfer(&a.frame, 1, id));
	if (rv != 0) {
		wire_buf_close(&a.frame);
		client_set_error(err, rv, "leader transfer: %s",
				 cairn_strerror(rv));
		return rv;
	}
	rv = run(c, &a, err);
	if (rv == 0 && new_leader != NULL)
		*new_leader = a.leader;
	wire_buf_close(&a.frame);
	return rv;
}
