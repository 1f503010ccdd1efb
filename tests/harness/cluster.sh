#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for tests, the demo and benchmarks.
#
#   cluster.sh start NAME [setting=value ...]   initdb (first time) and start; prints nothing
#   cluster.sh stop NAME                         fast stop (immediate if that hangs)
#   cluster.sh destroy NAME                      stop and delete the data directory
#   cluster.sh env NAME                          prints `export PGHOST=… PGPORT=…` lines
#   cluster.sh restart NAME                      stop then start with the same settings
#   cluster.sh standby NAME PRIMARY              pg_basebackup of PRIMARY, started as a streaming standby
#   cluster.sh promote NAME                      promote a standby (pg_ctl promote, waits)
#
# A cluster lives in $USHER_CLUSTERS/NAME (default build/clusters), listens on a free
# TCP port on 127.0.0.1 and on a Unix socket in its own directory, trusts local
# connections, and preloads pg_usher unless USHER_PRELOAD is set to something else
# (set it empty to load nothing). PostgreSQL refuses to run as root, so when we are
# root the server runs as the `postgres` system user (runuser).
#
# Sourcing this file instead gives the functions (and sets no shell options in the
# caller); callers that start clusters should `trap 'cluster_destroy NAME' EXIT` so
# nothing is left running on failure or Ctrl-C.

HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HARNESS_DIR/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BIN=$("$PG_CONFIG" --bindir)
USHER_CLUSTERS=${USHER_CLUSTERS:-$REPO_ROOT/build/clusters}
USHER_PRELOAD=${USHER_PRELOAD-pg_usher}

as_pg_user() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_dir() { echo "$USHER_CLUSTERS/$1"; }

# The data directory must be writable by the server's OS user. Under root the
# checkout may sit in a directory `postgres` cannot enter (/root), so then the
# cluster lives in /tmp and build/clusters/NAME is a link to it.
cluster_prepare_dir() {
  local dir; dir=$(cluster_dir "$1")
  mkdir -p "$USHER_CLUSTERS"
  [[ -e $dir ]] && return 0
  if [[ $(id -u) -eq 0 ]]; then
    mkdir -p "$dir"; chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      rmdir "$dir"
      local tmp; tmp=$(mktemp -d /tmp/pg_usher-cluster.XXXXXX)
      chown postgres: "$tmp"; chmod 755 "$tmp"
      ln -s "$tmp" "$dir"
    fi
  else
    mkdir -p "$dir"
  fi
}

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  echo "cluster: no free port found" >&2; return 1
}

cluster_initdb() {
  local name=$1 dir; dir=$(cluster_dir "$name")
  [[ -f $dir/data/PG_VERSION ]] && return 0
  cluster_prepare_dir "$name" || return 1
  as_pg_user mkdir -p "$dir/sock" || return 1
  as_pg_user "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  as_pg_user tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF

# --- pg_usher test harness ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
shared_preload_libraries = '$USHER_PRELOAD'
max_connections = 100
fsync = off                      # throwaway data: durability costs time, buys nothing
synchronous_commit = off
full_page_writes = off
wal_level = replica
max_wal_senders = 5
max_prepared_transactions = 10  # health() checks orphaned prepared transactions
log_min_messages = warning
log_line_prefix = '%m [%p] %q%a '
CONF
}

# Settings given on the command line go into postgresql.auto.conf, so a restart keeps them.
cluster_apply_settings() {
  local dir=$1; shift
  local kv
  for kv in "$@"; do
    as_pg_user tee -a "$dir/data/postgresql.auto.conf" >/dev/null <<<"${kv%%=*} = '${kv#*=}'"
  done
}

cluster_start() {
  local name=$1; shift
  local dir; dir=$(cluster_dir "$name")
  cluster_initdb "$name" || return 1
  cluster_apply_settings "$dir" "$@" || return 1
  local attempt port
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port" start >/dev/null 2>&1; then
      echo "$port" >"$dir/port"
      return 0
    fi
    # Another process may have taken the port between the probe and the bind.
    grep -q "could not bind\|Address already in use" "$dir/server.log" 2>/dev/null || break
  done
  echo "cluster: $name did not start; last lines of $dir/server.log:" >&2
  tail -n 20 "$dir/server.log" >&2 || true
  return 1
}

cluster_stop() {
  local name=$1 dir; dir=$(cluster_dir "$name")
  [[ -f $dir/data/postmaster.pid ]] || return 0
  as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}

cluster_restart() {
  local name=$1 dir; dir=$(cluster_dir "$name")
  local port; port=$(cat "$dir/port")
  cluster_stop "$name"
  as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "-p $port" start >/dev/null
}

# Deletes what cluster_prepare_dir made: the folder, or the /tmp folder and its link.
cluster_remove_dir() {
  local dir; dir=$(cluster_dir "$1")
  local target; target=$(readlink -f "$dir" 2>/dev/null || echo "$dir")
  rm -rf "$target" "$dir"
}

cluster_destroy() {
  cluster_stop "$1"
  cluster_remove_dir "$1"
}

cluster_env() {
  local name=$1 dir; dir=$(cluster_dir "$name")
  [[ -f $dir/port ]] || { echo "cluster: $name was never started" >&2; return 1; }
  echo "export PGHOST='$dir/sock' PGPORT='$(cat "$dir/port")' PGUSER=postgres PGDATABASE=postgres"
}

# A streaming standby of PRIMARY, cloned with pg_basebackup and started on its own port.
cluster_standby() {
  local name=$1 primary=$2
  local dir pdir; dir=$(cluster_dir "$name"); pdir=$(cluster_dir "$primary")
  cluster_prepare_dir "$name"
  as_pg_user mkdir -p "$dir/sock"
  as_pg_user "$PG_BIN/pg_basebackup" -h "$pdir/sock" -p "$(cat "$pdir/port")" -U postgres \
    -D "$dir/data" -R -X stream --no-sync >"$dir/basebackup.log" 2>&1 ||
    { cat "$dir/basebackup.log" >&2; return 1; }
  as_pg_user tee -a "$dir/data/postgresql.auto.conf" >/dev/null <<CONF
unix_socket_directories = '$dir/sock'
hot_standby_feedback = on
CONF
  cluster_start "$name"
}

# Promotes a standby to primary and waits until it accepts writes.
cluster_promote() {
  local dir; dir=$(cluster_dir "$1")
  as_pg_user "$PG_BIN/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
}

cluster_main() {
  local cmd=${1:-}; shift || true
  case $cmd in
    start) cluster_start "$@" ;;
    stop) cluster_stop "$@" ;;
    restart) cluster_restart "$@" ;;
    destroy) cluster_destroy "$@" ;;
    env) cluster_env "$@" ;;
    standby) cluster_standby "$@" ;;
    promote) cluster_promote "$@" ;;
    *) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 2 ;;
  esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  cluster_main "$@"
fi
