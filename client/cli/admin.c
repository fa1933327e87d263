/* `cairn members list|add|remove|promote|demote` and `cairn leader
 * transfer`: the cluster's membership over libcairn's membership calls
 * (client/lib/admin.c). A change prints the member list after it; a
 * refused change prints why (the node's message) and exits with the code
 * of the error (docs/client.md). Called from main.c's command table. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cli_members_help[] =
	"Usage: cairn members list\n"
	"       cairn members add ID RAFT_ADDR CLIENT_ADDR HTTP_ADDR\n"
	"       cairn members remove ID [--force]\n"
	"       cairn members promote ID\n"
	"       cairn members demote ID [--force]\n"
	"\n"
	"Lists or changes the cluster's members. Changes go to the leader,\n"
	"one at a time. add makes a non-voter (standby: it replicates, does\n"
	"not vote) with its Raft, client and HTTP addresses (HOST:PORT; an\n"
	"empty HTTP address is \"\"); promote makes a caught-up standby a\n"
	"voter; demote makes a voter a standby; remove takes a member out.\n"
	"A remove or demote that would leave fewer voters than the node's\n"
	"--min-voters is refused unless --force (never below one voter).\n"
	"Prints the member list (id, role, Raft, client and HTTP addresses)\n"
	"after the change; --json prints it as an array of objects.\n"
	"\n"
	"  --force            allow fewer voters than --min-voters\n"
	"\n"
	"Global options: --seeds, --node, --json, --deadline-ms (cairn "
	"--help).\n"
	"\n" CLI_EXIT_HELP;

const char cli_leader_help[] =
	"Usage: cairn leader transfer [ID]\n"
	"\n"
	"Hands leadership to voter ID, or without ID to the voter whose log\n"
	"is furthest along. Prints \"leader N\" (--json: {\"leader\": N}).\n"
	"\n"
	"Global options: --seeds, --node, --json, --deadline-ms (cairn "
	"--help).\n"
	"\n" CLI_EXIT_HELP;

static const char *role_name(int role)
{
	switch (role) {
	case 0:
		return "standby";
	case 1:
		return "voter";
	case 2:
		return "spare";
	default:
		return "?";
	}
}

static int usage(const char *what)
{
	fprintf(stderr, "cairn: %s (try cairn members --help)\n", what);
	return CLI_USAGE;
}

static void print_members(const struct cairn_member *m, size_t n,
			  uint64_t leader, bool json)
{
	size_t k;

	if (json) {
		json_t *arr = json_array();
		char *text;

		for (k = 0; k < n; k++) {
			json_t *o = json_object();

			json_object_set_new(o, "id",
					    json_integer((json_int_t)m[k].id));
			json_object_set_new(
				o, "role",
				json_string(role_name(m[k].voter_role)));
			json_object_set_new(o, "raft_address",
					    json_string(m[k].raft_address));
			json_object_set_new(o, "client_address",
					    json_string(m[k].client_address));
			json_object_set_new(o, "http_address",
					    json_string(m[k].http_address));
			json_object_set_new(
				o, "leader",
				json_boolean(leader != 0 && m[k].id == leader));
			json_array_append_new(arr, o);
		}
		text = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("%s\n", text != NULL ? text : "[]");
		free(text);
		json_decref(arr);
		return;
	}
	printf("%-6s %-8s %-24s %-24s %s\n", "ID", "ROLE", "RAFT", "CLIENT",
	       "HTTP");
	for (k = 0; k < n; k++)
		printf("%-6llu %-8s %-24s %-24s %s%s\n",
		       (unsigned long long)m[k].id, role_name(m[k].voter_role),
		       m[k].raft_address,
		       m[k].client_address[0] != '\0' ? m[k].client_address
						      : "-",
		       m[k].http_address[0] != '\0' ? m[k].http_address : "-",
		       leader != 0 && m[k].id == leader ? "  (leader)" : "");
}

static int parse_id(const char *s, uint64_t *id)
{
	if (!cli_parse_u64(s, id) || *id == 0) {
		fprintf(stderr, "cairn: %s: expected a member id >= 1\n", s);
		return CLI_USAGE;
	}
	return 0;
}

static int members_list(const struct cli_global *g)
{
	struct cairn_status *s = calloc(1, sizeof *s);
	struct cairn_error err;
	cairn_client *c;
	int rv;

	if (s == NULL) {
		fprintf(stderr, "cairn: out of memory\n");
		return CLI_ERROR;
	}
	rv = cli_open(g, &c);
	if (rv != 0) {
		free(s);
		return rv;
	}
	rv = cairn_status(c, NULL, s, &err);
	/* The leader's list is the current one (a removed node keeps its
	 * old view). */
	if (rv == 0 && g->node == NULL && s->leader_id != 0 &&
	    s->leader_id != s->node_id && s->leader_client_address[0] != '\0') {
		char leader[sizeof s->leader_client_address];

		snprintf(leader, sizeof leader, "%s", s->leader_client_address);
		rv = cairn_status(c, leader, s, &err);
	}
	if (rv != 0)
		rv = cli_fail(&err);
	else
		print_members(s->members, s->n_members, s->leader_id, g->json);
	cairn_close(c);
	free(s);
	return rv;
}

