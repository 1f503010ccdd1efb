# Writing a benchmark's section of bench/RESULTS.md. Source it, then
#   record_section "## Heading" "$SECTION"
# replaces the section from its heading to the next "## " heading, or appends it.
record_section() {
  local heading=$1 section=$2
  local results; results="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/RESULTS.md"
  [[ -f $results ]] || printf '# Benchmark results\n\nEach section gives the command that produced its figures.\n' >"$results"
  local tmp; tmp=$(mktemp)
  SECTION="$section" HEADING="$heading" awk '
    BEGIN { section = ENVIRON["SECTION"]; heading = ENVIRON["HEADING"] }
    $0 == heading { print section; print ""; skipping = 1; done = 1; next }
    skipping && /^## / { skipping = 0 }
    !skipping { print }
    END { if (!done) { print ""; print section } }
  ' "$results" >"$tmp"
  cat "$tmp" >"$results"; rm -f "$tmp"
}
