/* Offline checks of the deployment files: deploy/docker-compose.yml,
 * deploy/kubernetes/, deploy/systemd/cairnd.env, deploy/docker/Dockerfile,
 * .dockerignore, deploy/setup.sh's package lists and docs/operations.md's
 * configuration table. They check that every file is well formed, that
 * ports, names and labels agree between the files, and that every
 * variable and flag they name is one cairnd has (`cairnd --help` of this
 * build is the reference). No container engine or cluster is needed:
 * run-cluster.sh runs the configurations for real. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "manifest.h"

/* The node's ports inside a container or pod, as the Dockerfile EXPOSEs
 * them. */
#define PORT_CLIENT 7001
#define PORT_HTTP   8001
#define PORT_RAFT   9001

#define NODES 3

/* Longest `cairnd --help` output read. */
#define HELP_BYTES_MAX 65536

/* Variables the deployment files may set that are not cairnd's: the CLI's
 * seed list and the image entrypoint's resolve wait. */
static const char *const non_cairnd_vars[] = { "CAIRN_SEEDS",
					       "CAIRN_RESOLVE_WAIT_S" };

/* What every test reads, loaded once. */
static struct {
	json_t *compose; /* owned: the parsed compose file */
	json_t *k8s;     /* owned: base name -> documents */
	char *help;      /* owned: `cairnd --help` */
	char *dockerfile;
	char *dockerignore;
	char *setup;
	char *operations;
	char *systemd_env;
} g;

static char *path_of(const char *rel)
{
	static char buf[4][4096];
	static unsigned next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof buf[0], "%s/%s", CAIRN_SOURCE_DIR, rel);
	return p;
}

static char *read_or_fail(const char *rel)
{
	char *text = manifest_read_file(path_of(rel));

	if (text == NULL)
		fail_msg("cannot read %s", path_of(rel));
	return text;
}

