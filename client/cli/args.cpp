#include "args.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace usher::cli {

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

const std::vector<OptionSpec>& global_options() {
  static const std::vector<OptionSpec> options = {
      {"dbname", 'd', "CONNINFO", "connection string (keyword=value or postgres:// URI); default: libpq's PG* environment"},
      {"format", 0, "FORMAT", "table (default) or json: one JSON array of objects"},
      {"help", 'h', "", "show help and exit"},
      {"version", 0, "", "show the version and exit"},
  };
  return options;
}

std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& candidates) {
  // Levenshtein distance; a typo is at most a third of the word away.
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      std::size_t diagonal = row[0];
      row[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        std::size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diagonal = up;
      }
    }
    return row[b.size()];
  };
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(1, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    std::size_t d = distance(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

std::vector<std::string> split_commas(const std::string& value) {
  std::vector<std::string> items;
  std::string_view rest = value;
  while (true) {
    auto comma = rest.find(',');
    items.emplace_back(rest.substr(0, comma));
    if (comma == std::string_view::npos) return items;
    rest.remove_prefix(comma + 1);
  }
}

namespace {

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

const OptionSpec* find_long(const std::vector<const OptionSpec*>& specs, const std::string& name) {
  for (auto* s : specs)
    if (s->name == name) return s;
  return nullptr;
}

const OptionSpec* find_short(const std::vector<const OptionSpec*>& specs, char name) {
  for (auto* s : specs)
    if (s->short_name == name) return s;
  return nullptr;
}

}  // namespace

Args parse_args(int argc, char** argv,
                const std::vector<OptionSpec>* (*command_options)(const std::string&),
                const std::vector<std::string>& command_names) {
  Args args;
  std::vector<const OptionSpec*> specs;
  for (const auto& s : global_options()) specs.push_back(&s);
  auto where = [&] { return args.command.empty() ? std::string("usher --help") : "usher " + args.command + " --help"; };

  auto unknown_option = [&](const std::string& shown, const std::string& name) {
    std::vector<std::string> names;
    for (auto* s : specs) names.push_back(s->name);
    std::string hint;
    if (auto c = closest(name, names)) hint = fmt::format("; did you mean --{}?", *c);
    // An option of a subcommand given before the subcommand: say where it belongs.
    if (args.command.empty()) {
      for (const auto& cmd : command_names)
        if (auto* opts = command_options(cmd))
          for (const auto& o : *opts)
            if (o.name == name) hint = fmt::format("; --{} belongs after the subcommand: usher {} --{}", name, cmd, name);
    }
    return UsageError(fmt::format("unknown option '{}'{} (see {})", shown, hint, where()));
  };

  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!options_done && arg == "--") {
      options_done = true;
      continue;
    }
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      if (!args.command.empty()) {
        args.operands.push_back(arg);  // the command says whether it takes any (main.cpp)
        continue;
      }
      const auto* opts = command_options(arg);
      if (!opts) {
        std::string hint;
        if (auto c = closest(arg, command_names)) hint = fmt::format("; did you mean '{}'?", *c);
        throw UsageError(fmt::format("unknown command '{}'{} (commands: {}; see usher --help)", arg, hint,
                                     join(command_names)));
      }
      args.command = arg;
      for (const auto& s : *opts) specs.push_back(&s);
      continue;
    }

    const OptionSpec* spec = nullptr;
    std::optional<std::string> inline_value;
    std::string shown;
    if (arg.starts_with("--")) {
      std::string name = arg.substr(2);
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
      }
      shown = "--" + name;
      spec = find_long(specs, name);
      if (!spec) throw unknown_option(shown, name);
    } else {
      shown = arg.substr(0, 2);
      spec = find_short(specs, arg[1]);
      if (!spec) throw unknown_option(shown, std::string(1, arg[1]));
      if (arg.size() > 2) {
        if (spec->value.empty()) throw UsageError(fmt::format("option {} takes no value (see {})", shown, where()));
        inline_value = arg.substr(2);
      }
    }

    if (spec->value.empty()) {
      if (inline_value) throw UsageError(fmt::format("option {} takes no value (see {})", shown, where()));
      args.values[spec->name] = "";
    } else if (inline_value) {
      args.values[spec->name] = *inline_value;
    } else {
      if (i + 1 >= argc) throw UsageError(fmt::format("option {} needs a value: {} (see {})", shown, spec->value, where()));
      args.values[spec->name] = argv[++i];
    }
  }
  return args;
}

}  // namespace usher::cli
