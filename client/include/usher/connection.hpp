#pragma once
// A thin, owning wrapper over one libpq connection. Parameterised queries only: the
// statement text and the values travel separately (PQexecParams), so no value is ever
// pasted into SQL.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "usher/result.hpp"
#include "usher/statement_cache.hpp"
#include "usher/value_traits.hpp"

struct pg_conn;     // libpq's PGconn
struct pg_cancel;   // libpq's PGcancel

namespace usher {

// One query parameter; an empty `text` is SQL NULL. In text format unless `binary`
// (then `text` holds the value's binary representation, NUL bytes included).
struct Param {
  std::optional<std::string> text;
  oid type = type_oids::unknown;
  bool binary = false;
};

namespace detail {
template <typename T, typename = void>
struct sends_binary : std::false_type {};
template <typename T>
struct sends_binary<T, std::void_t<decltype(value_traits<T>::binary)>>
    : std::bool_constant<value_traits<T>::binary> {};
}  // namespace detail

template <typename T>
Param to_param(const T& value) {
  using V = std::decay_t<T>;
  if constexpr (std::is_same_v<V, std::nullopt_t>) {
    return Param{std::nullopt, type_oids::unknown};
  } else if constexpr (detail::is_optional<V>::value) {
    if (!value) return Param{std::nullopt, value_traits<typename V::value_type>::type_oid};
    return to_param(*value);
  } else if constexpr (std::is_array_v<T>) {
    return Param{std::string(value), type_oids::unknown};
  } else if constexpr (detail::sends_binary<V>::value) {
    return Param{value_traits<V>::to_binary(value), value_traits<V>::type_oid, true};
  } else {
    return Param{value_traits<V>::to_text(value), value_traits<V>::type_oid};
  }
}

class CopyWriter;  // usher/copy.hpp
class CopyReader;
class Pipeline;    // usher/pipeline.hpp

namespace detail {
class StatementCache;  // client/src/statement_cache.hpp
class SentStatements;  // the pool's "send now, read later" (client/src/sent_statements.hpp)
class OwedBegin;       // a transaction's BEGIN, sent with its first statement (ditto)
class Pipelined;       // two statements in one round trip (client/src/sent_statements.hpp)

// The COPY a read stops at, the connection left in that state (copy_from, copy_to); none:
// a COPY met is ended and refused.
enum class CopyStop { none, in, out };

// What Connection::read_results reads besides a plain statement's results.
struct ReadMode {
  CopyStop stop_at_copy = CopyStop::none;  // the returned Result is the COPY's start
  // Pipelined: set to the index of the statement whose error is thrown.
  std::size_t* failed_statement = nullptr;
};
}  // namespace detail

// Bounds of one Connection::open (docs/client.md, "Connecting").
struct ConnectLimits {
  // The whole open, every host and every pass included. time_point::max() is allowed:
  // then the per-host timeouts alone bound the open (hosts x timeout, x 2 for
  // prefer-standby), unless connect_timeout=0 in the conninfo turns them off.
  std::chrono::steady_clock::time_point deadline;
  // Each host's own attempt (libpq's connect_timeout, which the blocking PQconnectdb
  // applies per host): when it passes, the next host is tried. A connect_timeout
  // written in the conninfo or the options wins over it. Zero or negative: none (only
  // the deadline bounds an attempt).
  std::chrono::milliseconds per_host_timeout{0};
  // When >= 0, every wait of the open polls this descriptor too; once it is readable
  // (it is never read), the open stops at once with usher::ConnectAborted.
  int abort_fd = -1;
};

// Bounds of one statement: Connection::exec(ExecOptions, sql, args...) (docs/client.md,
// "Statements with a deadline").
struct ExecOptions {
  // When it passes with the statement still running, the statement is cancelled (a
  // cancel request, as Connection::cancel()) and its answer awaited up to cancel_wait
  // more: the statement then throws QueryCanceled (57014), or returns its result if it
  // finished after all. time_point::max(): no deadline.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // How long the answer to the cancel is awaited. When it does not come (or this is
  // zero: no cancel is sent), the connection is closed and ConnectionError (08006)
  // thrown: a connection with a statement in an unknown state is never used again.
  std::chrono::milliseconds cancel_wait{1000};
  // When >= 0, the wait also polls this descriptor (never read); once it is readable
  // the connection is closed and ConnectAborted thrown.
  int abort_fd = -1;
};

// What PQtransactionStatus says, without including libpq-fe.h.
enum class TransactionStatus { idle, active, in_transaction, in_error, unknown };

class Connection {
 public:
  using Clock = std::chrono::steady_clock;
  using NoticeHandler = std::function<void(std::string_view message)>;

