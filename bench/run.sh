#!/usr/bin/env bash
# Runs every benchmark scenario against a fresh parleyd and a fresh, durable
# PostgreSQL (fsync on, synchronous_commit on), writes the JSON results to
# bench/results/<timestamp>.json and prints a summary table.
#
#   bench/run.sh
#
# Environment (all optional):
#   BENCH_DURATION=10       measured seconds of ceiling and messaging runs
#   BENCH_WARMUP=2          warm-up seconds before each measured window
#   BENCH_PAIRS=100         messaging: pairs of users
#   BENCH_WINDOW=16         messaging closed loop: sends in flight per sender
#   BENCH_OPEN_FRACTION=0.7 messaging open loop: rate as a fraction of closed
#   BENCH_OPEN_RATE=        messaging open loop: this fixed rate instead (msg/s;
#                           no closed run needed): for A/B of CPU per message
#                           at the same load
#   BENCH_IDLE=10000        idle: connections (100000 for the full target:
#                           needs a file descriptor hard limit above it)
#   BENCH_IDLE_HOLD=12      idle: seconds held after measuring (crosses a ping)
#   BENCH_RECONNECT_USERS=2000  BENCH_RECONNECT_MESSAGES=10
#   BENCH_PRESENCE_USERS=10000 BENCH_PRESENCE_CONTACTS=10  presence: users, each
#                           watching that many others (100,000 subscriptions)
#   BENCH_PRESENCE_RATE=1000  presence: users reconnecting per second
#   BENCH_GROUPS=4 BENCH_GROUP_MEMBERS=256 BENCH_GROUP_SENDERS=4  group: groups
#                           of that many members (the group plugin's max_members
#                           is set to it), that many senders in each
#   BENCH_GROUP_WINDOW=16   group closed loop: sends in flight per sender
#                           (group open runs at BENCH_OPEN_FRACTION of closed)
#   BENCH_REPEAT=1          run the scenario sequence this many times
#   BENCH_SCENARIOS="ceiling closed open group-closed group-open idle reconnect presence"
#                           a subset, in order
#   BENCH_BUILD_DIR=build-release   BENCH_SKIP_BUILD=1 uses it as it is
#   BENCH_IO_THREADS=1      parleyd server.io_threads (1 is also parleyd's default)
#   BENCH_WORKER_THREADS=   parleyd worker_threads (default: its own)
#   BENCH_GENERATOR_THREADS=1  the generator's I/O threads
#   BENCH_DB_POOL=4         parleyd database.pool_size
#   BENCH_WAL_WARMUP=1      0: measure on a new cluster's WAL, segment creation
#                           and all (see "WAL warm-up" below)
#   BENCH_LOCK=FILE         hold this lock (flock) while measuring, e.g.
#                           /tmp/parley-build.lock to keep builds off the CPU
#   BENCH_PG_LOG=FILE       keep PostgreSQL's log there (checkpoints and
#                           autovacuum runs are logged with their times)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
pairs=${BENCH_PAIRS:-100}
window=${BENCH_WINDOW:-16}
open_fraction=${BENCH_OPEN_FRACTION:-0.7}
idle=${BENCH_IDLE:-10000}
idle_hold=${BENCH_IDLE_HOLD:-12}
rc_users=${BENCH_RECONNECT_USERS:-2000}
rc_messages=${BENCH_RECONNECT_MESSAGES:-10}
repeat=${BENCH_REPEAT:-1}
presence_users=${BENCH_PRESENCE_USERS:-10000}
presence_contacts=${BENCH_PRESENCE_CONTACTS:-10}
presence_rate=${BENCH_PRESENCE_RATE:-1000}
group_count=${BENCH_GROUPS:-4}
group_members=${BENCH_GROUP_MEMBERS:-256}
group_senders=${BENCH_GROUP_SENDERS:-4}
group_window=${BENCH_GROUP_WINDOW:-16}
scenarios=${BENCH_SCENARIOS:-ceiling closed open group-closed group-open idle reconnect presence}
build_dir=${BENCH_BUILD_DIR:-build-release}

log() { echo "bench: $*" >&2; }

