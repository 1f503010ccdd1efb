# Assertions for shell-level integration tests. Source it; each assertion prints a TAP
# line, and assert_done appends "passed failed" to $USHER_COUNTS and returns non-zero
# if anything failed.
ASSERT_PASSED=0
ASSERT_FAILED=0
ASSERT_NUMBER=0

_assert_result() {  # status description [details]
  ASSERT_NUMBER=$((ASSERT_NUMBER + 1))
  if [[ $1 -eq 0 ]]; then
    ASSERT_PASSED=$((ASSERT_PASSED + 1)); echo "ok $ASSERT_NUMBER - $2"
  else
    ASSERT_FAILED=$((ASSERT_FAILED + 1)); echo "not ok $ASSERT_NUMBER - $2"
    [[ -n ${3:-} ]] && echo "$3" | sed 's/^/#   /'
  fi
  return 0
}

# assert_eq ACTUAL EXPECTED DESCRIPTION
assert_eq() {
  if [[ $1 == "$2" ]]; then _assert_result 0 "$3"; else _assert_result 1 "$3" "got:      $1
expected: $2"; fi
}

# assert_match ACTUAL REGEX DESCRIPTION
assert_match() {
  if [[ $1 =~ $2 ]]; then _assert_result 0 "$3"; else _assert_result 1 "$3" "got:      $1
expected to match: $2"; fi
}

# assert_cmd DESCRIPTION CMD... : passes when CMD exits 0
assert_cmd() {
  local description=$1; shift
  local out
  if out=$("$@" 2>&1); then _assert_result 0 "$description"; else _assert_result 1 "$description" "$out"; fi
}

# await SECONDS CMD... : polls CMD every 0.1 s until it succeeds or time runs out
await() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -ge $deadline ]] && return 1
    sleep 0.1
  done
}

assert_done() {
  echo "# $ASSERT_PASSED passed, $ASSERT_FAILED failed"
  [[ -n ${USHER_COUNTS:-} ]] && echo "$ASSERT_PASSED $ASSERT_FAILED" >>"$USHER_COUNTS"
  [[ $ASSERT_FAILED -eq 0 ]]
}
