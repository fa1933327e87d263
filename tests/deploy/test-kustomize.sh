#!/bin/sh
# `kubectl kustomize` (offline: no cluster is contacted) builds
# deploy/kubernetes/ into the six resources, every one in the namespace of
# kustomization.yaml. kubectl is no Debian package: exit 77 (CTest:
# skipped) without it; test_manifests.c checks the files without it.
#
#   tests/deploy/test-kustomize.sh DIR
set -eu
dir=$1
if ! command -v kubectl >/dev/null 2>&1; then
	echo "SKIPPED: kubectl is missing"
	exit 77
fi
out=$(kubectl kustomize "$dir") || {
	echo "FAILED: kubectl kustomize $dir"
	exit 1
}
kinds=$(printf '%s\n' "$out" | sed -n 's/^kind: //p' | sort | tr '\n' ' ')
want="ConfigMap Namespace PodDisruptionBudget Service Service StatefulSet "
if [ "$kinds" != "$want" ]; then
	echo "FAILED: kinds '$kinds', want '$want'"
	exit 1
fi
ns=$(sed -n 's/^namespace: //p' "$dir/kustomization.yaml")
n=$(printf '%s\n' "$out" | grep -c "^  namespace: $ns\$" || true)
if [ "$n" -ne 5 ]; then
	echo "FAILED: $n namespaced resources in '$ns', want 5"
	exit 1
fi
echo "1 passed, 0 failed"