static char *run_help(void)
{
	FILE *p = popen(CAIRND_PATH " --help", "r");
	char *text = calloc(1, HELP_BYTES_MAX + 1);
	size_t len = 0;
	size_t n;

	if (p == NULL || text == NULL)
		return NULL;
	while ((n = fread(text + len, 1, HELP_BYTES_MAX - len, p)) > 0)
		len += n;
	if (pclose(p) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int group_setup(void **state)
{
	char err[MANIFEST_ERR_MAX];
	const char *compose_paths[] = { path_of("deploy/docker-compose.yml"),
					NULL };
	const char *k8s_paths[32];
	char k8s_buf[32][4096];
	size_t n = 0;
	DIR *d;
	struct dirent *e;
	json_t *compose_files;

	(void)state;
	compose_files = manifest_yaml_load(YAML2JSON_PATH, compose_paths, err);
	if (compose_files == NULL) {
		fprintf(stderr, "compose: %s\n", err);
		return -1;
	}
	g.compose = json_incref(json_array_get(
		json_object_get(compose_files, "docker-compose.yml"), 0));
	json_decref(compose_files);

	d = opendir(path_of("deploy/kubernetes"));
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && n < 31) {
		size_t len = strlen(e->d_name);

		if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		snprintf(k8s_buf[n], sizeof k8s_buf[n], "%s/%s",
			 path_of("deploy/kubernetes"), e->d_name);
		k8s_paths[n] = k8s_buf[n];
		n++;
	}
	closedir(d);
	k8s_paths[n] = NULL;
	g.k8s = manifest_yaml_load(YAML2JSON_PATH, k8s_paths, err);
	if (g.k8s == NULL) {
		fprintf(stderr, "kubernetes: %s\n", err);
		return -1;
	}
	g.help = run_help();
	if (g.help == NULL) {
		fprintf(stderr, "cannot run %s --help\n", CAIRND_PATH);
		return -1;
	}
	g.dockerfile = read_or_fail("deploy/docker/Dockerfile");
	g.dockerignore = read_or_fail(".dockerignore");
	g.setup = read_or_fail("deploy/setup.sh");
	g.operations = read_or_fail("docs/operations.md");
	g.systemd_env = read_or_fail("deploy/systemd/cairnd.env");
	return g.compose != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	json_decref(g.compose);
	json_decref(g.k8s);
	free(g.help);
	free(g.dockerfile);
	free(g.dockerignore);
	free(g.setup);
	free(g.operations);
	free(g.systemd_env);
	return 0;
}

/* ------------------------------------------------------------------------
 * cairnd's own settings, from --help
 * ------------------------------------------------------------------------ */

/* True when `--help` lists @var as a setting's variable. */
static bool cairnd_has_var(const char *var)
{
	char needle[300];
	const char *p;
	size_t len;

	snprintf(needle, sizeof needle, "env %s", var);
	len = strlen(needle);
	for (p = strstr(g.help, needle); p != NULL; p = strstr(p + 1, needle)) {
		if (p[len] == '\n' || p[len] == ';')
			return true;
	}
	return false;
}

static bool is_non_cairnd_var(const char *var)
{
	for (size_t k = 0; k < sizeof non_cairnd_vars / sizeof *non_cairnd_vars;
	     k++)
		if (strcmp(var, non_cairnd_vars[k]) == 0)
			return true;
	return false;
}

/* Fails when a CAIRN_* name of @env is neither cairnd's nor allowed. */
static void assert_vars_known(json_t *env, const char *where)
{
	const char *key;
	json_t *v;

	json_object_foreach(env, key, v)
	{
		(void)v;
		if (strncmp(key, "CAIRN_", 6) != 0)
			continue;
		if (!cairnd_has_var(key) && !is_non_cairnd_var(key))
			fail_msg(
				"%s sets %s, which `cairnd --help` does not "
				"list",
				where, key);
	}
}

/* One flag of --help: "--data-dir" and its variable. */
struct help_flag {
	char flag[64];
	char var[64];
};

/* The flags of --help, in order. */
static size_t help_flags(struct help_flag *out, size_t max)
{
	size_t n = 0;
	const char *p = g.help;

	while ((p = strstr(p, "\n  --")) != NULL && n < max) {
		const char *start = p + 3;
		size_t len = strcspn(start, " \n");
		const char *next = strstr(start, "\n  --");
		const char *env = strstr(start, "      env ");

		memset(&out[n], 0, sizeof out[n]);
		if (len >= sizeof out[n].flag)
			len = sizeof out[n].flag - 1;
		memcpy(out[n].flag, start, len);
		if (env != NULL && (next == NULL || env < next)) {
			const char *v = env + strlen("      env ");
			size_t vlen = strcspn(v, ";\n");

			if (vlen < sizeof out[n].var)
				memcpy(out[n].var, v, vlen);
		}
		n++;
		p = start;
	}
	return n;
}

/* ------------------------------------------------------------------------
 * Compose
 * ------------------------------------------------------------------------ */

static const char *const compose_services[NODES] = { "cairn1", "cairn2",
						     "cairn3" };

static json_t *compose_env(unsigned k)
{
	char err[MANIFEST_ERR_MAX];
	json_t *env = manifest_compose_env(g.compose, compose_services[k], err);

	if (env == NULL)
		fail_msg("compose: %s", err);
	return env;
}

static void compose_has_three_nodes_with_ids_1_to_3(void **state)
{
	json_t *services = json_object_get(g.compose, "services");

	(void)state;
	assert_int_equal(json_object_size(services), NODES);
	for (unsigned k = 0; k < NODES; k++) {
		json_t *env = compose_env(k);
		char want[8];

		snprintf(want, sizeof want, "%u", k + 1);
		assert_non_null(manifest_str(env, "CAIRN_ID"));
		assert_string_equal(manifest_str(env, "CAIRN_ID"), want);
		json_decref(env);
	}
}

/* Checks that @env's own addresses are its entry in its CAIRN_PEERS, that
 * every entry's hosts are @host_of(entry) and its ports the image's. */
static void assert_addresses_match_peers(json_t *env, unsigned self_index,
					 const char *const hosts[NODES],
					 const char *where)
{
	struct manifest_peer peers[8];
	const char *text = manifest_str(env, "CAIRN_PEERS");
	int n;
	char host[256];

	assert_non_null(text);
	n = manifest_peers_parse(text, peers, 8);
	if (n != NODES)
		fail_msg("%s: CAIRN_PEERS has %d members, want %d", where, n,
			 NODES);
	for (unsigned k = 0; k < NODES; k++) {
		const struct manifest_peer *m = &peers[k];

		assert_int_equal(m->id, k + 1);
		assert_int_equal(
			manifest_address_split(m->raft, host, sizeof host),
			PORT_RAFT);
		assert_string_equal(host, hosts[k]);
		assert_int_equal(
			manifest_address_split(m->client, host, sizeof host),
			PORT_CLIENT);
		assert_string_equal(host, hosts[k]);
		assert_int_equal(
			manifest_address_split(m->http, host, sizeof host),
			PORT_HTTP);
		assert_string_equal(host, hosts[k]);
	}
	assert_non_null(manifest_str(env, "CAIRN_RAFT_ADDRESS"));
	assert_string_equal(manifest_str(env, "CAIRN_RAFT_ADDRESS"),
			    peers[self_index].raft);
	assert_non_null(manifest_str(env, "CAIRN_CLIENT_ADDRESS"));
	assert_string_equal(manifest_str(env, "CAIRN_CLIENT_ADDRESS"),
			    peers[self_index].client);
	assert_non_null(manifest_str(env, "CAIRN_HTTP_ADDRESS"));
	assert_string_equal(manifest_str(env, "CAIRN_HTTP_ADDRESS"),
			    peers[self_index].http);
}

static void compose_addresses_are_service_names_in_one_peer_list(void **state)
{
	const char *first = NULL;

	(void)state;
	for (unsigned k = 0; k < NODES; k++) {
		json_t *env = compose_env(k);

		assert_addresses_match_peers(env, k, compose_services,
					     compose_services[k]);
		/* The container's host name is its service name. */
		assert_string_equal(manifest_str(env, "HOSTNAME"),
				    compose_services[k]);
		if (first == NULL)
			first = strdup(manifest_str(env, "CAIRN_PEERS"));
		else
			assert_string_equal(manifest_str(env, "CAIRN_PEERS"),
					    first);
		json_decref(env);
	}
	free((char *)first);
}

static void compose_publishes_client_and_http_ports_only(void **state)
{
	(void)state;
	for (unsigned k = 0; k < NODES; k++) {
		json_t *svc =
			manifest_get(json_object_get(g.compose, "services"),
				     compose_services[k]);
		json_t *ports = json_object_get(svc, "ports");
		char want_client[32];
		char want_http[32];
		bool client = false;
		bool http = false;
		size_t i;
		json_t *p;

		snprintf(want_client, sizeof want_client, "%u:%d",
			 PORT_CLIENT + k, PORT_CLIENT);
		snprintf(want_http, sizeof want_http, "%u:%d", PORT_HTTP + k,
			 PORT_HTTP);
		assert_int_equal(json_array_size(ports), 2);
		json_array_foreach(ports, i, p)
		{
			/* Unquoted, YAML 1.1 reads 7001:7001 as a number in
			 * base 60. */
			if (!json_is_string(p))
				fail_msg("%s: port %zu is not a quoted string",
					 compose_services[k], i);
			client |=
				strcmp(json_string_value(p), want_client) == 0;
			http |= strcmp(json_string_value(p), want_http) == 0;
		}
		if (!client || !http)
			fail_msg("%s publishes neither %s nor %s",
				 compose_services[k], want_client, want_http);
	}
}

static void compose_nodes_have_http_health_checks(void **state)
{
	(void)state;
	for (unsigned k = 0; k < NODES; k++) {
		json_t *svc =
			manifest_get(json_object_get(g.compose, "services"),
				     compose_services[k]);
		json_t *test = manifest_get(svc, "healthcheck.test");
		const char *cmd = json_string_value(json_array_get(test, 1));

		assert_non_null(cmd);
		assert_non_null(strstr(cmd, "/health"));
		/* $$: the container's shell expands it, not compose. */
		assert_non_null(strstr(cmd, "$${CAIRN_HTTP_ADDRESS}"));
		assert_non_null(manifest_get(svc, "healthcheck.interval"));
	}
}

static void compose_nodes_keep_data_in_named_volumes(void **state)
{
	json_t *volumes = json_object_get(g.compose, "volumes");

	(void)state;
	for (unsigned k = 0; k < NODES; k++) {
		json_t *svc =
			manifest_get(json_object_get(g.compose, "services"),
				     compose_services[k]);
		json_t *env = compose_env(k);
		const char *mount = json_string_value(
			json_array_get(json_object_get(svc, "volumes"), 0));
		char want[300];
		char name[64];

		snprintf(name, sizeof name, "%s-data", compose_services[k]);
		snprintf(want, sizeof want, "%s:%s", name,
			 manifest_str(env, "CAIRN_DATA_DIR"));
		assert_non_null(mount);
		assert_string_equal(mount, want);
		assert_true(json_object_get(volumes, name) != NULL);
		json_decref(env);
	}
}

static void compose_nodes_share_one_private_network(void **state)
{
	json_t *networks = json_object_get(g.compose, "networks");

	(void)state;
	assert_int_equal(json_object_size(networks), 1);
	for (unsigned k = 0; k < NODES; k++) {
		json_t *svc =
			manifest_get(json_object_get(g.compose, "services"),
				     compose_services[k]);
		json_t *nets = json_object_get(svc, "networks");

		assert_int_equal(json_array_size(nets), 1);
		assert_non_null(json_object_get(
			networks, json_string_value(json_array_get(nets, 0))));
		assert_string_equal(manifest_str(svc, "image"), "cairn:0.1.0");
		assert_string_equal(manifest_str(svc, "build.dockerfile"),
				    "deploy/docker/Dockerfile");
	}
}

static void compose_variables_are_cairnd_settings(void **state)
{
	(void)state;
	for (unsigned k = 0; k < NODES; k++) {
		json_t *env = compose_env(k);

		assert_vars_known(env, compose_services[k]);
		json_decref(env);
	}
}

/* ------------------------------------------------------------------------
 * Kubernetes
 * ------------------------------------------------------------------------ */

static json_t *sts(void)
{
	json_t *s = manifest_k8s_find(g.k8s, "StatefulSet", "cairn");

	assert_non_null(s);
	return s;
}

static json_t *sts_container(void)
{
	json_t *c = manifest_named(
		manifest_get(sts(), "spec.template.spec.containers"), "cairnd");

	assert_non_null(c);
	return c;
}

static json_t *k8s_env(unsigned ordinal)
{
	char err[MANIFEST_ERR_MAX];
	json_t *env = manifest_k8s_env(g.k8s, "cairnd", ordinal, err);

	if (env == NULL)
		fail_msg("kubernetes: %s", err);
	return env;
}

/* True when every label of @selector is among @labels. */
static bool selects(json_t *selector, json_t *labels)
{
	const char *key;
	json_t *v;

	if (json_object_size(selector) == 0)
		return false;
	json_object_foreach(selector, key, v)
	{
		const char *have =
			json_string_value(json_object_get(labels, key));

		if (have == NULL ||
		    !json_equal(v, json_object_get(labels, key)))
			return false;
	}
	return true;
}

static void kustomization_lists_every_manifest_in_the_folder(void **state)
{
	json_t *kust =
		json_array_get(json_object_get(g.k8s, "kustomization.yaml"), 0);
	json_t *resources = json_object_get(kust, "resources");
	const char *file;
	json_t *docs;
	size_t k;
	json_t *r;

	(void)state;
	assert_non_null(kust);
	assert_string_equal(manifest_str(kust, "kind"), "Kustomization");
	json_object_foreach(g.k8s, file, docs)
	{
		bool listed = false;

		(void)docs;
		if (strcmp(file, "kustomization.yaml") == 0)
			continue;
		json_array_foreach(resources, k, r) listed |=
			strcmp(json_string_value(r), file) == 0;
		if (!listed)
			fail_msg("%s is not in kustomization.yaml", file);
	}
	json_array_foreach(resources, k, r)
	{
		if (json_object_get(g.k8s, json_string_value(r)) == NULL)
			fail_msg(
				"kustomization.yaml lists %s, which is not "
				"there",
				json_string_value(r));
	}
}

static void every_manifest_has_api_version_kind_and_name(void **state)
{
	const char *file;
	json_t *docs;
	unsigned count = 0;

	(void)state;
	json_object_foreach(g.k8s, file, docs)
	{
		size_t k;
		json_t *doc;

		if (strcmp(file, "kustomization.yaml") == 0)
			continue;
		json_array_foreach(docs, k, doc)
		{
			if (manifest_str(doc, "apiVersion") == NULL ||
			    manifest_str(doc, "kind") == NULL ||
			    manifest_str(doc, "metadata.name") == NULL)
				fail_msg(
					"%s document %zu lacks apiVersion, "
					"kind or metadata.name",
					file, k);
			count++;
		}
	}
	assert_true(count >= 6);
}

static void statefulset_runs_three_pods_in_parallel(void **state)
{
	json_t *s = sts();
	json_t *headless;

	(void)state;
	assert_string_equal(manifest_str(s, "apiVersion"), "apps/v1");
	assert_int_equal(json_integer_value(manifest_get(s, "spec.replicas")),
			 NODES);
	assert_string_equal(manifest_str(s, "spec.podManagementPolicy"),
			    "Parallel");
	assert_true(selects(manifest_get(s, "spec.selector.matchLabels"),
			    manifest_get(s, "spec.template.metadata.labels")));
	headless = manifest_k8s_find(g.k8s, "Service",
				     manifest_str(s, "spec.serviceName"));
	assert_non_null(headless);
	assert_string_equal(manifest_str(headless, "spec.clusterIP"), "None");
	/* Peers must resolve each other before any is ready. */
	assert_true(json_is_true(
		manifest_get(headless, "spec.publishNotReadyAddresses")));
}

/* The containerPort named @name. */
static int container_port(const char *name)
{
	json_t *p =
		manifest_named(json_object_get(sts_container(), "ports"), name);

	return p != NULL ? (int)json_integer_value(
				   json_object_get(p, "containerPort"))
			 : -1;
}

static void statefulset_ports_are_the_images(void **state)
{
	(void)state;
	assert_int_equal(container_port("client"), PORT_CLIENT);
	assert_int_equal(container_port("http"), PORT_HTTP);
	assert_int_equal(container_port("raft"), PORT_RAFT);
	assert_int_equal(
		json_array_size(json_object_get(sts_container(), "ports")), 3);
}

static void statefulset_probes_health_and_ready_on_the_http_port(void **state)
{
	json_t *c = sts_container();
	static const char *const probes[][2] = {
		{ "livenessProbe", "/health" },
		{ "startupProbe", "/health" },
		{ "readinessProbe", "/ready" },
	};

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		json_t *probe = json_object_get(c, probes[k][0]);
		json_t *port = manifest_get(probe, "httpGet.port");

		if (probe == NULL)
			fail_msg("no %s", probes[k][0]);
		assert_string_equal(manifest_str(probe, "httpGet.path"),
				    probes[k][1]);
		if (json_is_string(port))
			assert_int_equal(
				container_port(json_string_value(port)),
				PORT_HTTP);
		else
			assert_int_equal(json_integer_value(port), PORT_HTTP);
	}
}

