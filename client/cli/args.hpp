#pragma once
// Command-line parsing: GNU-style options (--name value, --name=value, -x value, -xvalue),
// global options before or after the subcommand, `--` ends options. Each subcommand
// declares the options it accepts, so a misplaced or misspelt one is an error with a
// hint instead of being silently ignored.

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace usher::cli {

// A mistake in how the tool was called: exit status 64, the message on stderr.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OptionSpec {
  std::string name;       // long name, without "--"
  char short_name = 0;    // 0: none
  std::string value;      // the value's name shown in help ("CONNINFO"); empty: a flag
  std::string help;
};

struct Args {
  std::string command;                         // empty: none given
  std::vector<std::string> operands;           // words after the command (services set NAME)
  std::map<std::string, std::string> values;   // long name -> value ("" for flags)

  bool has(const std::string& name) const { return values.count(name) != 0; }
  std::optional<std::string> get(const std::string& name) const;
};

// Options every subcommand accepts.
const std::vector<OptionSpec>& global_options();

// Parses argv. `command_options(name)` returns the options of subcommand `name`, or
// nullptr when there is no such subcommand (then: UsageError with a did-you-mean hint
// drawn from `command_names`). Throws UsageError for anything it cannot accept.
Args parse_args(int argc, char** argv,
                const std::vector<OptionSpec>* (*command_options)(const std::string&),
                const std::vector<std::string>& command_names);

// The items of a comma-separated option value ("a,b,,c": a, b, "", c), kept in order;
// callers decide what an empty item means.
std::vector<std::string> split_commas(const std::string& value);

// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace usher::cli
