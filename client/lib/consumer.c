/* client/lib/consumer.c: cairn_consumer, a subscription whose progress is
 * saved in a consumer checkpoint, for applications that process a stream,
 * a category or the whole log and must pick up where they left off after a
 * restart. Built on the public calls only: cairn_checkpoint_get, then
 * cairn_subscribe in iterator mode, drained by a thread of the consumer's
 * own that calls the application's callback and saves the checkpoint with
 * cairn_checkpoint_set (unconditional, keyed: a retry never goes back).
 *
 * Delivery is at-least-once: the checkpoint only ever names an event whose
 * callback returned, so a restart repeats at most the events after the
 * last save and skips none. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cairn.h"

/* Longest wait for the next item before the thread looks at the clock and
 * the stop flag again. */
#define CONSUMER_POLL_MS 50

struct cairn_consumer {
	cairn_client *c;         /* borrowed: outlives the consumer */
	char *name;              /* owned: the checkpoint's name */
	bool by_version;         /* a STREAM subscription: versions */
	uint32_t every_events;   /* save after this many; 0: never by count */
	unsigned every_ms;       /* save after this long; 0: never by time */
	cairn_consumer_cb cb;    /* the application's */
	void *arg;               /* borrowed: passed to cb */
	cairn_subscription *sub; /* owned */
	uv_thread_t thread;      /* drains sub */
	atomic_bool stop;        /* set by stop/drop: the thread returns */

	/* Touched by the thread only until it is joined. */
	bool live;              /* SUB_LIVE seen */
	uint64_t delivered;     /* checkpoint value of the last event whose
				 * callback returned; 0: none */
	uint64_t saved;         /* the value saved last (or read at start) */
	uint32_t unsaved;       /* events delivered since the last save */
	uint64_t last_save_ns;  /* uv_hrtime() of the last save */
	int status;             /* 0, or the error that ended the thread */
	struct cairn_error err; /* its details */
};

static int save(struct cairn_consumer *k, struct cairn_error *err)
{
	int rv;

	if (k->delivered == k->saved)
		return 0;
	rv = cairn_checkpoint_set(k->c, k->name, k->delivered,
				  CAIRN_CHECKPOINT_ANY, 0, NULL, NULL, err);
	if (rv == 0) {
		k->saved = k->delivered;
		k->unsaved = 0;
		k->last_save_ns = uv_hrtime();
	}
	return rv;
}

static bool save_due(const struct cairn_consumer *k)
{
	if (k->unsaved == 0)
		return false;
	if (k->every_events > 0 && k->unsaved >= k->every_events)
		return true;
	return k->every_ms > 0 && uv_hrtime() - k->last_save_ns >=
					  (uint64_t)k->every_ms * 1000000u;
}

static void run(void *arg)
{
	struct cairn_consumer *k = arg;
	struct cairn_sub_item item;
	struct cairn_error err;
	int rv;

	k->last_save_ns = uv_hrtime();
	while (!atomic_load(&k->stop)) {
		rv = cairn_subscription_next(k->sub, CONSUMER_POLL_MS, &item,
					     &err);
		if (rv == 0 && item.what == CAIRN_SUB_LIVE) {
			k->live = true;
		} else if (rv == 0) {
			k->cb(k->arg, &item.event, k->live);
			k->delivered = k->by_version ? item.event.version
						     : item.event.position;
			k->unsaved++;
		} else if (rv != CAIRN_ETIMEOUT) {
			k->status = rv;
			k->err = err;
			return;
		}
		/* A failed save is tried again at the next occasion; the
		 * events stay delivered (at-least-once). */
		if (save_due(k) && save(k, &err) != 0)
			k->last_save_ns = uv_hrtime();
	}
}

int cairn_consumer_start(cairn_client *c, const char *name,
			 const struct cairn_subscribe_options *o,
			 uint32_t every_events, unsigned every_ms,
			 cairn_consumer_cb cb, void *arg, cairn_consumer **out,
			 struct cairn_error *err)
{
	struct cairn_read_options ro;
	struct cairn_subscribe_options so;
	struct cairn_consumer *k;
	uint64_t value = 0;
	bool found = false;
	int rv;

	if (c == NULL || name == NULL || o == NULL || cb == NULL ||
	    out == NULL) {
		if (err != NULL) {
			memset(err, 0, sizeof *err);
			err->code = CAIRN_EARG;
			snprintf(err->message, sizeof err->message,
				 "consumer start: a required argument is "
				 "NULL");
		}
		return CAIRN_EARG;
	}
	*out = NULL;
	k = calloc(1, sizeof *k);
	if (k == NULL)
		goto err_nomem;
	k->name = strdup(name);
	if (k->name == NULL)
		goto err_after_alloc;
	/* The leader's value: a checkpoint saved just before is seen. */
	memset(&ro, 0, sizeof ro);
	ro.consistency = CAIRN_CONSISTENCY_LEADER;
	rv = cairn_checkpoint_get(c, name, &ro, &value, &found, err);
	if (rv != 0)
		goto err_after_name;
	k->c = c;
	k->by_version = o->kind == CAIRN_SUB_STREAM;
	k->every_events = every_events;
	k->every_ms = every_ms;
	k->cb = cb;
	k->arg = arg;
	k->delivered = found ? value : 0;
	k->saved = k->delivered;
	atomic_init(&k->stop, false);
	so = *o;
	so.from_now = false;
	so.from = k->delivered + 1;
	rv = cairn_subscribe(c, &so, NULL, NULL, &k->sub, err);
	if (rv != 0)
		goto err_after_name;
	if (uv_thread_create(&k->thread, run, k) != 0) {
		cairn_subscription_close(k->sub);
		free(k->name);
		free(k);
		goto err_nomem;
	}
	*out = k;
	return 0;

err_after_name:
	free(k->name);
	free(k);
	return rv;
err_after_alloc:
	free(k);
err_nomem:
	if (err != NULL) {
		memset(err, 0, sizeof *err);
		err->code = CAIRN_ENOMEM;
		snprintf(err->message, sizeof err->message,
			 "consumer start: out of memory");
	}
	return CAIRN_ENOMEM;
}

/* Stops the thread and closes the subscription. */
static void halt(struct cairn_consumer *k)
{
	atomic_store(&k->stop, true);
	uv_thread_join(&k->thread);
	cairn_subscription_close(k->sub);
	k->sub = NULL;
}

int cairn_consumer_stop(cairn_consumer *k, struct cairn_error *err)
{
	int rv;

	if (k == NULL)
		return CAIRN_EARG;
	halt(k);
	rv = save(k, err);
	if (rv == 0 && k->status != 0) {
		rv = k->status;
		if (err != NULL)
			*err = k->err;
	} else if (rv == 0 && err != NULL) {
		memset(err, 0, sizeof *err);
	}
	free(k->name);
	free(k);
	return rv;
}

void cairn_consumer_drop(cairn_consumer *k)
{
	if (k == NULL)
		return;
	halt(k);
	free(k->name);
	free(k);
}