static void statefulset_pods_have_resources_and_time_to_hand_over(void **state)
{
	json_t *s = sts();
	json_t *c = sts_container();

	(void)state;
	assert_non_null(manifest_get(c, "resources.requests.cpu"));
	assert_non_null(manifest_get(c, "resources.requests.memory"));
	assert_non_null(manifest_get(c, "resources.limits.memory"));
	/* SIGTERM: commit what is in flight (2 s), hand leadership over
	 * (3 s), flush replies (2 s), close RocksDB; at least 30 s. */
	assert_true(
		json_integer_value(manifest_get(
			s,
			"spec.template.spec.terminationGracePeriodSeconds")) >=
		30);
	assert_true(json_is_true(manifest_get(
		s, "spec.template.spec.securityContext.runAsNonRoot")));
}

static void statefulset_claims_a_volume_at_the_data_dir(void **state)
{
	json_t *c = sts_container();
	json_t *claims = manifest_get(sts(), "spec.volumeClaimTemplates");
	json_t *mount = json_array_get(json_object_get(c, "volumeMounts"), 0);
	json_t *env = k8s_env(0);

	(void)state;
	assert_int_equal(json_array_size(claims), 1);
	assert_string_equal(
		manifest_str(json_array_get(claims, 0), "metadata.name"),
		manifest_str(mount, "name"));
	assert_string_equal(manifest_str(mount, "mountPath"),
			    manifest_str(env, "CAIRN_DATA_DIR"));
	assert_non_null(manifest_get(json_array_get(claims, 0),
				     "spec.resources.requests.storage"));
	json_decref(env);
}

