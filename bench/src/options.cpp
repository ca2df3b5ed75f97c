#include "options.hpp"

#include <charconv>

namespace parley::bench {

Options::Options(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg.size() < 3)
      throw OptionError("unexpected argument '" + arg + "'");
    arg.erase(0, 2);
    std::string value;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.erase(eq);
    } else if (i + 1 < argc && std::string_view(argv[i + 1]).rfind("--", 0) != 0) {
      value = argv[++i];
    } else {
      value = "true";  // a bare flag
    }
    if (!values_.emplace(arg, value).second)
      throw OptionError("option --" + arg + " is given twice");
  }
}

std::string Options::string(const std::string& name, const std::string& fallback) {
  read_.insert(name);
  const auto it = values_.find(name);
  const std::string value = it == values_.end() ? fallback : it->second;
  used_[name] = value;
  return value;
}

std::int64_t Options::integer(const std::string& name, std::int64_t fallback, std::int64_t min,
                              std::int64_t max) {
  read_.insert(name);
  std::int64_t value = fallback;
  if (const auto it = values_.find(name); it != values_.end()) {
    const auto& text = it->second;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size()) {
      throw OptionError("--" + name + ": '" + text + "' is not an integer");
    }
  }
  if (value < min || value > max) {
    throw OptionError("--" + name + " must be between " + std::to_string(min) + " and " +
                      std::to_string(max));
  }
  used_[name] = value;
  return value;
}

double Options::number(const std::string& name, double fallback, double min, double max) {
  read_.insert(name);
  double value = fallback;
  if (const auto it = values_.find(name); it != values_.end()) {
    try {
      std::size_t used = 0;
      value = std::stod(it->second, &used);
      if (used != it->second.size()) throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      throw OptionError("--" + name + ": '" + it->second + "' is not a number");
    }
  }
  if (!(value >= min && value <= max)) {
    throw OptionError("--" + name + " must be between " + std::to_string(min) + " and " +
                      std::to_string(max));
  }
  used_[name] = value;
  return value;
}

bool Options::flag(const std::string& name, bool fallback) {
  read_.insert(name);
  bool value = fallback;
  if (const auto it = values_.find(name); it != values_.end()) {
    if (it->second == "true" || it->second == "1" || it->second == "yes") {
      value = true;
    } else if (it->second == "false" || it->second == "0" || it->second == "no") {
      value = false;
    } else {
      throw OptionError("--" + name + ": expected true or false, not '" + it->second + "'");
    }
  }
  used_[name] = value;
  return value;
}

std::vector<std::string> Options::unused() const {
  std::vector<std::string> out;
  for (const auto& [name, value] : values_) {
    if (!read_.contains(name)) out.push_back(name);
  }
  return out;
}

}  // namespace parley::bench
