#!/bin/sh
# Checks deploy/setup.sh --runtime, the image's runtime stage, against
# what this build links: every shared library that cairnd, cairn and
# libcairn.so load comes from a Debian package that RUNTIME_PACKAGES (or
# libraft0) names or pulls in as a dependency, so the slim image starts.
# Needs dpkg and apt-cache with package lists (deploy/setup.sh runs apt-get
# update when it installs); exit 77 (CTest: skipped) without them.
#
#   tests/deploy/test-runtime-libs.sh SETUP_SH BINARY...
set -eu

setup=$1
shift
if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-cache >/dev/null 2>&1; then
	echo "SKIPPED: dpkg or apt-cache is missing"
	exit 77
fi
runtime=$(sed -n '/^RUNTIME_PACKAGES="/,/"$/p' "$setup" |
	sed -e 's/^RUNTIME_PACKAGES="//' -e 's/"$//' | tr '\n' ' ')
[ -n "$runtime" ] || {
	echo "FAILED: no RUNTIME_PACKAGES in $setup"
	exit 1
}
# The packages the runtime stage ends up with: those named, libraft0, and
# everything they depend on (recursively).
# shellcheck disable=SC2086
closure=$(apt-cache depends --recurse --no-recommends --no-suggests \
	--no-conflicts --no-breaks --no-replaces --no-enhances \
	$runtime libraft0 2>/dev/null | grep -v '^ ' | grep -v '^<' |
	sed 's/:.*//' | sort -u)
[ -n "$closure" ] || {
	echo "SKIPPED: apt-cache knows no packages (run apt-get update)"
	exit 77
}

# A sanitizer build loads its runtime (libasan, libubsan) from the
# compiler's packages; the image is never built that way.
for bin in "$@"; do
	if ldd "$bin" | grep -q 'libasan\|libubsan'; then
		echo "SKIPPED: $bin is a sanitizer build; the image is not"
		exit 77
	fi
done

failed=0
checked=0
for bin in "$@"; do
	for lib in $(ldd "$bin" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p'); do
		real=$(readlink -f "$lib")
		pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null ||
			true)
		pkg=${pkg%%:*}
		if [ -z "$pkg" ]; then
			# This build's own libraries (libcairn.so) are copied
			# into the image, not installed from a package.
			case "$lib" in
			*/libcairn.so*) continue ;;
			esac
			echo "FAILED: $bin loads $lib, which no package owns"
			failed=$((failed + 1))
			continue
		fi
		checked=$((checked + 1))
		if ! printf '%s\n' "$closure" | grep -qx "$pkg"; then
			echo "FAILED: $bin loads $lib from $pkg, which the" \
				"runtime stage does not install"
			failed=$((failed + 1))
		fi
	done
done
[ "$checked" -gt 0 ] || {
	echo "FAILED: no library checked"
	exit 1
}
echo "checked $checked libraries of $# binaries against: $runtime libraft0"
if [ "$failed" -eq 0 ]; then
	echo "1 passed, 0 failed"
else
	echo "0 passed, 1 failed"
	exit 1
fi
