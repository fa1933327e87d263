/* Starting and stopping Cairn's Raft node (libraft 0.22.1's legacy API on
 * the raft_uv disk log and TCP transport), its watchdog, and the state
 * queries (status, leader). The write path is in pipeline.c, the state
 * machine in fsm.c, the member table in members.c. Used by node/ through
 * consensus.h.
 *
 * Shutdown is a small state machine (enum close_step), each step entered
 * once and in order:
 *
 *   NONE --consensus_close--> DRAIN (leader with entries in flight: wait
 *   for them, bounded) --> TRANSFER (leader: raft_transfer, bounded)
 *   --> RAFT (raft_close; libraft fails what is pending) --> HANDLES (our
 *   libuv handles close, then raft_uv_close and raft_uv_tcp_close) --> the
 *   user's callback. */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "consensus_int.h"
#include "log.h"

/* The watchdog's period; also how often a leader checks the member
 * table. */
#define TICK_MS 200
/* Longest wait for in-flight entries to commit before a leader that is
 * closing hands over leadership. */
#define CLOSE_DRAIN_MS 2000
/* Longest wait for a leadership transfer when closing. */
#define CLOSE_TRANSFER_MS 3000
/* Entries written to the Raft log but not acknowledged as stored for this
 * long mean the disk stopped answering or libraft dropped a failed write
 * (0.22.1 only asserts on it, and Debian builds it without assertions): the
 * node cannot make progress and exits instead of hanging. */
#define LOG_STALL_MS 30000

const char *consensus_strerror(int code)
{
	switch (code) {
#define CONSENSUS_ERROR_CASE(name, value, msg) \
	case value:                            \
		return msg;
		CONSENSUS_ERRORS(CONSENSUS_ERROR_CASE)
#undef CONSENSUS_ERROR_CASE
	default:
		return "unknown error";
	}
}

void consensus_int_errorf(struct consensus *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
	va_end(ap);
}

static int set_error(struct consensus *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_error(struct consensus *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

/* mkdir -p. */
static int make_dir(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);
	size_t k;

	if (len == 0 || len >= sizeof buf)
		return ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (k = 1; k <= len; k++) {
		if (buf[k] != '/' && buf[k] != '\0')
			continue;
		buf[k] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return errno;
		buf[k] = path[k];
	}
	return 0;
}

static bool address_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strlen(s) < CONSENSUS_ADDRESS_MAX;
}

static bool optional_address_ok(const char *s)
{
	return s == NULL || strlen(s) < CONSENSUS_ADDRESS_MAX;
}

static int check_config(struct consensus *c, const struct consensus_config *cfg)
{
	unsigned k;

	if (cfg->id == 0)
		return set_error(c, CONSENSUS_ECONFIG, "start: node id is 0");
	if (cfg->dir == NULL || cfg->dir[0] == '\0')
		return set_error(c, CONSENSUS_ECONFIG,
				 "start: no raft directory");
	if (!address_ok(cfg->raft_address) ||
	    !optional_address_ok(cfg->client_address) ||
	    !optional_address_ok(cfg->http_address))
		return set_error(c, CONSENSUS_ECONFIG,
				 "start: an address is missing or longer "
				 "than %d bytes",
				 CONSENSUS_ADDRESS_MAX - 1);
	if (cfg->n_peers > CONSENSUS_MEMBERS_MAX)
		return set_error(c, CONSENSUS_ECONFIG,
				 "start: %u peers, at most %d", cfg->n_peers,
				 CONSENSUS_MEMBERS_MAX);
	if (cfg->n_peers > 0 && cfg->peers == NULL)
		return set_error(c, CONSENSUS_ECONFIG, "start: no peer list");
	for (k = 0; k < cfg->n_peers; k++) {
		const struct consensus_member *p = &cfg->peers[k];
		unsigned j;

		if (p->id == 0 || !address_ok(p->raft_address) ||
		    memchr(p->client_address, '\0', CONSENSUS_ADDRESS_MAX) ==
			    NULL ||
		    memchr(p->http_address, '\0', CONSENSUS_ADDRESS_MAX) ==
			    NULL)
			return set_error(c, CONSENSUS_ECONFIG,
					 "start: peer %u is invalid", k);
		for (j = 0; j < k; j++)
			if (cfg->peers[j].id == p->id)
				return set_error(c, CONSENSUS_ECONFIG,
						 "start: peer id %llu appears "
						 "twice",
						 (unsigned long long)p->id);
	}
	if (!cfg->join) {
		bool self = false;

		for (k = 0; k < cfg->n_peers; k++)
			self = self || cfg->peers[k].id == cfg->id;
		if (!self)
			return set_error(c, CONSENSUS_ECONFIG,
					 "start: the peer list must include "
					 "this node (id %llu) unless joining",
					 (unsigned long long)cfg->id);
	}
	return 0;
}