# ---- build -----------------------------------------------------------------
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  log "building Release into $build_dir"
  # Warnings are not errors here: GCC 12 at -O3 reports false positives
  # (-Wrestrict in std::string concatenation) that -O2 does not.
  cmake_args="-DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_BENCH=ON ${PARLEY_CMAKE_ARGS:-}"
  if [ -f "$build_dir/CMakeCache.txt" ]; then
    # shellcheck disable=SC2086
    flock /tmp/parley-build.lock cmake -S . -B "$build_dir" $cmake_args >/dev/null
  fi
  PARLEY_CMAKE_ARGS="$cmake_args" flock /tmp/parley-build.lock scripts/build.sh "$build_dir" Release
fi
parleyd=$root/$build_dir/bin/parleyd
bench=$root/$build_dir/bin/parley-bench
for f in "$parleyd" "$bench"; do
  [ -x "$f" ] || { log "missing $f (build it, or unset BENCH_SKIP_BUILD)"; exit 1; }
done

# ---- what we start, we stop ----------------------------------------------
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
work=$(mktemp -d /tmp/parley-bench.XXXXXX)
chmod 755 "$work"
parleyd_pid=""
pg_started=""
cleanup() {
  local status=$?
  if [ -n "$parleyd_pid" ] && kill -0 "$parleyd_pid" 2>/dev/null; then
    kill -TERM "$parleyd_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$parleyd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$parleyd_pid" 2>/dev/null || true
  fi
  if [ -n "$pg_started" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg/pgdata" -m immediate stop >/dev/null 2>&1 || true
    else
      "$pg_bin/pg_ctl" -D "$work/pg/pgdata" -m immediate stop >/dev/null 2>&1 || true
    fi
  fi
  if [ -n "${BENCH_PG_LOG:-}" ] && [ -f "$work/pg/postgres.log" ]; then
    cp "$work/pg/postgres.log" "$BENCH_PG_LOG" || true
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    if port_free "$p"; then echo "$p"; return; fi
  done
}

# ---- PostgreSQL: private, fresh, durable ------------------------------------
# A start can fail on this shared machine (the port taken between the check
# and the bind, say): its log is shown, and it is tried again on another port.
pg_started=1
for attempt in 1 2 3; do
  pg_port=$(pick_port)
  log "starting PostgreSQL on port $pg_port (data in $work/pg)"
  if db_url=$(scripts/private-postgres.sh "$work/pg" "$pg_port"); then break; fi
  log "PostgreSQL did not start (attempt $attempt of 3); its log ends:"
  tail -n 15 "$work/pg/postgres.log" >&2 || true
  [ "$attempt" -eq 3 ] && exit 1
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg/pgdata" -m immediate stop >/dev/null 2>&1 || true
  else
    "$pg_bin/pg_ctl" -D "$work/pg/pgdata" -m immediate stop >/dev/null 2>&1 || true
  fi
done
pg_settings=$(psql -tA "$db_url" -c "SELECT current_setting('fsync') || ' ' || current_setting('synchronous_commit') || ' ' || current_setting('shared_buffers') || ' ' || current_setting('wal_level')")
read -r fsync sync_commit shared_buffers wal_level <<<"$pg_settings"
if [ "$fsync" != on ] || [ "$sync_commit" != on ]; then
  log "PostgreSQL is not durable (fsync=$fsync synchronous_commit=$sync_commit)"; exit 1
fi
log "PostgreSQL: fsync=$fsync synchronous_commit=$sync_commit shared_buffers=$shared_buffers"
if [ -n "${BENCH_PG_LOG:-}" ]; then
  psql -q "$db_url" -c "ALTER SYSTEM SET log_checkpoints = on" \
    -c "ALTER SYSTEM SET log_autovacuum_min_duration = 0" -c "SELECT pg_reload_conf()" >/dev/null
fi

# WAL warm-up. A new cluster has no spare WAL segments: each 16 MB segment
# is created, zero-filled and fsynced when the log reaches it, by the backend
# that needs it, and every commit waits meanwhile (about 20 ms here; one to two
# segments a second at the rates measured). A server that has been running
# reuses the segments its checkpoints recycle instead. To measure that
# steady state, the log is run through 1 GB of segments once, and a
# checkpoint keeps them (min_wal_size, up to max_wal_size's default 1 GB).
if [ "${BENCH_WAL_WARMUP:-1}" = 1 ]; then
  psql -q "$db_url" -c "ALTER SYSTEM SET min_wal_size = '1GB'" -c "SELECT pg_reload_conf()" >/dev/null
  psql -q "$db_url" -c "SELECT count(pg_logical_emit_message(false, 'parley-bench', repeat('x', 1000000))) FROM generate_series(1, 1024)" -c "CHECKPOINT" >/dev/null
  log "PostgreSQL: WAL warmed up, $(find "$work/pg/pgdata/pg_wal" -maxdepth 1 -type f -name '000*' | wc -l) segments ready"
fi

# ---- file descriptors and source addresses ----------------------------------
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ "$idle" -gt $((fd_limit - 200)) ]; then
  log "WARNING: the file descriptor hard limit is $fd_limit: parleyd can hold at most about $((fd_limit - 200))"
  log "         connections, so idle runs with $((fd_limit - 200)) instead of $idle (raise 'ulimit -Hn' as root to go further)"
  idle_requested=$idle
  idle=$((fd_limit - 200))
