#pragma once
// The subcommands: each lives in a file of its own (status.cpp, backends.cpp, health.cpp,
// advice.cpp) and describes itself here, so help, parsing and dispatch share one list.

#include <string>
#include <vector>

#include "args.hpp"

namespace usher::cli {

struct Command {
  std::string name;
  std::string summary;                // one line for `usher --help`
  std::string description;            // paragraph(s) for `usher NAME --help`
  std::vector<OptionSpec> options;    // besides the global ones
  int (*run)(const Args& args);       // returns the exit status
  std::string operands = {};          // the words it takes after its name, for help
                                      // ("[set|drop NAME]"); empty: none
};

const Command& status_command();
const Command& backends_command();
const Command& health_command();
const Command& advice_command();
const Command& pgbouncer_config_command();
const Command& services_command();
const Command& leases_command();
const Command& semaphores_command();
const Command& activity_command();
const Command& top_command();

const std::vector<const Command*>& commands();
const Command* find_command(const std::string& name);

// Help texts (stdout).
void print_main_help();
void print_command_help(const Command& command);

}  // namespace usher::cli