static void statefulset_pods_are_their_entries_in_the_peer_list(void **state)
{
	json_t *s = sts();
	json_t *kust =
		json_array_get(json_object_get(g.k8s, "kustomization.yaml"), 0);
	char hosts[NODES][256];
	const char *host_ptrs[NODES];

	(void)state;
	for (unsigned k = 0; k < NODES; k++) {
		snprintf(hosts[k], sizeof hosts[k],
			 "%s-%u.%s.%s.svc.cluster.local",
			 manifest_str(s, "metadata.name"), k,
			 manifest_str(s, "spec.serviceName"),
			 manifest_str(kust, "namespace"));
		host_ptrs[k] = hosts[k];
	}
	for (unsigned k = 0; k < NODES; k++) {
		json_t *env = k8s_env(k);
		char where[32];

		snprintf(where, sizeof where, "pod %u", k);
		assert_addresses_match_peers(env, k, host_ptrs, where);
		/* The entrypoint derives the id from the ordinal. */
		assert_null(manifest_str(env, "CAIRN_ID"));
		assert_vars_known(env, where);
		json_decref(env);
	}
}

static void services_and_budget_select_the_pods(void **state)
{
	json_t *labels = manifest_get(sts(), "spec.template.metadata.labels");
	json_t *client = manifest_k8s_find(g.k8s, "Service", "cairn");
	json_t *pdb = manifest_k8s_find(g.k8s, "PodDisruptionBudget", NULL);
	json_t *headless = manifest_k8s_find(
		g.k8s, "Service", manifest_str(sts(), "spec.serviceName"));
	json_t *svcs[2] = { client, headless };

	(void)state;
	assert_non_null(client);
	assert_non_null(pdb);
	assert_true(selects(manifest_get(pdb, "spec.selector.matchLabels"),
			    labels));
	assert_int_equal(
		json_integer_value(manifest_get(pdb, "spec.maxUnavailable")),
		1);
	for (size_t k = 0; k < 2; k++) {
		size_t i;
		json_t *p;

		assert_true(selects(manifest_get(svcs[k], "spec.selector"),
				    labels));
		json_array_foreach(manifest_get(svcs[k], "spec.ports"), i, p)
		{
			json_t *target = json_object_get(p, "targetPort");
			int want = container_port(manifest_str(p, "name"));

			assert_true(want > 0);
			assert_int_equal(
				json_integer_value(json_object_get(p, "port")),
				want);
			assert_string_equal(json_string_value(target),
					    manifest_str(p, "name"));
		}
	}
	/* Clients reach client and HTTP ports; Raft is for the peers. */
	assert_int_equal(json_array_size(manifest_get(client, "spec.ports")),
			 2);
	assert_null(manifest_named(manifest_get(client, "spec.ports"), "raft"));
}

