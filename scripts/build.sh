#!/usr/bin/env bash
# Installs what is missing, configures and builds Parley.
#   scripts/build.sh [BUILD_DIR] [BUILD_TYPE]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
build_type=${2:-RelWithDebInfo}

scripts/install-deps.sh
jobs=${PARLEY_JOBS:-$(nproc)}
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" ${PARLEY_CMAKE_ARGS:-}
fi
cmake --build "$build_dir" -j "$jobs"
