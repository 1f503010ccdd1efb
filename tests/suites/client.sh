#!/usr/bin/env bash
# libusher (client/): builds the library (Release: what is installed, what the CLI and
# the integration tools link) and its GoogleTest suite with CMake, and runs
#   1. the suite under AddressSanitizer + UndefinedBehaviorSanitizer against the cluster
#      in the PG* environment (tests/run.sh's),
#   2. the server-restart test and the pg_usher lease tests against a cluster of its own
#      (it stops and starts it; CREATE EXTENSION pg_usher there, when it installs), and
#      usher::Cluster's tests against a primary and a streaming standby of their own,
#   3. the pool's concurrency tests and the lending bag's under ThreadSanitizer,
#   4. an install into a staging prefix, and the example built against it through
#      find_package(usher) and through pkg-config.
# The suite is not built or run in Release as well: the same tests under ASan + UBSan
# find more, and building the tests a third time cost about 90 s of make test's 20
# minutes (docs/testing.md). USHER_CLIENT_SANITIZERS=0 (quick local runs) runs 1 and 2
# in Release instead, and skips 3.
# Appends "passed failed" per run to $USHER_COUNTS (test cases, from gtest's output).
# Build folders: build/client, build/client-asan, build/client-tsan, build/client-stage.
#
# Standalone: tests/suites/client.sh (starts its own cluster when PGPORT is not set).
set -uo pipefail

REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HARNESS=$REPO_ROOT/tests/harness/cluster.sh
BUILD=$REPO_ROOT/build
LOGS=$BUILD/client-logs  # not build/test-results: tests/run.sh empties that at its start
COUNTS=${USHER_COUNTS:-/dev/null}
JOBS=${USHER_JOBS:-$(nproc)}
RESTART_CLUSTER=client-restart
mkdir -p "$LOGS"
status=0