/* Copies the configuration and applies the defaults. */
static int copy_config(struct consensus *c, struct consensus_int *i,
		       const struct consensus_config *cfg)
{
	i->id = cfg->id;
	i->dir = strdup(cfg->dir);
	if (i->dir == NULL)
		return set_error(c, CONSENSUS_ENOMEM, "start: out of memory");
	snprintf(i->raft_address, sizeof i->raft_address, "%s",
		 cfg->raft_address);
	snprintf(i->client_address, sizeof i->client_address, "%s",
		 cfg->client_address != NULL ? cfg->client_address : "");
	snprintf(i->http_address, sizeof i->http_address, "%s",
		 cfg->http_address != NULL ? cfg->http_address : "");
	if (cfg->n_peers > 0) {
		i->peers = calloc(cfg->n_peers, sizeof *i->peers);
		if (i->peers == NULL)
			return set_error(c, CONSENSUS_ENOMEM,
					 "start: out of memory");
		memcpy(i->peers, cfg->peers, sizeof *i->peers * cfg->n_peers);
		i->n_peers = cfg->n_peers;
	}
	i->election_timeout_ms =
		cfg->election_timeout_ms > 0
			? cfg->election_timeout_ms
			: CONSENSUS_ELECTION_TIMEOUT_MS_DEFAULT;
	i->heartbeat_timeout_ms =
		cfg->heartbeat_timeout_ms > 0
			? cfg->heartbeat_timeout_ms
			: CONSENSUS_HEARTBEAT_TIMEOUT_MS_DEFAULT;
	i->snapshot_threshold = cfg->snapshot_threshold > 0
					? cfg->snapshot_threshold
					: CONSENSUS_SNAPSHOT_THRESHOLD_DEFAULT;
	i->snapshot_trailing = cfg->snapshot_trailing > 0
				       ? cfg->snapshot_trailing
				       : CONSENSUS_SNAPSHOT_TRAILING_DEFAULT;
	i->entry_bytes_max = cfg->entry_bytes_max > 0
				     ? cfg->entry_bytes_max
				     : CONSENSUS_ENTRY_BYTES_MAX_DEFAULT;
	i->inflight_entries_max =
		cfg->inflight_entries_max > 0
			? cfg->inflight_entries_max
			: CONSENSUS_INFLIGHT_ENTRIES_MAX_DEFAULT;
	i->on_applied = cfg->on_applied;
	i->on_pipeline_ready = cfg->on_pipeline_ready;
	i->arg = cfg->arg;
	if (i->heartbeat_timeout_ms >= i->election_timeout_ms)
		return set_error(c, CONSENSUS_ECONFIG,
				 "start: heartbeat timeout %u ms must be "
				 "below the election timeout %u ms",
				 i->heartbeat_timeout_ms,
				 i->election_timeout_ms);
	if (i->entry_bytes_max > STORE_ENTRY_BYTES_MAX)
		return set_error(c, CONSENSUS_ECONFIG,
				 "start: entry_bytes_max %zu above %u",
				 i->entry_bytes_max, STORE_ENTRY_BYTES_MAX);
	return 0;
}

static void free_int(struct consensus_int *i)
{
	change_free(i);
	store_results_close(&i->results);
	free(i->peers);
	free(i->dir);
	free(i);
}

/* ------------------------------------------------------------------------
 * The loop's handles: check (pipeline), tick (watchdog)
 * ------------------------------------------------------------------------ */

