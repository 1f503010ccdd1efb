#!/usr/bin/env bash
# Installs the Debian packages pg_usher needs to build, test, demo and benchmark.
# As root it runs apt-get itself; otherwise it prints the exact command and fails,
# so `make test` on a fresh machine either sets itself up or says what to run.
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
packages=(
  build-essential cmake pkg-config
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "postgresql-contrib"
  libpq-dev libkrb5-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev nlohmann-json3-dev  # libusher: Patroni's REST API (client/src/patroni.cpp)
  "postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl
  pgbouncer prometheus jq
  tmux          # tests/integration/top.sh drives `usher top` in a terminal
  curl python3  # tests/integration/grafana.sh serves metrics over HTTP and queries Prometheus
  sqlsmith      # tests/suites/fuzz.sh: random queries against a server with the gate on
  patroni etcd-server haproxy  # deploy/patroni, tests/integration/patroni.sh: Patroni failover
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
  echo "pg_usher needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get update && sudo ${cmd[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
"${cmd[@]}" -qq >/dev/null
# The Debian packages start services of their own; the harness starts what it needs.
for svc in prometheus pgbouncer postgresql etcd patroni haproxy; do
  if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
