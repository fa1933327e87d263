/* The Raft state machine (libraft's legacy struct raft_fsm, version 1) that
 * every replica runs: apply hands append entries to store_apply() and
 * member entries to members_apply(); snapshot makes RocksDB durable and
 * returns a small manifest; restore checks that the store already holds
 * what a manifest describes, and when it does not (the node fell behind
 * the retained log) asks node/ for a state transfer and turns the
 * consensus stale: apply then applies nothing (docs/state-transfer.md). Used
 * through libraft by consensus.c, and by tests/sim, which runs it on libraft's
 * fixture (fsm_bind()).
 *
 * The rules libraft imposes, and what this file does about them:
 * - apply is not told the entry's index: it is raft_last_applied() + 1;
 * - a non-zero return from apply stalls a follower for good: apply always
 *   returns 0, a storage error ends the process (log, exit(EXIT_FAILURE))
 *   so a supervisor restarts it from disk;
 * - in 0.22.1 the raft_apply callbacks fire later (from libuv's
 *   prepare/check phases, after every entry of the commit-index advance
 *   was applied), so *result cannot carry an entry's results to its
 *   callback: the results are handed to the proposing batch here, by
 *   index (pipeline_applied()). See docs/consensus.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus_int.h"
#include "log.h"

static uint32_t magic_of(const struct raft_buffer *buf)
{
	const uint8_t *p = buf->base;

	if (buf->len < 4)
		return 0;
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result)
{
	struct consensus_int *i = fsm->data;
	raft_index index = raft_last_applied(i->fsm_raft) + 1;
	int rv;

	if (i->c->stale) {
		/* Waiting for a state transfer: the store is behind the
		 * installed snapshot, so nothing can be applied on top of it.
		 * The entry stays in the Raft log on disk and is applied
		 * after the restart that follows the transfer. */
		*result = &i->results;
		return 0;
	}
	i->in_raft++;
	/* Moving average (1/64 weight) of entry sizes, in 1/16 bytes. */
	if (i->entry_bytes_avg == 0)
		i->entry_bytes_avg = (uint64_t)buf->len * 16;
	else
		i->entry_bytes_avg = i->entry_bytes_avg -
				     i->entry_bytes_avg / 64 +
				     (uint64_t)buf->len * 16 / 64;
	switch (magic_of(buf)) {
	case CONSENSUS_ENTRY_MAGIC_STORE:
		rv = store_apply(i->store, index, buf->base, buf->len,
				 &i->results);
		if (rv != 0) {
			log_error("store_apply_failed",
				  "index=%llu reason=\"%s\"",
				  (unsigned long long)index, i->store->errmsg);
			exit(EXIT_FAILURE);
		}
		if (!i->results.skipped)
			i->store_entries_applied++;
		if (i->results.entry_error != 0)
			log_warn("entry_malformed", "index=%llu code=%d",
				 (unsigned long long)index,
				 i->results.entry_error);
		pipeline_applied(i, index, buf->base, buf->len);
		if (i->on_applied != NULL)
			i->on_applied(i->arg, store_last_position(i->store));
		break;
	case CONSENSUS_ENTRY_MAGIC_MEMBERS:
		members_apply(i, index, buf->base, buf->len);
		break;
	default: {
		bool skipped;

		/* Not ours: every replica skips it alike, and the store
		 * still moves its applied index. */
		log_warn("entry_unknown", "index=%llu bytes=%zu",
			 (unsigned long long)index, buf->len);
		rv = store_apply_meta(i->store, index, NULL, 0, &skipped);
		if (rv != 0) {
			log_error("store_apply_failed",
				  "index=%llu reason=\"%s\"",
				  (unsigned long long)index, i->store->errmsg);
			exit(EXIT_FAILURE);
		}
		break;
	}
	}
	/* An FSM-owned slot, never memory the callback must free; the
	 * write path does not read it (see above). */
	*result = &i->results;
	i->in_raft--;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	struct consensus_int *i = fsm->data;
	struct manifest *m;
	struct raft_buffer *b;
	int rv;

	/* A stale store would make a manifest below the snapshot already
	 * installed: libraft retries later (RAFT_BUSY is transient). */
	if (i->c->stale)
		return RAFT_BUSY;
	/* libraft deletes log entries below index - trailing once this
	 * snapshot is stored: RocksDB must hold everything applied durably
	 * first. */
	rv = store_sync(i->store);
	if (rv != 0) {
		log_error("snapshot_sync_failed", "reason=\"%s\"",
			  i->store->errmsg);
		exit(EXIT_FAILURE);
	}
	m = calloc(1, sizeof *m);
	if (m == NULL)
		return RAFT_NOMEM;
	m->applied_index = store_applied_index(i->store);
	m->last_position = store_last_position(i->store);
	m->n_members = i->n_members;
	memcpy(m->members, i->members, sizeof m->members[0] * i->n_members);
	b = raft_malloc(sizeof *b);
	if (b == NULL) {
		free(m);
		return RAFT_NOMEM;
	}
	b->len = manifest_size(m);
	b->base = raft_malloc(b->len);
	if (b->base == NULL) {
		raft_free(b);
		free(m);
		return RAFT_NOMEM;
	}
	manifest_encode(m, b->base);
	log_info("snapshot_taken",
		 "raft_index=%llu applied_index=%llu last_position=%llu",
		 (unsigned long long)raft_last_applied(i->fsm_raft),
		 (unsigned long long)m->applied_index,
		 (unsigned long long)m->last_position);
	free(m);
	i->snapshots_taken++;
	*bufs = b;
	*n_bufs = 1;
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct consensus_int *i = fsm->data;
	char errmsg[256];
	struct manifest *m;
	uint64_t have = store_applied_index(i->store);

	m = calloc(1, sizeof *m);
	if (m == NULL)
		return RAFT_NOMEM;
	if (manifest_decode(buf->base, buf->len, m, errmsg) != 0) {
		log_error("snapshot_restore_failed", "reason=\"%s\"", errmsg);
		exit(EXIT_FAILURE);
	}
	if (have < m->applied_index && i->c->state_needed_ != NULL) {
		/* The log below this snapshot is gone, so the entries the
		 * store misses cannot be replayed: the store is fetched from
		 * a peer (docs/state-transfer.md). A non-zero return would
		 * stop Raft for good, so this returns 0 and the consensus
		 * turns stale until node/ has restarted on a fetched store. */
		log_warn("store_behind_snapshot",
			 "store_applied_index=%llu snapshot_applied_index=%llu "
			 "action=state_transfer",
			 (unsigned long long)have,
			 (unsigned long long)m->applied_index);
		i->c->stale = true;
		i->c->state_needed_(i->arg, m->applied_index, m->members,
				    m->n_members);
	} else if (have < m->applied_index) {
		/* No hook (tests/sim): the node cannot go on. */
		log_error("snapshot_restore_failed",
			  "reason=\"the store holds entries up to raft index "
			  "%llu but the cluster's snapshot covers up to %llu: "
			  "this node fell further behind than the retained "
			  "log (snapshot trailing), and state transfer is not "
			  "implemented by this program (no on_state_needed "
			  "hook)\"",
			  (unsigned long long)have,
			  (unsigned long long)m->applied_index);
		exit(EXIT_FAILURE);
	} else {
		log_info("snapshot_restored",
			 "applied_index=%llu store_applied_index=%llu",
			 (unsigned long long)m->applied_index,
			 (unsigned long long)have);
	}
	free(m);
	/* restore owns the buffer on success. */
	raft_free(buf->base);
	buf->base = NULL;
	buf->len = 0;
	return 0;
}

void fsm_setup(struct consensus_int *i)
{
	memset(&i->fsm, 0, sizeof i->fsm);
	i->fsm.version = 1;
	i->fsm.data = i;
	i->fsm.apply = fsm_apply;
	i->fsm.snapshot = fsm_snapshot;
	i->fsm.restore = fsm_restore;
	i->fsm_raft = &i->raft;
}

void fsm_bind(struct consensus_int *i, struct raft *r)
{
	i->fsm_raft = r;
}
