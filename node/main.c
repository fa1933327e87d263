/* node/main.c: cairnd's entry point. It parses the configuration
 * (config.c), then starts the pieces in order on one libuv loop: the data
 * directory, the store (DIR/store), consensus (DIR/raft), the client
 * listener; and stops them in reverse order on SIGTERM or SIGINT:
 *
 *   RUNNING --signal--> STOPPING: the listener closes; consensus_close
 *     (a leader hands leadership over first); requests still arrive on
 *     open connections and are answered (appends: not the leader);
 *   STOPPING --consensus closed--> DRAINING: parked reads are answered,
 *     connections close once their replies are written (bounded wait);
 *   DRAINING --last connection freed--> STOPPED: the remaining handles
 *     close, the loop ends, the store closes; exit status 0.
 *
 * A failure during startup undoes the steps already taken, in reverse
 * order, and exits with status 1. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "disk.h"
#include "http.h"
#include "node.h"
#include "transfer.h"

/* Creates @path and its missing parents (mkdir -p). Returns 0 or an errno
 * value. */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	struct stat st;

	if (len == 0 || len >= sizeof buf)
		return ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t k = 1; k <= len; k++) {
		if (buf[k] != '/' && buf[k] != '\0')
			continue;
		buf[k] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return errno;
		buf[k] = k < len ? '/' : '\0';
	}
	if (stat(path, &st) != 0)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return ENOTDIR;
	return 0;
}

/* ------------------------------------------------------------------------
 * Callbacks from consensus
 * ------------------------------------------------------------------------ */

static void on_applied(void *arg, uint64_t last_position)
{
	handlers_applied(arg, last_position);
	http_applied(arg, last_position);
}

static void on_pipeline_ready(void *arg)
{
	server_pipeline_ready(arg);
}

/* ------------------------------------------------------------------------
 * Shutdown
 * ------------------------------------------------------------------------ */

void node_stopped(struct node *n)
{
	assert(n->state == NODE_DRAINING);
	n->state = NODE_STOPPED;
	server_close(n);
	http_close(n);
	disk_close(n);
	uv_close((uv_handle_t *)&n->sigterm, NULL);
	uv_close((uv_handle_t *)&n->sigint, NULL);
}

static void on_consensus_closed(struct consensus *c)
{
	struct node *n = CONTAINER_OF(c, struct node, cons);

	n->cons_open = false;
	if (n->state != NODE_STOPPING)
		return; /* a startup failure: the caller runs the loop */
	log_info("consensus_closed", NULL);
	/* Parked reads are answered while still STOPPING: freeing one may
	 * free a closed connection, which must not count as the end of the
	 * drain before it began. */
	handlers_close(n);
	subs_close(n);
	state_send_close(n);
	n->state = NODE_DRAINING;
	server_drain(n);
}

void node_stop(struct node *n)
{
	if (n->state != NODE_RUNNING)
		return;
	n->state = NODE_STOPPING;
	join_stop(n);
	server_stop_accepting(n);
	http_stop(n);
	consensus_close(&n->cons, on_consensus_closed);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct node *n = s->data;

	if (n->state != NODE_RUNNING) {
		log_info("signal_ignored",
			 "signal=%s reason=\"already shutting down\"",
			 signum == SIGTERM ? "SIGTERM" : "SIGINT");
		return;
	}
	log_info("shutting_down", "signal=%s",
		 signum == SIGTERM ? "SIGTERM" : "SIGINT");
	node_stop(n);
}

/* ------------------------------------------------------------------------
 * Startup
 * ------------------------------------------------------------------------ */

/* Closes every handle still open and runs the loop until they are gone,
 * then closes the loop (startup failures). */
