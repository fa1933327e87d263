/* manifest: reading the deployment files (deploy/docker-compose.yml,
 * deploy/kubernetes/, deploy/systemd/, the Dockerfile) for the offline
 * checks in test_manifests.c and for deploy_env, which prints the
 * environment a file gives one node so that run-cluster.sh starts real
 * cairnd processes with exactly that configuration.
 *
 * YAML becomes JSON through yaml2json.sh (one object: a file's base name
 * -> the array of its documents); everything else here is jansson. Every
 * json_t returned is a new reference the caller owns (json_decref); every
 * json_t argument is borrowed. */
#ifndef CAIRN_TESTS_DEPLOY_MANIFEST_H
#define CAIRN_TESTS_DEPLOY_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Room for the error messages below. */
#define MANIFEST_ERR_MAX 512

/* Runs `@yaml2json FILE...` on @paths (NULL terminated) and parses its
 * output. Returns NULL with @err set when the tool fails or prints no
 * JSON object. */
json_t *manifest_yaml_load(const char *yaml2json, const char *const *paths,
			   char err[MANIFEST_ERR_MAX]);

/* The value at a dotted path of object keys ("spec.template.spec"), or
 * NULL. Borrowed from @root. */
json_t *manifest_get(json_t *root, const char *path);

/* The string at a dotted path, or NULL. */
const char *manifest_str(json_t *root, const char *path);

/* The first document of kind @kind (and metadata.name @name unless NULL)
 * among all documents of @files (as manifest_yaml_load returns). Borrowed;
 * NULL when none. */
json_t *manifest_k8s_find(json_t *files, const char *kind, const char *name);

/* The element of array @arr whose "name" is @name, or NULL. Borrowed. */
json_t *manifest_named(json_t *arr, const char *name);

/* The environment compose gives service @service of @compose (a parsed
 * compose file, as `docker-compose config` prints it or as written):
 * `environment` as a mapping or a KEY=VALUE list, plus HOSTNAME (the
 * service's `hostname`, else its name), as the container sees it. An
 * object of strings; NULL with @err set. */
json_t *manifest_compose_env(json_t *compose, const char *service,
			     char err[MANIFEST_ERR_MAX]);

/* The environment the StatefulSet of @files (kustomization.yaml and the
 * resources it lists) gives container @container of pod number @ordinal:
 * envFrom ConfigMaps, then env in order with $(VAR) expanded as the
 * kubelet does, fieldRef metadata.name/metadata.namespace, plus HOSTNAME
 * (the pod's name). The namespace is kustomization.yaml's, else
 * "default". An object of strings; NULL with @err set. */
json_t *manifest_k8s_env(json_t *files, const char *container, unsigned ordinal,
			 char err[MANIFEST_ERR_MAX]);

/* One member of a CAIRN_PEERS list. */
struct manifest_peer {
	unsigned long long id;
	char raft[256];   /* HOST:PORT */
	char client[256]; /* HOST:PORT, "" when absent */
	char http[256];   /* HOST:PORT, "" when absent */
};

/* Parses ID=RAFT/CLIENT/HTTP,... into @out (room for @max). Returns the
 * number of members, or -1 when the text is malformed or longer. */
int manifest_peers_parse(const char *text, struct manifest_peer *out,
			 size_t max);

/* Splits HOST:PORT; returns the port (1..65535), or -1. @host gets up to
 * @host_len bytes. */
int manifest_address_split(const char *address, char *host, size_t host_len);

/* Reads a whole file; NULL when it cannot. The caller frees it. */
char *manifest_read_file(const char *path);

#endif /* CAIRN_TESTS_DEPLOY_MANIFEST_H */