static void log_role(struct consensus_int *i);

static void check_cb(uv_check_t *check)
{
	struct consensus_int *i = check->data;

	/* A new leader publishes missing member records at once rather than
	 * at the next tick, so redirects name it as soon as possible. */
	if (consensus_int_is_leader(i) &&
	    i->members_term != i->raft.current_term) {
		i->members_term = i->raft.current_term;
		log_role(i);
		members_propose(i);
	}
	pipeline_pump(i);
	/* Everything that could go has gone (or waits for room, which an
	 * entry's completion makes): poll may block again. */
	if (uv_is_active((uv_handle_t *)&i->idle))
		uv_idle_stop(&i->idle);
}

/* Logs role changes: leader_elected, became_follower (with the leader once
 * known), became_candidate. */
static void log_role(struct consensus_int *i)
{
	unsigned short state = raft_state(&i->raft);
	raft_term term = i->raft.current_term;
	raft_id leader = 0;
	const char *address = NULL;

	if (state != RAFT_UNAVAILABLE)
		raft_leader(&i->raft, &leader, &address);
	if (state == i->seen_state && term == i->seen_term &&
	    leader == i->seen_leader)
		return;
	if (state == RAFT_LEADER &&
	    (i->seen_state != RAFT_LEADER || term != i->seen_term))
		log_info("leader_elected", "term=%llu",
			 (unsigned long long)term);
	else if (state == RAFT_FOLLOWER &&
		 (i->seen_state != RAFT_FOLLOWER || leader != i->seen_leader))
		log_info("became_follower", "leader=%llu term=%llu",
			 (unsigned long long)leader, (unsigned long long)term);
	else if (state == RAFT_CANDIDATE && i->seen_state != RAFT_CANDIDATE)
		log_debug("became_candidate", "term=%llu",
			  (unsigned long long)term);
	i->seen_state = state;
	i->seen_term = term;
	i->seen_leader = leader;
}

/* Exits when the log stopped being stored: entries appended but not
 * acknowledged by the disk for LOG_STALL_MS. */
static void check_stall(struct consensus_int *i)
{
	raft_index last = raft_last_index(&i->raft);
	raft_index stored = i->raft.last_stored;
	uint64_t now = uv_now(i->loop);

	if (stored >= last || stored != i->stall_stored) {
		i->stall_stored = stored;
		i->stall_since_ms = stored >= last ? 0 : now;
		return;
	}
	if (i->stall_since_ms == 0) {
		i->stall_since_ms = now;
		return;
	}
	if (now - i->stall_since_ms >= LOG_STALL_MS) {
		log_error("raft_log_stalled",
			  "reason=\"entries up to %llu were written but the "
			  "log is stored only up to %llu for %u ms\"",
			  (unsigned long long)last, (unsigned long long)stored,
			  LOG_STALL_MS);
		exit(EXIT_FAILURE);
	}
}

void consensus_int_bound_log(struct consensus_int *i)
{
	uint64_t avg = i->entry_bytes_avg / 16;
	uint64_t want = (uint64_t)i->snapshot_trailing + i->snapshot_threshold;
	uint64_t fit;
	unsigned trailing = i->snapshot_trailing;
	unsigned threshold = i->snapshot_threshold;

	if (avg == 0)
		return;
	fit = i->log_bytes_budget / avg;
	if (fit < want) {
		trailing = (unsigned)(i->snapshot_trailing * fit / want);
		threshold = (unsigned)(i->snapshot_threshold * fit / want);
		if (trailing < CONSENSUS_TRAILING_MIN)
			trailing = CONSENSUS_TRAILING_MIN;
		if (threshold < CONSENSUS_THRESHOLD_MIN)
			threshold = CONSENSUS_THRESHOLD_MIN;
		if (trailing > i->snapshot_trailing)
			trailing = i->snapshot_trailing;
		if (threshold > i->snapshot_threshold)
			threshold = i->snapshot_threshold;
	}
	/* Move down on a change of a sixteenth or more, so the retained log
	 * overshoots the budget by at most that much; up only on a quarter
	 * or more (or back to the configured values), so a drifting average
	 * does not churn. */
	if (trailing == i->cur_trailing && threshold == i->cur_threshold)
		return;
	if (trailing != i->snapshot_trailing &&
	    (uint64_t)trailing * 16 > (uint64_t)i->cur_trailing * 15 &&
	    (uint64_t)trailing * 4 < (uint64_t)i->cur_trailing * 5)
		return;
	i->cur_trailing = trailing;
	i->cur_threshold = threshold;
	raft_set_snapshot_trailing(&i->raft, trailing);
	raft_set_snapshot_threshold(&i->raft, threshold);
	log_info("log_bounds",
		 "snapshot_trailing=%u snapshot_threshold=%u "
		 "entry_bytes_avg=%llu budget_bytes=%llu",
		 trailing, threshold, (unsigned long long)avg,
		 (unsigned long long)i->log_bytes_budget);
}

