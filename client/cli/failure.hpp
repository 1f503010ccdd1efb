#pragma once
// Turns whatever a subcommand threw into one line for stderr and an exit status.

#include <exception>
#include <string>

namespace usher::cli {

struct Failure {
  int exit_status;
  std::string message;  // one line, no "usher: " prefix
};

// Call inside a catch block (it rethrows std::current_exception() to classify it).
Failure describe_current_exception();

// A server or libpq message on one line: the first line without "ERROR:  ", plus a HINT.
std::string one_line(const std::string& message);

}  // namespace usher::cli
