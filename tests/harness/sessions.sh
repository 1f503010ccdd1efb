# Holding real client sessions open from shell tests, with build/tools/hold_sessions.
# Source it after cluster_env has set the PG* variables.
#
#   hold APPLICATION_NAME N      opens up to N sessions (stops at the first refusal);
#                                sets HELD (how many) and HELD_ERROR (the refusal, or "")
#   hold_all APPLICATION_NAME N DESCRIPTION
#                                hold, and assert (assert.sh) that all N opened, none refused
#   release_all                  closes every session opened with hold
TOOLS=${TOOLS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/tools}
HOLDER_PIDS=()
HOLDER_FDS=()

hold() {
  local app=$1 n=$2 fifo out fd
  fifo=$(mktemp -u); mkfifo "$fifo"
  out=$(mktemp)
  "$TOOLS/hold_sessions" "$app" "$n" <"$fifo" >"$out" &
  HOLDER_PIDS+=($!)
  exec {fd}>"$fifo"
  rm -f "$fifo"
  HOLDER_FDS+=("$fd")
  local deadline=$((SECONDS + 60))
  until [[ -s $out ]] || [[ $SECONDS -ge $deadline ]]; do sleep 0.05; done
  local line; line=$(cat "$out"); rm -f "$out"
  HELD=$(sed -n 's/^held=\([0-9]*\) .*/\1/p' <<<"$line")
  HELD_ERROR=$(sed -n 's/^held=[0-9]* error=//p' <<<"$line")
}

hold_all() {
  hold "$1" "$2"
  assert_eq "$HELD/$HELD_ERROR" "$2/" "$3"
}

release_all() {
  local fd pid
  for fd in "${HOLDER_FDS[@]}"; do exec {fd}>&-; done
  for pid in "${HOLDER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  HOLDER_PIDS=(); HOLDER_FDS=()
}