static void tick_cb(uv_timer_t *timer)
{
	struct consensus_int *i = timer->data;

	if (raft_state(&i->raft) == RAFT_UNAVAILABLE) {
		log_error("raft_unavailable", "reason=\"%s\"",
			  raft_errmsg(&i->raft));
		exit(EXIT_FAILURE);
	}
	check_stall(i);
	consensus_int_bound_log(i);
	log_role(i);
	if (consensus_int_is_leader(i))
		members_propose(i);
}

/* ------------------------------------------------------------------------
 * Start
 * ------------------------------------------------------------------------ */

static int bootstrap(struct consensus *c, struct consensus_int *i)
{
	struct raft_configuration conf;
	unsigned k;
	int rv;

	raft_configuration_init(&conf);
	for (k = 0; k < i->n_peers; k++) {
		rv = raft_configuration_add(&conf, i->peers[k].id,
					    i->peers[k].raft_address,
					    RAFT_VOTER);
		if (rv != 0) {
			raft_configuration_close(&conf);
			return set_error(c, CONSENSUS_ECONFIG,
					 "start raft: bootstrap: peer %llu: "
					 "%s",
					 (unsigned long long)i->peers[k].id,
					 raft_strerror(rv));
		}
	}
	rv = raft_bootstrap(&i->raft, &conf);
	raft_configuration_close(&conf);
	if (rv == RAFT_CANTBOOTSTRAP) {
		/* The directory holds Raft state already: a restart. */
		return 0;
	}
	if (rv != 0)
		return set_error(c, CONSENSUS_EIO, "start raft: bootstrap: %s",
				 raft_errmsg(&i->raft));
	log_info("raft_bootstrapped", "voters=%u", i->n_peers);
	return 0;
}

/* The Raft instance failed to start after raft_init: its close is
 * asynchronous; the rest is released when it completes. */
static void start_failed_close_cb(struct raft *r)
{
	struct consensus_int *i = r->data;

	raft_uv_close(&i->io);
	raft_uv_tcp_close(&i->transport);
	free_int(i);
}

