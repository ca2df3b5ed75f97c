#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing, builds, runs ctest.
# Tests that need PostgreSQL start their own private clusters (fsync off).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build RelWithDebInfo
cd build
ctest --output-on-failure -j "${PARLEY_TEST_JOBS:-2}" --timeout 600 "$@"
