/* manifest.c: loading the deployment files and computing the environment
 * each gives a node (see manifest.h). Used by test_manifests.c and
 * deploy_env.c. */
#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Largest output of yaml2json accepted (the files are a few KiB). */
#define YAML_JSON_BYTES_MAX (4u << 20)

/* Longest value after $(VAR) expansion. */
#define EXPANDED_MAX 4096

/* Appends @s to @buf (size @cap) quoted for sh -c. False when it does not
 * fit. */
static bool sh_quote_append(char *buf, size_t cap, const char *s)
{
	size_t len = strlen(buf);

	if (len + 3 >= cap)
		return false;
	buf[len++] = ' ';
	buf[len++] = '\'';
	for (; *s != '\0'; s++) {
		if (*s == '\'') {
			if (len + 5 >= cap)
				return false;
			memcpy(buf + len, "'\\''", 4);
			len += 4;
		} else {
			if (len + 2 >= cap)
				return false;
			buf[len++] = *s;
		}
	}
	buf[len++] = '\'';
	buf[len] = '\0';
	return true;
}

json_t *manifest_yaml_load(const char *yaml2json, const char *const *paths,
			   char err[MANIFEST_ERR_MAX])
{
	char cmd[8192] = "";
	char *text;
	size_t len = 0;
	size_t n;
	FILE *p;
	int status;
	json_error_t je;
	json_t *j;

	if (!sh_quote_append(cmd, sizeof cmd, yaml2json)) {
		snprintf(err, MANIFEST_ERR_MAX, "command too long");
		return NULL;
	}
	for (; *paths != NULL; paths++) {
		if (!sh_quote_append(cmd, sizeof cmd, *paths)) {
			snprintf(err, MANIFEST_ERR_MAX, "command too long");
			return NULL;
		}
	}
	text = malloc(YAML_JSON_BYTES_MAX + 1);
	if (text == NULL) {
		snprintf(err, MANIFEST_ERR_MAX, "out of memory");
		return NULL;
	}
	p = popen(cmd, "r");
	if (p == NULL) {
		snprintf(err, MANIFEST_ERR_MAX, "popen: %s", strerror(errno));
		free(text);
		return NULL;
	}
	while ((n = fread(text + len, 1, YAML_JSON_BYTES_MAX - len, p)) > 0)
		len += n;
	status = pclose(p);
	text[len] = '\0';
	if (status != 0) {
		snprintf(err, MANIFEST_ERR_MAX, "%s failed (status %d)", cmd,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		free(text);
		return NULL;
	}
	j = json_loadb(text, len, 0, &je);
	free(text);
	if (j == NULL || !json_is_object(j)) {
		snprintf(err, MANIFEST_ERR_MAX, "%s: not a JSON object: %s",
			 cmd, j == NULL ? je.text : "other JSON");
		json_decref(j);
		return NULL;
	}
	return j;
}

json_t *manifest_get(json_t *root, const char *path)
{
	char key[256];

	while (root != NULL && *path != '\0') {
		const char *dot = strchr(path, '.');
		size_t len = dot != NULL ? (size_t)(dot - path) : strlen(path);

		if (len >= sizeof key || !json_is_object(root))
			return NULL;
		memcpy(key, path, len);
		key[len] = '\0';
		root = json_object_get(root, key);
		path += len + (dot != NULL);
	}
	return root;
}

const char *manifest_str(json_t *root, const char *path)
{
	return json_string_value(manifest_get(root, path));
}

json_t *manifest_k8s_find(json_t *files, const char *kind, const char *name)
{
	const char *file;
	json_t *docs;

	json_object_foreach(files, file, docs)
	{
		size_t k;
		json_t *doc;

		(void)file;
		json_array_foreach(docs, k, doc)
		{
			const char *dk = manifest_str(doc, "kind");
			const char *dn = manifest_str(doc, "metadata.name");

			if (dk == NULL || strcmp(dk, kind) != 0)
				continue;
			if (name != NULL &&
			    (dn == NULL || strcmp(dn, name) != 0))
				continue;
			return doc;
		}
	}
	return NULL;
}

json_t *manifest_named(json_t *arr, const char *name)
{
	size_t k;
	json_t *e;

	json_array_foreach(arr, k, e)
	{
		const char *n = manifest_str(e, "name");

		if (n != NULL && strcmp(n, name) == 0)
			return e;
	}
	return NULL;
}

/* A scalar of YAML as the string a container sees (numbers and booleans
 * as written by a YAML 1.1 reader); NULL for anything else. */
static json_t *scalar_string(json_t *v)
{
	char buf[64];

	if (json_is_string(v))
		return json_string(json_string_value(v));
	if (json_is_integer(v)) {
		snprintf(buf, sizeof buf, "%lld",
			 (long long)json_integer_value(v));
		return json_string(buf);
	}
	if (json_is_boolean(v))
		return json_string(json_is_true(v) ? "true" : "false");
	return NULL;
}

json_t *manifest_compose_env(json_t *compose, const char *service,
			     char err[MANIFEST_ERR_MAX])
{
	json_t *svc =
		json_object_get(json_object_get(compose, "services"), service);
	json_t *environment;
	json_t *env;
	const char *hostname;

	if (!json_is_object(svc)) {
		snprintf(err, MANIFEST_ERR_MAX, "no service '%s'", service);
		return NULL;
	}
	env = json_object();
	environment = json_object_get(svc, "environment");
	if (json_is_object(environment)) {
		const char *key;
		json_t *v;

		json_object_foreach(environment, key, v)
		{
			json_t *s = scalar_string(v);

			if (s == NULL) {
				snprintf(err, MANIFEST_ERR_MAX,
					 "%s: %s is not a scalar", service,
					 key);
				json_decref(env);
				return NULL;
			}
			json_object_set_new(env, key, s);
		}
	} else if (json_is_array(environment)) {
		size_t k;
		json_t *v;

		json_array_foreach(environment, k, v)
		{
			const char *kv = json_string_value(v);
			const char *eq = kv != NULL ? strchr(kv, '=') : NULL;
			char key[256];

			if (eq == NULL || (size_t)(eq - kv) >= sizeof key) {
				snprintf(err, MANIFEST_ERR_MAX,
					 "%s: environment entry %zu is not "
					 "KEY=VALUE",
					 service, k);
				json_decref(env);
				return NULL;
			}
			memcpy(key, kv, (size_t)(eq - kv));
			key[eq - kv] = '\0';
			json_object_set_new(env, key, json_string(eq + 1));
		}
	} else if (environment != NULL) {
		snprintf(err, MANIFEST_ERR_MAX, "%s: odd environment", service);
		json_decref(env);
		return NULL;
	}
	hostname = manifest_str(svc, "hostname");
	json_object_set_new(env, "HOSTNAME",
			    json_string(hostname != NULL ? hostname : service));
	return env;
}

/* Expands $(VAR) in @in with the variables of @env, as the kubelet does:
 * $$ is a literal $, a reference to an unknown variable stays as it is. */
static bool k8s_expand(json_t *env, const char *in, char *out, size_t cap)
{
	size_t len = 0;

	while (*in != '\0') {
		const char *add = in;
		size_t add_len = 1;

		if (in[0] == '$' && in[1] == '$') {
			add_len = 1;
			in += 2;
		} else if (in[0] == '$' && in[1] == '(') {
			const char *close = strchr(in + 2, ')');
			char name[256];
			const char *value;

			if (close != NULL &&
			    (size_t)(close - in - 2) < sizeof name) {
				memcpy(name, in + 2, (size_t)(close - in - 2));
				name[close - in - 2] = '\0';
				value = json_string_value(
					json_object_get(env, name));
				if (value != NULL) {
					add = value;
					add_len = strlen(value);
					in = close + 1;
				} else {
					add_len = (size_t)(close - in + 1);
					in = close + 1;
				}
			} else {
				in++;
			}
		} else {
			in++;
		}
		if (len + add_len >= cap)
			return false;
		memcpy(out + len, add, add_len);
		len += add_len;
	}
	out[len] = '\0';
	return true;
}

json_t *manifest_k8s_env(json_t *files, const char *container, unsigned ordinal,
			 char err[MANIFEST_ERR_MAX])
{
	json_t *kust =
		json_array_get(json_object_get(files, "kustomization.yaml"), 0);
	json_t *sts = manifest_k8s_find(files, "StatefulSet", NULL);
	const char *ns = manifest_str(kust, "namespace");
	const char *sts_name = manifest_str(sts, "metadata.name");
	json_t *c;
	json_t *env;
	json_t *v;
	size_t k;
	char pod[256];
	char expanded[EXPANDED_MAX];

	if (sts == NULL || sts_name == NULL) {
		snprintf(err, MANIFEST_ERR_MAX, "no StatefulSet with a name");
		return NULL;
	}
	c = manifest_named(manifest_get(sts, "spec.template.spec.containers"),
			   container);
	if (c == NULL) {
		snprintf(err, MANIFEST_ERR_MAX, "no container '%s'", container);
		return NULL;
	}
	if (ns == NULL)
		ns = "default";
	snprintf(pod, sizeof pod, "%s-%u", sts_name, ordinal);
	env = json_object();
	json_array_foreach(json_object_get(c, "envFrom"), k, v)
	{
		const char *cm_name = manifest_str(v, "configMapRef.name");
		json_t *cm;
		const char *key;
		json_t *value;

		if (cm_name == NULL) {
			snprintf(err, MANIFEST_ERR_MAX,
				 "envFrom %zu: only configMapRef is read", k);
			goto err;
		}
		cm = manifest_k8s_find(files, "ConfigMap", cm_name);
		if (cm == NULL) {
			snprintf(err, MANIFEST_ERR_MAX, "no ConfigMap '%s'",
				 cm_name);
			goto err;
		}
		json_object_foreach(json_object_get(cm, "data"), key, value)
		{
			if (!json_is_string(value)) {
				snprintf(err, MANIFEST_ERR_MAX,
					 "ConfigMap %s: %s is not a string "
					 "(quote it)",
					 cm_name, key);
				goto err;
			}
			json_object_set(env, key, value);
		}
	}
	json_array_foreach(json_object_get(c, "env"), k, v)
	{
		const char *name = manifest_str(v, "name");
		const char *value = manifest_str(v, "value");
		const char *field =
			manifest_str(v, "valueFrom.fieldRef.fieldPath");

		if (name == NULL) {
			snprintf(err, MANIFEST_ERR_MAX, "env %zu: no name", k);
			goto err;
		}
		if (value != NULL) {
			if (!k8s_expand(env, value, expanded,
					sizeof expanded)) {
				snprintf(err, MANIFEST_ERR_MAX,
					 "env %s: too long", name);
				goto err;
			}
			json_object_set_new(env, name, json_string(expanded));
		} else if (field != NULL &&
			   strcmp(field, "metadata.name") == 0) {
			json_object_set_new(env, name, json_string(pod));
		} else if (field != NULL &&
			   strcmp(field, "metadata.namespace") == 0) {
			json_object_set_new(env, name, json_string(ns));
		} else {
			snprintf(err, MANIFEST_ERR_MAX,
				 "env %s: neither a string value nor a "
				 "metadata.name/namespace fieldRef",
				 name);
			goto err;
		}
	}
	json_object_set_new(env, "HOSTNAME", json_string(pod));
	return env;

err:
	json_decref(env);
	return NULL;
}

int manifest_address_split(const char *address, char *host, size_t host_len)
{
	const char *colon = strrchr(address, ':');
	char *end;
	long port;

	if (colon == NULL || colon == address ||
	    (size_t)(colon - address) >= host_len)
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port < 1 ||
	    port > 65535)
		return -1;
	memcpy(host, address, (size_t)(colon - address));
	host[colon - address] = '\0';
	return (int)port;
}