int consensus_start(struct consensus *c, uv_loop_t *loop, struct store *store,
		    const struct consensus_config *cfg)
{
	struct consensus_int *i;
	int rv;

	memset(c->errmsg, 0, sizeof c->errmsg);
	c->i = NULL;
	c->stale = false;
	c->state_needed_ = cfg->on_state_needed;
	rv = check_config(c, cfg);
	if (rv != 0)
		return rv;
	i = calloc(1, sizeof *i);
	if (i == NULL)
		return set_error(c, CONSENSUS_ENOMEM, "start: out of memory");
	i->c = c;
	i->loop = loop;
	i->store = store;
	store_results_init(&i->results);
	rv = copy_config(c, i, cfg);
	if (rv != 0)
		goto err_after_alloc;
	rv = members_load(i);
	if (rv != 0)
		goto err_after_alloc;
	rv = make_dir(i->dir);
	if (rv != 0) {
		rv = set_error(c, CONSENSUS_EIO, "start raft: create %s: %s",
			       i->dir, strerror(rv));
		goto err_after_alloc;
	}

	/* libraft's TCP transport writes with uv_write, and a peer that
	 * closed its end makes the kernel raise SIGPIPE, which by default
	 * ends the process. Ignore it unless the program chose otherwise. */
	{
		struct sigaction old;

		if (sigaction(SIGPIPE, NULL, &old) == 0 &&
		    old.sa_handler == SIG_DFL)
			signal(SIGPIPE, SIG_IGN);
	}
	/* 0.22.1 refuses a transport whose version is not set. */
	i->transport.version = 1;
	i->transport.data = NULL;
	rv = raft_uv_tcp_init(&i->transport, loop);
	if (rv != 0) {
		rv = set_error(c, CONSENSUS_EIO, "start raft: transport: %s",
			       i->transport.errmsg);
		goto err_after_alloc;
	}
	rv = raft_uv_init(&i->io, loop, i->dir, &i->transport);
	if (rv != 0) {
		rv = set_error(c, CONSENSUS_EIO, "start raft: %s: %s", i->dir,
			       i->io.errmsg);
		goto err_after_tcp_init;
	}
	/* A corrupt log stops the node (RAFT_CORRUPT at start) rather than
	 * being moved aside, which would forget acknowledged entries. */
	raft_uv_set_auto_recovery(&i->io, false);
	fsm_setup(i);
	rv = raft_init(&i->raft, &i->io, &i->fsm, i->id, i->raft_address);
	if (rv != 0) {
		rv = set_error(c, CONSENSUS_EIO, "start raft: %s",
			       raft_errmsg(&i->raft));
		goto err_after_uv_init;
	}
	i->raft.data = i;
	raft_set_pre_vote(&i->raft, true);
	raft_set_election_timeout(&i->raft, i->election_timeout_ms);
	raft_set_heartbeat_timeout(&i->raft, i->heartbeat_timeout_ms);
	raft_set_snapshot_threshold(&i->raft, i->snapshot_threshold);
	raft_set_snapshot_trailing(&i->raft, i->snapshot_trailing);
	i->cur_threshold = i->snapshot_threshold;
	i->cur_trailing = i->snapshot_trailing;
	i->log_bytes_budget = cfg->log_bytes_budget > 0
				      ? cfg->log_bytes_budget
				      : CONSENSUS_LOG_BYTES_BUDGET;
	/* Let replication carry our whole pipeline (plus member entries and
	 * barriers) to a follower without waiting for acknowledgements. */
	raft_set_max_inflight_entries(&i->raft, i->inflight_entries_max + 8);
	if (!cfg->join) {
		rv = bootstrap(c, i);
		if (rv != 0)
			goto err_after_raft_init;
	}
	pipeline_init(i);
	i->seen_state = RAFT_UNAVAILABLE;
	rv = raft_start(&i->raft);
	if (rv != 0) {
		rv = set_error(c, CONSENSUS_EIO, "start raft: %s",
			       raft_errmsg(&i->raft));
		pipeline_close(i);
		raft_close(&i->raft, start_failed_close_cb);
		return rv;
	}

	uv_check_init(loop, &i->check);
	i->check.data = i;
	uv_check_start(&i->check, check_cb);
	uv_idle_init(loop, &i->idle);
	i->idle.data = i;
	uv_timer_init(loop, &i->tick);
	i->tick.data = i;
	uv_timer_start(&i->tick, tick_cb, TICK_MS, TICK_MS);
	uv_timer_init(loop, &i->close_timer);
	i->close_timer.data = i;
	i->handles_open = 4;
	c->i = i;
	log_info("raft_started",
		 "id=%llu address=%s dir=%s election_timeout_ms=%u "
		 "heartbeat_timeout_ms=%u snapshot_threshold=%u "
		 "snapshot_trailing=%u applied_index=%llu members=%u",
		 (unsigned long long)i->id, i->raft_address, i->dir,
		 i->election_timeout_ms, i->heartbeat_timeout_ms,
		 i->snapshot_threshold, i->snapshot_trailing,
		 (unsigned long long)store_applied_index(store), i->n_members);
	return 0;

err_after_raft_init:
	/* raft_init started nothing on the loop; its memory is the
	 * address copy, released by raft_close's synchronous part only with
	 * an io. Close it the asynchronous way. */
	raft_close(&i->raft, start_failed_close_cb);
	return rv;
err_after_uv_init:
	raft_uv_close(&i->io);
err_after_tcp_init:
	raft_uv_tcp_close(&i->transport);
err_after_alloc:
	free_int(i);
	return rv;
}