fi
# About 28k ephemeral ports per source address towards one server port.
sources=$(( (idle + 24999) / 25000 ))

# ---- parleyd ----------------------------------------------------------------
server_port=$(pick_port)
worker_line=""
[ -n "${BENCH_WORKER_THREADS:-}" ] && worker_line="worker_threads: $BENCH_WORKER_THREADS"
cat >"$work/parley.yaml" <<YAML
# Written by bench/run.sh.
server:
  listen: 127.0.0.1
  port: $server_port
  io_threads: ${BENCH_IO_THREADS:-1}
  idle_timeout_seconds: 20        # pings every 10 s: the idle hold crosses one
  max_queued_frames: 1000000
  max_queued_bytes: 1073741824
  max_connections: 1000000        # the generator opens all its connections from few addresses
  max_connections_per_address: 1000000
  rate_limit:                     # the generator's connections send far more than a person
    requests_per_second: 1000000
    burst: 1000000
database:
  url: $db_url
  pool_size: ${BENCH_DB_POOL:-4}
log:
  level: warn
$worker_line
# Password logins come hundreds at once in reconnect: hashing may queue.
cpu_queue_limit: 100000
plugins:
  - name: session
    config:
      # Cheapest Argon2id: registering thousands of users is not what is
      # measured. Logins by token (idle, reconnect) do not hash at all.
      password_hashing:
        ops_limit: 1
        mem_limit_kib: 8
      limits:                       # every bench user registers and logs in from loopback
        registrations_per_address_per_hour: 1000000000
        password_logins_per_address_per_15min: 1000000000
        password_hashes_at_once_per_address: 1000000
YAML
# The presence scenario's server also runs the presence plugin, without a
# grace period (it would count as delay); the other scenarios do without.
{
  cat "$work/parley.yaml"
  printf '  - name: presence\n    config:\n      grace_seconds: 0\n'
} >"$work/parley-presence.yaml"
# The group scenario's server runs the group plugin, its groups as large as
# the scenario's.
{
  cat "$work/parley.yaml"
  printf '  - name: group\n    config:\n      max_members: %s\n' "$group_members"
} >"$work/parley-group.yaml"
# Every server scenario gets a fresh parleyd (same database): memory freed
# by one run and kept by malloc would otherwise hide the next run's growth.
# `config` names another config file for one run.
start_parleyd() {
  "$parleyd" --config "${config:-$work/parley.yaml}" >>"$work/parleyd.log" 2>&1 &
  parleyd_pid=$!
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$server_port/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$parleyd_pid" 2>/dev/null || { log "parleyd exited:"; cat "$work/parleyd.log" >&2; exit 1; }
    sleep 0.1
  done
  log "parleyd is not ready"; cat "$work/parleyd.log" >&2; exit 1
}
stop_parleyd() {
  [ -n "$parleyd_pid" ] || return 0
  kill -TERM "$parleyd_pid" 2>/dev/null || true
  wait "$parleyd_pid" 2>/dev/null || true
  parleyd_pid=""
}
url="ws://127.0.0.1:$server_port/ws"

# ---- the runs ---------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
result_file=bench/results/$stamp.json
runs=()
failed=0

if [ -n "${BENCH_LOCK:-}" ]; then
  exec 9>"$BENCH_LOCK"
  log "waiting for $BENCH_LOCK"
  flock 9
fi
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (nproc $(nproc))"

run() {  # run NAME server|db ARGS...
  local name=$1 kind=$2; shift 2
  local out="$work/run-${#runs[@]}-$name.json"
  local args=("$@")
  last_out=$out
  if [ "$kind" = server ]; then
    start_parleyd
    args+=(--url "$url" --server-pid "$parleyd_pid" --threads "${BENCH_GENERATOR_THREADS:-1}")
  fi
  log "running $name: ${args[*]}"
  if ! "$bench" "${args[@]}" --output "$out"; then
    failed=1
    log "$name FAILED"
  fi
  [ "$kind" = server ] && stop_parleyd
  if [ -s "$out" ]; then runs+=("$out"); fi
}

