#!/usr/bin/env bash
# Installs the browser tests' node packages (playwright-core, pinned by
# package-lock.json) into tests/web/node_modules, and checks that Debian's
# chromium is there (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  echo "web tests: /usr/bin/chromium is missing; run scripts/install-deps.sh" >&2
  exit 1
fi
if ! command -v npm >/dev/null; then
  echo "web tests: npm is missing; run scripts/install-deps.sh" >&2
  exit 1
fi
# Installed once per lock file: a stamp records which lock the modules match.
stamp=node_modules/.parley-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