static void configmap_and_systemd_variables_are_cairnd_settings(void **state)
{
	json_t *cm = manifest_k8s_find(g.k8s, "ConfigMap", NULL);
	json_t *env = json_object();
	char *line;
	char *save = NULL;
	char *text = strdup(g.systemd_env);

	(void)state;
	assert_non_null(cm);
	assert_vars_known(json_object_get(cm, "data"), "configmap.yaml");
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		if (line[0] == '#' || line[0] == '\0')
			continue;
		if (eq == NULL)
			fail_msg("cairnd.env: not KEY=VALUE: %s", line);
		*eq = '\0';
		json_object_set_new(env, line, json_string(eq + 1));
	}
	assert_vars_known(env, "cairnd.env");
	assert_non_null(json_object_get(env, "CAIRN_PEERS"));
	assert_non_null(json_object_get(env, "CAIRN_ID"));
	json_decref(env);
	free(text);
}

/* ------------------------------------------------------------------------
 * Dockerfile, .dockerignore, setup.sh
 * ------------------------------------------------------------------------ */

/* True when @text has a line that starts with @prefix. */
static bool has_line(const char *text, const char *prefix)
{
	size_t len = strlen(prefix);

	for (const char *p = text; p != NULL;
	     p = strchr(p, '\n') != NULL ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, len) == 0)
			return true;
	}
	return false;
}

