#!/bin/sh
# Install Debian's Chromium for the dashboard browser tests (Playwright drives it via executable_path).
# Never downloads a Playwright browser build. Safe to run repeatedly; a no-op when /usr/bin/chromium exists.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: apt-get not available; install Debian's 'chromium' package by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
