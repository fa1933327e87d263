#!/bin/sh
# Installs everything a fresh Debian 12 machine needs to build and test
# Cairn, through apt only. libraft comes from bookworm-backports because
# bookworm's own 0.15.0 has known safety bugs (see docs/design.md).
#
# Idempotent: when every package is present and libraft is new enough it
# prints nothing and exits 0. It fails loudly when it cannot get libraft
# 0.22 or newer. Used by the README test command, .ci/run and the container
# image alike.
set -eu

LIBRAFT_MIN=0.22
BACKPORTS_LIST=/etc/apt/sources.list.d/bookworm-backports.list

PACKAGES="build-essential cmake pkg-config git
librocksdb-dev libuv1-dev libcmocka-dev zlib1g-dev libjansson-dev
libmicrohttpd-dev
clang clang-format libfuzzer-14-dev libclang-rt-14-dev"

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
	dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null || true
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

echo "setup: installing${missing:- libraft-dev}" >&2
sudo_ $APT update >/dev/null || die "apt-get update failed"
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	sudo_ $APT install --no-install-recommends $missing >/dev/null ||
		die "apt-get install failed:$missing"
fi
if ! raft_ok; then
	if [ "$need_backports" -eq 1 ]; then
		sudo_ $APT install --no-install-recommends -t bookworm-backports \
			libraft-dev >/dev/null ||
			die "cannot install libraft-dev from bookworm-backports"
	else
		sudo_ $APT install --no-install-recommends libraft-dev \
			>/dev/null || die "cannot install libraft-dev"
	fi
fi

raft_ok || die "libraft-dev is '$(raft_version)', need $LIBRAFT_MIN or newer" \
	"(bookworm's own 0.15 loses data; use bookworm-backports)"
echo "setup: done (libraft $(raft_version))" >&2
