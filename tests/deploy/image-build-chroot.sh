#!/bin/sh
# Builds the container image's file system without a container engine, to
# check deploy/docker/Dockerfile where no Docker daemon runs: every FROM
# starts from a copy of a Debian 12 root made by debootstrap, every COPY
# copies from the build context (less .dockerignore's entries) or from an
# earlier stage, every RUN runs in a chroot, ENV and WORKDIR apply to the
# RUNs after them. Then, in the final stage's root, it starts the
# entrypoint as the image's user with a one-node cluster, waits for it to
# answer `cairn status`, runs the HEALTHCHECK command, appends, stops it
# with SIGTERM and expects exit status 0.
#
#   tests/deploy/image-build-chroot.sh WORKDIR
#
# The build context is the repository (or CAIRN_IMAGE_CONTEXT, e.g. a
# `git archive` of a commit). WORKDIR gets the base root (debootstrap --variant=minbase bookworm, kept
# for the next run) and one root per stage. Needs root, debootstrap and
# Debian's package mirror; not part of the CTest suite (it downloads and
# builds for many minutes). Exit status 0 when every step passed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
ctx=${CAIRN_IMAGE_CONTEXT:-$here/../..}
ctx=$(cd "$ctx" && pwd)
dockerfile=$ctx/deploy/docker/Dockerfile
work=${1:?usage: $0 WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
base=$work/base

die() {
	echo "image-build-chroot: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (chroot, mounts)"
if [ ! -x "$base/bin/sh" ]; then
	command -v debootstrap >/dev/null || die "needs debootstrap"
	debootstrap --variant=minbase bookworm "$base" \
		http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
		die "debootstrap failed (see $work/debootstrap.log)"
fi

# Joins continuation lines and drops comments: one instruction a line.
instructions() {
	sed -e '/^[[:space:]]*#/d' "$dockerfile" |
		sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' |
		sed -e '/^[[:space:]]*$/d'
}

stage=""
stage_n=0
env_file=""
workdir=/
user=""
entrypoint=""
health=""
# run_in [-n] SCRIPT: runs SCRIPT in the current stage's root; -n in a
# network namespace of its own (loopback only).
run_in() {
	net=""
	if [ "$1" = -n ]; then
		net=-n
		shift
	fi
	# shellcheck disable=SC2016
	NET=$net unshare -m $net sh -c '
		root=$1; shift
		[ -z "$NET" ] || ip link set lo up
		mount -t proc proc "$root/proc"
		mount --bind /dev "$root/dev"
		cp /etc/resolv.conf "$root/etc/resolv.conf"
		exec chroot "$root" /bin/sh -c "$@"' run "$stage" "$@"
}

instructions >"$work/instructions"
while IFS= read -r line; do
	op=${line%%[[:space:]]*}
	args=$(printf '%s' "${line#"$op"}" | sed 's/^[[:space:]]*//')
	case "$op" in
	FROM)
		stage_n=$((stage_n + 1))
		name=$(printf '%s' "$args" | sed -n 's/.* [Aa][Ss] \([^ ]*\)$/\1/p')
		stage=$work/stage-${name:-$stage_n}
		echo "== FROM $args -> $stage"
		rm -rf "$stage"
		cp -a "$base" "$stage"
		env_file=$stage/.image-env
		: >"$env_file"
		workdir=/
		user=""
		;;
	COPY)
		from=""
		case "$args" in
		--from=*)
			from=${args%%[[:space:]]*}
			from=$work/stage-${from#--from=}
			args=$(printf '%s' "${args#*[[:space:]]}")
			;;
		esac
		src=${args%[[:space:]]*}
		dest=${args##*[[:space:]]}
		echo "== COPY ${from:+(from $from) }$src -> $dest"
		case "$dest" in /*) ;; *) dest=$workdir/$dest ;; esac
		if [ -n "$from" ]; then
			mkdir -p "$stage$dest"
			cp -a "$from$src/." "$stage$dest/"
		elif [ "$src" = . ]; then
			mkdir -p "$stage$dest"
			tmp=$stage$dest
			set -- "$tmp"
			while IFS= read -r pat; do
				case "$pat" in
				'' | '#'*) ;;
				'**/'*) set -- "$@" "--exclude=${pat#\*\*/}" ;;
				*) set -- "$@" "--exclude=./$pat" ;;
				esac
			done <"$ctx/.dockerignore"
			shift
			tar -C "$ctx" "$@" -cf - . | tar -C "$tmp" -xf -
		else
			case "$dest" in
			*/) mkdir -p "$stage$dest" ;;
			*) mkdir -p "$(dirname "$stage$dest")" ;;
			esac
			cp -a "$ctx/$src" "$stage$dest"
		fi
		;;
	RUN)
		echo "== RUN $args"
		mkdir -p "$stage$workdir"
		run_in ". /.image-env; cd $workdir && $args" ||
			die "RUN failed: $args"
		;;
	ENV)
		echo "== ENV $args"
		echo "export $args" >>"$env_file"
		;;
	WORKDIR)
		workdir=$args
		;;
	USER)
		user=${args%%:*}
		;;
	ENTRYPOINT)
		entrypoint=$(printf '%s' "$args" | sed 's/^\["\(.*\)"\]$/\1/')
		;;
	HEALTHCHECK)
		health=${args#*CMD }
		;;
	VOLUME | EXPOSE | STOPSIGNAL | LABEL | CMD) ;;
	*) die "instruction not handled here: $op" ;;
	esac
done <"$work/instructions"

[ -n "$entrypoint" ] || die "no ENTRYPOINT"
[ -n "$user" ] || die "no USER"
echo "== run: $entrypoint as $user, one node on a private loopback"
# shellcheck disable=SC2016
run_in -n ". /.image-env
	export CAIRN_ID=1 CAIRN_RAFT_ADDRESS=127.0.0.1:9001 \
		CAIRN_CLIENT_ADDRESS=127.0.0.1:7001 \
		CAIRN_HTTP_ADDRESS=127.0.0.1:8001 \
		CAIRN_PEERS=1=127.0.0.1:9001/127.0.0.1:7001/127.0.0.1:8001 \
		CAIRN_ELECTION_TIMEOUT_MS=1000 CAIRN_HEARTBEAT_TIMEOUT_MS=100
	cd $workdir
	setpriv --reuid=$user --regid=$user --init-groups $entrypoint \
		>/tmp/cairnd.log 2>&1 &
	pid=\$!
	ok=0
	for i in \$(seq 1 100); do
		if cairn --node 127.0.0.1:7001 status >/tmp/status 2>&1 &&
			grep -q leader /tmp/status; then ok=1; break; fi
		sleep 0.2
	done
	cat /tmp/status
	if [ \$ok -eq 1 ]; then
		setpriv --reuid=$user --regid=$user --init-groups \
			/bin/sh -c '$health' && echo 'HEALTHCHECK passed' ||
			{ echo 'HEALTHCHECK failed'; ok=0; }
	fi
	cairn --node 127.0.0.1:7001 append image-check --type Checked \
		--data '{}' || ok=0
	kill -TERM \$pid
	wait \$pid; rc=\$?
	echo cairnd exit status \$rc
	tail -n 5 /tmp/cairnd.log
	ls -ld /data /data/raft /data/store
	[ \$ok -eq 1 ] && [ \$rc -eq 0 ]" ||
	die "the image's entrypoint did not run a node"
echo "image-build-chroot: passed"
