// A plugin's own configuration block, read during Plugin::configure().
//
// Every key a plugin reads is marked as known; after configure() returns, the
// kernel reports any key of the block that was never read as unknown. Errors
// (wrong type, missing required key, value out of range) are thrown as
// ConfigError with the file, line and full key path, for example
//   parley.yaml:14: plugins[0].config.max_length: expected an integer, got "ten"
// Scalars may use ${ENV_VAR} or ${ENV_VAR:-default}; they are substituted
// before the value is converted.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "parley/export.hpp"

namespace parley {

class PARLEY_SDK_VISIBLE ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Config {
 public:
  virtual ~Config() = default;

  // Each getter returns nullopt when the key is absent and throws ConfigError
  // when it is present with another type.
  virtual std::optional<std::string> get_string(std::string_view key) = 0;
  virtual std::optional<std::int64_t> get_int(std::string_view key) = 0;
  virtual std::optional<double> get_double(std::string_view key) = 0;
  virtual std::optional<bool> get_bool(std::string_view key) = 0;
  virtual std::optional<std::vector<std::string>> get_string_list(std::string_view key) = 0;
  // A nested mapping, or nullptr when absent. Owned by this Config.
  virtual Config* section(std::string_view key) = 0;
  // Throws ConfigError naming this key (its line when present, else the block's).
  [[noreturn]] virtual void fail(std::string_view key, std::string_view message) = 0;
  // The same for item `index` of the list `key`: "words[1]" and that item's line.
  [[noreturn]] virtual void fail_item(std::string_view key, std::size_t index,
                                      std::string_view message) = 0;

  std::string string_or(std::string_view key, std::string fallback) {
    auto v = get_string(key);
    return v ? *v : fallback;
  }
  bool bool_or(std::string_view key, bool fallback) {
    auto v = get_bool(key);
    return v ? *v : fallback;
  }
  std::string require_string(std::string_view key) {
    auto v = get_string(key);
    if (!v) fail(key, "required key is missing");
    return *v;
  }
  // An integer in [min, max], or fallback when absent.
  std::int64_t int_in(std::string_view key, std::int64_t fallback, std::int64_t min,
                      std::int64_t max) {
    auto v = get_int(key);
    if (!v) return fallback;
    if (*v < min || *v > max) {
      fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    return *v;
  }
};

}  // namespace parley