static void dockerfile_builds_and_runs_with_setup_sh(void **state)
{
	const char *build = strstr(g.dockerfile, "FROM debian:bookworm AS ");
	const char *runtime = strstr(g.dockerfile, "FROM debian:bookworm-slim");
	const char *build_setup = strstr(
		g.dockerfile, "RUN sh /src/deploy/setup.sh --build-only");
	const char *runtime_setup = strstr(g.dockerfile, "setup.sh --runtime");

	(void)state;
	assert_non_null(build);
	assert_non_null(runtime);
	assert_true(build < runtime);
	/* The same script as developers and CI, in both stages. */
	assert_non_null(build_setup);
	assert_true(build < build_setup && build_setup < runtime);
	assert_non_null(runtime_setup);
	assert_true(runtime < runtime_setup);
	assert_true(has_line(g.dockerfile, "COPY deploy/setup.sh "));
	assert_non_null(strstr(g.dockerfile, "cmake --install"));
	assert_non_null(strstr(g.dockerfile, "COPY --from=build "));
}

static void dockerfile_builds_every_installed_target(void **state)
{
	static const char *const dirs[] = { "node", "client/cli",
					    "client/lib" };

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		char rel[128];
		char *cm;
		const char *p;

		snprintf(rel, sizeof rel, "%s/CMakeLists.txt", dirs[k]);
		cm = read_or_fail(rel);
		for (p = strstr(cm, "install(TARGETS "); p != NULL;
		     p = strstr(p + 1, "install(TARGETS ")) {
			char target[64];
			char needle[80];
			size_t len;

			p += strlen("install(TARGETS ");
			len = strcspn(p, " \n\t)");
			assert_true(len < sizeof target);
			memcpy(target, p, len);
			target[len] = '\0';
			snprintf(needle, sizeof needle, " %s", target);
			if (strstr(strstr(g.dockerfile, "--target"), needle) ==
			    NULL)
				fail_msg(
					"%s installs %s, which the Dockerfile "
					"does not build",
					rel, target);
		}
		free(cm);
	}
}

