#!/bin/sh
# The StatefulSet's preStop hook (deploy/kubernetes/statefulset.yaml):
# hands this node's leadership over before Kubernetes stops the pod. It
# sends SIGTERM to cairnd, which stops taking requests, lets the appends in
# flight commit, transfers leadership to a caught-up follower (bounded
# wait), answers what is pending and exits; the hook waits for that exit,
# so the pod is only torn down once the cluster has a new leader (or the
# node was not the leader). Kubernetes' own SIGTERM that follows finds
# cairnd gone or already stopping.
#
#   cairn-prestop               cairnd is PID 1 (the container's entrypoint
#                               execs it)
#   CAIRN_PRESTOP_PID=N         another process id (tests)
#   CAIRN_PRESTOP_WAIT_S=S      longest wait for the exit (default 50, under
#                               the pod's terminationGracePeriodSeconds)
#
# Exit status: 0 when cairnd has exited (or was not running), 1 when it is
# still running after the wait, 2 on a bad setting.
set -eu

pid=${CAIRN_PRESTOP_PID:-1}
wait_s=${CAIRN_PRESTOP_WAIT_S:-50}
case "$pid$wait_s" in
'' | *[!0-9]*)
	echo "prestop: CAIRN_PRESTOP_PID and CAIRN_PRESTOP_WAIT_S must be" \
		"numbers" >&2
	exit 2
	;;
esac

kill -TERM "$pid" 2>/dev/null || exit 0
deadline=$(($(date +%s) + wait_s))
while kill -0 "$pid" 2>/dev/null; do
	# A zombie (exited, not yet reaped by its parent) has stopped too.
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' \
		"/proc/$pid/status" 2>/dev/null || true)
	[ "$state" = Z ] && exit 0
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "prestop: cairnd (pid $pid) still runs after ${wait_s}s" >&2
		exit 1
	fi
	sleep 0.2
done
exit 0
