#pragma once
// Patroni's REST API as a source of a cluster's nodes: GET <url>/cluster lists the
// members (name, host, port, role, state, lag). usher::Cluster reads it on every health
// round when ClusterConfig::patroni_urls is set (docs/ha.md, "How libusher finds the
// leader"); the functions are public for tools and tests.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "usher/errors.hpp"

namespace usher {

// One entry of /cluster's "members".
struct PatroniMember {
  std::string name;
  std::string host;         // the member's PostgreSQL host (Patroni's connect_address)
  std::optional<int> port;  // nullopt: Patroni gave none (the conninfo's, PGPORT or 5432)
  // "leader", "replica", "sync_standby", "standby_leader" (a standby cluster's leader:
  // in recovery), or what a later Patroni calls it; never empty.
  std::string role;
  std::string state;  // "running", "streaming", "stopped", ...; may be empty
  // Bytes behind the leader as Patroni saw them; nullopt: the leader, or "unknown".
  std::optional<std::uint64_t> lag_bytes;
  // "host:port" ("[::1]:5432" for an IPv6 address), or "host" without a port: the
  // endpoint the cluster's node is known by.
  std::string endpoint() const;
};

// Why the member list could not be read. The message names the URL (password
// redacted) and, when every URL failed, each URL's reason.
class PatroniError : public Error {
 public:
  enum class Kind {
    unreachable,  // no connection, or a transport error
    timeout,      // no complete answer within the bound
    http_status,  // an HTTP status other than 200 (a 3xx is `redirect`)
    redirect,     // a 3xx: redirects are not followed
    too_large,    // the body exceeds the cap (1 MiB)
    not_json,     // the body is not JSON
    bad_members,  // JSON, but not a member list this library accepts
  };
  PatroniError(Kind kind, const std::string& message) : Error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }
  bool is_transient() const noexcept override { return true; }

 private:
  Kind kind_;
};
std::string_view to_string(PatroniError::Kind kind) noexcept;

// The largest body read from Patroni, and the most members accepted (a Cluster's limit).
inline constexpr std::size_t kPatroniMaxBody = 1 << 20;
inline constexpr std::size_t kPatroniMaxMembers = 64;

// Parses /cluster's JSON. Throws PatroniError (not_json: not JSON; bad_members: no
// "members" array, a member that is not an object, whose "host" is missing, not a
// string or empty, whose "port" is not an integer in 1..65535, whose "role" is missing or
// not a string, more than kPatroniMaxMembers members, two members with one endpoint).
// "lag" that is not a non-negative integer (Patroni writes "unknown") is nullopt.
std::vector<PatroniMember> parse_patroni_cluster(std::string_view json);

// GET <url>/cluster on each URL in turn, each within `timeout` (connecting included):
// the members of the first that answers 200 with a member list. Only http and https;
// no redirect is followed; at most kPatroniMaxBody bytes are read. Throws PatroniError
// with the last URL's kind and every URL's reason; std::invalid_argument when `urls`
// is empty.
std::vector<PatroniMember> read_patroni_members(const std::vector<std::string>& urls,
                                                std::chrono::milliseconds timeout);

}  // namespace usher
