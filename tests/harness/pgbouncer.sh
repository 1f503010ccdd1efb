# shellcheck shell=bash
# A real PgBouncer in front of a harness cluster, for integration tests.
# Source it after cluster.sh; it sets no shell options in the caller.
#
#   bouncer_start NAME CLUSTER [setting=value ...]   write the config and start; prints nothing
#   bouncer_env NAME                                  prints `export PGHOST=… PGPORT=…`
#   bouncer_stop NAME                                 fast shutdown; a no-op when not running
#   bouncer_destroy NAME                              stop and delete its folder
#   bouncer_admin NAME COMMAND                        an admin console command (SHOW POOLS), as postgres
#
# A bouncer lives in $USHER_CLUSTERS/NAME (config, userlist, log, pid file and its Unix
# socket), listens on a free TCP port on 127.0.0.1 too, and runs as the `postgres`
# system user when we are root (PgBouncer refuses root, like PostgreSQL).
#
# What the caller controls, through variables read by bouncer_start:
#   BOUNCER_DATABASES       the [databases] lines; default one fallback line
#                           "* = host=<CLUSTER's socket dir> port=<CLUSTER's port>"
#   BOUNCER_DATABASES_FILE  instead: a file with a [databases] section (the output of
#                           deploy/pgbouncer/databases.sql), %include'd as in production
#   BOUNCER_USERS           roles clients may log in as (default: postgres)
#   BOUNCER_NOFILE          its file-descriptor limit (default 1024; 1,200 clients need more)
#   BOUNCER_BASE_CONFIG     a config (deploy/pgbouncer/pgbouncer.ini) whose [pgbouncer]
#                           settings come first; the harness's own (where to listen, files,
#                           authentication) and then the setting=value arguments follow and win
# Files PgBouncer reads must be readable by the `postgres` user when we are root.
#
# PgBouncer 1.18 resets every [pgbouncer] setting to its default at each [pgbouncer]
# header, so the config has exactly one [pgbouncer] section: the base config's setting
# lines are copied into it (its %include lines and other sections are not), not included.
#
# Authentication: auth_type = trust and an auth_file listing BOUNCER_USERS with empty
# passwords. PgBouncer then only checks that the user is listed, and logs in to the
# cluster (which trusts local connections) as that user, so tests see real roles in
# usher.backends: superusers pass pg_usher's quotas and gate, application roles do not.
# `postgres` is also admin_users, for the admin console (psql -d pgbouncer: SHOW POOLS).

bouncer_dir() { cluster_dir "$1"; }

# Writes pgbouncer.ini and userlist.txt for bouncer NAME in front of CLUSTER on PORT.
bouncer_write_config() {
  local name=$1 cluster=$2 port=$3; shift 3
  local dir cdir; dir=$(bouncer_dir "$name"); cdir=$(cluster_dir "$cluster")
  local user kv
  for user in ${BOUNCER_USERS:-postgres}; do printf '"%s" ""\n' "$user"; done |
    as_pg_user tee "$dir/userlist.txt" >/dev/null
  {
    echo "; written by tests/harness/pgbouncer.sh for cluster $cluster"
    echo "[pgbouncer]"
    echo "pool_mode = transaction"   # what pg_usher deployments use; a base config may say otherwise
    if [[ -n ${BOUNCER_BASE_CONFIG:-} ]]; then
      awk '/^[[:space:]]*\[/ { in_section = /^[[:space:]]*\[pgbouncer\]/ }
           in_section && /^[[:space:]]*[A-Za-z_]+[[:space:]]*=/' "$BOUNCER_BASE_CONFIG" || return 1
    fi
    echo "listen_addr = 127.0.0.1"
    echo "listen_port = $port"
    echo "unix_socket_dir = $dir"
    echo "pidfile = $dir/pgbouncer.pid"
    echo "logfile = $dir/pgbouncer.log"
    echo "auth_type = trust"
    echo "auth_file = $dir/userlist.txt"
    echo "admin_users = postgres"
    for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
    if [[ -n ${BOUNCER_DATABASES_FILE:-} ]]; then
      echo "%include $BOUNCER_DATABASES_FILE"
    else
      echo "[databases]"
      echo "${BOUNCER_DATABASES:-"* = host=$cdir/sock port=$(cat "$cdir/port")"}"
    fi
  } | as_pg_user tee "$dir/pgbouncer.ini" >/dev/null
}