int cli_members(const struct cli_global *g, const struct cli_args *a)
{
	struct cairn_members *out;
	struct cairn_error err;
	const char *sub = a->n_pos > 1 ? a->pos[1] : NULL;
	bool force = cli_flag(a, "force");
	cairn_client *c;
	uint64_t id = 0;
	int want;
	int rv;

	if (sub == NULL)
		return usage(
			"members takes list, add, remove, promote or "
			"demote");
	if (strcmp(sub, "list") == 0) {
		if (a->n_pos != 2 || force)
			return usage("members list takes no arguments");
		return members_list(g);
	}
	if (strcmp(sub, "add") == 0)
		want = 6;
	else if (strcmp(sub, "remove") == 0 || strcmp(sub, "promote") == 0 ||
		 strcmp(sub, "demote") == 0)
		want = 3;
	else
		return usage(
			"members takes list, add, remove, promote or "
			"demote");
	if (a->n_pos != want)
		return usage(want == 6 ? "members add takes ID RAFT_ADDR "
					 "CLIENT_ADDR HTTP_ADDR"
				       : "expected one member id");
	if (force && strcmp(sub, "remove") != 0 && strcmp(sub, "demote") != 0)
		return usage("--force goes with remove and demote only");
	rv = parse_id(a->pos[2], &id);
	if (rv != 0)
		return rv;
	out = calloc(1, sizeof *out);
	if (out == NULL) {
		fprintf(stderr, "cairn: out of memory\n");
		return CLI_ERROR;
	}
	rv = cli_open(g, &c);
	if (rv != 0) {
		free(out);
		return rv;
	}
	if (strcmp(sub, "add") == 0)
		rv = cairn_member_add(c, id, a->pos[3], a->pos[4], a->pos[5],
				      out, &err);
	else if (strcmp(sub, "remove") == 0)
		rv = cairn_member_remove(c, id, force, out, &err);
	else if (strcmp(sub, "promote") == 0)
		rv = cairn_member_promote(c, id, out, &err);
	else
		rv = cairn_member_demote(c, id, force, out, &err);
	if (rv != 0)
		rv = cli_fail(&err);
	else
		print_members(out->members, out->n, 0, g->json);
	cairn_close(c);
	free(out);
	return rv;
}

int cli_leader(const struct cli_global *g, const struct cli_args *a)
{
	struct cairn_error err;
	cairn_client *c;
	uint64_t id = 0;
	uint64_t leader = 0;
	int rv;

	if (a->n_pos < 2 || strcmp(a->pos[1], "transfer") != 0 ||
	    a->n_pos > 3) {
		fprintf(stderr,
			"cairn: expected `leader transfer [ID]` (try "
			"cairn leader --help)\n");
		return CLI_USAGE;
	}
	if (a->n_pos == 3) {
		rv = parse_id(a->pos[2], &id);
		if (rv != 0)
			return rv;
	}
	rv = cli_open(g, &c);
	if (rv != 0)
		return rv;
	if (cairn_leader_transfer(c, id, &leader, &err) != 0) {
		rv = cli_fail(&err);
	} else if (g->json) {
		printf("{\"leader\":%llu}\n", (unsigned long long)leader);
	} else {
		printf("leader %llu\n", (unsigned long long)leader);
	}
	cairn_close(c);
	return rv;
}
