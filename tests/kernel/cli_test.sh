#!/usr/bin/env bash
# parleyd's command line: --version, --check-config on good and bad files
# (exit status and the message naming the problem), --list-plugins.
#   cli_test.sh PARLEYD SOURCE_DIR
set -euo pipefail
parleyd=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

"$parleyd" --version | grep -q "^parleyd .*SDK ABI" || fail "--version"
"$parleyd" --check-config "$source_dir/config/parley.yaml" >/dev/null || fail "the default config must pass"
"$parleyd" --list-plugins --config "$source_dir/config/parley.yaml" | grep -q "^session " || fail "--list-plugins"

# expect_failure FILE_CONTENT EXPECTED_MESSAGE
expect_failure() {
  printf '%s' "$1" >"$work/bad.yaml"
  if "$parleyd" --check-config "$work/bad.yaml" 2>"$work/err"; then
    fail "accepted: $1"
  fi
  grep -qF "$2" "$work/err" || fail "message for '$1' does not say '$2': $(cat "$work/err")"
}
expect_failure $'server:\n  port: 80\n  colour: blue\n' "bad.yaml:3: server.colour: unknown key"
expect_failure $'server:\n  port: eighty\n' "bad.yaml:2: server.port: expected an integer, got \"eighty\""
expect_failure $'plugins:\n  - name: nowhere\n' "plugin 'nowhere'"
expect_failure $'plugins:\n  - name: session\n    config:\n      max_message_length: -1\n' \
  "plugins[0].config.max_message_length: must be between 1 and"
expect_failure $'server:\n  port: 80\n  port: 81\n' "bad.yaml:3: server.port: repeated key (first at line 2)"
# An alias inside its own anchor is a cycle: an error, not a stack overflow.
expect_failure $'server: &s\n  port: 80\n  nested: *s\n' "bad.yaml:3: server.nested: unknown key"
expect_failure $'server:\n  listen: localhost\n' "bad.yaml:2: server.listen: 'localhost' is not an IP address"
expect_failure $'server:\n  trusted_proxies: [10.0.0.1, 10.0.0.0/8]\n' "server.trusted_proxies[1]: '10.0.0.0/8' is not an IP address"

# A disabled entry is not loaded: --list-plugins shows it even when its
# library is missing.
printf 'plugins:\n  - name: ghost\n    enabled: false\n    library: /nonexistent/parley_ghost.so\n' >"$work/ghost.yaml"
"$parleyd" --check-config "$work/ghost.yaml" >/dev/null || fail "--check-config of a disabled missing plugin"
"$parleyd" --list-plugins --config "$work/ghost.yaml" >"$work/list" || fail "--list-plugins of a disabled missing plugin"
grep -q "^ghost (disabled; not readable: " "$work/list" || fail "--list-plugins output: $(cat "$work/list")"
echo "parleyd command line behaves"
