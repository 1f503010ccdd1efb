#!/usr/bin/env bash
# `usher top` driven in tmux (an 80x24 terminal) against a server holding real sessions
# in known states: the frame shows each service's sessions by state, its gate (one
# statement running, one queued), quota use, leases and the leak suspect with its
# holder; a refused login shows as a refusal rate on the next frame; keys sort (c) and
# filter (/ name Enter); a resize (SIGWINCH) redraws within the new width; a stopped
# server is shown in the status line and reconnected to; q and SIGTERM give the terminal
# back (main screen, echo and canonical mode). `--once` prints a frame without escapes;
# usage errors and a bad conninfo give their exit statuses. No sleeps: every state is
# awaited (tmux pane polled with a bound), and the refresh interval is an hour, so a new
# frame comes only when the test presses space.
set -uo pipefail
export LC_ALL=C.UTF-8   # ${#line} counts characters (a cut ends in "…")
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"
source "$HERE/../harness/usher_cli.sh"

usher_cli_build
command -v tmux >/dev/null || { echo "tmux is missing (tests/harness/deps.sh installs it)"; echo "0 1" >>"${USHER_COUNTS:-/dev/null}"; exit 1; }

# lease_warning 1 ms: a lease on an idle backend is a suspect at once (no waiting for age).
scenario_start top usher.sample_interval=1h usher.lease_warning=1
"${SU[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN;
CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
GRANT USAGE ON SCHEMA usher TO app;
GRANT EXECUTE ON FUNCTION usher.checkout(text) TO app;
SELECT usher.set_service('orders', max_connections => 5, max_active => 1, queue_timeout => '10min');
SELECT usher.set_service('billing', max_connections => 2);
SELECT usher.set_service('a_service_with_a_long_name_that_must_be_cut', max_connections => 3);
SQL

# The sessions, as role app (superusers are not held to quotas). The ones that need no
# gate slot first: once w1 holds orders' only slot, any orders statement queues.
PGUSER=app session_open tx orders/tx                  # idle in transaction
session_send tx "BEGIN; SELECT 'in tx';"
PGUSER=app session_open leak orders/leak              # idle with a lease: a leak suspect
session_send leak "SELECT usher.checkout('cart.cpp:42 in add_item()');"
PGUSER=app session_open b1 billing/b1
PGUSER=app session_open b2 billing/b2
session_send b1 "SELECT 'b1';"
session_send b2 "SELECT 'b2';"
session_open lockholder dba/lock                      # holds the advisory lock orders waits for
session_send lockholder "SELECT 'locked', pg_advisory_lock(42);"
await 10 session_seen tx "in tx"
await 10 session_seen leak "^t$"
await 10 session_seen b2 "b2"
await 10 session_seen b1 "b1"
await 10 session_seen lockholder "locked"
PGUSER=app session_open w1 orders/w1                  # active, holding orders' one gate slot
session_send w1 "SELECT pg_advisory_lock(42);"
await 10 gate_is orders "1 0"
PGUSER=app session_open w2 orders/w2                  # queued at the gate behind w1
session_send w2 "SELECT 1;"
await 10 gate_is orders "1 1"
leak_pid=$("${SU[@]}" -c "SELECT pid FROM usher.leases")

