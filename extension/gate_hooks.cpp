// Where the statement gate meets PostgreSQL: a top-level statement takes a slot before
// it is planned (planner_hook), so that planning waits too -- for short queries
// planning costs as much as running them, and a gate that let 250 sessions plan at once
// would not relieve the CPU. (Not at parse analysis: the extended protocol's Parse
// message analyses a statement that may run much later, and a session must not hold a
// slot while idle.) ExecutorStart (planned statements, including ones planned earlier)
// and ProcessUtility (utility statements) take one too. Nested
// statements (inside functions, or inside a utility statement such as EXPLAIN ANALYZE
// or CREATE TABLE AS) take none. The slot is given back when the statement ends, and
// on every error path: transaction abort, subtransaction abort of a finished
// statement, and backend exit. Giving back is idempotent, so whichever comes first wins.
#include "gate.hpp"
#include "guard.hpp"

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

// Depth of executor and utility calls in progress: 0 means a top-level statement.
int nesting = 0;

// Session and transaction control must never wait behind a busy service: COMMIT and
// ROLLBACK give resources back, SET / SHOW / RESET are what poolers send.
bool exempt(const Node* statement) {
  return IsA(statement, TransactionStmt) || IsA(statement, VariableSetStmt) ||
         IsA(statement, VariableShowStmt);
}

// Nested statements are planned inside the executor or a utility statement.
PlannedStmt* on_plan(Query* query, const char* text, int options, ParamListInfo params) {
  if (nesting == 0) acquire();
  return previous_planner ? previous_planner(query, text, options, params)
                          : standard_planner(query, text, options, params);
}

void on_executor_start(QueryDesc* query, int eflags) {
  if (nesting == 0) acquire();
  if (previous_start) previous_start(query, eflags);
  else standard_ExecutorStart(query, eflags);
}

// Plain C frames from here: they only count the nesting around PostgreSQL calls.
void on_executor_run(QueryDesc* query, ScanDirection direction, uint64 count, bool execute_once) {
  nesting++;
  PG_TRY();
  {
    if (previous_run) previous_run(query, direction, count, execute_once);
    else standard_ExecutorRun(query, direction, count, execute_once);
  }
  PG_FINALLY();
  { nesting--; }
  PG_END_TRY();
}

void on_executor_finish(QueryDesc* query) {
  nesting++;
  PG_TRY();
  {
    if (previous_finish) previous_finish(query);
    else standard_ExecutorFinish(query);
  }
  PG_FINALLY();
  { nesting--; }
  PG_END_TRY();
}

void on_executor_end(QueryDesc* query) {
  if (previous_end) previous_end(query);
  else standard_ExecutorEnd(query);
  if (nesting == 0) release();
}

void on_utility(PlannedStmt* statement, const char* query, bool read_only_tree, ProcessUtilityContext context,
                ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* completion) {
  bool top_level = nesting == 0 && context == PROCESS_UTILITY_TOPLEVEL && !exempt(statement->utilityStmt);
  if (top_level) acquire();
  nesting++;
  PG_TRY();
  {
    if (previous_utility)
      previous_utility(statement, query, read_only_tree, context, params, env, dest, completion);
    else
      standard_ProcessUtility(statement, query, read_only_tree, context, params, env, dest, completion);
  }
  PG_FINALLY();
  { nesting--; }
  PG_END_TRY();
  if (top_level) release();
}

void on_transaction_end(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_PREPARE:
      nesting = 0;
      release();
      break;
    default:
      break;
  }
}

// A failed statement inside a transaction block with a savepoint aborts only the
// subtransaction; it is over when no executor or utility call is left in progress
// (a PL/pgSQL exception block aborts subtransactions in the middle of a statement).
void on_subtransaction_end(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB && nesting == 0) release();
}

}  // namespace

void install_hooks() {
  DefineCustomBoolVariable("usher.gate", "Enforces the services' max_active statement limits.",
                           "Off: statements are not gated; statements already waiting keep waiting for their turn.",
                           &enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomIntVariable("usher.max_active_total",
                          "Statements of all services that may run at once (0: no server-wide limit).",
                          "Waiting statements are admitted by their service's priority, then in arrival order. "
                          "Superusers are not counted.",
                          &max_active_total, 0, 0, 100000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  previous_planner = planner_hook;
  planner_hook = [](Query* q, const char* t, int o, ParamListInfo p) {
    return usher::guard([&] { return on_plan(q, t, o, p); });
  };
  previous_start = ExecutorStart_hook;
  ExecutorStart_hook = [](QueryDesc* q, int eflags) { usher::guard([&] { on_executor_start(q, eflags); }); };
  previous_run = ExecutorRun_hook;
  ExecutorRun_hook = [](QueryDesc* q, ScanDirection d, uint64 n, bool once) {
    usher::guard([&] { on_executor_run(q, d, n, once); });
  };
  previous_finish = ExecutorFinish_hook;
  ExecutorFinish_hook = [](QueryDesc* q) { usher::guard([&] { on_executor_finish(q); }); };
  previous_end = ExecutorEnd_hook;
  ExecutorEnd_hook = [](QueryDesc* q) { usher::guard([&] { on_executor_end(q); }); };
  previous_utility = ProcessUtility_hook;
  ProcessUtility_hook = [](PlannedStmt* p, const char* q, bool ro, ProcessUtilityContext c, ParamListInfo pa,
                           QueryEnvironment* e, DestReceiver* d, QueryCompletion* qc) {
    usher::guard([&] { on_utility(p, q, ro, c, pa, e, d, qc); });
  };
  RegisterXactCallback([](XactEvent e, void* a) { usher::guard([&] { on_transaction_end(e, a); }); }, nullptr);
  RegisterSubXactCallback([](SubXactEvent e, SubTransactionId s, SubTransactionId p, void* a) {
    usher::guard([&] { on_subtransaction_end(e, s, p, a); });
  }, nullptr);
}

}  // namespace usher::gate
