#!/usr/bin/env bash
# The accounting invariant of login admission: 10,000 login attempts from six
# concurrent threads across four services, ending in every way a session can end
# (clean close, a client that vanishes, pg_terminate_backend, kept open), with refusals
# by quota, by reservation and by a full server. Afterwards usher.service_status.current
# equals the real number of backends of each service, the admitted and refused totals
# equal what the clients saw, and every count returns to 0 when the sessions are gone.
#
# Which refusals a storm meets depends on timing, so each kind is first made certain
# with sessions held open (hold_sessions), and the storm's totals are checked on top.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"
TOOLS=$(cd "$HERE/../.." && pwd)/build/tools
ATTEMPTS=${STORM_ATTEMPTS:-10000}

storm_pid=
at_exit '[[ -n $storm_pid ]] && kill "$storm_pid" 2>/dev/null'
# 30 slots, 3 for superusers: the up to 40 sessions the storm keeps, plus those in flight,
# press against the 6 reserved for storm_r.
scenario_start storm max_connections=30
"${SU[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN;
SELECT usher.set_service('storm_a', max_connections => 4);
SELECT usher.set_service('storm_b', max_connections => 8);
SELECT usher.set_service('storm_r', reserved_connections => 6);
SELECT usher.set_service('storm_u');
SQL

services="'storm_a','storm_b','storm_r','storm_u'"

# --- each refusal made certain: 27 slots for ordinary roles, 6 of them reserved for
# storm_r. Sessions are held by the plain role; nothing else is connected meanwhile.
source "$HERE/../harness/sessions.sh"
PGUSER=app hold_all storm_a/held 4 "storm_a holds its quota of 4"
PGUSER=app hold_all storm_u/held 17 "storm_u holds 17: with storm_a's 4, every slot not reserved for storm_r"
PGUSER=app hold storm_a/held 1
assert_match "$HELD_ERROR" 'too many connections for service "storm_a": 4 of 4 in use' "a 5th storm_a login is refused by quota"
PGUSER=app hold storm_b/held 1
assert_match "$HELD_ERROR" 'no connection slot for service "storm_b": the 6 free slot\(s\) are reserved for other services' \
  "a storm_b login is refused by reservation: the 6 free slots are storm_r's"
PGUSER=app hold_all storm_r/held 6 "storm_r gets its 6 reserved slots"
PGUSER=app hold storm_u/held 1
assert_match "$HELD_ERROR" 'no connection slot for service "storm_u": the server is full, 27 of 27 connections for ordinary roles are in use' \
  "with all 27 slots in use a login is refused because the server is full"
release_all
held_admitted=27
await 30 test "$("${SU[@]}" -c "SELECT coalesce(sum(current), 0) FROM usher.service_status WHERE service IN ($services)")" = 0
# usher's count against the backends PostgreSQL itself lists, per service.
mismatches() {
  "${SU[@]}" -c "
    SELECT count(*) FROM usher.service_status s
      LEFT JOIN (SELECT split_part(application_name, '/', 1) AS service, count(*) AS n
                   FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = 'app'
                  GROUP BY 1) a USING (service)
     WHERE s.service IN ($services) AND s.current <> coalesce(a.n, 0)"
}

fifo=$(mktemp -u); mkfifo "$fifo"
out=$(mktemp)
PGUSER=app STORM_ADMIN_USER=postgres STORM_HOLD_UNTIL_EOF=1 \
  "$TOOLS/login_storm" "$ATTEMPTS" 6 storm_a storm_b storm_r storm_u <"$fifo" >"$out" &
storm_pid=$!
exec {hold}>"$fifo"; rm -f "$fifo"
await 600 test -s "$out"
totals=$(cat "$out")
echo "# $totals"
value() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$totals"; }

assert_eq "$(value attempts)" "$ATTEMPTS" "the storm made every attempt"
assert_eq "$(value unexpected)" "0" "no login failed except by pg_usher's refusals and PostgreSQL's own limits"
assert_match "$(value terminated)" '^[1-9][0-9]*$' "some sessions were killed with pg_terminate_backend"
assert_match "$(value vanished)" '^[1-9][0-9]*$' "some clients vanished without closing"

# Terminated backends may take a moment to exit; the counts must then agree.
no_mismatch() { test "$(mismatches)" = 0; }
await 30 no_mismatch
assert_eq "$(mismatches)" "0" "with sessions still open, current equals the real backends of each service"
assert_match "$("${SU[@]}" -c "SELECT sum(current) FROM usher.service_status WHERE service IN ($services)")" '^[1-9][0-9]*$' \
  "and some sessions are still open at that moment"
# pg_usher admits before PostgreSQL's last checks (superuser-reserved slots) and before
# a pg_terminate_backend can reach a starting session: those logins count as admitted.
assert_eq "$("${SU[@]}" -c "SELECT sum(admitted_total) FROM usher.service_status WHERE service IN ($services)")" \
  "$(( held_admitted + $(value admitted) + $(value server_reserved) + $(value killed_in_startup) ))" \
  "admitted_total equals the logins that passed pg_usher: held sessions and clients' successes plus later server refusals"
assert_eq "$("${SU[@]}" -c "SELECT sum(rejected_quota_total) || ' ' || sum(rejected_reservation_total) || ' ' || sum(rejected_full_total) || ' ' || sum(rejected_total) FROM usher.service_status WHERE service IN ($services)")" \
  "$(( 1 + $(value refused_quota) )) $(( 1 + $(value refused_reservation) )) $(( 1 + $(value refused_full) )) $(( 3 + $(value refused_quota) + $(value refused_reservation) + $(value refused_full) ))" \
  "refusal totals by reason equal the refusals the held sessions and the storm's clients saw"
assert_eq "$("${SU[@]}" -c "SELECT max(peak) <= 4 FROM usher.service_status WHERE service = 'storm_a'")" "t" \
  "storm_a never exceeded its quota of 4"

exec {hold}>&-
wait "$storm_pid"; storm_pid=
all_gone() { test "$("${SU[@]}" -c "SELECT coalesce(sum(current), 0) FROM usher.service_status WHERE service IN ($services)")" = 0; }
await 30 all_gone
assert_eq "$("${SU[@]}" -c "SELECT coalesce(sum(current), 0) FROM usher.service_status WHERE service IN ($services)")" "0" \
  "every count is 0 once the sessions are gone"
assert_done
