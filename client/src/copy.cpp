// COPY with the client: Connection::copy_from / copy_to, CopyWriter, CopyReader. The
// COPY statement is sent and read up to its COPY state, and its outcome read after the
// data, by the one statement loop (statement.cpp: read_results), so its errors are
// thrown as exec() throws them. The data itself goes through libpq's blocking COPY calls.
#include "usher/copy.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <climits>
#include <algorithm>
#include <exception>
#include <stdexcept>
#include <utility>

#include "usher/errors.hpp"
#include "usher/types.hpp"

namespace usher {
namespace {

constexpr std::size_t copy_buffer_bytes = 64 * 1024;
constexpr oid bytea_oid = 17;

// Appends `text` escaped for COPY's text format.
void append_copy_text(std::string& out, std::string_view text, std::size_t field) {
  for (char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\0':
        throw InvalidParameter(
            fmt::format("COPY field {} holds a NUL byte: text cannot carry it; write binary "
                        "data as usher::Bytes (bytea)", field + 1),
            "22021");
      default: out += c;
    }
  }
}

void append_copy_hex(std::string& out, std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  out += "\\\\x";  // the field's text is \x...: its backslash escaped
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
}

}  // namespace

// ---- Connection

CopyWriter Connection::copy_from(const std::string& sql) {
  start_copy(sql, detail::CopyStop::in);
  return CopyWriter(this);
}

std::size_t Connection::copy_from(const std::string& sql,
                                  const std::function<void(CopyWriter&)>& fill) {
  CopyWriter writer = copy_from(sql);
  try {
    fill(writer);
  } catch (...) {
    if (writer.active()) {
      try {
        writer.abort("the client's row source failed");
      } catch (...) {
        // the connection was lost as well: closed; the caller's own error comes first
      }
    }
    throw;
  }
  return writer.finish();
}

CopyReader Connection::copy_to(const std::string& sql) {
  start_copy(sql, detail::CopyStop::out);
  return CopyReader(this);
}

std::size_t Connection::copy_to(const std::string& sql,
                                const std::function<void(std::string_view)>& on_data) {
  CopyReader reader = copy_to(sql);
  try {
    while (auto data = reader.next()) on_data(*data);
  } catch (...) {
    reader.cancel();  // nothing when next() threw: the COPY was over then
    throw;
  }
  return reader.rows();
}

// ---- CopyWriter

CopyWriter::CopyWriter(CopyWriter&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)), buffer_(std::move(o.buffer_)) {}

CopyWriter& CopyWriter::operator=(CopyWriter&& o) noexcept {
  if (this != &o) {
    if (conn_) {
      try {
        abort();
      } catch (...) {
      }
    }
    conn_ = std::exchange(o.conn_, nullptr);
    buffer_ = std::move(o.buffer_);
  }
  return *this;
}

CopyWriter::~CopyWriter() {
  if (!conn_) return;
  try {
    abort("the CopyWriter was destroyed before finish()");
  } catch (...) {
    // lost: the connection is closed, nothing else to do in a destructor
  }
}

void CopyWriter::write_row(std::span<const Param> fields) {
  if (!conn_) throw std::logic_error("CopyWriter::write_row after finish() or abort()");
  std::size_t start = buffer_.size();
  try {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i) buffer_ += '\t';
      const Param& p = fields[i];
      if (!p.text) {
        buffer_ += "\\N";
      } else if (!p.binary) {
        append_copy_text(buffer_, *p.text, i);
      } else if (p.type == bytea_oid) {
        append_copy_hex(buffer_, *p.text);
      } else {
        throw NotSupported(fmt::format("COPY field {}: a value sent in binary format (type "
                                       "oid {}) has no text form here; write it as text",
                                       i + 1, p.type),
                           "0A000");
      }
    }
  } catch (...) {
    buffer_.resize(start);  // no half row: the writer can go on or be aborted
    throw;
  }
  buffer_ += '\n';
  if (buffer_.size() >= copy_buffer_bytes) flush_buffer();
}

void CopyWriter::write(std::string_view data) {
  if (!conn_) throw std::logic_error("CopyWriter::write after finish() or abort()");
  if (buffer_.size() + data.size() < copy_buffer_bytes) {
    buffer_.append(data);
    return;
  }
  flush_buffer();
  while (!data.empty()) {
    std::size_t n = std::min<std::size_t>(data.size(), INT_MAX / 2);
    if (PQputCopyData(conn_->conn_, data.data(), static_cast<int>(n)) != 1)
      std::exchange(conn_, nullptr)->copy_failed("COPY data could not be sent");
    data.remove_prefix(n);
  }
}

