#!/usr/bin/env bash
# Runs Parley: installs what is missing, builds, starts a private PostgreSQL
# (data in var/postgres, kept between runs) unless a database is configured,
# then runs parleyd in the foreground. Ctrl-C stops it.
#   scripts/run.sh [CONFIG]     (default config/parley.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-config/parley.yaml}

# The server needs neither the tests nor the load generator.
PARLEY_CMAKE_ARGS="-DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_BENCH=OFF ${PARLEY_CMAKE_ARGS:-}" \
  scripts/build.sh build-server Release

if [ -z "${DATABASE_URL:-}" ] && ! grep -Eq '^\s*url:\s*\S' "$config"; then
  export DATABASE_URL=$(scripts/private-postgres.sh var/postgres "${PARLEY_PG_PORT:-54329}")
  echo "parley: using the private PostgreSQL at $DATABASE_URL (data in var/postgres)" >&2
fi
if grep -Eq '^\s*static_dir:\s*\S' "$config"; then
  port=$(sed -n 's/^\s*port:\s*\([0-9]\+\).*/\1/p' "$config" | head -n 1)
  echo "parley: open http://localhost:${port:-8080}/ in a browser for the web client" >&2
fi
exec build-server/bin/parleyd --config "$config"
