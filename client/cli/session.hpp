#pragma once
// Opening the connection every subcommand uses, checking that pg_usher is there, and
// running a statement for either output format.

#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "usher/connection.hpp"

#include "args.hpp"

namespace usher::cli {

// pg_usher cannot be used in the connected database (exit status 78).
class ExtensionMissing : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The role may not do what was asked (exit status 77); the message says which grant
// is missing.
class NoPermission : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Session {
  usher::Connection conn;
  std::string database;
};

// Connects with libpq's defaults and PG* environment, or --dbname, and checks that the
// pg_usher extension is installed in that database. Throws usher::ConnectionError
// (password redacted by libusher) or ExtensionMissing.
Session connect(const Args& args);

enum class Format { table, json };
Format output_format(const Args& args);  // from --format; UsageError when unknown

// The rows of `sql` as one JSON array of objects, built by the server (json_agg over the
// same parameterised statement), so the tool never escapes JSON by hand.
std::string fetch_json(usher::Connection& conn, const std::string& sql, std::span<const usher::Param> params);

// Runs `sql` for a listing command: with --format json, prints its rows as one JSON
// array and returns nothing; with --format table, returns the rows to lay out.
std::optional<usher::Result> fetch_rows(const Args& args, const std::string& sql,
                                        std::span<const usher::Param> params = {});

// A parameter from an optional string: std::nullopt is SQL NULL.
usher::Param text_param(const std::optional<std::string>& value);

}  // namespace usher::cli
