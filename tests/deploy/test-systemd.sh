#!/bin/sh
# `systemd-analyze verify` of deploy/systemd/cairnd.service, offline: in a
# scratch root that holds the system's own unit files, the unit, and this
# build's cairnd at the unit's ExecStart path (verify checks that it is
# executable). Any message fails the test (verify exits 0 on unknown keys
# and bad values; it only prints them). Then `systemd-analyze security`
# rates the unit's sandboxing, which must stay "OK" (exposure below 2.0).
# Exit status 77 (CTest: skipped) when systemd-analyze is missing.
#
#   tests/deploy/test-systemd.sh UNIT CAIRND SCRATCH_DIR
set -eu

unit=$1
cairnd=$2
root=$3/systemd-root.$$

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIPPED: systemd-analyze is missing (deploy/setup.sh installs" \
		"systemd)"
	exit 77
fi
rm -rf "$root"
trap 'rm -rf "$root"' EXIT

exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[ -n "$exec_path" ] || {
	echo "FAILED: no ExecStart= in $unit"
	exit 1
}
mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" \
	"$root$(dirname "$exec_path")"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$unit" "$root/etc/systemd/system/cairnd.service"
cp "$cairnd" "$root$exec_path"

rc=0
out=$(systemd-analyze verify --root="$root" cairnd.service 2>&1) || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
	echo "FAILED: systemd-analyze verify: exit $rc"
	echo "$out"
	exit 1
fi
echo "ok: systemd-analyze verify accepts the unit"

out=$(systemd-analyze security --offline=yes --root="$root" \
	cairnd.service 2>&1) || true
level=$(printf '%s\n' "$out" |
	sed -n 's/.*Overall exposure level for cairnd.service: \([0-9.]*\).*/\1/p')
case "$level" in
0.* | 1.*) echo "ok: exposure level $level" ;;
*)
	printf '%s\n' "$out" | tail -n 40
	echo "FAILED: exposure level '$level', want below 2.0"
	exit 1
	;;
esac
echo "2 passed, 0 failed"
