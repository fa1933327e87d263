/* node/transfer.h: state transfer, cairnd's side. When the snapshot Raft
 * installs covers more than the store holds (the node fell behind the
 * retained log, or its store was wiped), consensus calls
 * transfer_on_state_needed: a marker file DATA/transfer is written and the
 * node stops and re-executes itself. At the next start, transfer_startup
 * (before the store is opened) fetches a checkpoint of a peer's store with
 * cairn_fetch_state into DATA/store.incoming, verifies it, swaps it in
 * place of DATA/store and lets the node start normally. Used by main.c.
 * See docs/state-transfer.md for the design and every crash state. */
#ifndef CAIRN_NODE_TRANSFER_H
#define CAIRN_NODE_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>

#include "consensus.h"

struct node;
struct node_config;

/* transfer_startup's answer when the node should go on starting. */
#define TRANSFER_CONTINUE (-1)

/* consensus_config.on_state_needed (@arg is the struct node): writes
 * DATA/transfer durably, then has the node stop (at once when called from
 * inside consensus_start; otherwise from the next loop iteration). A
 * marker that cannot be written is a storage error: logged, exit 1. */
void transfer_on_state_needed(void *arg, uint64_t min_applied_index,
			      const struct consensus_member *members,
			      unsigned n_members);

/* Whether transfer_on_state_needed ran: main() re-executes cairnd once the
 * node has stopped. */
bool transfer_restart_requested(void);

/* Replaces the process with a fresh cairnd (/proc/self/exe, @argv, the
 * same environment and pid). Returns only on failure (logged). */
void transfer_reexec(char *const argv[]);

/* Runs before the store is opened: finishes an interrupted swap, and when
 * DATA/transfer exists runs the transfer phase (fetch, verify, swap),
 * serving /health and /ready on the HTTP address meanwhile. Returns
 * TRANSFER_CONTINUE when the node should start, otherwise the exit status
 * (0 after SIGTERM/SIGINT during the transfer, 1 on a fatal error). */
int transfer_startup(const struct node_config *cfg);

#endif /* CAIRN_NODE_TRANSFER_H */
