#!/usr/bin/env bash
# Makes a private copy of the PostgreSQL installation under DIR and prints the path of
# its pg_config. `make install` (and `make test`, which installs) writes pg_usher.so
# into PostgreSQL's own directories, so two checkouts that build and test side by side
# replace each other's module under running servers. With
#   PG_CONFIG=$(tests/harness/private_pg.sh /tmp/pg-mine) make test
# this checkout installs into, and starts its clusters from, its own copy. PostgreSQL's
# binaries find their files relative to their own location, so a copy works as is.
set -euo pipefail
DIR=${1:?usage: private_pg.sh DIR}
PG_MAJOR=${PG_MAJOR:-15}
if [[ ! -x $DIR/usr/lib/postgresql/$PG_MAJOR/bin/pg_config ]]; then
  mkdir -p "$DIR/usr/lib/postgresql" "$DIR/usr/share/postgresql" "$DIR/usr/include"
  cp -a "/usr/lib/postgresql/$PG_MAJOR" "$DIR/usr/lib/postgresql/"
  cp -a "/usr/share/postgresql/$PG_MAJOR" "$DIR/usr/share/postgresql/"
  cp -a /usr/include/postgresql "$DIR/usr/include/"
  # The server runs as the postgres system user when the harness runs as root.
  chmod -R a+rX "$DIR"
fi
echo "$DIR/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
