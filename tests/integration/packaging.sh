#!/usr/bin/env bash
# Packaging facts that must hold together: META.json is valid PGXN metadata whose
# versions equal the control file's default_version, that version's install script
# builds, and every earlier version kept in extension/versions/ has an update path to
# it on a server that has the installed files (pg_extension_update_paths), while no
# update script leads anywhere else (docs/upgrading.md).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

control_version=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$ROOT/extension/pg_usher.control")
meta() { python3 -c "import json,sys; m=json.load(open('$ROOT/META.json')); print($1)"; }
assert_eq "$(meta "m['version']")" "$control_version" "META.json version equals the control file's default_version"
assert_eq "$(meta "m['provides']['pg_usher']['version']")" "$control_version" "META.json provides.pg_usher.version equals it too"
assert_eq "$(meta "m['meta-spec']['version']")" "1.0.0" "META.json follows PGXN meta-spec 1.0.0"
assert_cmd "the install script for $control_version is built from extension/sql/" \
  make -s -C "$ROOT" "build/pg_usher--$control_version.sql"
assert_cmd "META.json's provides.file exists" test -f "$ROOT/$(meta "m['provides']['pg_usher']['file']")"

# The versions the tree ships: install scripts pg_usher--X.sql kept in extension/versions/
# (the current one is built, not kept), and update scripts pg_usher--X--Y.sql.
kept=() updates=()
for f in "$ROOT"/extension/versions/pg_usher--*.sql; do
  v=$(basename "$f" .sql); v=${v#pg_usher--}
  if [[ $v == *--* ]]; then updates+=("$v"); else kept+=("$v"); fi
done
assert_cmd "extension/versions/ keeps no install script of the current version $control_version (it is built)" \
  test ! -e "$ROOT/extension/versions/pg_usher--$control_version.sql"

NAME=packaging
trap 'cluster_destroy $NAME' EXIT
cluster_destroy $NAME
USHER_PRELOAD='' cluster_start $NAME || exit 1
eval "$(cluster_env $NAME)"
Q=(psql -X -At -v ON_ERROR_STOP=1)
assert_eq "$("${Q[@]}" -c "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_usher'")" "$control_version" \
  "the server offers pg_usher $control_version by default"
assert_eq "$("${Q[@]}" -c "SELECT string_agg(version, ' ' ORDER BY version) FROM pg_available_extension_versions WHERE name = 'pg_usher'")" \
  "$(printf '%s\n' "${kept[@]}" "$control_version" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" \
  "the server offers the current version and every kept one, no other"
for v in "${kept[@]}"; do
  assert_match "$("${Q[@]}" -c "SELECT path FROM pg_extension_update_paths('pg_usher') WHERE source = '$v' AND target = '$control_version'")" \
    "^$v--.*$control_version\$" "version $v has an update path to $control_version"
done
# An update script from or to a version the tree does not ship is a typo or a leftover.
ships() { [[ " ${kept[*]} $control_version " == *" $1 "* ]]; }
ships_both() { ships "$1" && ships "$2"; }
for u in "${updates[@]}"; do
  assert_match "$u" '^[0-9]+(\.[0-9]+)*--[0-9]+(\.[0-9]+)*$' "update script pg_usher--$u.sql is named pg_usher--FROM--TO.sql"
  assert_cmd "update script pg_usher--$u.sql goes from a shipped version to a shipped version" ships_both "${u%%--*}" "${u##*--}"
done

# Every C function an install or update script names -- of this version and of every
# earlier one, which a server runs until ALTER EXTENSION UPDATE -- is in the installed
# module as a version-1 SQL function (its symbol and its pg_finfo_ record).
module=$("$PG_CONFIG" --pkglibdir)/pg_usher.so
exported=$(nm -D --defined-only "$module" | awk '{print $3}')
named=$(cat "$ROOT"/extension/sql/*.sql "$ROOT"/extension/versions/*.sql |
  grep -o "MODULE_PATHNAME', *'[A-Za-z0-9_]*'" | sed "s/.*'\([A-Za-z0-9_]*\)'$/\1/" | LC_ALL=C sort -u)
assert_match "$(echo "$named" | wc -l)" '^[1-9][0-9]*$' "the scripts name C functions"
for symbol in $named; do
  assert_cmd "pg_usher.so exports $symbol and pg_finfo_$symbol" \
    bash -c "grep -qx '$symbol' <<<\"\$1\" && grep -qx 'pg_finfo_$symbol' <<<\"\$1\"" _ "$exported"
done
# ...and each is declared through extension/sql_function.hpp, whose macros put the body
# behind usher::guard (docs/cpp-in-the-backend.md, rule 1): no source file writes
# PG_FUNCTION_INFO_V1 itself.
own=$(grep -l 'PG_FUNCTION_INFO_V1' "$ROOT"/extension/*.cpp "$ROOT"/extension/*.hpp | grep -v '/sql_function\.hpp$')
assert_eq "$own" "" "every SQL function of the extension is declared with USHER_SQL_FUNCTION[_PLAIN]"
for symbol in $named; do
  assert_cmd "$symbol is declared with USHER_SQL_FUNCTION[_PLAIN]" \
    grep -Eq "^USHER_SQL_FUNCTION(_PLAIN)?\($symbol[,)]" "$ROOT"/extension/*.cpp
done
assert_done