void CopyWriter::flush_buffer() {
  if (buffer_.empty()) return;
  if (PQputCopyData(conn_->conn_, buffer_.data(), static_cast<int>(buffer_.size())) != 1) {
    buffer_.clear();
    std::exchange(conn_, nullptr)->copy_failed("COPY data could not be sent");
  }
  buffer_.clear();
}

std::size_t CopyWriter::finish() {
  if (!conn_) throw std::logic_error("CopyWriter::finish after finish() or abort()");
  flush_buffer();
  Connection* conn = std::exchange(conn_, nullptr);
  if (PQputCopyEnd(conn->conn_, nullptr) != 1) conn->copy_failed("the end of COPY could not be sent");
  return conn->read_results(ExecOptions{}).affected_rows();  // the server's error thrown here
}

void CopyWriter::abort(std::string_view reason) {
  if (!conn_) return;
  buffer_.clear();
  Connection* conn = std::exchange(conn_, nullptr);
  std::string why(reason);
  if (PQputCopyEnd(conn->conn_, why.c_str()) != 1) conn->copy_failed("the end of COPY could not be sent");
  try {
    conn->read_results(ExecOptions{});
  } catch (const ConnectionError&) {
    throw;
  } catch (const DatabaseError&) {
    // the abort itself (57014), or the data's own error: nothing was loaded either way
  }
}

// ---- CopyReader

CopyReader::CopyReader(CopyReader&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)), row_(std::exchange(o.row_, nullptr)), rows_(o.rows_) {}

CopyReader& CopyReader::operator=(CopyReader&& o) noexcept {
  if (this != &o) {
    cancel();
    conn_ = std::exchange(o.conn_, nullptr);
    row_ = std::exchange(o.row_, nullptr);
    rows_ = o.rows_;
  }
  return *this;
}

CopyReader::~CopyReader() { cancel(); }

void CopyReader::free_row() noexcept {
  if (row_) PQfreemem(std::exchange(row_, nullptr));
}

std::optional<std::string_view> CopyReader::next() {
  free_row();
  if (!conn_) return std::nullopt;
  int n = PQgetCopyData(conn_->conn_, &row_, 0);
  if (n > 0) return std::string_view(row_, static_cast<std::size_t>(n));
  Connection* conn = std::exchange(conn_, nullptr);
  if (n == -2) conn->copy_failed("COPY data could not be read");
  // -1: the data is over; the COPY's own result follows (an error thrown here).
  rows_ = conn->read_results(ExecOptions{}).affected_rows();
  return std::nullopt;
}

void CopyReader::cancel() noexcept {
  free_row();
  if (!conn_) return;
  Connection* conn = std::exchange(conn_, nullptr);
  try {
    conn->cancel();  // the server stops sending; a cancel that comes late is ignored
    char* row = nullptr;
    int n;
    while ((n = PQgetCopyData(conn->conn_, &row, 0)) > 0) PQfreemem(row);
    if (n == -2) {
      conn->close();
      return;
    }
    conn->read_results(ExecOptions{});
  } catch (const ConnectionError&) {
    conn->close();
  } catch (...) {
    // 57014, or the COPY's own error: over, and the connection is idle
  }
}

// ---- text rows

std::vector<std::optional<std::string>> copy_text_fields(std::string_view line) {
  if (line.ends_with('\n')) line.remove_suffix(1);
  std::vector<std::optional<std::string>> fields;
  std::size_t start = 0;
  while (true) {
    std::size_t end = line.find('\t', start);
    std::string_view raw = line.substr(start, end == std::string_view::npos ? end : end - start);
    if (raw == "\\N") {
      fields.emplace_back(std::nullopt);
    } else {
      std::string& out = fields.emplace_back(std::string()).value();
      out.reserve(raw.size());
      for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c != '\\') {
          out += c;
          continue;
        }
        if (++i == raw.size())
          throw TypeMismatch(fmt::format("COPY field {} ends with a lone backslash", fields.size()));
        c = raw[i];
        switch (c) {
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'v': out += '\v'; break;
          case 'x':
            if (i + 1 < raw.size() && detail::hex_digit(raw[i + 1]) >= 0) {
              int v = detail::hex_digit(raw[++i]);
              if (i + 1 < raw.size() && detail::hex_digit(raw[i + 1]) >= 0) v = v * 16 + detail::hex_digit(raw[++i]);
              out += static_cast<char>(v);
            } else {
              out += 'x';
            }
            break;
          default:
            if (c >= '0' && c <= '7') {
              int v = c - '0';
              for (int k = 0; k < 2 && i + 1 < raw.size() && raw[i + 1] >= '0' && raw[i + 1] <= '7'; ++k)
                v = v * 8 + (raw[++i] - '0');
              out += static_cast<char>(v);
            } else {
              out += c;  // \\ and any other character stand for themselves
            }
        }
      }
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return fields;
}

}  // namespace usher
