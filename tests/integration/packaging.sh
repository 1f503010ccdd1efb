#!/usr/bin/env bash
# Packaging facts that must hold together: META.json is valid PGXN metadata whose
# versions equal the control file's default_version, and that version's install
# script builds.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/../harness/assert.sh"

control_version=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$ROOT/extension/pg_usher.control")
meta() { python3 -c "import json,sys; m=json.load(open('$ROOT/META.json')); print($1)"; }
assert_eq "$(meta "m['version']")" "$control_version" "META.json version equals the control file's default_version"
assert_eq "$(meta "m['provides']['pg_usher']['version']")" "$control_version" "META.json provides.pg_usher.version equals it too"
assert_eq "$(meta "m['meta-spec']['version']")" "1.0.0" "META.json follows PGXN meta-spec 1.0.0"
assert_cmd "the install script for $control_version is built from extension/sql/" \
  make -s -C "$ROOT" "build/pg_usher--$control_version.sql"
assert_cmd "META.json's provides.file exists" test -f "$ROOT/$(meta "m['provides']['pg_usher']['file']")"
assert_done
