// usher::Pool and usher::Lease: the public face of PoolCore.
#include "usher/pool.hpp"

#include <utility>

#include "pool_core.hpp"

namespace usher {

Pool::Pool(PoolConfig config) : core_(new detail::PoolCore(std::move(config))) {}

Pool::~Pool() {
  core_->close(std::chrono::milliseconds(0));
  core_->release_owner();  // deleted now, or by the last lease still out
}

Lease Pool::acquire(std::source_location where) {
  auto now = Clock::now();
  return Lease(core_, core_->acquire(now, now + core_->config().acquire_timeout, where, false));
}

Lease Pool::acquire(Clock::time_point deadline, std::source_location where) {
  return Lease(core_, core_->acquire(Clock::now(), deadline, where, false));
}

std::optional<Lease> Pool::try_acquire(std::source_location where) {
  auto now = Clock::now();
  auto* pc = core_->acquire(now, now + core_->config().validation_timeout, where, true);
  if (!pc) return std::nullopt;
  return Lease(core_, pc);
}

CloseReport Pool::close(std::chrono::milliseconds timeout) { return core_->close(timeout); }
std::vector<LeakInfo> Pool::leaks() const { return core_->leaks(); }
PoolStats Pool::stats() const { return core_->stats(); }
std::optional<bool> Pool::extension_detected() const { return core_->extension_detected(); }
std::optional<PoolAdvice> Pool::advice() const { return core_->advice(); }
const PoolConfig& Pool::config() const noexcept { return core_->config(); }
CircuitBreaker& Pool::breaker() const noexcept { return core_->breaker(); }

Lease::Lease(Lease&& other) noexcept
    : core_(std::exchange(other.core_, nullptr)), pooled_(std::exchange(other.pooled_, nullptr)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    core_ = std::exchange(other.core_, nullptr);
    pooled_ = std::exchange(other.pooled_, nullptr);
  }
  return *this;
}

Lease::~Lease() { release(); }

Connection& Lease::operator*() const noexcept { return pooled_->conn; }
Connection* Lease::operator->() const noexcept { return &pooled_->conn; }

void Lease::release() noexcept {
  if (pooled_) std::exchange(core_, nullptr)->give_back(std::exchange(pooled_, nullptr), false);
}

void Lease::discard() noexcept {
  if (pooled_) std::exchange(core_, nullptr)->give_back(std::exchange(pooled_, nullptr), true);
}

std::uint64_t Lease::connection_id() const noexcept { return pooled_ ? pooled_->id : 0; }

}  // namespace usher
