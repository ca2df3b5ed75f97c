// Loads the configured plugins, orders them by dependency and runs their
// lifecycle: configure all, start in order, stop in reverse.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "kernel_config.hpp"
#include "plugin_host.hpp"
#include "plugin_library.hpp"

namespace parley::kernel {

struct PluginInfo {
  std::string name;
  std::string version;
  std::string description;
  std::string path;
  std::vector<std::string> requires_list;
  std::vector<std::string> wants_list;
  Declarations declared;
  bool enabled = true;
  // A disabled entry whose library cannot be read: why (the rest is empty
  // but name and path). An enabled one is an error instead.
  std::string unreadable;
};

class PluginManager {
 public:
  PluginManager(KernelServices services, std::shared_ptr<spdlog::logger> log);
  ~PluginManager();
  PluginManager(const PluginManager&) = delete;
  PluginManager& operator=(const PluginManager&) = delete;

  // Loads and checks every enabled plugin, orders them, creates them and
  // lets each validate its config block; then rejects unknown keys anywhere
  // in the document. Throws PluginError or ConfigError.
  void load(const KernelConfig& config);

  // Starts in dependency order. If one fails, stops those already started
  // (in reverse) and throws, naming the plugin.
  void start_all();
  // Stops the started plugins in reverse start order; errors are logged.
  void stop_all();
  // Destroys the plugin objects (after stop_all and after the worker threads
  // have finished); libraries unload once nothing they created is left.
  void destroy_all();

  bool all_started() const;
  // Names in start order.
  std::vector<std::string> start_order_names() const;
  std::vector<PluginInfo> infos() const;

 private:
  struct Loaded {
    PluginLibrary library;
    OwnerPtr owner;
    std::unique_ptr<PluginHost> host;
    std::unique_ptr<Plugin> plugin;
    bool started = false;
  };

  void stop_one(Loaded& loaded);

  KernelServices services_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<Loaded> plugins_;  // in start order
};

// Reads the manifests of every configured plugin (enabled or not) without
// creating any: for `parleyd --list-plugins`.
std::vector<PluginInfo> read_manifests(const KernelConfig& config);

}  // namespace parley::kernel
