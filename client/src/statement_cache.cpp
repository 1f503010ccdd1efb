// Prepared statements: Connection::prepare / exec_prepared, and exec() through the
// automatic statement cache (StatementCaching::automatic), its invalidation on DISCARD
// ALL / DEALLOCATE, and its one re-prepare after the server refused a cached statement.
#include "statement_cache.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <cctype>
#include <utility>

#include "error_fields.hpp"
#include "param_arrays.hpp"
#include "sql_text.hpp"
#include "usher/connection.hpp"
#include "usher/errors.hpp"

namespace usher {
namespace detail {
namespace {

// The word of a statement that starts at or after `pos` (white space, parentheses and
// comments skipped), lower-cased; `pos` is left after it.
std::string next_word(std::string_view sql, std::size_t& pos) {
  std::size_t i = pos;
  while (i < sql.size()) {
    if (std::isspace(static_cast<unsigned char>(sql[i])) || sql[i] == '(') {
      ++i;
    } else if (sql.substr(i, 2) == "--") {
      i = sql.find('\n', i);
      if (i == std::string_view::npos) i = sql.size();
    } else if (sql.substr(i, 2) == "/*") {
      i = sql.find("*/", i + 2);
      i = i == std::string_view::npos ? sql.size() : i + 2;
    } else {
      break;
    }
  }
  std::string word;
  while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i])) && word.size() < 12)
    word += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i++])));
  pos = i;
  return word;
}

std::string first_word(std::string_view sql) {
  std::size_t pos = 0;
  return next_word(sql, pos);
}

bool refused_statement(const Error& e) { return e.sqlstate() == "0A000" || e.sqlstate() == "26000"; }

}  // namespace

const StatementCache::Entry* StatementCache::find(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &*it->second;
}

std::string StatementCache::next_name() { return fmt::format("usher_s{}", ++next_); }

const StatementCache::Entry& StatementCache::add(std::string key, std::string name) {
  while (!lru_.empty() && index_.size() >= std::max<std::size_t>(config_.capacity, 1)) {
    garbage_.push_back(std::move(lru_.back().name));
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.push_front(Entry{std::move(key), std::move(name)});
  index_.emplace(lru_.front().key, lru_.begin());
  return lru_.front();
}

void StatementCache::drop(const std::string& key, bool deallocate) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  if (deallocate) garbage_.push_back(std::move(it->second->name));
  lru_.erase(it->second);
  index_.erase(it);
}

void StatementCache::forget_all() {
  lru_.clear();
  index_.clear();
  garbage_.clear();
  for (auto& [name, statement] : named_) statement.on_server = false;
}

void StatementCache::note(std::string_view sql) {
  // Cheap for every statement: only one starting with 'd' or 'D' is looked at closely.
  std::size_t i = sql.find_first_not_of(" \t\r\n(");
  if (i == std::string_view::npos || (sql[i] != 'd' && sql[i] != 'D' && sql[i] != '-' && sql[i] != '/'))
    return;
  std::size_t pos = 0;
  std::string word = next_word(sql, pos);
  if (word == "deallocate" || (word == "discard" && next_word(sql, pos) == "all")) {
    forget_all();
    ++stats_.invalidations;
  }
}

bool StatementCache::cacheable(std::string_view sql) {
  std::string word = first_word(sql);
  return word == "select" || word == "insert" || word == "update" || word == "delete" ||
         word == "with" || word == "values" || word == "merge" || word == "table";
}

}  // namespace detail

void Connection::StatementCacheDeleter::operator()(detail::StatementCache* cache) const noexcept {
  delete cache;
}

void Connection::set_statement_cache(const StatementCacheConfig& config) {
  if (config.capacity == 0) throw std::invalid_argument("StatementCacheConfig.capacity: must be at least 1");
  auto fresh = StatementCachePtr(new detail::StatementCache(config));
  // Statements prepare() made stay known (they are still on the server).
  if (statements_) fresh->named() = std::move(statements_->named());
  if (config.mode == StatementCaching::unnamed)
    for (auto& [name, statement] : fresh->named()) statement.on_server = false;
  statements_ = std::move(fresh);
}

StatementCacheConfig Connection::statement_cache() const {
  return statements_ ? statements_->config() : StatementCacheConfig{};
}

StatementCacheStats Connection::statement_cache_stats() const {
  return statements_ ? statements_->stats() : StatementCacheStats{};
}

