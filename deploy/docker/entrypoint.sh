#!/bin/sh
# The container image's entrypoint (deploy/docker/Dockerfile): starts
# cairnd, configured by its CAIRN_* variables, with the container's
# arguments as extra flags. Two additions, for Kubernetes:
#
#   - CAIRN_ID unset: the id is the host name's ordinal plus one, so the
#     StatefulSet's pod cairn-0 is node 1, cairn-1 node 2, and so on.
#   - CAIRN_RESOLVE_WAIT_S=N: first wait up to N seconds until the host of
#     CAIRN_RAFT_ADDRESS resolves (a new pod's DNS record may lag its
#     start; cairnd must resolve its own address to listen).
#
# A first argument that is not a flag is run instead of cairnd, so
# `docker run IMAGE cairn status` runs the CLI. Exit status: cairnd's, or 2
# when no id can be derived or CAIRN_RESOLVE_WAIT_S is not a number.
set -eu

if [ -n "${1:-}" ] && [ "${1#-}" = "$1" ]; then
	exec "$@"
fi

if [ -z "${CAIRN_ID:-}" ]; then
	host=${HOSTNAME:-$(hostname)}
	ordinal=${host##*-}
	case "$ordinal" in
	"$host" | '' | *[!0-9]* | 0?*)
		echo "entrypoint: CAIRN_ID is not set and the host name" \
			"'$host' does not end in -ORDINAL" >&2
		exit 2
		;;
	esac
	CAIRN_ID=$((ordinal + 1))
	export CAIRN_ID
fi

wait_s=${CAIRN_RESOLVE_WAIT_S:-0}
case "$wait_s" in
'' | *[!0-9]*)
	echo "entrypoint: CAIRN_RESOLVE_WAIT_S: not a number: '$wait_s'" >&2
	exit 2
	;;
esac
address=${CAIRN_RAFT_ADDRESS:-}
raft_host=${address%:*}
if [ "$wait_s" -gt 0 ] && [ -n "$raft_host" ]; then
	deadline=$(($(date +%s) + wait_s))
	until getent hosts "$raft_host" >/dev/null; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "entrypoint: $raft_host does not resolve after" \
				"${wait_s}s; starting anyway" >&2
			break
		fi
		sleep 1
	done
fi

exec cairnd "$@"
