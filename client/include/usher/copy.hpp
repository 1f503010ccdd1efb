#pragma once
// COPY with the client: usher::CopyWriter (COPY ... FROM STDIN) and usher::CopyReader
// (COPY ... TO STDOUT), made by Connection::copy_from / copy_to. See docs/client.md,
// "COPY".
//
//   conn.copy_from("COPY items (id, name) FROM STDIN", [&](usher::CopyWriter& w) {
//     for (auto& item : items) w.row(item.id, item.name);   // text format, escaped
//   });
//   conn.copy_to("COPY items TO STDOUT", [&](std::string_view line) {
//     auto fields = usher::copy_text_fields(line);           // unescaped, NULL as nullopt
//   });

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "usher/connection.hpp"

namespace usher {

// Writes the data of a COPY ... FROM STDIN. Move-only; borrows its Connection, which
// runs nothing else until the writer is finished or aborted. Data is buffered and sent
// in pieces of about 64 kB. The server checks the rows as they arrive but reports a bad
// one only at finish(): nothing is loaded then.
class CopyWriter {
 public:
  CopyWriter(CopyWriter&& other) noexcept;
  CopyWriter& operator=(CopyWriter&& other) noexcept;
  CopyWriter(const CopyWriter&) = delete;
  CopyWriter& operator=(const CopyWriter&) = delete;
  // Unfinished: abort() (nothing loaded), its errors swallowed.
  ~CopyWriter();

  // One row in COPY's text format (the default; tab-delimited): each value through
  // value_traits<T> as exec() sends it, escaped (backslash, tab, newline, carriage
  // return), std::nullopt / an empty optional as NULL (\N), usher::Bytes as bytea hex.
  // A text holding a NUL byte throws InvalidParameter (22021): text cannot carry it.
  template <typename... Args>
  void row(const Args&... values) {
    Param fields[] = {to_param(values)..., Param{}};
    write_row(std::span<const Param>(fields, sizeof...(Args)));
  }
  void write_row(std::span<const Param> fields);
  // Data as it is, for any format the COPY statement named (csv, binary, or text the
  // caller escaped). Rows may span calls.
  void write(std::string_view data);

  // Ends the COPY: sends what is buffered and the end, reads the outcome. Returns the
  // rows loaded; throws the server's error (nothing loaded) as exec() does.
  std::size_t finish();
  // Ends the COPY with an error: nothing is loaded; the connection stays usable (or, if
  // it was lost, closed: ConnectionError). Never throws the server's 57014 for it.
  void abort(std::string_view reason = "aborted by the client");
  // Neither finished nor aborted yet.
  bool active() const noexcept { return conn_ != nullptr; }

 private:
  friend class Connection;
  explicit CopyWriter(Connection* conn) : conn_(conn) {}
  void flush_buffer();
  Connection* conn_ = nullptr;
  std::string buffer_;
};

// Reads the data of a COPY ... TO STDOUT as the server sends it: one row (with its
// newline) at a time in text and csv format, pieces of the stream in binary. Move-only;
// borrows its Connection like CopyWriter.
class CopyReader {
 public:
  CopyReader(CopyReader&& other) noexcept;
  CopyReader& operator=(CopyReader&& other) noexcept;
  CopyReader(const CopyReader&) = delete;
  CopyReader& operator=(const CopyReader&) = delete;
  // Not at the end: cancel().
  ~CopyReader();

  // The next row, valid until the next call; nullopt at the end (the COPY's outcome is
  // read then: rows()). Throws the server's error as exec() does; ConnectionError
  // (connection closed) when the data cannot be read.
  std::optional<std::string_view> next();
  // Rows sent, once next() returned nullopt.
  std::size_t rows() const noexcept { return rows_; }
  // Stops early: a cancel request, the rest read and dropped, the outcome (57014 or
  // success) swallowed. The connection stays usable (or is closed if it was lost).
  void cancel() noexcept;
  bool active() const noexcept { return conn_ != nullptr; }

 private:
  friend class Connection;
  explicit CopyReader(Connection* conn) : conn_(conn) {}
  void free_row() noexcept;
  Connection* conn_ = nullptr;
  char* row_ = nullptr;  // libpq's buffer of the last row
  std::size_t rows_ = 0;
};

// One row of COPY's text format split at tabs and unescaped (\b \f \n \r \t \v \\,
// \ooo octal, \xhh hex); \N is nullopt. A trailing newline is ignored. Throws
// TypeMismatch naming the field for a backslash at the end of a field.
std::vector<std::optional<std::string>> copy_text_fields(std::string_view line);

}  // namespace usher
