// The command list and the help texts, generated from the Command descriptions so that
// they cannot drift from what the parser accepts.
#include <fmt/format.h>

#include "commands.hpp"

namespace usher::cli {

const std::vector<const Command*>& commands() {
  static const std::vector<const Command*> list = {&status_command(), &backends_command(), &health_command(),
                                                   &advice_command(),   &services_command(), &leases_command(),
                                                   &semaphores_command(), &activity_command(), &top_command(), &pgbouncer_config_command()};
  return list;
}

const Command* find_command(const std::string& name) {
  for (auto* c : commands())
    if (c->name == name) return c;
  return nullptr;
}

namespace {

void print_options(const std::vector<OptionSpec>& options) {
  for (const auto& o : options) {
    std::string flag = o.short_name ? fmt::format("-{}, --{}", o.short_name, o.name) : fmt::format("    --{}", o.name);
    if (!o.value.empty()) flag += " " + o.value;
    fmt::print("  {:<28} {}\n", flag, o.help);
  }
}

}  // namespace

void print_main_help() {
  fmt::print(
      "usher: look at a PostgreSQL server through pg_usher\n\n"
      "Usage: usher [-d CONNINFO] COMMAND [OPTIONS]\n\nCommands:\n");
  for (auto* c : commands()) fmt::print("  {:<17} {}\n", c->name, c->summary);
  fmt::print("\nOptions (every command):\n");
  print_options(global_options());
  fmt::print(
      "\nThe connection follows libpq: PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, ~/.pgpass,\n"
      "PGSERVICE ... unless -d gives a conninfo. The role needs pg_monitor.\n\n"
      "Exit status: 0 success; health: 1 warning, 2 critical, 3 could not check;\n"
      "64 usage error, 65 the server refused a value, 69 cannot connect, 70 other error,\n"
      "77 permission denied, 78 pg_usher not installed or not preloaded. See docs/cli.md.\n"
      "`usher COMMAND --help` describes a command.\n");
}

void print_command_help(const Command& command) {
  fmt::print("usher {}: {}\n\nUsage: usher [-d CONNINFO] {}{}", command.name, command.summary, command.name,
             command.operands.empty() ? "" : " " + command.operands);
  for (const auto& o : command.options)
    fmt::print(" [--{}{}]", o.name, o.value.empty() ? "" : " " + o.value);
  fmt::print(" [--format table|json]\n\n{}\n", command.description);
  if (!command.options.empty()) {
    fmt::print("\nOptions:\n");
    print_options(command.options);
  }
  fmt::print("\nOptions (every command):\n");
  print_options(global_options());
}

}  // namespace usher::cli
