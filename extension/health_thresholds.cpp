// usher.health_thresholds(): the warning / critical threshold of every health check, in
// the unit health() reports, NULL where a threshold is 0 (disabled). health() joins it.
#include "guard.hpp"
#include "settings.hpp"

namespace {

// Thresholds are stored in GUC units (ms for times); health() reports seconds.
Datum reported_value(const usher::settings::ThresholdPair& pair, int value, bool* isnull) {
  *isnull = value == 0;
  double scaled = pair.unit == usher::settings::Unit::milliseconds ? value / 1000.0 : value;
  return Float8GetDatum(scaled);
}

Datum health_thresholds(FunctionCallInfo fcinfo) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  for (const auto& pair : usher::settings::thresholds()) {
    Datum values[4];
    bool nulls[4] = {false, false, false, false};
    values[0] = CStringGetTextDatum(pair.check);
    values[1] = CStringGetTextDatum(usher::settings::reported_unit(pair.unit));
    values[2] = reported_value(pair, pair.warning, &nulls[2]);
    values[3] = reported_value(pair, pair.critical, &nulls[3]);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return (Datum)0;
}

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(usher_health_thresholds);
Datum usher_health_thresholds(PG_FUNCTION_ARGS) {
  return usher::guard([&] { return health_thresholds(fcinfo); });
}
}
