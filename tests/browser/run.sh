#!/bin/sh
# Runs the browser test of the web console and the canvas demo
# (web.test.mjs) with Node's test runner: installs playwright-core, at the
# version package-lock.json pins, into tests/browser/node_modules when it
# is not there yet (npm ci), then drives Debian's Chromium (deploy/setup.sh
# installs it) against a real 3-node cluster. CTest runs it as
# browser_console_and_canvas with CAIRN_CAIRND set; by hand, from a build
# directory:
#
#   CAIRN_CAIRND=$PWD/node/cairnd sh ../tests/browser/run.sh
#
# Exit status: 0 when every test passed; 1 otherwise.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
chromium=${CAIRN_CHROMIUM:-/usr/bin/chromium}

die() {
	echo "browser test: $*" >&2
	exit 1
}

[ -n "${CAIRN_CAIRND:-}" ] || die "set CAIRN_CAIRND to the cairnd binary"
command -v node >/dev/null 2>&1 || die "node is missing (deploy/setup.sh installs nodejs)"
command -v npm >/dev/null 2>&1 || die "npm is missing (it comes with nodejs)"
[ -x "$chromium" ] || die "$chromium is missing (deploy/setup.sh installs chromium)"

# The pinned version, and the one installed (empty when none is).
want=$(node -e 'process.stdout.write(require(process.argv[1]).dependencies["playwright-core"])' \
	"$here/package.json")
have=$(node -e 'try { process.stdout.write(require(process.argv[1]).version) } catch (e) {}' \
	"$here/node_modules/playwright-core/package.json")
if [ "$want" != "$have" ]; then
	echo "browser test: installing playwright-core $want (npm ci)"
	# One install at a time, should two builds' tests meet here.
	(
		command -v flock >/dev/null 2>&1 && flock 9
		cd "$here" && npm ci --no-audit --no-fund --loglevel=error
	) 9>"${TMPDIR:-/tmp}/cairn-browser-npm.lock" || die "npm ci failed"
fi

cd "$here"
exec node --test --test-reporter=spec --test-concurrency=1 web.test.mjs
