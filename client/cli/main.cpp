// usher: the pg_usher command-line tool. Parses the command line, runs one subcommand,
// and turns any failure into one line on stderr and a documented exit status
// (exit_codes.hpp, docs/cli.md).
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "args.hpp"
#include "commands.hpp"
#include "exit_codes.hpp"
#include "failure.hpp"

#ifndef USHER_VERSION
#define USHER_VERSION "unknown"
#endif

namespace {

const std::vector<usher::cli::OptionSpec>* options_of(const std::string& name) {
  auto* c = usher::cli::find_command(name);
  return c ? &c->options : nullptr;
}

std::vector<std::string> command_names() {
  std::vector<std::string> names;
  for (auto* c : usher::cli::commands()) names.push_back(c->name);
  return names;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace usher::cli;
  const Command* command = nullptr;
  try {
    Args args = parse_args(argc, argv, options_of, command_names());
    command = find_command(args.command);
    if (args.has("version")) {
      fmt::print("usher {}\n", USHER_VERSION);
      return exit_code::ok;
    }
    if (args.has("help")) {
      command ? print_command_help(*command) : print_main_help();
      return exit_code::ok;
    }
    if (!command)
      throw UsageError(fmt::format("no command given (commands: {}; see usher --help)", fmt::join(command_names(), ", ")));
    if (command->operands.empty() && !args.operands.empty())
      throw UsageError(fmt::format("unexpected argument '{}' (see usher {} --help)", args.operands[0], command->name));
    return command->run(args);
  } catch (...) {
    Failure f = describe_current_exception();
    std::fflush(stdout);
    fmt::print(stderr, "usher: {}\n", f.message);
    // A monitoring system running `usher health` must see UNKNOWN (3), whatever the cause,
    // except for a mistake in the command line itself.
    if (command == &health_command() && f.exit_status != exit_code::usage) return exit_code::health_unknown;
    return f.exit_status;
  }
}