/* Copies [p, end) into @dst (256 bytes). */
static bool field_copy(char dst[256], const char *p, const char *end)
{
	if (end < p || (size_t)(end - p) >= 256)
		return false;
	memcpy(dst, p, (size_t)(end - p));
	dst[end - p] = '\0';
	return true;
}

int manifest_peers_parse(const char *text, struct manifest_peer *out,
			 size_t max)
{
	size_t n = 0;
	const char *p = text;

	while (*p != '\0') {
		const char *end = strchr(p, ',');
		const char *eq;
		const char *s1;
		const char *s2;
		struct manifest_peer *m;
		char *idend;

		if (end == NULL)
			end = p + strlen(p);
		if (n == max)
			return -1;
		m = &out[n];
		memset(m, 0, sizeof *m);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL)
			return -1;
		m->id = strtoull(p, &idend, 10);
		if (idend != eq || m->id == 0)
			return -1;
		s1 = memchr(eq + 1, '/', (size_t)(end - eq - 1));
		s2 = s1 != NULL ? memchr(s1 + 1, '/', (size_t)(end - s1 - 1))
				: NULL;
		if (!field_copy(m->raft, eq + 1, s1 != NULL ? s1 : end))
			return -1;
		if (s1 != NULL &&
		    !field_copy(m->client, s1 + 1, s2 != NULL ? s2 : end))
			return -1;
		if (s2 != NULL && !field_copy(m->http, s2 + 1, end))
			return -1;
		n++;
		p = *end != '\0' ? end + 1 : end;
	}
	return (int)n;
}

char *manifest_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)size + 1);
		if (buf != NULL) {
			if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
				free(buf);
				buf = NULL;
			} else {
				buf[size] = '\0';
			}
		}
	}
	fclose(f);
	return buf;
}