own_clusters=()
cleanup() { for c in "${own_clusters[@]}"; do "$HARNESS" destroy "$c" >/dev/null 2>&1; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

start_cluster() {  # NAME [setting=value ...]: start a throwaway cluster we destroy on exit
  own_clusters+=("$1")
  "$HARNESS" destroy "$1" >/dev/null 2>&1
  "$HARNESS" start "$@"
}

SUITE_CLUSTER=${USHER_TEST_CLUSTER:-test}  # tests/run.sh's, whose PG* we were given
if [[ -z ${PGPORT:-} ]]; then
  start_cluster client-suite || { echo "0 1" >>"$COUNTS"; exit 1; }
  eval "$("$HARNESS" env client-suite)"
  SUITE_CLUSTER=client-suite
fi

# A real PgBouncer 1.18 (pool_mode = transaction, two server connections) in front of the
# suite's cluster, for PgBouncerStatementTest: its conninfo in USHER_TEST_PGBOUNCER.
BOUNCER=client-bouncer
bouncer() { (source "$HARNESS" && source "$REPO_ROOT/tests/harness/pgbouncer.sh" && "$@"); }
# PgBouncer is installed by tests/harness/deps.sh: one that does not start is a failure
# (the tests would only skip).
bouncer bouncer_destroy "$BOUNCER" >/dev/null 2>&1
if bouncer bouncer_start "$BOUNCER" "$SUITE_CLUSTER" default_pool_size=2; then
  export USHER_TEST_PGBOUNCER="host=$(bouncer bouncer_dir "$BOUNCER") port=$(cat "$(bouncer bouncer_dir "$BOUNCER")/port") user=postgres dbname=postgres"
  trap 'bouncer bouncer_destroy "$BOUNCER" >/dev/null 2>&1; cleanup' EXIT
else
  echo "    PgBouncer for the PgBouncer tests did not start"
  echo "0 1" >>"$COUNTS"
  status=1
fi

# build DIR CMAKE-ARGS...: configure and build; a failed build counts as one failure.
build() {
  local dir=$1; shift
  local log=$LOGS/$(basename "$dir").build.log
  echo "--- building $dir"
  if ! { cmake -S "$REPO_ROOT/client" -B "$dir" -DUSHER_BUILD_TESTS=ON "$@" &&
         cmake --build "$dir" -j "$JOBS"; } >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "0 1" >>"$COUNTS"
    status=1
    return 1
  fi
}

# run_gtest NAME BINARY [ARGS...]: runs it, prints failures, appends the counts. With
# GTEST_NO_SKIPS=1 a skipped test counts as failed (where nothing may be missing).
run_gtest() {
  local name=$1 bin=$2; shift 2
  local log=$LOGS/$name.log
  echo "--- $name"
  "$bin" --gtest_color=no "$@" >"$log" 2>&1
  local rc=$?
  local passed failed
  passed=$(grep -cE '^\[       OK \] ' "$log")
  failed=$(grep -cE '^\[  FAILED  \] .*\([0-9]+ ms\)$' "$log")
  if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; fi  # crashed or a sanitizer aborted
  local skipped; skipped=$(grep -cE '^\[  SKIPPED \] .*\([0-9]+ ms\)$' "$log")
  if [[ ${GTEST_NO_SKIPS:-0} -eq 1 && $skipped -gt 0 ]]; then
    echo "    $name: $skipped test(s) skipped where every test must run; log: $log"
    grep -E -B3 '^\[  SKIPPED \] .*\([0-9]+ ms\)$' "$log" | head -n 20
    failed=$((failed + skipped)); status=1
  fi
  grep -E '^\[==========\]|^\[  PASSED  \]|^\[  SKIPPED \]' "$log" | sed 's/^/    /'
  if [[ $rc -ne 0 ]]; then
    echo "    $name failed (rc=$rc); log: $log"
    grep -E -B2 -A12 'Failure|FAILED|ERROR: (Address|Thread|Leak)Sanitizer|runtime error|WARNING: ThreadSanitizer' "$log" | head -n 80
    status=1
  fi
  echo "$passed $failed" >>"$COUNTS"
}

# Tests that need a server of their own: the restart tests (pool, listener) stop and start it; the
# lease tests and the service quota at login (ConnectExtension*) need CREATE EXTENSION
# pg_usher, which the shared test cluster does not have
# (they skip, saying so, when the extension cannot be created — which here is a failure:
# this cluster preloads pg_usher, so every one of them must run).
OWN_SERVER_TESTS='PoolRestart*:ListenerRestart*:PoolExtension*:ConnectExtension*'
run_own_server() {
  local name=$1 bin=$2
  start_cluster "$RESTART_CLUSTER" || { echo "0 1" >>"$COUNTS"; status=1; return; }
  (
    eval "$("$HARNESS" env "$RESTART_CLUSTER")"
    psql -qX -c 'CREATE EXTENSION IF NOT EXISTS pg_usher' >"$LOGS/$name.extension.log" 2>&1 ||
      echo "    (pg_usher not created: $(tail -n 1 "$LOGS/$name.extension.log"))"
    export USHER_TEST_SERVER_STOP="$HARNESS stop $RESTART_CLUSTER"
    export USHER_TEST_SERVER_START="$HARNESS restart $RESTART_CLUSTER"
    GTEST_NO_SKIPS=1 run_gtest "$name" "$bin" --gtest_filter="$OWN_SERVER_TESTS"
    exit $status
  ) || status=1
}

# usher::Cluster (tests/client/cluster_test.cpp): a primary (synchronous_commit on, as in
# production: the harness's default "off" delays WAL to the standby by up to
# wal_writer_delay) and a streaming standby, fresh for each run. The failover test stops
# the primary and promotes the standby, so it runs last, on its own.
CLUSTER_TESTS='Cluster*'
run_cluster() {
  local name=$1 bin=$2 p=client-primary s=client-standby
  start_cluster "$p" synchronous_commit=on || { echo "0 1" >>"$COUNTS"; status=1; return; }
  own_clusters+=("$s")
  "$HARNESS" destroy "$s" >/dev/null 2>&1
  "$HARNESS" standby "$s" "$p" || { echo "0 1" >>"$COUNTS"; status=1; return; }
  (
    eval "$("$HARNESS" env "$s")"
    export USHER_TEST_STANDBY_PORT=$PGPORT
    eval "$("$HARNESS" env "$p")"
    export USHER_TEST_PRIMARY_PORT=$PGPORT
    export USHER_TEST_STANDBY_STOP="$HARNESS stop $s" USHER_TEST_STANDBY_START="$HARNESS restart $s"
    export USHER_TEST_PRIMARY_STOP="$HARNESS stop $p" USHER_TEST_STANDBY_PROMOTE="$HARNESS promote $s"
    GTEST_NO_SKIPS=1 run_gtest "$name" "$bin" --gtest_filter="$CLUSTER_TESTS:-ClusterFailover*"
    GTEST_NO_SKIPS=1 run_gtest "$name-failover" "$bin" --gtest_filter="ClusterFailover*"
    exit $status
  ) || status=1
  "$HARNESS" destroy "$s" >/dev/null 2>&1
  "$HARNESS" destroy "$p" >/dev/null 2>&1
}

# 1 + 2 in Release (USHER_CLIENT_SANITIZERS=0).
release_tests() {
  run_gtest release "$BUILD/client/tests/usher_client_tests" --gtest_filter="-$OWN_SERVER_TESTS:$CLUSTER_TESTS"
  run_own_server release-own-server "$BUILD/client/tests/usher_client_tests"
  run_cluster release-cluster "$BUILD/client/tests/usher_client_tests"
}
# 1 + 2 under ASan + UBSan: everything.
asan_tests() {
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
  run_gtest asan "$BUILD/client-asan/tests/usher_client_tests" --gtest_filter="-$OWN_SERVER_TESTS:$CLUSTER_TESTS"
  run_own_server asan-own-server "$BUILD/client-asan/tests/usher_client_tests"
  run_cluster asan-cluster "$BUILD/client-asan/tests/usher_client_tests"
}
# 3: TSan, the tests where the pool's (and the listener's) threads meet the callers' threads, and the
# lending bag's own (no server).
tsan_tests() {
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  run_gtest tsan "$BUILD/client-tsan/tests/usher_client_tests" --gtest_filter="Pool*:LendingBag*:Listener*:-$OWN_SERVER_TESTS"
  run_own_server tsan-own-server "$BUILD/client-tsan/tests/usher_client_tests"
}

# The TSan build runs beside the ASan tests at nice 19: the tests keep about one core
# busy (they mostly wait on the server), so the build takes the other one and yields to
# them (weight 15 against 1024). Tried before at equal priority (f9723af): the tests'
# tight connect and validation timeouts failed under the load; builds at nice 19 beside
# the integration suite (3f3a21b) starved: that suite keeps both cores busy.
# Only the test program runs under the sanitizers: the CLI and examples are not built;
# TSan builds only the test files of the tests it runs (tsan_tests). -O0 -g1: the
# sanitizers find the same at -O0 (ASan's advice of -O1 is for speed) and -g1's line
# tables symbolize their reports with file and line; against -O1 -g the ASan build
# takes 191 CPU s instead of 433, the TSan build 97, and the tests run ~6 s longer
# (docs/testing.md).
SAN_FLAGS=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1" -DUSHER_BUILD_EXAMPLES=OFF -DUSHER_BUILD_CLI=OFF)
if [[ ${USHER_CLIENT_SANITIZERS:-1} == 0 ]]; then
  build "$BUILD/client" -DCMAKE_BUILD_TYPE=Release && release_tests
else
  build "$BUILD/client" -DCMAKE_BUILD_TYPE=Release -DUSHER_BUILD_TESTS=OFF
  tsan_build() {
    build "$BUILD/client-tsan" "${SAN_FLAGS[@]}" -DUSHER_SANITIZE=thread \
      '-DUSHER_TEST_FILES=^(test_support|lending_bag_test|pool_.*|connect_test|listener_test)\.cpp$'
  }
  if build "$BUILD/client-asan" "${SAN_FLAGS[@]}" -DUSHER_SANITIZE=address,undefined -DUSHER_TEST_FILES=; then
    (renice -n 19 -p "$BASHPID" >/dev/null && tsan_build) >"$LOGS/client-tsan.beside.log" 2>&1 &
    tsan_pid=$!
    asan_tests
    wait "$tsan_pid"; tsan_built=$?
    cat "$LOGS/client-tsan.beside.log"
  else
    tsan_build; tsan_built=$?
  fi
  if [[ $tsan_built -eq 0 ]]; then tsan_tests; else status=1; fi
fi

# 4: install into a staging prefix; build the example against it both ways; run it.
install_check() {
  local stage=$BUILD/client-stage log=$LOGS/install.log
  rm -rf "$stage" "$BUILD/client-example"
  echo "--- install + example against the installed package"
  local passed=0 failed=0
  if cmake --install "$BUILD/client" --prefix "$stage" >"$log" 2>&1 &&
     cmake -S "$REPO_ROOT/client/examples" -B "$BUILD/client-example" \
       -DCMAKE_PREFIX_PATH="$stage" >>"$log" 2>&1 &&
     cmake --build "$BUILD/client-example" >>"$log" 2>&1 &&
     LD_LIBRARY_PATH=$stage/lib "$BUILD/client-example/hello_pool" >>"$log" 2>&1; then
    passed=$((passed + 1)); echo "    find_package(usher): ok"
  else
    failed=$((failed + 1)); echo "    find_package(usher): FAILED"; tail -n 20 "$log"
  fi
  if PKG_CONFIG_PATH=$stage/lib/pkgconfig \
     g++ -o "$BUILD/client-example/hello_pool_pc" "$REPO_ROOT/client/examples/hello_pool.cpp" \
       $(PKG_CONFIG_PATH=$stage/lib/pkgconfig pkg-config --cflags --libs usher) >>"$log" 2>&1 &&
     LD_LIBRARY_PATH=$stage/lib "$BUILD/client-example/hello_pool_pc" >>"$log" 2>&1; then
    passed=$((passed + 1)); echo "    pkg-config usher: ok"
  else
    failed=$((failed + 1)); echo "    pkg-config usher: FAILED"; tail -n 20 "$log"
  fi
  echo "$passed $failed" >>"$COUNTS"
  [[ $failed -eq 0 ]] || status=1
}
[[ -x $BUILD/client/examples/hello_pool ]] && install_check

exit $status
