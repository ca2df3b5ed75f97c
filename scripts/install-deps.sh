#!/usr/bin/env bash
# Installs the Debian 12 packages Parley needs to build, test and run.
# Only what is missing is installed, so a prepared machine pays nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-filesystem1.81-dev
  libpqxx-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libssl-dev libcurl4-openssl-dev libnghttp2-dev libsodium-dev
  postgresql curl procps openssl
  python3-h2 python3-cryptography  # the push tests' fake FCM and APNs
  chromium    # the web client's browser tests (tests/web)
)
# Node runs the browser tests; a Node from elsewhere (e.g. nodesource, whose
# nodejs package carries npm) is kept rather than replaced by Debian's.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "parley: installing missing packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