/* ------------------------------------------------------------------------
 * State
 * ------------------------------------------------------------------------ */

bool consensus_is_leader(struct consensus *c)
{
	return c->i != NULL && consensus_int_is_leader(c->i);
}

bool consensus_leader(struct consensus *c, uint64_t *id, char *address)
{
	struct consensus_int *i = c->i;
	const struct consensus_member *m;
	const char *raft_address = NULL;
	raft_id leader = 0;

	*id = 0;
	address[0] = '\0';
	if (i == NULL || i->close_step != CLOSE_NONE)
		return false;
	raft_leader(&i->raft, &leader, &raft_address);
	if (leader == 0)
		return false;
	*id = leader;
	if (leader == i->id) {
		if (i->client_address[0] == '\0')
			return false;
		snprintf(address, CONSENSUS_ADDRESS_MAX, "%s",
			 i->client_address);
		return true;
	}
	m = members_find(i, leader);
	if (m == NULL || m->client_address[0] == '\0')
		return false;
	snprintf(address, CONSENSUS_ADDRESS_MAX, "%s", m->client_address);
	return true;
}

void consensus_status(struct consensus *c, struct consensus_status *s)
{
	struct consensus_int *i = c->i;
	const struct raft_configuration *conf;
	uint64_t leader = 0;
	unsigned k;

	memset(s, 0, sizeof *s);
	/* Once raft_close has begun, libraft releases its configuration
	 * (the servers' addresses): nothing of it may be read. */
	if (i == NULL || i->close_step >= CLOSE_RAFT) {
		s->role = CONSENSUS_UNAVAILABLE;
		return;
	}
	s->id = i->id;
	switch (raft_state(&i->raft)) {
	case RAFT_FOLLOWER:
		s->role = CONSENSUS_FOLLOWER;
		break;
	case RAFT_CANDIDATE:
		s->role = CONSENSUS_CANDIDATE;
		break;
	case RAFT_LEADER:
		s->role = CONSENSUS_LEADER;
		break;
	default:
		s->role = CONSENSUS_UNAVAILABLE;
		break;
	}
	s->term = i->raft.current_term;
	s->commit_index = i->raft.commit_index;
	s->applied_index = raft_last_applied(&i->raft);
	s->last_position = store_last_position(i->store);
	s->stale = c->stale;
	consensus_leader(c, &leader, s->leader_client_address);
	s->leader_id = leader;
	conf = &i->raft.configuration;
	for (k = 0; k < conf->n && s->n_members < CONSENSUS_MEMBERS_MAX; k++) {
		const struct raft_server *srv = &conf->servers[k];
		struct consensus_member *m = &s->members[s->n_members++];
		const struct consensus_member *rec = members_find(i, srv->id);

		m->id = srv->id;
		m->role = (uint8_t)srv->role;
		snprintf(m->raft_address, sizeof m->raft_address, "%s",
			 srv->address);
		if (srv->id == i->id) {
			snprintf(m->client_address, sizeof m->client_address,
				 "%s", i->client_address);
			snprintf(m->http_address, sizeof m->http_address, "%s",
				 i->http_address);
		} else if (rec != NULL) {
			snprintf(m->client_address, sizeof m->client_address,
				 "%s", rec->client_address);
			snprintf(m->http_address, sizeof m->http_address, "%s",
				 rec->http_address);
		}
	}
}

/* ------------------------------------------------------------------------
 * Shutdown
 * ------------------------------------------------------------------------ */

static void handle_closed_cb(uv_handle_t *h)
{
	struct consensus_int *i = h->data;
	struct consensus *c = i->c;
	consensus_close_cb cb = i->close_cb;

	assert(i->handles_open > 0);
	if (--i->handles_open > 0)
		return;
	raft_uv_close(&i->io);
	raft_uv_tcp_close(&i->transport);
	pipeline_close(i);
	free_int(i);
	c->i = NULL;
	log_info("raft_stopped", NULL);
	if (cb != NULL)
		cb(c);
}

