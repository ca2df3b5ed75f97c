// Command-line options of a scenario: `--name value` or `--name=value`.
// Every option a scenario reads is recorded with its effective value, so the
// JSON result lists the parameters of the run, defaults included.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

namespace parley::bench {

class OptionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Options {
 public:
  // Parses argv[first..argc). Throws OptionError for a malformed list.
  Options(int argc, char** argv, int first);

  std::string string(const std::string& name, const std::string& fallback);
  std::int64_t integer(const std::string& name, std::int64_t fallback, std::int64_t min,
                       std::int64_t max);
  double number(const std::string& name, double fallback, double min, double max);
  bool flag(const std::string& name, bool fallback);
  bool has(const std::string& name) const { return values_.contains(name); }

  // Options given but never read: a typo, reported as an error.
  std::vector<std::string> unused() const;
  // The effective values of the options read so far.
  const boost::json::object& used() const { return used_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> read_;
  boost::json::object used_;
};

}  // namespace parley::bench
