// Opening a plugin's shared library and checking its manifest before
// anything else in it runs.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/dll/shared_library.hpp>

#include "parley/plugin.hpp"

namespace parley::kernel {

class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a plugin's manifest says it registers and uses on the bus.
struct Declarations {
  std::vector<std::string> handles, serves, publishes, subscribes, hooks;
};

struct PluginLibrary {
  std::shared_ptr<boost::dll::shared_library> library;
  const PluginEntry* entry = nullptr;
  std::filesystem::path path;

  std::vector<std::string> requires_list() const;
  std::vector<std::string> wants_list() const;
  Declarations declarations() const;
};

// Loads `path` for the plugin configured as `expected_name`. Throws
// PluginError: missing file, not a loadable library, no entry symbol, other
// SDK ABI version (naming both), another build fingerprint (naming the
// field and both values), or a manifest whose name differs.
PluginLibrary open_plugin_library(const std::string& expected_name,
                                  const std::filesystem::path& path);

struct DependencyInfo {
  std::string name;
  std::vector<std::string> requires_list;
  std::vector<std::string> wants_list;
};

// A start order in which every plugin comes after what it requires and after
// what it wants when that is present. Throws PluginError for a missing hard
// dependency or a cycle (naming the plugins in it). Ties keep config order.
std::vector<std::size_t> start_order(const std::vector<DependencyInfo>& plugins);

}  // namespace parley::kernel
