#!/bin/sh
# Installs Chromium (Debian package) for the real-browser tests of e2e/, when it is missing.
# Idempotent: does nothing when a Chromium is already there. Needs root (or sudo) and apt.
#
#   e2e/install.sh            # then: go test ./e2e/
#
# The tests find the browser at $CHROMIUM, else chromium, chromium-browser, google-chrome on PATH.
set -eu

# found is the Chromium the tests would use, if any.
found() {
	if [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ]; then
		echo "$CHROMIUM"
		return 0
	fi
	for b in chromium chromium-browser google-chrome google-chrome-stable; do
		if command -v "$b" 2>/dev/null; then
			return 0
		fi
	done
	return 1
}

if path=$(found); then
	echo "e2e/install.sh: Chromium is installed: $path"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "e2e/install.sh: no apt-get here; install Chromium yourself (or set CHROMIUM to its path)" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "e2e/install.sh: installing Chromium needs root (or sudo)" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
chromium --version