  // Opens a connection. `conninfo` is a keyword=value string or a URI (empty: libpq's
  // defaults and PG* environment variables); `options` are further libpq keywords that
  // override it. Several hosts (host=a,b or postgres://a,b/db) are tried one after the
  // other, each for at most its per-host timeout. Throws (password redacted in the
  // message, which names each host tried and why it failed):
  //  - the type of the server's SQLSTATE when a server refused the login, with its
  //    fields (28000 InvalidAuthorizationSpecification and 28P01 InvalidPassword, both
  //    PermissionDenied; 3D000 InvalidCatalogName; 53300 TooManyConnections, a
  //    TransientError; 57P03 CannotConnectNow, a ConnectionError; ...);
  //  - usher::ConnectionError 08001 when no server answered in time or at all;
  //  - usher::ConnectAborted when limits.abort_fd became readable.
  static Connection open(const std::string& conninfo,
                         const std::vector<std::pair<std::string, std::string>>& options,
                         const ConnectLimits& limits);
  // The same with no per-host timeout other than a connect_timeout in the conninfo.
  static Connection open(const std::string& conninfo,
                         const std::vector<std::pair<std::string, std::string>>& options,
                         Clock::time_point deadline);
  static Connection open(const std::string& conninfo,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

  Connection() = default;
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs one statement with its parameters ($1, $2, ...). Throws a member of the
  // usher::Error hierarchy chosen by SQLSTATE.
  template <typename... Args>
  Result exec(const std::string& sql, const Args&... args) {
    Param params[] = {to_param(args)..., Param{}};
    return exec_params(sql, std::span<const Param>(params, sizeof...(Args)));
  }
  Result exec_params(const std::string& sql, std::span<const Param> params);
  // The same for a NUL-terminated text (a literal): no std::string is made for it.
  template <typename... Args>
  Result exec(const char* sql, const Args&... args) {
    Param params[] = {to_param(args)..., Param{}};
    return exec_params(sql, std::span<const Param>(params, sizeof...(Args)), ExecOptions{});
  }

  // The same within `options` (a deadline, and a descriptor that abandons the wait).
  template <typename... Args>
  Result exec(const ExecOptions& options, const std::string& sql, const Args&... args) {
    Param params[] = {to_param(args)..., Param{}};
    return exec_params(sql, std::span<const Param>(params, sizeof...(Args)), options);
  }
  template <typename... Args>
  Result exec(const ExecOptions& options, const char* sql, const Args&... args) {
    Param params[] = {to_param(args)..., Param{}};
    return exec_params(sql, std::span<const Param>(params, sizeof...(Args)), options);
  }
  Result exec_params(const std::string& sql, std::span<const Param> params,
                     const ExecOptions& options);
  Result exec_params(const char* sql, std::span<const Param> params, const ExecOptions& options);

  // Prepared statements (docs/client.md, "Prepared statements and the statement cache").
  // prepare() makes statement `name` from `sql` (parameter types inferred by the
  // server); exec_prepared() runs it. The connection remembers the text: after DISCARD
  // ALL / DEALLOCATE (the pool's session reset) exec_prepared() prepares it again. With
  // StatementCaching::unnamed nothing named is made on the server (PgBouncer in
  // transaction mode): the text is checked, kept, and run as the unnamed statement.
  // Throws as exec() does; exec_prepared() of a name never prepared on this connection
  // throws InvalidSqlStatementName (26000).
  void prepare(const std::string& name, const std::string& sql);
  template <typename... Args>
  Result exec_prepared(const std::string& name, const Args&... args) {
    Param params[] = {to_param(args)..., Param{}};
    return exec_prepared_params(name, std::span<const Param>(params, sizeof...(Args)), ExecOptions{});
  }
  Result exec_prepared_params(const std::string& name, std::span<const Param> params,
                              const ExecOptions& options);
  // The automatic statement cache of exec() (off unless set; a pool sets it from
  // PoolConfig::statement_cache). Changing it forgets what the cache holds (the
  // statements stay on the server until the session ends or is reset).
  void set_statement_cache(const StatementCacheConfig& config);
  StatementCacheConfig statement_cache() const;
  StatementCacheStats statement_cache_stats() const;

  // Runs one statement and hands its rows to `on_row` one at a time as they arrive
  // (libpq's single-row mode), never holding more than one: for results larger than
  // memory. Returns the number of rows. When on_row throws, the statement is cancelled,
  // its remaining rows are read and dropped, and the exception is rethrown (the
  // connection stays usable; a transaction it was in is failed). The Row is valid only
  // during the call. Throws as exec() does.
  template <typename OnRow, typename... Args>
  std::size_t stream(const std::string& sql, OnRow&& on_row, const Args&... args) {
    Param params[] = {to_param(args)..., Param{}};
    return stream_params(sql, std::span<const Param>(params, sizeof...(Args)),
                         std::function<void(const Row&)>(std::forward<OnRow>(on_row)), ExecOptions{});
  }
  std::size_t stream_params(const std::string& sql, std::span<const Param> params,
                            const std::function<void(const Row&)>& on_row, const ExecOptions& options);

  // COPY with the client (usher/copy.hpp; docs/client.md, "COPY"). `sql` is one
  // COPY ... FROM STDIN / TO STDOUT statement (no parameters). The writer and reader
  // borrow this connection: while one is open, run nothing else on it.
  //  - copy_from(sql): a writer in COPY IN state; finish() loads, abort() or its
  //    destructor (unfinished) loads nothing.
  //  - copy_from(sql, fill): fill(writer), then finish(); when fill throws, the COPY is
  //    aborted (nothing loaded, the connection usable) and the exception rethrown.
  //    Returns the rows loaded.
  //  - copy_to(sql): a reader handing out the data row by row (text, csv) or in chunks
  //    (binary); copy_to(sql, on_data) calls on_data for each and returns the rows sent;
  //    when on_data throws the COPY is cancelled, the rest dropped, the exception rethrown.
  // Errors (a bad row, a constraint, the connection lost) are thrown as exec() throws
  // them; the connection is left out of COPY state, usable, or closed when it cannot be.
  CopyWriter copy_from(const std::string& sql);
  std::size_t copy_from(const std::string& sql, const std::function<void(CopyWriter&)>& fill);
  CopyReader copy_to(const std::string& sql);
  std::size_t copy_to(const std::string& sql,
                      const std::function<void(std::string_view data)>& on_data);

  // Pipeline mode (usher/pipeline.hpp; docs/client.md, "Pipelines"): every statement of
  // `batch` sent at once, then a sync, and their results read in one round trip: one
  // Result per statement. A failing statement throws usher::PipelineError, which names
  // its index, carries the server's error, and reports the statements after it skipped.
  std::vector<Result> exec_pipeline(const Pipeline& batch, const ExecOptions& options = {});

  // Asks the server to cancel the statement running on this connection. Safe to call
  // from another thread while exec() is blocked. Returns false if the request could
  // not be sent.
  bool cancel() noexcept;

  // Receives NOTICE / WARNING messages (default: ignored).
  void set_notice_handler(NoticeHandler handler);

  TransactionStatus transaction_status() const noexcept;
  bool is_open() const noexcept;  // has a PGconn whose status is CONNECTION_OK
  int backend_pid() const noexcept;
  // PQserverVersion: e.g. 150004 for 15.4; 0 when not connected.
  int server_version() const noexcept;
  std::string redacted_conninfo() const { return redacted_conninfo_; }

  // libpq's handle, for what Connection does not offer. What is done through it is
  // invisible to the pool, so a lease whose handle was taken counts as used (its
  // session is reset on return: PoolConfig::session_reset). Inside Pool::transaction,
  // whose BEGIN waits for the body's first statement, it sends that BEGIN first (and
  // throws as exec() does when it fails): what is run through the handle is inside the
  // transaction.
  pg_conn* native() const {
    if (owed_.begin) const_cast<Connection*>(this)->pay_owed(ExecOptions{});
    ++uses_;
    return conn_;
  }
  // Statements sent through exec() plus native() hand-outs, since the connection opened.
  std::uint64_t uses() const noexcept { return uses_; }

 private:
  friend class detail::SentStatements;
  friend class detail::Pipelined;
  friend class detail::OwedBegin;
  friend class CopyWriter;
  friend class CopyReader;
  void close() noexcept;
  // Reads every result of what was sent (exec_params, or the pool's statements sent on
  // return), within `options`; throws as exec() does. `pipelined`: what was sent is a
  // pipeline of that many statements ending with a sync; the last result of each is put
  // there as it arrives (so it is there even when the read then throws), and the
  // connection leaves pipeline mode.
  Result read_results(const ExecOptions& options, std::span<Result> pipelined = {},
                      detail::ReadMode mode = {});
  // Sends a COPY statement and reads up to its COPY IN or OUT state; throws its
  // error, or NotSupported (0A000) when the statement is not such a COPY.
  void start_copy(const std::string& sql, detail::CopyStop direction);
  // Closes the connection and throws ConnectionError (08006) with libpq's message: a
  // COPY whose data could not be sent or read.
  [[noreturn]] void copy_failed(const char* what);
  // Pipeline mode: [first] [flush request] [second] [sync], read through read_results:
  // the server sends first's answer before it starts second. Throws as exec() does (the
  // first error of either statement).
  void exec_pipelined(const char* first, const char* second, std::span<Result, 2> results,
                      const ExecOptions& options);

  // exec_params through the statement cache (statement_cache.cpp).
  Result exec_cached(const char* sql, std::span<const Param> params, const ExecOptions& options);
  // One statement without parameters that the cache does not look at (DEALLOCATE).
  void exec_internal(const char* sql, const ExecOptions& options);

  // Deferred BEGIN (docs/client.md, "Transactions and retries"): Pool::transaction does
  // not send its BEGIN (and SET LOCAL timeouts) on its own; the body's first statement
  // takes them along in one pipeline, [BEGIN] [set_config] [statement] [sync], one round
  // trip instead of two. Every other way of sending (prepared, cached, streamed, COPY,
  // pipelines, native()) pays them first, in a round trip of their own.
  struct Owed {
    const char* begin = nullptr;  // static BEGIN text; null: nothing owed
    long long statement_timeout_ms = 0, lock_timeout_ms = 0;  // SET LOCAL; 0: not asked
    bool lost_before_begin = false;  // the connection ended before BEGIN was answered
  };
  // [owed statements] [sql] [sync] in pipeline mode; returns sql's result. Throws as
  // exec() does: the first error of any of them.
  Result exec_behind_owed(const char* sql, std::span<const Param> params, const ExecOptions& options);
  // The owed statements alone, in one round trip.
  void pay_owed(const ExecOptions& options);

  Owed owed_;
  pg_conn* conn_ = nullptr;
  pg_cancel* cancel_ = nullptr;  // prepared once: PQgetCancel is not safe during a query
  std::unique_ptr<NoticeHandler> notice_;  // heap: libpq keeps a pointer to it
  std::string redacted_conninfo_;
  mutable std::uint64_t uses_ = 0;
  struct StatementCacheDeleter {
    void operator()(detail::StatementCache* cache) const noexcept;
  };
  using StatementCachePtr = std::unique_ptr<detail::StatementCache, StatementCacheDeleter>;
  StatementCachePtr statements_;  // null: never configured
};

}  // namespace usher
