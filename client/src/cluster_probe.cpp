// What usher::Cluster asks a node, in one place: its role and WAL position (the health
// probe), a standby's replay position (a causal read's check) and a primary's token.
// Every text is schema-qualified: immune to the session's search_path.
#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <stdexcept>
#include <string>

#include "cluster_core.hpp"

namespace usher {

Lsn Lsn::parse(std::string_view text) {
  auto slash = text.find('/');
  auto bad = [&] { return std::invalid_argument(fmt::format("not a WAL position (pg_lsn): '{}'", text)); };
  if (slash == std::string_view::npos || slash == 0 || slash > 8 || text.size() - slash - 1 > 8 ||
      slash + 1 == text.size())
    throw bad();
  std::uint32_t hi = 0, lo = 0;
  auto h = std::from_chars(text.data(), text.data() + slash, hi, 16);
  auto l = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
  if (h.ec != std::errc() || h.ptr != text.data() + slash || l.ec != std::errc() ||
      l.ptr != text.data() + text.size())
    throw bad();
  return Lsn{(std::uint64_t(hi) << 32) | lo};
}

std::string Lsn::to_string() const {
  return fmt::format("{:X}/{:X}", value >> 32, value & 0xffffffffu);
}

std::string_view to_string(NodeRole role) noexcept {
  switch (role) {
    case NodeRole::primary: return "primary";
    case NodeRole::standby: return "standby";
    default: return "unknown";
  }
}

namespace detail {

// One round trip. With pg_usher (issue 13's server half) the role and replay facts come
// from usher.replication_status(): one row on a standby, one per WAL sender (or one) on
// a primary, role first; the primary's own flush position is not among its columns.
// Without it, the same three facts from PostgreSQL's functions.
ProbeResult probe_node(Connection& conn, Cluster::Clock::time_point deadline, bool with_extension) {
  ExecOptions o;
  o.deadline = deadline;
  auto r = with_extension
      ? conn.exec(o,
            "SELECT r.role OPERATOR(pg_catalog.=) 'standby',"
            " (CASE WHEN r.role OPERATOR(pg_catalog.=) 'standby' THEN r.replay_lsn"
            "  ELSE pg_catalog.pg_current_wal_flush_lsn() END)::pg_catalog.text,"
            " COALESCE(r.replay_paused, false)"
            " FROM usher.replication_status() AS r LIMIT 1")
      : conn.exec(o,
            "SELECT pg_catalog.pg_is_in_recovery(),"
            " (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()"
            "  ELSE pg_catalog.pg_current_wal_flush_lsn() END)::pg_catalog.text,"
            " CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_is_wal_replay_paused()"
            "  ELSE false END");
  if (r.rows() != 1) throw std::runtime_error("the health probe's query answered no row");
  ProbeResult p;
  p.role = r.get<bool>(0, 0) ? NodeRole::standby : NodeRole::primary;
  if (auto lsn = r.get<std::optional<std::string>>(0, 1)) p.lsn = Lsn::parse(*lsn);
  p.replay_paused = r.get<bool>(0, 2);
  return p;
}

bool replication_status_usable(Connection& conn, Cluster::Clock::time_point deadline) {
  ExecOptions o;
  o.deadline = deadline;
  return conn.exec(o,
      "SELECT CASE WHEN p IS NULL THEN false"
      " ELSE pg_catalog.has_function_privilege(p, 'EXECUTE') END"
      " FROM pg_catalog.to_regprocedure('usher.replication_status()') AS p").get<bool>(0, 0);
}

std::optional<Lsn> replay_position(Connection& conn) {
  auto r = conn.exec(
      "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_last_wal_replay_lsn()::pg_catalog.text");
  if (!r.get<bool>(0, 0)) return std::nullopt;
  auto lsn = r.get<std::optional<std::string>>(0, 1);
  return lsn ? Lsn::parse(*lsn) : Lsn{};
}

}  // namespace detail

// The insert position covers every commit made so far, synchronous_commit off included
// (the write and flush positions may still be behind such a commit). When it sits just
// past a page header, no record has begun on that page: the last record ended at the
// page boundary, which is what a standby reports once it replayed it, so the token is
// the boundary (else a standby of an idle primary would never reach it).
CausalToken detail::read_token(Connection& conn) {
  auto r = conn.exec(
      "SELECT l::pg_catalog.text, (pg_catalog.pg_walfile_name_offset(l)).file_offset,"
      " pg_catalog.current_setting('wal_block_size')::pg_catalog.int4"
      " FROM pg_catalog.pg_current_wal_insert_lsn() AS l");
  Lsn lsn = Lsn::parse(r.get<std::string>(0, 0));
  auto in_segment = r.get<std::int64_t>(0, 1);
  auto block = static_cast<std::uint64_t>(r.get<std::int32_t>(0, 2));
  constexpr std::uint64_t kLongHeader = 40, kShortHeader = 24;  // SizeOfXLog{Long,Short}PHD
  if (in_segment == static_cast<std::int64_t>(kLongHeader))
    lsn.value -= kLongHeader;
  else if (block > 0 && lsn.value % block == kShortHeader)
    lsn.value -= kShortHeader;
  return lsn;
}

}  // namespace usher
