#!/usr/bin/env bash
# Make sure headless Chromium is at /usr/bin/chromium (the HTML report test opens its page with it).
# Installs Debian's chromium package with apt-get when it is missing; fails loudly (exit 1) when it cannot.
set -euo pipefail
CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "ensure_chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium) is installed"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "ensure_chromium: FAILED: $CHROMIUM is missing and apt-get is not available; install Chromium by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "ensure_chromium: FAILED: need root (or sudo) to apt-get install chromium" >&2
    exit 1
  fi
fi
echo "ensure_chromium: installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || { echo "ensure_chromium: FAILED: apt-get update" >&2; exit 1; }
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
  || { echo "ensure_chromium: FAILED: apt-get install chromium" >&2; exit 1; }
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure_chromium: FAILED: chromium installed but $CHROMIUM is not there" >&2
  exit 1
fi
echo "ensure_chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed"