# A live PgBouncer process: a stale pid file may name a process that is not ours any
# more, and an exited daemon may linger as a zombie until a subreaper collects it.
bouncer_alive() {
  local pid=$1 stat
  [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == pgbouncer ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

bouncer_running() {
  local pidfile; pidfile=$(bouncer_dir "$1")/pgbouncer.pid
  [[ -f $pidfile ]] && bouncer_alive "$(cat "$pidfile" 2>/dev/null)"
}

bouncer_start() {
  local name=$1 cluster=$2; shift 2
  local dir; dir=$(bouncer_dir "$name")
  [[ -f $(cluster_dir "$cluster")/port ]] || { echo "bouncer: cluster $cluster was never started" >&2; return 1; }
  cluster_prepare_dir "$name" || return 1
  local port
  for _ in 1 2 3 4 5; do
    port=$(free_port) || return 1
    echo "$port" >"$dir/port"
    bouncer_write_config "$name" "$cluster" "$port" "$@" || return 1
    as_pg_user rm -f "$dir/pgbouncer.log"
    # -d: PgBouncer reads the config before it forks (errors come back here), then
    # listens and only then writes the pid file, so a live pid file means it accepts
    # connections (asking it over a connection could wait on its authentication).
    # BOUNCER_NOFILE: its file-descriptor limit (runuser's login resets the soft one).
    if ! as_pg_user sh -c 'ulimit -n "$1" && exec pgbouncer -d -q "$2"' sh "${BOUNCER_NOFILE:-1024}" \
         "$dir/pgbouncer.ini" >"$dir/start.log" 2>&1; then
      echo "bouncer: $name did not start:" >&2
      cat "$dir/start.log" "$dir/pgbouncer.log" >&2 2>/dev/null; return 1
    fi
    local deadline=$((SECONDS + 20))
    until bouncer_running "$name" || [[ $SECONDS -ge $deadline ]]; do sleep 0.1; done
    # Another process may have taken the port between the probe and the bind. PgBouncer
    # 1.18 then only warns ("cannot listen on …: bind(): Address already in use") and
    # runs on its Unix socket alone, so look before trusting the pid file.
    if ! grep -q "Address already in use" "$dir/pgbouncer.log" 2>/dev/null; then
      bouncer_running "$name" && return 0
      break
    fi
    bouncer_stop "$name"
  done
  echo "bouncer: $name did not start; last lines of $dir/pgbouncer.log:" >&2
  tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null || true
  return 1
}

bouncer_env() {
  local dir; dir=$(bouncer_dir "$1")
  [[ -f $dir/port ]] || { echo "bouncer: $1 was never started" >&2; return 1; }
  echo "export PGHOST='$dir' PGPORT='$(cat "$dir/port")'"
}

# SIGTERM is PgBouncer's immediate shutdown: tests want no wait for clients.
bouncer_stop() {
  local name=$1
  bouncer_running "$name" || return 0
  local pid; pid=$(cat "$(bouncer_dir "$name")/pgbouncer.pid")
  kill -TERM "$pid" 2>/dev/null
  local deadline=$((SECONDS + 10))
  while bouncer_alive "$pid" && [[ $SECONDS -lt $deadline ]]; do sleep 0.1; done
  bouncer_alive "$pid" && kill -KILL "$pid" 2>/dev/null
  return 0
}

bouncer_destroy() {
  bouncer_stop "$1"
  cluster_remove_dir "$1"
}

# Runs an admin console command (SHOW POOLS, SHOW DATABASES, RELOAD …) as postgres;
# prints unaligned rows under a header line, fields separated by '|'.
bouncer_admin() {
  local dir; dir=$(bouncer_dir "$1")
  psql -X -A -h "$dir" -p "$(cat "$dir/port")" -U postgres -d pgbouncer -c "$2"
}
