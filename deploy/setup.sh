#!/bin/sh
# Installs everything a fresh Debian 12 machine needs to build and test
# Cairn, through apt only. libraft comes from bookworm-backports because
# bookworm's own 0.15.0 has known safety bugs (see docs/design.md).
#
# Idempotent: when every package is present and libraft is new enough it
# prints nothing and exits 0. It fails loudly when it cannot get libraft
# 0.22 or newer. Used by the README test command, .ci/run and the container
# image alike:
#
#   deploy/setup.sh               everything to build and test (PACKAGES)
#   deploy/setup.sh --build-only  only what building cairnd, libcairn and
#                                 the CLI needs (BUILD_PACKAGES, libraft-dev):
#                                 the image's builder stage
#   deploy/setup.sh --runtime     only the shared libraries they run on, and
#                                 curl for health checks (RUNTIME_PACKAGES,
#                                 libraft0): the image's runtime stage
set -eu

LIBRAFT_MIN=0.22
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.list

PACKAGES="build-essential cmake pkg-config git
librocksdb-dev libuv1-dev libcmocka-dev zlib1g-dev libjansson-dev
libmicrohttpd-dev chromium nodejs
clang clang-format libfuzzer-14-dev libclang-rt-14-dev
docker-compose python3 python3-yaml systemd iproute2 curl
nftables iptables libfaketime faketime"

# Building only (a subset of PACKAGES; CMake also wants cmocka).
BUILD_PACKAGES="build-essential cmake pkg-config
librocksdb-dev libuv1-dev libcmocka-dev zlib1g-dev libjansson-dev
libmicrohttpd-dev"

# Running only: what cairnd, cairn and libcairn.so link, less libraft.
RUNTIME_PACKAGES="librocksdb7.8 libuv1 zlib1g libjansson4 libmicrohttpd12
curl"

# The libraft package whose version is checked and, when too old or
# missing, installed from bookworm-backports.
RAFT_PACKAGE=libraft-dev

case "${1:-}" in
'') ;;
--build-only)
	PACKAGES=$BUILD_PACKAGES
	;;
--runtime)
	PACKAGES=$RUNTIME_PACKAGES
	RAFT_PACKAGE=libraft0
	;;
-h | --help)
	sed -n '2,/^set -eu$/p' "$0" | sed -e '/^set -eu$/d' -e 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "setup: unknown argument '$1' (try --help)" >&2
	exit 2
	;;
esac

die() {
	echo "setup: $*" >&2
	exit 1
}

sudo_() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null |
		grep -q "install ok installed"
}

raft_version() {
	dpkg-query -W -f='${Version}' "$RAFT_PACKAGE" 2>/dev/null || true
}

raft_ok() {
	v=$(raft_version)
	[ -n "$v" ] && dpkg --compare-versions "$v" ge "$LIBRAFT_MIN"
}

missing=""
for p in $PACKAGES; do
	installed "$p" || missing="$missing $p"
done

if [ -z "$missing" ] && raft_ok; then
	exit 0
fi

[ -r /etc/os-release ] && . /etc/os-release
case "${VERSION_CODENAME:-}" in
bookworm) need_backports=1 ;;
*) need_backports=0 ;;
esac

export DEBIAN_FRONTEND=noninteractive
APT="apt-get -q -y -o Dpkg::Use-Pty=0"

if [ "$need_backports" -eq 1 ] && ! grep -rqs "bookworm-backports" \
	/etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "setup: adding the bookworm-backports suite" >&2
	echo "deb http://deb.debian.org/debian bookworm-backports main" |
		sudo_ tee "$BACKPORTS_LIST" >/dev/null
fi

echo "setup: installing${missing:- $RAFT_PACKAGE}" >&2
sudo_ $APT update >/dev/null || die "apt-get update failed"
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	sudo_ $APT install --no-install-recommends $missing >/dev/null ||
		die "apt-get install failed:$missing"
fi
if ! raft_ok; then
	if [ "$need_backports" -eq 1 ]; then
		sudo_ $APT install --no-install-recommends -t bookworm-backports \
			"$RAFT_PACKAGE" >/dev/null ||
			die "cannot install $RAFT_PACKAGE from bookworm-backports"
	else
		sudo_ $APT install --no-install-recommends "$RAFT_PACKAGE" \
			>/dev/null || die "cannot install $RAFT_PACKAGE"
	fi
fi

raft_ok || die "$RAFT_PACKAGE is '$(raft_version)', need $LIBRAFT_MIN or newer" \
	"(bookworm's own 0.15 loses data; use bookworm-backports)"
echo "setup: done (libraft $(raft_version))" >&2