static void dockerfile_runs_cairnd_as_cairn_with_a_data_volume(void **state)
{
	char expose[64];

	(void)state;
	snprintf(expose, sizeof expose, "EXPOSE %d %d %d", PORT_CLIENT,
		 PORT_HTTP, PORT_RAFT);
	assert_true(has_line(g.dockerfile, expose));
	assert_true(has_line(g.dockerfile, "VOLUME /data"));
	assert_true(has_line(g.dockerfile, "ENV CAIRN_DATA_DIR=/data"));
	assert_true(has_line(g.dockerfile, "USER cairn"));
	assert_true(has_line(g.dockerfile, "HEALTHCHECK "));
	assert_non_null(strstr(g.dockerfile, "127.0.0.1:8001}/health"));
	assert_true(
		has_line(g.dockerfile,
			 "ENTRYPOINT [\"/usr/local/bin/cairn-entrypoint\"]"));
	assert_true(has_line(g.dockerfile,
			     "COPY deploy/docker/entrypoint.sh "
			     "/usr/local/bin/cairn-entrypoint"));
	/* The StatefulSet's preStop hook is a file the image holds. */
	assert_true(has_line(g.dockerfile,
			     "COPY deploy/docker/prestop.sh "
			     "/usr/local/bin/cairn-prestop"));
	assert_string_equal(
		json_string_value(json_array_get(
			manifest_get(sts_container(),
				     "lifecycle.preStop.exec.command"),
			0)),
		"/usr/local/bin/cairn-prestop");
}

static void dockerignore_leaves_out_builds_data_and_git(void **state)
{
	static const char *const must[] = { ".git", "build", "build-*",
					    "data" };

	(void)state;
	for (size_t k = 0; k < sizeof must / sizeof *must; k++) {
		char line[32];

		snprintf(line, sizeof line, "%s\n", must[k]);
		if (!has_line(g.dockerignore, line))
			fail_msg(".dockerignore lacks %s", must[k]);
	}
	/* What the image needs must stay in. */
	assert_false(has_line(g.dockerignore, "deploy\n"));
	assert_false(has_line(g.dockerignore, "deploy/setup.sh"));
	assert_false(has_line(g.dockerignore, "deploy/docker\n"));
	assert_false(has_line(g.dockerignore, "deploy/docker/"));
}

/* The words of the shell variable @name="..." in setup.sh. */
static char *setup_list(const char *name)
{
	char needle[64];
	const char *p;
	const char *end;
	char *out;

	snprintf(needle, sizeof needle, "\n%s=\"", name);
	p = strstr(g.setup, needle);
	if (p == NULL)
		return NULL;
	p += strlen(needle);
	end = strchr(p, '"');
	if (end == NULL)
		return NULL;
	out = strndup(p, (size_t)(end - p));
	for (char *q = out; *q != '\0'; q++)
		if (*q == '\n' || *q == '\t')
			*q = ' ';
	return out;
}