field() {  # field FILE KEY: a number from the results of a compact JSON
  grep -o "\"$2\":[0-9.eE+-]*" "$1" | head -1 | cut -d: -f2
}

for round in $(seq "$repeat"); do
  [ "$repeat" -gt 1 ] && log "round $round of $repeat"
  closed_rate=""
  group_closed_rate=""
  for s in $scenarios; do
    case $s in
      ceiling)
        run ceiling db ceiling --database-url "$db_url" --duration "$duration" --warmup "$warmup" --batch 1000 ;;
      closed)
        run messaging-closed server messaging --mode closed --pairs "$pairs" --window "$window" \
          --duration "$duration" --warmup "$warmup"
        closed_rate=$(field "$last_out" messages_per_second 2>/dev/null || true) ;;
      open)
        if [ -n "${BENCH_OPEN_RATE:-}" ]; then
          rate=$BENCH_OPEN_RATE
        else
          if [ -z "$closed_rate" ]; then log "open needs a closed-loop rate: run closed before it"; failed=1; continue; fi
          rate=$(awk -v r="$closed_rate" -v f="$open_fraction" 'BEGIN { printf "%d", r * f }')
        fi
        run messaging-open server messaging --mode open --pairs "$pairs" --rate "$rate" \
          --duration "$duration" --warmup "$warmup" ;;
      group-closed)
        config=$work/parley-group.yaml run group-closed server group --mode closed \
          --groups "$group_count" --members "$group_members" --senders "$group_senders" \
          --window "$group_window" --duration "$duration" --warmup "$warmup" --timeout 600
        group_closed_rate=$(field "$last_out" messages_per_second 2>/dev/null || true) ;;
      group-open)
        if [ -z "$group_closed_rate" ]; then log "group-open needs a closed-loop rate: run group-closed before it"; failed=1; continue; fi
        rate=$(awk -v r="$group_closed_rate" -v f="$open_fraction" 'BEGIN { printf "%d", r * f }')
        config=$work/parley-group.yaml run group-open server group --mode open \
          --groups "$group_count" --members "$group_members" --senders "$group_senders" \
          --rate "$rate" --duration "$duration" --warmup "$warmup" --timeout 600 ;;
      idle)
        run idle server idle --connections "$idle" --users 1000 --settle 3 --hold "$idle_hold" \
          --source-addresses "$sources" --timeout 600 ;;
      reconnect)
        run reconnect server reconnect --users "$rc_users" --messages "$rc_messages" --timeout 600 ;;
      presence)
        config=$work/parley-presence.yaml run presence server presence --users "$presence_users" \
          --contacts "$presence_contacts" --churn-per-second "$presence_rate" \
          --duration "$duration" --timeout 600 ;;
      *) log "unknown scenario $s"; failed=1 ;;
    esac
  done
done
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "${BENCH_LOCK:-}" ] && flock -u 9

# ---- results ----------------------------------------------------------------
{
  printf '{"started_at":"%s","commit":"%s","nproc":%s,' "$stamp" "$(git describe --always --dirty 2>/dev/null || echo unknown)" "$(nproc)"
  printf '"postgres":{"fsync":"%s","synchronous_commit":"%s","shared_buffers":"%s"},' "$fsync" "$sync_commit" "$shared_buffers"
  printf '"fd_limit":"%s",' "$fd_limit"
  [ -n "${idle_requested:-}" ] && printf '"idle_requested":%s,' "$idle_requested"
  printf '"parleyd_config":%s,' "$(sed 's/\\/\\\\/g; s/"/\\"/g' "$work/parley.yaml" | awk 'BEGIN{printf "\""} {printf "%s\\n", $0} END{printf "\""}')"
  printf '"runs":['
  sep=""
  for f in "${runs[@]}"; do printf '%s' "$sep"; tr -d '\n' <"$f"; sep=","; done
  printf ']}\n'
} >"$result_file"
log "results: $result_file"
if grep -qi "error\|warn" "$work/parleyd.log"; then
  log "parleyd logged warnings or errors (first lines):"
  grep -i "error\|warn" "$work/parleyd.log" | head -5 >&2
fi
echo
"$bench" report "$result_file" || true
exit $failed
