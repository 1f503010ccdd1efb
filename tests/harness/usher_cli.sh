# shellcheck shell=bash
# The usher command-line tool for an integration script. Source after cluster.sh.
#
#   usher_cli_build   sets USHER_CLI to a binary built from the current sources, unless
#                     USHER_CLI is set already; on a failed build prints the log's end,
#                     counts one failure and exits the script.
#
# In make test the client suite has just built the tool in build/client: that build is
# brought up to date rather than the library compiled again (flock: a run side by side
# in this checkout waits for it). Run alone, the tool gets a build of its own
# (build/client-cli), so it never races the client suite's build and is never stale.
usher_cli_build() {
  [[ -n ${USHER_CLI:-} ]] && return 0
  local build=$REPO_ROOT/build/client-cli
  local configure=(cmake -S "$REPO_ROOT/client" -B "$build" -DCMAKE_BUILD_TYPE=Release -DUSHER_BUILD_EXAMPLES=OFF)
  if [[ -f $REPO_ROOT/build/client/CMakeCache.txt ]]; then
    build=$REPO_ROOT/build/client configure=(true)
  fi
  mkdir -p "$build"
  if ! { "${configure[@]}" &&
         flock "$build/.cli-build.lock" cmake --build "$build" --target usher_cli -j "$(nproc)"; } \
       >"$build/cli-build.log" 2>&1; then
    tail -n 30 "$build/cli-build.log"
    echo "0 1" >>"${USHER_COUNTS:-/dev/null}"
    exit 1
  fi
  USHER_CLI=$build/cli/usher
}

# usher_run ARGS...: runs the tool; sets OUT (stdout), ERR (stderr) and RC. Needs WORK.
usher_run() {
  "$USHER_CLI" "$@" >"$WORK/usher.out" 2>"$WORK/usher.err"
  RC=$?
  OUT=$(cat "$WORK/usher.out")
  ERR=$(cat "$WORK/usher.err")
}
