// Where the statement gate meets PostgreSQL. A top-level statement takes a permit before
// it is planned (planner_hook), so that planning waits too -- for short queries
// planning costs as much as running them, and a gate that let 250 sessions plan at once
// would not relieve the CPU. (Not at parse analysis: the extended protocol's Parse
// message analyses a statement that may run much later, and a session must not hold a
// permit while idle.) ExecutorStart and ExecutorRun (statements planned earlier: prepared
// statements, portals) and ProcessUtility (utility statements) take one too.
//
// The permit belongs to the top-level statement from the moment it is first taken until
// that statement ends. Every hook counts its frame in `depth`, so whatever runs inside
// the statement -- a function the planner evaluates, a function in the target list, a
// trigger, the statements of a procedure, EXPLAIN ANALYZE -- runs at depth > 0 and
// neither takes nor gives back a permit. The permit is given back when the top-level
// statement's executor ends or its utility call returns, and on every error path:
// transaction abort, subtransaction abort of a finished statement, and backend exit.
// A transaction that ends inside a statement (a procedure that commits inside CALL)
// does not end the statement: the CALL keeps its permit. Giving back is idempotent, so
// whichever comes first wins. In gate mode 'transaction', and for a fast-path call or
// a DECLARE ... WITH HOLD (whose query runs at COMMIT), the permit is kept until the
// transaction ends (see gate.cpp).
//
// These are plain C frames: the chained PostgreSQL calls may raise, and a longjmp must
// not cross a C++ try frame or skip a destructor. The gate's own work (gate.cpp) keeps
// only plain data and raises through ereport, so no usher::guard is needed around it
// either: there is no C++ exception to catch, and a guard's try frame would itself be
// crossed by the errors of WaitLatch / CHECK_FOR_INTERRUPTS in a wait.
#include "gate.hpp"

#include <type_traits>

#include "hooks.hpp"

extern "C" {
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "optimizer/planner.h"
#include "tcop/utility.h"
}

namespace usher::gate {

namespace {

planner_hook_type previous_planner = nullptr;
ExecutorStart_hook_type previous_start = nullptr;
ExecutorRun_hook_type previous_run = nullptr;
ExecutorFinish_hook_type previous_finish = nullptr;
ExecutorEnd_hook_type previous_end = nullptr;
ProcessUtility_hook_type previous_utility = nullptr;

// Planner, executor and utility calls in progress: 0 means no statement is running,
// so a hook called at depth 0 belongs to a top-level statement.
int depth = 0;

// Session and transaction control must never wait behind a busy service: COMMIT and
// ROLLBACK give resources back, SET / SHOW / RESET are what poolers send.
bool exempt(const Node* statement) {
  return IsA(statement, TransactionStmt) || IsA(statement, VariableSetStmt) ||
         IsA(statement, VariableShowStmt);
}

// Runs a chained PostgreSQL call one level deeper; an error unwinds the level before it
// goes on. `call` is a lambda whose captures are references: a longjmp out of it skips
// no destructor.
template <typename Call>
void deeper(Call&& call) {
  static_assert(std::is_trivially_destructible_v<std::remove_reference_t<Call>>);
  depth++;
  PG_TRY();
  { call(); }
  PG_FINALLY();
  { depth--; }
  PG_END_TRY();
}

bool declares_hold_cursor(const Node* statement) {
  return IsA(statement, DeclareCursorStmt) &&
         (reinterpret_cast<const DeclareCursorStmt*>(statement)->options & CURSOR_OPT_HOLD) != 0;
}

PlannedStmt* gate_planner(Query* query, const char* text, int options, ParamListInfo params) {
  if (depth == 0) acquire();
  PlannedStmt* result = nullptr;
  deeper([&] {
    result = previous_planner ? previous_planner(query, text, options, params)
                              : standard_planner(query, text, options, params);
  });
  return result;
}

void gate_executor_start(QueryDesc* query, int eflags) {
  if (depth == 0) acquire();
  deeper([&] {
    if (previous_start) previous_start(query, eflags);
    else standard_ExecutorStart(query, eflags);
  });
}

void gate_executor_run(QueryDesc* query, ScanDirection direction, uint64 count, bool execute_once) {
  if (depth == 0) acquire();
  deeper([&] {
    if (previous_run) previous_run(query, direction, count, execute_once);
    else standard_ExecutorRun(query, direction, count, execute_once);
  });
}

void gate_executor_finish(QueryDesc* query) {
  deeper([&] {
    if (previous_finish) previous_finish(query);
    else standard_ExecutorFinish(query);
  });
}

void gate_executor_end(QueryDesc* query) {
  deeper([&] {
    if (previous_end) previous_end(query);
    else standard_ExecutorEnd(query);
  });
  if (depth == 0) statement_ended();
}

void gate_utility(PlannedStmt* statement, const char* query, bool read_only_tree,
                             ProcessUtilityContext context, ParamListInfo params, QueryEnvironment* env,
                             DestReceiver* dest, QueryCompletion* completion) {
  bool top_level = depth == 0 && !exempt(statement->utilityStmt);
  if (top_level) acquire();
  deeper([&] {
    if (previous_utility)
      previous_utility(statement, query, read_only_tree, context, params, env, dest, completion);
    else
      standard_ProcessUtility(statement, query, read_only_tree, context, params, env, dest, completion);
  });
  if (!top_level) return;
  // A WITH HOLD cursor's query runs to completion when the transaction commits.
  if (declares_hold_cursor(statement->utilityStmt)) hold_until_transaction_end();
  statement_ended();
}

// A transaction that ends at depth 0 ends the statements in it. One that ends deeper
// (COMMIT or ROLLBACK inside a procedure, or the abort of a failed commit there)
// happens inside a running top-level statement, which keeps its permit; when that
// statement fails, its frames unwind to depth 0 before the top-level abort.
void gate_transaction_end(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PREPARE:
      if (depth == 0) transaction_ended();
      break;
    default:
      break;
  }
}

// A failed statement inside a transaction block with a savepoint aborts only the
// subtransaction; it is over when no statement is in progress (a PL/pgSQL exception
// block aborts subtransactions in the middle of a statement).
void gate_subtransaction_end(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB && depth == 0) statement_ended();
}

}  // namespace

void install_hooks() {
  chain_hook(planner_hook, previous_planner, gate_planner);
  chain_hook(ExecutorStart_hook, previous_start, gate_executor_start);
  chain_hook(ExecutorRun_hook, previous_run, gate_executor_run);
  chain_hook(ExecutorFinish_hook, previous_finish, gate_executor_finish);
  chain_hook(ExecutorEnd_hook, previous_end, gate_executor_end);
  chain_hook(ProcessUtility_hook, previous_utility, gate_utility);
  RegisterXactCallback(gate_transaction_end, nullptr);
  RegisterSubXactCallback(gate_subtransaction_end, nullptr);
}

}  // namespace usher::gate
