#!/usr/bin/env bash
# Starts a private PostgreSQL cluster kept in a folder, and prints its URL.
#   scripts/private-postgres.sh DATA_DIR PORT
# The cluster listens on 127.0.0.1:PORT and a unix socket in DATA_DIR/run;
# fsync stays on (durable). Runs as the postgres user when started as root.
set -euo pipefail
data_dir=$(realpath -m "$1")
port=$2
# The newest installed server (Debian keeps each major version's binaries apart).
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ]; then
  echo "private-postgres: no PostgreSQL server under /usr/lib/postgresql" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$data_dir/run"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres "$data_dir"
  # Every parent must be traversable by the postgres user.
  dir=$data_dir
  while [ "$dir" != "/" ]; do chmod o+x "$dir" 2>/dev/null || true; dir=$(dirname "$dir"); done
fi
if [ ! -f "$data_dir/pgdata/PG_VERSION" ]; then
  as_owner "$bin/initdb" -D "$data_dir/pgdata" -U postgres -A trust >"$data_dir/initdb.log" 2>&1
fi
if ! as_owner "$bin/pg_ctl" -D "$data_dir/pgdata" status >/dev/null 2>&1; then
  as_owner "$bin/pg_ctl" -D "$data_dir/pgdata" -l "$data_dir/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data_dir/run -c max_connections=200" \
    start >/dev/null
fi
url="postgresql://postgres@127.0.0.1:$port/parley"
if ! psql "postgresql://postgres@127.0.0.1:$port/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='parley'" | grep -q 1; then
  psql -q "postgresql://postgres@127.0.0.1:$port/postgres" -c "CREATE DATABASE parley" >/dev/null
fi
echo "$url"