void Connection::exec_internal(const char* sql, const ExecOptions& options) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  if (!PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0))
    detail::throw_for(conn_, nullptr);
  read_results(options);
}

void Connection::prepare(const std::string& name, const std::string& sql) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  if (!statements_) statements_ = StatementCachePtr(new detail::StatementCache(StatementCacheConfig{}));
  pay_owed(ExecOptions{});
  ++uses_;
  bool unnamed = statements_->config().mode == StatementCaching::unnamed;
  // Unnamed: the server parses the text (so a mistake shows here) and forgets it.
  if (!PQsendPrepare(conn_, unnamed ? "" : name.c_str(), sql.c_str(), 0, nullptr))
    detail::throw_for(conn_, nullptr);
  auto& named = statements_->named();
  auto old = named.find(name);
  if (old != named.end()) old->second.on_server = false;  // a failed re-PREPARE leaves none
  read_results(ExecOptions{});
  named[name] = detail::StatementCache::Named{sql, !unnamed};
}

Result Connection::exec_prepared_params(const std::string& name, std::span<const Param> params,
                                        const ExecOptions& options) {
  auto* named = statements_ ? &statements_->named() : nullptr;
  if (!named || !named->contains(name))
    throw_database_error("26000", fmt::format("prepared statement \"{}\" was not prepared on this "
                                              "connection: call prepare() first", name));
  if (statements_->config().mode == StatementCaching::unnamed)
    return exec_params(named->at(name).sql.c_str(), params, options);
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  detail::ParamArrays a(params);
  pay_owed(options);
  for (int attempt = 0;; ++attempt) {
    auto& statement = statements_->named()[name];
    if (!statement.on_server) {
      if (!PQsendPrepare(conn_, name.c_str(), statement.sql.c_str(), 0, nullptr))
        detail::throw_for(conn_, nullptr);
      read_results(options);
      statement.on_server = true;
    }
    ++uses_;
    if (!PQsendQueryPrepared(conn_, name.c_str(), a.count(), a.values.data(), a.lengths.data(),
                             a.formats.data(), 0))
      detail::throw_for(conn_, nullptr);
    try {
      return read_results(options);
    } catch (const Error& e) {
      // Gone (DEALLOCATE'd behind our back) or its result type changed: prepare it again
      // and run it once more, unless a transaction block failed (nothing would run).
      if (attempt > 0 || !detail::refused_statement(e) || transaction_status() != TransactionStatus::idle) throw;
      if (e.sqlstate() == "0A000") exec_internal(("DEALLOCATE " + detail::quote_identifier(name)).c_str(), options);
      statements_->named()[name].on_server = false;
      ++statements_->counters().reprepared;
    }
  }
}

Result Connection::exec_cached(const char* sql, std::span<const Param> params, const ExecOptions& options) {
  detail::ParamArrays a(params);
  std::string key = sql;
  key += '\0';
  key.append(reinterpret_cast<const char*>(a.types.data()), a.types.size() * sizeof(Oid));
  auto& cache = *statements_;
  for (int attempt = 0;; ++attempt) {
    const detail::StatementCache::Entry* entry = cache.find(key);
    if (entry) {
      ++cache.counters().hits;
    } else {
      if (transaction_status() == TransactionStatus::idle)
        for (const auto& name : cache.take_garbage())
          exec_internal(("DEALLOCATE " + detail::quote_identifier(name)).c_str(), options);
      ++uses_;
      std::string name = cache.next_name();
      if (!PQsendPrepare(conn_, name.c_str(), sql, a.count(), a.types.data()))
        detail::throw_for(conn_, nullptr);
      read_results(options);  // throws when it cannot be prepared: nothing is cached
      entry = &cache.add(key, std::move(name));
      ++cache.counters().misses;
    }
    ++uses_;
    if (!PQsendQueryPrepared(conn_, entry->name.c_str(), a.count(), a.values.data(), a.lengths.data(),
                             a.formats.data(), 0))
      detail::throw_for(conn_, nullptr);
    try {
      return read_results(options);
    } catch (const Error& e) {
      if (!detail::refused_statement(e) || !conn_) throw;
      // The server refused the statement itself: drop it (after a failed transaction
      // block the next exec() prepares it again) and, outside a block, prepare it again now.
      cache.drop(key, e.sqlstate() == "0A000");
      if (attempt > 0 || transaction_status() != TransactionStatus::idle) throw;
      ++cache.counters().reprepared;
    }
  }
}

}  // namespace usher
