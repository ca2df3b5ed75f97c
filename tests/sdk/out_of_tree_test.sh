#!/usr/bin/env bash
# Installs the SDK on its own, builds sdk/example against the installed copy
# (not the source tree), and has parleyd load the result. The plugin is
# copied to OUT_DIR, where the example's WebSocket test
# (example_over_websocket_test.cpp) finds it.
#   out_of_tree_test.sh SOURCE_DIR PARLEYD OUT_DIR
set -euo pipefail
source_dir=$1
parleyd=$2
out_dir=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake -S "$source_dir/sdk" -B "$work/sdk-build" -G Ninja -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --install "$work/sdk-build" >/dev/null
test -f "$work/prefix/include/parley/sdk.hpp"
# find_package(ParleySDK X.Y.Z) finds exactly the release of the headers.
version=$(sed -n 's/^#define PARLEY_SDK_VERSION "\(.*\)"/\1/p' "$source_dir/sdk/include/parley/version.hpp")
version_file=$(find "$work/prefix" -name ParleySDKConfigVersion.cmake)
grep -q "set(PACKAGE_VERSION \"$version\")" "$version_file" || { echo "no version $version in $version_file" >&2; exit 1; }

cmake -S "$source_dir/sdk/example" -B "$work/example-build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build "$work/example-build" >/dev/null
plugin="$work/example-build/parley_shout.so"
test -f "$plugin"
# It exports its entry and nothing else (the SDK's version script).
exported=$(nm -D --defined-only "$plugin" | awk '{print $3}')
[ "$exported" = "parley_plugin_entry" ] || { echo "the plugin exports: $exported" >&2; exit 1; }

cat >"$work/parley.yaml" <<YAML
server:
  port: 0
plugins:
  - name: shout
    library: $plugin
    config:
      max_length: 50
YAML
"$parleyd" --check-config "$work/parley.yaml"
"$parleyd" --list-plugins --config "$work/parley.yaml" | grep -q "shout 1.0.0"
mkdir -p "$out_dir"
cp "$plugin" "$out_dir/parley_shout.so"
echo "out-of-tree plugin built against the installed SDK and accepted by parleyd"
