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
#   - a bare `--join` flag (or CAIRN_JOIN=1): cairnd's --join takes the
#     client addresses of running nodes; the entrypoint fills them in from
#     CAIRN_SEEDS, else from the client addresses in CAIRN_PEERS, else from
#     the StatefulSet's peer names (pods -0 .. -N-1 of this pod -N, on
#     CAIRN_CLIENT_ADDRESS's domain and port), this node's own address
#     left out, and drops CAIRN_PEERS (a joining node takes no --peers).
#     A node whose id is not in CAIRN_PEERS joins this way by itself.
#
# A first argument that is not a flag is run instead of cairnd, so
# `docker run IMAGE cairn status` runs the CLI. Exit status: cairnd's, or 2
# when no id can be derived, CAIRN_RESOLVE_WAIT_S is not a number or a
# bare --join finds no seeds.
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

# The seeds of a bare --join, comma separated, without this node's own
# client address; empty when none can be found.
join_seeds() {
	self=${CAIRN_CLIENT_ADDRESS:-}
	list=""
	if [ -n "${CAIRN_SEEDS:-}" ]; then
		list=$(echo "$CAIRN_SEEDS" | tr ',' '\n')
	elif [ -n "${CAIRN_PEERS:-}" ]; then
		list=$(echo "$CAIRN_PEERS" | tr ',' '\n' |
			sed -n 's|^[0-9]*=[^/]*/\([^/]*\).*|\1|p')
	else
		host=${HOSTNAME:-$(hostname)}
		ordinal=${host##*-}
		case "$self" in
		"$host".* | "$host":*)
			suffix=${self#"$host"}
			k=0
			while [ "$k" -lt "$ordinal" ]; do
				list="$list
${host%-*}-$k$suffix"
				k=$((k + 1))
			done
			;;
		esac
	fi
	echo "$list" | grep -v -x -F -e "$self" -e '' | paste -s -d, -
}

bare_join=0
# A node whose id is not among CAIRN_PEERS (a StatefulSet scaled past the
# bootstrap members) joins instead.
case ",${CAIRN_PEERS:-}" in
"," | *",$CAIRN_ID="*) ;;
*) bare_join=1 ;;
esac
case "${CAIRN_JOIN:-}" in
1 | true)
	bare_join=1
	unset CAIRN_JOIN
	;;
esac
left=$#
for arg; do
	shift
	left=$((left - 1))
	if [ "$arg" = --join ] &&
		{ [ "$left" -eq 0 ] || [ "${1#-}" != "$1" ]; }; then
		bare_join=1
		continue
	fi
	set -- "$@" "$arg"
done
if [ "$bare_join" -eq 1 ]; then
	seeds=$(join_seeds)
	if [ -z "$seeds" ]; then
		echo "entrypoint: --join: no seeds (set CAIRN_SEEDS, or" \
			"CAIRN_PEERS, or run as pod -N of a StatefulSet with" \
			"CAIRN_CLIENT_ADDRESS on the pod's name)" >&2
		exit 2
	fi
	unset CAIRN_PEERS
	set -- "$@" --join "$seeds"
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