static void setup_build_only_packages_are_in_the_full_list(void **state)
{
	char *full = setup_list("PACKAGES");
	char *build = setup_list("BUILD_PACKAGES");
	char *runtime = setup_list("RUNTIME_PACKAGES");
	char *save = NULL;
	char padded[4096];

	(void)state;
	assert_non_null(full);
	assert_non_null(build);
	assert_non_null(runtime);
	snprintf(padded, sizeof padded, " %s ", full);
	for (char *w = strtok_r(build, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save)) {
		char needle[128];

		snprintf(needle, sizeof needle, " %s ", w);
		if (strstr(padded, needle) == NULL)
			fail_msg("BUILD_PACKAGES has %s, PACKAGES does not", w);
	}
	/* The image's health check runs curl. */
	assert_non_null(strstr(runtime, "curl"));
	free(full);
	free(build);
	free(runtime);
}

/* ------------------------------------------------------------------------
 * docs/operations.md
 * ------------------------------------------------------------------------ */

static void operations_doc_lists_every_cairnd_flag(void **state)
{
	struct help_flag flags[64];
	size_t n = help_flags(flags, 64);
	size_t in_doc = 0;
	const char *p;

	(void)state;
	assert_true(n >= 10);
	/* Each flag of --help is a row "| `--flag ...` | `VAR` |". */
	for (size_t k = 0; k < n; k++) {
		char row[160];
		const char *at;

		snprintf(row, sizeof row, "\n| `%s", flags[k].flag);
		at = strstr(g.operations, row);
		if (at == NULL)
			fail_msg("docs/operations.md has no row for %s",
				 flags[k].flag);
		at += strlen(row);
		if (*at != ' ' && *at != '`')
			fail_msg("docs/operations.md: odd row for %s",
				 flags[k].flag);
		if (flags[k].var[0] != '\0') {
			const char *eol = strchr(at, '\n');
			char var[80];

			snprintf(var, sizeof var, "`%s`", flags[k].var);
			at = strstr(at, var);
			if (at == NULL || at > eol)
				fail_msg(
					"docs/operations.md: the row of %s "
					"does not name %s",
					flags[k].flag, flags[k].var);
		}
	}
	/* And no row for a flag cairnd does not have. */
	for (p = strstr(g.operations, "\n| `--"); p != NULL;
	     p = strstr(p + 1, "\n| `--")) {
		const char *start = p + 4;
		size_t len = strcspn(start, " `");
		bool known = false;

		for (size_t k = 0; k < n; k++)
			known |= strlen(flags[k].flag) == len &&
				 strncmp(flags[k].flag, start, len) == 0;
		if (!known)
			fail_msg(
				"docs/operations.md documents %.*s, which "
				"`cairnd --help` does not list",
				(int)len, start);
		in_doc++;
	}
	assert_int_equal(in_doc, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(compose_has_three_nodes_with_ids_1_to_3),
		cmocka_unit_test(
			compose_addresses_are_service_names_in_one_peer_list),
		cmocka_unit_test(compose_publishes_client_and_http_ports_only),
		cmocka_unit_test(compose_nodes_have_http_health_checks),
		cmocka_unit_test(compose_nodes_keep_data_in_named_volumes),
		cmocka_unit_test(compose_nodes_share_one_private_network),
		cmocka_unit_test(compose_variables_are_cairnd_settings),
		cmocka_unit_test(
			kustomization_lists_every_manifest_in_the_folder),
		cmocka_unit_test(every_manifest_has_api_version_kind_and_name),
		cmocka_unit_test(statefulset_runs_three_pods_in_parallel),
		cmocka_unit_test(statefulset_ports_are_the_images),
		cmocka_unit_test(
			statefulset_probes_health_and_ready_on_the_http_port),
		cmocka_unit_test(
			statefulset_pods_have_resources_and_time_to_hand_over),
		cmocka_unit_test(statefulset_claims_a_volume_at_the_data_dir),
		cmocka_unit_test(
			statefulset_pods_are_their_entries_in_the_peer_list),
		cmocka_unit_test(services_and_budget_select_the_pods),
		cmocka_unit_test(
			configmap_and_systemd_variables_are_cairnd_settings),
		cmocka_unit_test(dockerfile_builds_and_runs_with_setup_sh),
		cmocka_unit_test(dockerfile_builds_every_installed_target),
		cmocka_unit_test(
			dockerfile_runs_cairnd_as_cairn_with_a_data_volume),
		cmocka_unit_test(dockerignore_leaves_out_builds_data_and_git),
		cmocka_unit_test(
			setup_build_only_packages_are_in_the_full_list),
		cmocka_unit_test(operations_doc_lists_every_cairnd_flag),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