static void raft_closed_cb(struct raft *r)
{
	struct consensus_int *i = r->data;

	i->close_step = CLOSE_HANDLES;
	uv_close((uv_handle_t *)&i->check, handle_closed_cb);
	uv_close((uv_handle_t *)&i->idle, handle_closed_cb);
	uv_close((uv_handle_t *)&i->tick, handle_closed_cb);
	uv_close((uv_handle_t *)&i->close_timer, handle_closed_cb);
}

static void close_raft(struct consensus_int *i)
{
	i->close_step = CLOSE_RAFT;
	uv_timer_stop(&i->close_timer);
	/* Fails every pending apply and barrier (their callbacks run inside
	 * this call), then closes the disk log and the transport. */
	raft_close(&i->raft, raft_closed_cb);
}

static void close_timer_cb(uv_timer_t *t);

static void transfer_cb(struct raft_transfer *req)
{
	struct consensus_int *i = req->data;

	/* Also fired from inside raft_close when it gave up: ignore. */
	if (i->close_step != CLOSE_TRANSFER)
		return;
	/* Continue from the loop, outside libraft's callback. */
	uv_timer_stop(&i->close_timer);
	uv_timer_start(&i->close_timer, close_timer_cb, 0, 0);
}

static bool drained(struct consensus_int *i)
{
	return i->n_inflight == 0 && i->open == NULL &&
	       i->waiting_head == NULL && !i->member_inflight &&
	       !i->barrier_inflight && i->bwait_head == NULL;
}

static void close_step_next(struct consensus_int *i);

static void close_timer_cb(uv_timer_t *t)
{
	struct consensus_int *i = t->data;

	close_step_next(i);
}

/* Enters the next shutdown step. */
static void close_step_next(struct consensus_int *i)
{
	uint64_t now = uv_now(i->loop);
	int rv;

	switch (i->close_step) {
	case CLOSE_DRAIN:
		/* A leader proposes what it accepted before the close (the
		 * check handle does) and waits for it, bounded. */
		if (raft_state(&i->raft) == RAFT_LEADER && !drained(i) &&
		    now < i->close_deadline_ms) {
			pipeline_kick(i);
			uv_timer_start(&i->close_timer, close_timer_cb, 10, 0);
			return;
		}
		i->close_step = CLOSE_TRANSFER;
		/* What was not proposed by now never will be. */
		pipeline_fail_waiting(i, CONSENSUS_ESHUTDOWN,
				      CONSENSUS_ESHUTDOWN);
		if (raft_state(&i->raft) == RAFT_LEADER &&
		    raft_transferee(&i->raft) == 0) {
			i->transfer.data = i;
			rv = raft_transfer(&i->raft, &i->transfer, 0,
					   transfer_cb);
			if (rv == 0) {
				log_info("leadership_transfer", "to=%llu",
					 (unsigned long long)raft_transferee(
						 &i->raft));
				uv_timer_start(&i->close_timer, close_timer_cb,
					       CLOSE_TRANSFER_MS, 0);
				return;
			}
			log_warn("leadership_transfer_failed", "reason=\"%s\"",
				 raft_strerror(rv));
		}
		close_raft(i);
		return;
	case CLOSE_TRANSFER:
		close_raft(i);
		return;
	default:
		return;
	}
}

void consensus_close(struct consensus *c, consensus_close_cb cb)
{
	struct consensus_int *i = c->i;

	assert(i != NULL);
	assert(i->close_step == CLOSE_NONE);
	i->close_cb = cb;
	/* New requests are refused from now on. */
	i->close_step = CLOSE_DRAIN;
	i->close_deadline_ms = uv_now(i->loop) + CLOSE_DRAIN_MS;
	uv_timer_stop(&i->tick);
	/* Continue from the loop: this call may come from inside a callback
	 * of ours or libraft's. */
	uv_timer_start(&i->close_timer, close_timer_cb, 0, 0);
}
