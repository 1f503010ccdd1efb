// Writing the Prometheus text exposition format (version 0.0.4): metric families with
// HELP and TYPE lines, samples with escaped label values. One writer for both halves:
// usher.metrics() in the extension and Pool::prometheus() in libusher.
#pragma once

#include <fmt/format.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/pure_cpp.hpp"  // must be the last include

namespace usher::prometheus {

using Label = std::pair<std::string_view, std::string_view>;

class TextWriter {
 public:
  // Starts a metric family; every sample written until the next family belongs to it.
  void family(std::string_view name, std::string_view type, std::string_view help);
  // One sample of the current family. A missing value (SQL NULL) writes nothing; a
  // text value is written as it is, but for PostgreSQL's float8 spellings of the
  // infinities. A double is written in its shortest exact form (counts as integers).
  void sample(std::initializer_list<Label> labels, const std::optional<std::string>& value);
  void sample(std::initializer_list<Label> labels, double value);
  // A sample of the current family under a suffixed name (histograms: _bucket, _sum,
  // _count).
  void sample_as(std::string_view suffix, std::initializer_list<Label> labels, double value);

  std::string take() { return fmt::to_string(out_); }

 private:
  void write_labels(std::string_view suffix, std::initializer_list<Label> labels);
  void write_value(double value);
  fmt::memory_buffer out_;
  std::string family_;
};

// Label values escape backslash, double quote and newline; HELP text escapes backslash
// and newline.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);

}  // namespace usher::prometheus