# --- tmux: an 80x24 terminal running top as the pg_monitor role monitor
SOCK=usher-top-$$
TMUX_CMD=(tmux -L "$SOCK" -f /dev/null)
at_exit '"${TMUX_CMD[@]}" kill-server 2>/dev/null'
pane() { "${TMUX_CMD[@]}" capture-pane -p -J -t "$1"; }
pane_has() { pane "$1" | grep -q -- "$2"; }
keys() { "${TMUX_CMD[@]}" send-keys -t "$@"; }
# start_top WINDOW ARGS...: top in a shell that, once top ends, prints its exit status
# and the terminal modes (echo, icanon: restored or not).
start_top() {
  local window=$1; shift
  # One job (a subshell), so that a stopped top stops the whole of it.
  local cmd="(env PGHOST='$PGHOST' PGPORT=$PGPORT PGDATABASE=postgres PGUSER=${TOP_USER:-monitor} '$USHER_CLI' top $*;"
  cmd+=" echo \"top-exit=\$?\"; stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '; echo)"
  if [[ $window == main ]]; then
    # An interactive shell with job control (and no line editing, which would change the
    # terminal's modes at its prompt), as over SSH: Ctrl-Z stops top and fg resumes it.
    "${TMUX_CMD[@]}" new-session -d -s main -x 80 -y 24 \
      "env HISTFILE=/dev/null PS1='$ ' bash --norc --noprofile --noediting -i"
    keys main -l "$cmd"   # after it, the shell stays (a list would go on while top is stopped)
    keys main Enter
  else
    "${TMUX_CMD[@]}" new-window -d -t main: -n "$window" "bash -c $(printf '%q' "$cmd; exec cat")"
  fi
}
row_of() {  # WINDOW SERVICE: the service's row in the pane, blanks squeezed
  pane "$1" | grep -E "^$2 " | tr -s ' '
}
row_matches() { row_of "$1" "$2" | grep -qE -- "$3"; }  # WINDOW SERVICE REGEX
pane_lacks() { ! pane "$1" | grep -q -- "$2"; }
fits() {  # WINDOW COLUMNS: no line of the pane is wider (a wrapped line, joined by -J, would be)
  local line
  while IFS= read -r line; do (( ${#line} <= $2 )) || { echo "too wide: $line"; return 1; }; done < <(pane "$1")
}
line_no() { pane "$1" | grep -nE "^$2 " | cut -d: -f1; }

start_top main --interval 3600
await 15 pane_has main "^orders " || { echo "# pane:"; pane main | sed 's/^/#   /'; }
assert_match "$(pane main | head -n 1)" "^usher top  postgres  [0-9:]{8}  every 3600s  sort: service" \
  "the title names the database, the interval and the sort"
# SERVICE CONN/MAX ACT IDLE IXACT GATE QUEUE REF/s TMO/s LEASE LEAK
assert_eq "$(row_of main orders)" "orders 4/5 2 1 1 1/1 1 - - 1 1" \
  "orders: 4 of 5 sessions (2 active, 1 idle, 1 idle in transaction), gate 1 of 1 running and 1 queued, 1 lease, 1 suspect"
assert_eq "$(row_of main billing)" "billing 2/2 0 2 0 0/- 0 - - 0 0" "billing: 2 of 2 sessions, both idle, no gate limit"
assert_match "$(pane main)" $'\n'"SERVICE +CONN/MAX +ACT +IDLE +IXACT +GATE +QUEUE +REF/s +TMO/s +LEASE +LEAK" "the column headings"
assert_match "$(pane main)" "health: WARNING .*leases warning" "the health line names the leases check"
assert_match "$(pane main)" "LEAK SUSPECTS: 1 .*"$'\n'" *$leak_pid  orders +[0-9.]+s  cart\.cpp:42 in add_item\(\)" \
  "the leak suspect: its pid, service, lease age and holder (source location)"
assert_match "$(pane main)" "a_service_with_… +0/3 " "a long service name is cut to its column"
assert_cmd "no line is wider than the 80-column pane (nothing wraps)" fits main 80
assert_match "$(pane main | tail -n 1)" "^q quit  s/c/a/w/r/l sort  / filter" "the status line shows the keys"

# --once while the sessions are held: every service row and the suspect, no height limit.
PGUSER=monitor usher_run top --once --interval 0
assert_eq "$(grep -cE '^(a_service_with_…|billing|default|orders) ' <<<"$OUT")" "4" "top --once lists every service (no height limit)"
assert_match "$OUT" "LEAK SUSPECTS: 1 .*"$'\n'" *$leak_pid  orders .*cart\.cpp:42" "and the leak suspect below them"

# A refused login between two frames: billing's REF/s on the next one (space: refresh now).
PGUSER=app PGAPPNAME=billing/b3 psql -X -c "SELECT 1" >"$WORK/b3.out" 2>&1
assert_match "$(cat "$WORK/b3.out")" "too many connections for service \"billing\"" "a third billing login is refused"
keys main Space
await 10 row_matches main billing '^billing 2/2 0 2 0 0/- 0 (<0\.1|[0-9]+\.[0-9]) '
assert_match "$(row_of main billing)" "^billing 2/2 0 2 0 0/- 0 (<0\.1|0\.[1-9]|[1-9][0-9]*\.[0-9]) 0\.0 " \
  "the next frame shows billing's refusals per second above 0 (and no gate refusals)"
assert_match "$(row_of main orders)" "^orders 4/5 2 1 1 1/1 1 0\.0 0\.0 " "and orders' rates as 0.0"

# Sorting: by service first (billing above orders); c sorts by connections (orders first).
assert_cmd "sorted by service: billing above orders" test "$(line_no main billing)" -lt "$(line_no main orders)"
keys main c
await 10 pane_has main "sort: conns"
assert_cmd "c sorts by connections: orders (4) above billing (2)" test "$(line_no main orders)" -lt "$(line_no main billing)"

# Filtering: / bill Enter leaves billing alone.
keys main / b i l l Enter
await 10 pane_has main "filter: bill"
assert_eq "$(pane main | grep -cE '^(orders|billing|default) ')" "1" "/ bill Enter: only one service row is left"
assert_match "$(row_of main billing)" "^billing 2/2 " "and it is billing"
keys main / BSpace BSpace BSpace BSpace Enter
await 10 pane_has main "^orders "
assert_cmd "an emptied filter shows every service again" pane_has main "^billing "

# A resize (SIGWINCH) redraws within the new width.
"${TMUX_CMD[@]}" resize-window -t main -x 50 -y 20
await 10 pane_has main '^orders.*…$'
assert_cmd "after a resize to 50 columns every line fits (cut, not wrapped)" fits main 50
"${TMUX_CMD[@]}" resize-window -t main -x 80 -y 24

# Ctrl-Z: while top is stopped the terminal is the shell's again (main screen, echo and
# canonical mode); fg: top takes it back and redraws.
tty=$("${TMUX_CMD[@]}" display -p -t main '#{pane_tty}')
modes() { stty -F "$tty" -a | tr ' ' '\n' | grep -xE -- '-?(icanon|echo)' | tr '\n' ' '; }
modes_are() { [[ $(modes) == "$1" ]]; }
keys main C-z
await 10 pane_has main "Stopped"
assert_cmd "Ctrl-Z: the frame is gone with the alternate screen while top is stopped" pane_lacks main "^SERVICE"
assert_eq "$(modes)" "icanon echo " "and the terminal's modes are the shell's"
keys main -l "fg"
keys main Enter
await 10 pane_has main "^SERVICE" || { echo "# pane after fg:"; pane main | sed 's/^/#   /'; }
await 10 modes_are "-icanon -echo "
assert_eq "$(modes)" "-icanon -echo " "fg: top takes the terminal again"
assert_cmd "and redraws its frame" pane_has main "^orders "

# The server goes away: the status line says so, and top reconnects once it is back.
cluster_restart_stopped() { as_pg_user "$PG_BIN/pg_ctl" -D "$(cluster_dir top)/data" -l "$(cluster_dir top)/server.log" -w -t 60 -o "-p $PGPORT" start >/dev/null; }
for s in lockholder w1 w2 tx leak b1 b2; do session_close "$s"; done
cluster_stop top
keys main Space
await 15 pane_has main "^retrying every 3600s: "
assert_match "$(pane main | tail -n 1)" "^retrying every 3600s: .*(connect|server|terminat|closed)" \
  "a lost server is named in the status line (top keeps running)"
cluster_restart_stopped
keys main Space
await 15 pane_has main "^q quit"
assert_match "$(pane main)" $'\n'"orders +0/5 " "after the restart top reconnects and shows the server's new state"

# q quits: exit status 0, main screen back, echo and canonical mode on again.
keys main q
await 10 pane_has main "^-\?icanon"
assert_match "$(pane main)" "top-exit=0"$'\n'"icanon echo" "q quits with status 0 and the terminal's modes are restored"
assert_cmd "the frame is gone with the alternate screen" pane_lacks main "^SERVICE"

# SIGTERM: the same cleanup.
start_top term --interval 3600
await 15 pane_has main:term "^orders "
top_pid=$(pgrep -f -n "$USHER_CLI top --interval 3600")
kill -TERM "$top_pid"
await 10 pane_has main:term "^-\?icanon"
assert_match "$(pane main:term)" "top-exit=0"$'\n'"icanon echo" "SIGTERM: exit status 0, the terminal's modes restored"

# A role without pg_monitor: one error line and exit 77 before the screen is taken.
TOP_USER=app start_top denied --interval 3600
await 10 pane_has main:denied "^-\?icanon"
assert_match "$(pane main:denied)" "top-exit=77"$'\n'"icanon echo" \
  "a role without pg_monitor: exit 77 before the screen is taken, the terminal untouched"
assert_match "$(pane main:denied | grep '^usher: ')" "GRANT pg_monitor" "with one error line naming the grant"

# --- --once: one frame, no escapes, no terminal needed
PGUSER=monitor usher_run top --once --interval 0
assert_eq "$RC" "0" "top --once exits 0"
assert_cmd "top --once prints no escape sequence when stdout is not a terminal" bash -c "! grep -q $'\x1b' '$WORK/usher.out'"
assert_match "$OUT" $'\n'"orders +0/5 +0 +0 +0 +0/1 +0 +- +- +0 +0" "top --once shows orders (rates - with --interval 0: one sample)"
PGUSER=monitor usher_run top --once --interval 0 --service bill --sort conns
assert_match "$OUT" "filter: bill" "--service starts filtered"
assert_eq "$(grep -cE '^(orders|billing) ' <<<"$OUT")" "1" "--service bill shows billing alone"
usher_run top
assert_match "$RC $ERR" "^64 usher: usher top needs a terminal" "top without a terminal: 64, pointing to --once"
usher_run top --once --interval soon
assert_match "$RC $ERR" "^64 usher: --interval takes seconds" "a bad --interval: 64"
usher_run top --once --sort cons
assert_match "$RC $ERR" "^64 .*did you mean 'conns'" "a bad --sort: 64 with a hint"
usher_run top --once --dsn "host=$PGHOST port=$PGPORT" -d "host=$PGHOST"
assert_match "$RC $ERR" "^64 .*not both" "--dsn and -d together: 64"
usher_run top --once --dsn "host=/nonexistent port=1 password=secret"
assert_match "$RC" "^69$" "an unreachable server: 69"
assert_cmd "and the password is not printed" bash -c "! grep -q secret '$WORK/usher.err'"

assert_done
