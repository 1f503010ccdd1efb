#pragma once
// Internal: a connection's prepared statements, the automatic cache's (keyed by SQL text
// and parameter types, least recently used first out) and those named by prepare().
// Only the connection's own thread touches it, as everything of a Connection.

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "usher/statement_cache.hpp"

namespace usher::detail {

class StatementCache {
 public:
  struct Entry {
    std::string key;   // SQL text, NUL, parameter type OIDs
    std::string name;  // the server's name: usher_s<N>
  };
  struct Named {
    std::string sql;
    bool on_server = false;  // prepared in this session (not since a DISCARD ALL)
  };

  explicit StatementCache(const StatementCacheConfig& config) : config_(config) {}

  const StatementCacheConfig& config() const noexcept { return config_; }
  bool automatic() const noexcept { return config_.mode == StatementCaching::automatic; }
  StatementCacheStats stats() const noexcept {
    StatementCacheStats s = stats_;
    s.cached = index_.size();
    return s;
  }

  // The cached statement for `key`, made most recent; null when none.
  const Entry* find(const std::string& key);
  // A name for the next statement to prepare.
  std::string next_name();
  // Adds `key`, prepared as `name`; when over capacity, the least recently used
  // statement is dropped and its name queued for DEALLOCATE.
  const Entry& add(std::string key, std::string name);
  // Drops `key` (a statement the server refused); `deallocate`: it may still exist there.
  void drop(const std::string& key, bool deallocate);
  // Names to DEALLOCATE, taken.
  std::vector<std::string> take_garbage() { return std::exchange(garbage_, {}); }

  std::unordered_map<std::string, Named>& named() { return named_; }

  // The session's prepared statements are gone (DISCARD ALL, DEALLOCATE, a new session).
  void forget_all();
  // Looks at a statement about to be sent: DISCARD ALL and DEALLOCATE forget everything.
  void note(std::string_view sql);
  // Whether exec() caches this statement: one that can be prepared and is worth it
  // (SELECT, INSERT, UPDATE, DELETE, MERGE, WITH, VALUES, TABLE), not BEGIN, SET,
  // DISCARD or the like.
  static bool cacheable(std::string_view sql);

  StatementCacheStats& counters() { return stats_; }

 private:
  StatementCacheConfig config_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  std::unordered_map<std::string, Named> named_;
  std::vector<std::string> garbage_;
  std::uint64_t next_ = 0;
  StatementCacheStats stats_;
};

}  // namespace usher::detail
