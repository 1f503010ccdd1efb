// Sizing from usher.pool_advice() (PoolConfig::size_from_advice). The opener's first
// connection reads the advice before it is lent and before a second one opens; the
// maintenance thread reads it again every advice_interval on an idle connection.
// The configured max_size is the ceiling, so a wrong or surprising advice can shrink a
// pool but never grow it past what its owner allowed. A smaller answer only lowers the
// target: the maintenance thread retires idle connections above it, and leased ones are
// retired when they come back idle, never taken from their borrower.
#include <fmt/format.h>

#include <algorithm>

#include "pool_core.hpp"

namespace usher::detail {

void PoolCore::size_from_advice(ConnectionRecord& record) {
  std::string why;
  std::optional<PoolAdvice> advice = round_trips_.read_advice(record, why);
  bool changed = false, first_failure = false;
  std::size_t max_size = 0, min_idle = 0;
  {
    std::lock_guard lk(mu_);
    next_advice_ = config_.advice_interval.count() > 0 ? Clock::now() + config_.advice_interval
                                                       : Clock::time_point::max();
    if (advice) {
      max_size = std::clamp<std::size_t>(std::max(advice->max_pool_size, 1), 1, config_.max_size);
      min_idle = std::min<std::size_t>(std::max(advice->min_idle, 0), max_size);
      changed = !advice_ || max_size != max_size_ || min_idle != min_idle_;
      max_size_ = max_size;
      min_idle_ = min_idle;
      advice_ = advice;
      advice_failing_ = false;
      wake_opener_locked();  // a larger min_idle, or room for waiters
    } else {
      first_failure = !std::exchange(advice_failing_, true);
      max_size = max_size_;
      min_idle = min_idle_;
    }
  }

  if (!advice) {
    emit(PoolEventType::advice_failure, 0, why);
    // Once per run of failures: a role without the grant would otherwise warn at every
    // advice_interval.
    if (first_failure)
      log(LogLevel::warning,
          fmt::format("pool \"{}\": cannot size from usher.pool_advice() for service \"{}\"; "
                      "keeping max_size {} and min_idle {}: {}",
                      config_.name, config_.service, max_size, min_idle, why));
    return;
  }
  std::string sizes = fmt::format(
      "max_size {} (advised {}, configured {}), min_idle {} (advised {}); basis {}, {} instance(s)",
      max_size, advice->max_pool_size, config_.max_size, min_idle, advice->min_idle, advice->basis,
      advice->client_instances);
  emit(PoolEventType::advice, 0, sizes, nullptr, &*advice);
  if (changed) {
    log(LogLevel::info, fmt::format("pool \"{}\": sized from usher.pool_advice() for service \"{}\": {}",
                                    config_.name, config_.service, sizes));
    log(LogLevel::debug, fmt::format("pool \"{}\": pool_advice rationale: {}", config_.name,
                                     advice->rationale));
  }
}

}  // namespace usher::detail
