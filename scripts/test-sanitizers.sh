#!/usr/bin/env bash
# Runs the kernel and plugin tests under AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer (build-asan: parleyd, every plugin and the test
# binaries instrumented), then the event bus, plugin loader, gateway,
# request sequencer and write buffer cache tests under ThreadSanitizer
# (build-tsan). Any report fails the run: ASan and
# UBSan abort the process that hit it, a leak makes parleyd exit non-zero
# (the tests check its exit code), TSan exits with 66.
#
#   scripts/test-sanitizers.sh [asan|tsan]   (both by default)
#
# Not part of scripts/test.sh: two more full builds would double the test
# command's time on a 2-core machine. Run it before every submission.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
which=${1:-all}
jobs=${PARLEY_JOBS:-$(nproc)}
scripts/install-deps.sh

# The browser tests drive the same server code through chromium, many times
# slower under ASan; the benchmark smoke tests are not built here.
if [ "$which" = all ] || [ "$which" = asan ]; then
  if [ ! -f build-asan/build.ninja ]; then
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPARLEY_SANITIZE=address,undefined -DPARLEY_BUILD_BENCH=OFF
  fi
  cmake --build build-asan -j "$jobs"
  (cd build-asan &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --output-on-failure -j "${PARLEY_TEST_JOBS:-2}" --timeout 900 \
      -E '^WebClient\.')
fi

if [ "$which" = all ] || [ "$which" = tsan ]; then
  if [ ! -f build-tsan/build.ninja ]; then
    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPARLEY_SANITIZE=thread -DPARLEY_BUILD_BENCH=OFF
  fi
  cmake --build build-tsan -j "$jobs" --target kernel_tests parleyd
  (cd build-tsan &&
    TSAN_OPTIONS="suppressions=$root/scripts/tsan.supp:halt_on_error=1" \
    ctest --output-on-failure -j 1 --timeout 900 -R '^(EventBusTest|PluginManagerTest|GatewayTest|GatewayEventsTest|GatewayLimitsTest|SubscriptionsTest|RequestSequencerThreadsTest|WriteBufferCacheTest)\.')
fi
