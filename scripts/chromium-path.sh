#!/usr/bin/env bash
# Print the path of a Chromium (or Chrome) binary for the headless-browser tests, installing
# Debian's chromium package first when none is found. $CHROMIUM_PATH, when set, is used as is.
# Everything but the path goes to stderr; exit 1 with the reason when there is no browser.
set -euo pipefail

find_browser() {
  if [[ -n "${CHROMIUM_PATH:-}" ]]; then
    [[ -x "$CHROMIUM_PATH" ]] || { echo "chromium: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file" >&2; exit 1; }
    echo "$CHROMIUM_PATH"
    return 0
  fi
  local name
  for name in chromium chromium-browser google-chrome-stable google-chrome chrome chromium-headless-shell; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

if find_browser; then exit 0; fi

echo "chromium: no chromium or chrome binary on PATH, installing Debian's chromium package" >&2
command -v apt-get >/dev/null 2>&1 || {
  echo "chromium: no chromium found and no apt-get to install it; install Chromium or set CHROMIUM_PATH" >&2
  exit 1
}
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "chromium: need root or sudo to install chromium; or set CHROMIUM_PATH" >&2; exit 1; }
  SUDO="sudo -n"
fi
# Another process (a parallel test file) may be installing too: wait for dpkg's lock rather than fail.
{
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium
} >&2
find_browser || { echo "chromium: installed Debian's chromium package, but no chromium binary is on PATH" >&2; exit 1; }
