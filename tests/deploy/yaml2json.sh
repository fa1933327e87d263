#!/bin/sh
# Converts YAML files to one JSON object for the deployment checks
# (test_manifests.c, deploy_env.c, run-cluster.sh): each file's base name
# maps to the array of its documents. YAML is read by Debian's
# python3-yaml (safe_load_all: YAML 1.1, merge keys, no tags), installed
# by deploy/setup.sh; the checks themselves are C.
#
#   tests/deploy/yaml2json.sh FILE... > OUT.json
#
# Exit status 0, or 1 when a file is missing or not YAML.
set -eu
py=/usr/bin/python3
[ -x "$py" ] || {
	echo "yaml2json: $py is missing (deploy/setup.sh installs python3)" >&2
	exit 1
}
exec "$py" -c '
import json, os, sys
try:
    import yaml
except ImportError:
    sys.exit("yaml2json: python3-yaml is missing (deploy/setup.sh installs it)")
out = {}
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            out[os.path.basename(path)] = list(yaml.safe_load_all(f))
    except (OSError, yaml.YAMLError) as e:
        sys.exit("yaml2json: %s: %s" % (path, e))
json.dump(out, sys.stdout)
' "$@"
