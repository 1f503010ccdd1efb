// PostgreSQL's server headers, included with C linkage. Every backend source file of
// pg_usher includes this instead of the headers directly, so the `extern "C"` wrapper
// and the version compatibility shims live in one place.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"
}

#if PG_VERSION_NUM < 130000
#error "pg_usher needs PostgreSQL 13 or later"
#endif

#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved EmitWarningsOnPlaceholders
#endif

namespace usher::pg {

// The local (snapshot) backend status array changed its accessor in 16 and 17.
inline LocalPgBackendStatus* local_backend_status(int index_from_one) {
#if PG_VERSION_NUM >= 160000
  return pgstat_get_local_beentry_by_index(index_from_one);
#else
  return pgstat_fetch_stat_local_beentry(index_from_one);
#endif
}

// The local id of this backend's current top-level transaction.
inline LocalTransactionId local_transaction_id() {
#if PG_VERSION_NUM >= 170000
  return MyProc->vxid.lxid;
#else
  return MyProc->lxid;
#endif
}

// Connection slots the server keeps back from ordinary roles (superuser_reserved_connections,
// plus reserved_connections from 16 on).
inline int reserved_connection_slots() {
#if PG_VERSION_NUM >= 160000
  return SuperuserReservedConnections + ReservedConnections;
#else
  return ReservedBackends;
#endif
}

// Sets up a set-returning function that fills a tuplestore in one call; returns the
// ReturnSetInfo whose setResult / setDesc to fill.
inline ReturnSetInfo* begin_materialized_srf(FunctionCallInfo fcinfo) {
#if PG_VERSION_NUM >= 150000
  InitMaterializedSRF(fcinfo, 0);
  return reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
#else
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (rsinfo == nullptr || !IsA(rsinfo, ReturnSetInfo) ||
      !(rsinfo->allowedModes & SFRM_Materialize))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("set-valued function called in context that cannot accept a set")));
  MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
  TupleDesc desc;
  if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
    elog(ERROR, "return type must be a row type");
  rsinfo->returnMode = SFRM_Materialize;
  rsinfo->setDesc = CreateTupleDescCopy(desc);
  rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
  MemoryContextSwitchTo(old);
  return rsinfo;
#endif
}

}  // namespace usher::pg
