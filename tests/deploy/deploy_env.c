/* deploy_env: prints the environment a deployment file gives one node, one
 * KEY=VALUE a line, for run-cluster.sh, which starts the image's
 * entrypoint with exactly those variables:
 *
 *   deploy_env compose FILE.json SERVICE      (docker-compose config output)
 *   deploy_env kubernetes FILE.json ORDINAL   (all of deploy/kubernetes/)
 *
 * FILE.json is yaml2json.sh's output. Exit status 0; 1 when the files do
 * not give the node an environment; 2 on a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: deploy_env compose FILE.json SERVICE\n"
		"       deploy_env kubernetes FILE.json ORDINAL\n");
	return 2;
}

int main(int argc, char **argv)
{
	char err[MANIFEST_ERR_MAX];
	json_error_t je;
	json_t *files;
	json_t *env = NULL;
	const char *key;
	json_t *v;

	if (argc != 4)
		return usage();
	files = json_load_file(argv[2], 0, &je);
	if (files == NULL) {
		fprintf(stderr, "deploy_env: %s: %s\n", argv[2], je.text);
		return 1;
	}
	if (strcmp(argv[1], "compose") == 0) {
		json_t *compose = json_array_get(
			json_object_get(files, "docker-compose.yml"), 0);

		if (compose == NULL)
			snprintf(err, sizeof err, "no docker-compose.yml");
		else
			env = manifest_compose_env(compose, argv[3], err);
	} else if (strcmp(argv[1], "kubernetes") == 0) {
		char *end;
		unsigned long ordinal = strtoul(argv[3], &end, 10);

		if (*end != '\0' || end == argv[3] || ordinal > 1000) {
			json_decref(files);
			return usage();
		}
		env = manifest_k8s_env(files, "cairnd", (unsigned)ordinal, err);
	} else {
		json_decref(files);
		return usage();
	}
	if (env == NULL) {
		fprintf(stderr, "deploy_env: %s\n", err);
		json_decref(files);
		return 1;
	}
	json_object_foreach(env, key, v)
	{
		const char *s = json_string_value(v);

		if (strchr(s, '\n') != NULL) {
			fprintf(stderr, "deploy_env: %s holds a newline\n",
				key);
			json_decref(env);
			json_decref(files);
			return 1;
		}
		printf("%s=%s\n", key, s);
	}
	json_decref(env);
	json_decref(files);
	return 0;
}
