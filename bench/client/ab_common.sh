# Sourced by bench/client/ab_*.sh: a throwaway cluster of their own (pg_usher not
# preloaded), its PG* environment exported, destroyed on exit; and `median`.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HARNESS=$REPO_ROOT/tests/harness/cluster.sh
# ab_setup CLUSTER DEFAULT_ROUNDS "$@": BASE, NEW, ROUNDS from the script's arguments
# (BASELINE_BINARY CANDIDATE_BINARY [ROUNDS]), then the cluster CLUSTER started.
ab_setup() {
  AB_CLUSTER=$1
  BASE=${3:?baseline binary}
  NEW=${4:?candidate binary}
  ROUNDS=${5:-$2}
  trap '"$HARNESS" destroy $AB_CLUSTER >/dev/null 2>&1' EXIT
  "$HARNESS" destroy "$AB_CLUSTER" >/dev/null 2>&1 || true
  USHER_PRELOAD= "$HARNESS" start "$AB_CLUSTER" >/dev/null
  eval "$("$HARNESS" env "$AB_CLUSTER")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
