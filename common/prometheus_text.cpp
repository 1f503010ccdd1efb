#include "common/pure_cpp_source.hpp"  // must be the first include

#include "common/prometheus_text.hpp"

#include <cmath>
#include <iterator>

namespace usher::prometheus {

namespace {

std::string escape(std::string_view text, bool quotes) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    if (c == '\\') escaped += "\\\\";
    else if (c == '\n') escaped += "\\n";
    else if (c == '"' && quotes) escaped += "\\\"";
    else escaped += c;
  }
  return escaped;
}

// PostgreSQL prints float8 infinities and NaN as words Prometheus does not accept.
std::string_view sample_value(std::string_view pg_text) {
  if (pg_text == "Infinity") return "+Inf";
  if (pg_text == "-Infinity") return "-Inf";
  return pg_text;
}

}  // namespace

std::string escape_label_value(std::string_view value) { return escape(value, true); }
std::string escape_help(std::string_view help) { return escape(help, false); }

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  family_ = name;
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name,
                 escape_help(help), name, type);
}

void TextWriter::write_labels(std::string_view suffix, std::initializer_list<Label> labels) {
  out_.append(family_);
  out_.append(suffix);
  if (labels.size() == 0) return;
  char separator = '{';
  for (const auto& [name, value] : labels) {
    fmt::format_to(std::back_inserter(out_), "{}{}=\"{}\"", separator, name,
                   escape_label_value(value));
    separator = ',';
  }
  out_.push_back('}');
}

void TextWriter::sample(std::initializer_list<Label> labels,
                        const std::optional<std::string>& value) {
  if (!value) return;
  write_labels({}, labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", sample_value(*value));
}

void TextWriter::sample(std::initializer_list<Label> labels, double value) {
  write_labels({}, labels);
  write_value(value);
}

void TextWriter::sample_as(std::string_view suffix, std::initializer_list<Label> labels, double value) {
  write_labels(suffix, labels);
  write_value(value);
}

void TextWriter::write_value(double value) {
  if (std::isinf(value)) fmt::format_to(std::back_inserter(out_), " {}\n", value > 0 ? "+Inf" : "-Inf");
  else fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

}  // namespace usher::prometheus