static void close_loop(uv_loop_t *loop)
{
	int rv;

	uv_run(loop, UV_RUN_DEFAULT);
	rv = uv_loop_close(loop);
	if (rv != 0)
		log_warn("loop_close_failed", "error=\"%s\"", uv_strerror(rv));
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int node_run(struct node *n, const struct node_config *cfg)
{
	struct consensus_config cc;
	char store_dir[PATH_MAX];
	char raft_dir[PATH_MAX];
	uv_loop_t loop;
	int rv;

	memset(n, 0, sizeof *n);
	n->cfg = cfg;
	n->exit_code = EXIT_SUCCESS;
	if (snprintf(store_dir, sizeof store_dir, "%s/store", cfg->data_dir) >=
		    (int)sizeof store_dir ||
	    snprintf(raft_dir, sizeof raft_dir, "%s/raft", cfg->data_dir) >=
		    (int)sizeof raft_dir) {
		log_error("startup_failed",
			  "step=data_dir error=\"path too long\"");
		return EXIT_FAILURE;
	}
	if (cfg->restore_dir != NULL) {
		rv = node_restore(cfg);
		if (rv != 0)
			return rv;
	}
	rv = mkdir_p(cfg->data_dir);
	if (rv == 0)
		rv = mkdir_p(raft_dir);
	if (rv != 0) {
		log_error("startup_failed",
			  "step=data_dir path=\"%s\" error=\"%s\"",
			  cfg->data_dir, strerror(rv));
		return EXIT_FAILURE;
	}
	/* A pending state transfer runs before the store is opened. */
	rv = transfer_startup(cfg);
	if (rv != TRANSFER_CONTINUE)
		return rv;

	rv = uv_loop_init(&loop);
	if (rv != 0) {
		log_error("startup_failed", "step=loop error=\"%s\"",
			  uv_strerror(rv));
		return EXIT_FAILURE;
	}
	n->loop = &loop;
	/* A disk below the reserve (a node that died of ENOSPC): wait for
	 * room rather than crash-loop (disk.h). */
	if (disk_wait_for_space(&loop, cfg) == 1) {
		close_loop(&loop);
		log_info("stopped", "exit_status=%d", EXIT_SUCCESS);
		return EXIT_SUCCESS;
	}
	rv = server_init(n);
	if (rv == 0)
		rv = handlers_init(n);
	if (rv == 0)
		rv = subs_init(n);
	if (rv != 0) {
		log_error("startup_failed", "step=handles error=\"%s\"",
			  uv_strerror(rv));
		goto err_after_loop_init;
	}
	uv_signal_init(&loop, &n->sigterm);
	uv_signal_init(&loop, &n->sigint);
	n->sigterm.data = n;
	n->sigint.data = n;

	rv = store_open(&n->store, store_dir, NULL);
	if (rv != 0) {
		log_error("startup_failed",
			  "step=store path=\"%s\" error=\"%s\"", store_dir,
			  n->store.errmsg);
		goto err_after_loop_init;
	}
	rv = state_send_init(n);
	if (rv != 0) {
		log_error("startup_failed", "step=copies error=\"%s\"",
			  uv_strerror(rv));
		goto err_after_store_open;
	}

	memset(&cc, 0, sizeof cc);
	cc.id = cfg->id;
	cc.dir = raft_dir;
	cc.raft_address = cfg->raft_address;
	cc.client_address = cfg->client_address;
	cc.http_address = cfg->http_address;
	cc.peers = cfg->peers;
	cc.n_peers = cfg->n_peers;
	cc.join = cfg->join;
	cc.election_timeout_ms = cfg->election_timeout_ms;
	cc.heartbeat_timeout_ms = cfg->heartbeat_timeout_ms;
	cc.snapshot_threshold = cfg->snapshot_threshold;
	cc.snapshot_trailing = cfg->snapshot_trailing;
	cc.log_bytes_budget = cfg->raft_log_budget;
	cc.on_applied = on_applied;
	cc.on_pipeline_ready = on_pipeline_ready;
	cc.on_state_needed = transfer_on_state_needed;
	cc.arg = n;
	rv = consensus_start(&n->cons, &loop, &n->store, &cc);
	if (rv != 0) {
		log_error("startup_failed", "step=consensus error=\"%s\"",
			  n->cons.errmsg);
		goto err_after_store_open;
	}
	n->cons_open = true;
	/* The store is behind the snapshot on disk: stop before serving and
	 * restart into the state transfer (main). */
	if (transfer_restart_requested())
		goto err_after_consensus_start;

	rv = server_listen(n);
	if (rv == 0)
		rv = http_start(n);
	if (rv == 0)
		rv = disk_start(n);
	if (rv != 0)
		goto err_after_consensus_start;
	uv_signal_start(&n->sigterm, on_signal, SIGTERM);
	uv_signal_start(&n->sigint, on_signal, SIGINT);
	if (cfg->join) {
		rv = join_start(n);
		if (rv != 0)
			log_error("join_failed", "error=\"%s\"",
				  uv_strerror(rv));
	}

	uv_run(&loop, UV_RUN_DEFAULT);

	/* Every handle of ours is closed; consensus released its own. */
	assert(n->state == NODE_STOPPED);
	store_close(&n->store);
	rv = uv_loop_close(&loop);
	if (rv != 0) {
		log_warn("loop_close_failed", "error=\"%s\"", uv_strerror(rv));
		uv_walk(&loop, on_walk_close, NULL);
		close_loop(&loop);
	}
	log_info("stopped", "exit_status=%d", n->exit_code);
	return n->exit_code;

err_after_consensus_start:
	/* Wait for consensus to release everything before the store goes. */
	consensus_close(&n->cons, on_consensus_closed);
	while (n->cons_open && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
err_after_store_open:
	store_close(&n->store);
err_after_loop_init:
	disk_close(n);
	subs_close(n);
	uv_walk(&loop, on_walk_close, NULL);
	close_loop(&loop);
	log_info("stopped", "exit_status=%d", EXIT_FAILURE);
	return EXIT_FAILURE;
}

int main(int argc, char **argv)
{
	static struct node node; /* large; and signal handles point at it */
	struct node_config cfg;
	/* argv as given (parsing may reorder it): a restart for a state
	 * transfer re-executes with it. */
	static char **args;
	int rv;

	args = calloc((size_t)argc + 1, sizeof *args);
	if (args == NULL)
		return EXIT_FAILURE;
	memcpy(args, argv, sizeof *args * (size_t)argc);
	switch (node_config_parse(&cfg, argc, argv)) {
	case NODE_CONFIG_RUN:
		break;
	case NODE_CONFIG_EXIT:
		return EXIT_SUCCESS;
	case NODE_CONFIG_USAGE:
		return 2;
	}
	/* A client that closes its socket must not kill the node. */
	signal(SIGPIPE, SIG_IGN);
	log_setup(cfg.id, cfg.log_level);
	node_config_log(&cfg);
	rv = node_run(&node, &cfg);
	if (transfer_restart_requested())
		transfer_reexec(args);
	return rv;
}
