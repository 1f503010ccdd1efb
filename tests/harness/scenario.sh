# The frame that integration scripts share: a throwaway cluster of the script's own with
# pg_usher preloaded, a scratch folder, sessions in the background, and one cleanup at
# exit that leaves nothing running. Source it after cluster.sh (and assert.sh).
#
#   scenario_start NAME [setting=value ...]
#       starts the cluster NAME afresh (what an earlier run left of it is destroyed
#       first) with usher.database=postgres and the settings, exports its PG* variables
#       (PGUSER=postgres), and destroys it at exit; ends the script if it cannot start.
#   WORK           the script's scratch folder, removed at exit
#   BG_PIDS        processes in the background, killed at exit: `BG_PIDS+=($!)`
#   at_exit 'CMD'  one more command for the cleanup at exit, run before the rest
#   SU             psql as the superuser: tuples only, unaligned, stops at the first error
#   session_open NAME [APPLICATION_NAME [PGOPTIONS]]
#                  a psql session of $PGUSER (its application_name NAME unless given)
#                  that reads its statements from a FIFO, so it stays open until closed:
#                  session_send NAME SQL, session_seen NAME TEXT (its output, in
#                  $WORK/NAME.out, has TEXT), session_close NAME (end of input: it ends).
#                  Its pid is SESSION_PID[NAME].
#   gate_of SERVICE          the service's gate as "active queued" (usher.service_status)
#   gate_is SERVICE "A Q"    succeeds when gate_of says so (for await)

SCENARIO_CLUSTERS=()
SCENARIO_EXIT=()
BG_PIDS=()
WORK=$(mktemp -d)
_scenario_work=$WORK   # what the cleanup removes, whatever a script does with WORK
SU=(psql -X -At -v ON_ERROR_STOP=1 -U postgres)

at_exit() { SCENARIO_EXIT+=("$1"); }

_scenario_cleanup() {
  local cmd pid name
  for cmd in "${SCENARIO_EXIT[@]}"; do eval "$cmd"; done
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for name in "${SCENARIO_CLUSTERS[@]}"; do cluster_destroy "$name"; done
  rm -rf "$_scenario_work"
}
trap _scenario_cleanup EXIT

scenario_start() {
  local name=$1; shift
  SCENARIO_CLUSTERS+=("$name")
  cluster_destroy "$name"
  cluster_start "$name" usher.database=postgres "$@" || exit 1
  eval "$(cluster_env "$name")"
}

declare -A SESSION_FD SESSION_PID
session_open() {
  local name=$1 fd
  mkfifo "$WORK/$name.in"
  PGAPPNAME=${2:-$name} PGOPTIONS=${3:-} psql -X -At <"$WORK/$name.in" >"$WORK/$name.out" 2>&1 &
  SESSION_PID[$name]=$!
  BG_PIDS+=($!)
  exec {fd}>"$WORK/$name.in"
  SESSION_FD[$name]=$fd
}
session_send() { echo "$2" >&"${SESSION_FD[$1]}"; }
session_seen() { grep -q -- "$2" "$WORK/$1.out"; }
session_close() { exec {SESSION_FD[$1]}>&-; }

gate_of() { "${SU[@]}" -c "SELECT active || ' ' || queued FROM usher.service_status WHERE service = '$1'"; }
gate_is() { test "$(gate_of "$1")" = "$2"; }
