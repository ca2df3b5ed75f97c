// The plugin contract.
//
// A plugin is a shared library exporting exactly one symbol, the alias
// `parley_plugin_entry` (declare it with PARLEY_PLUGIN). The kernel calls it,
// checks `sdk_abi` before reading anything else, then uses the manifest and
// calls create(). The lifecycle that follows:
//
//   create(host)   construct; no side effects (--check-config also does this)
//   configure(cfg) read and validate the plugin's config block; all plugins
//                  are configured before any starts
//   start()        register handlers, subscribe, migrate; throw to fail start-up
//   stop()         stop work; called in reverse start order, also when a later
//                  plugin failed to start
//   ~Plugin()      after stop(), before the library is unloaded
//
// The kernel keeps the library loaded while anything it created (the plugin,
// handlers, pending callbacks) is alive. Exceptions never cross into the
// kernel unreported: each call is guarded and failures name the plugin.
#pragma once

#include <cstdint>

#include <boost/dll/alias.hpp>

#include "parley/config.hpp"
#include "parley/fingerprint.hpp"
#include "parley/host.hpp"
#include "parley/version.hpp"

namespace parley {

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual void configure(Config& config) = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
};

// The manifest. `sdk_abi` stays the first member in every SDK version so that
// any kernel can read it; the rest is trusted only when it matches, and the
// build fingerprint is compared next, field by field.
//
// The name lists are nullptr-terminated (a nullptr list is empty). What a
// plugin declares it handles and serves is enforced: registering anything
// else fails its start. What it publishes, subscribes to and hooks is
// printed by `parleyd --list-plugins` for operators and reviewers.
struct PluginEntry {
  std::uint32_t sdk_abi;
  const char* name;                      // unique, [a-z0-9_]+, equals the config entry's name
  const char* version;                   // the plugin's own version, for humans
  const char* description;               // one line
  const char* const* hard_dependencies;  // start-up fails without them
  const char* const* soft_dependencies;  // started first when enabled
  Plugin* (*create)(Host& host);
  const char* const* handles = nullptr;     // client request types (Gateway::handle)
  const char* const* serves = nullptr;      // bus services (Bus::serve)
  const char* const* publishes = nullptr;   // bus events (Bus::publish)
  const char* const* subscribes = nullptr;  // bus events (Bus::subscribe)
  const char* const* hooks = nullptr;       // hook chains it joins (Bus::hook)
  // Filled in where the manifest is compiled: the plugin's own build.
  const BuildFingerprint* fingerprint = this_build_fingerprint();
};

using PluginEntryFunction = const PluginEntry*();

}  // namespace parley

// Exports `function` (a `const parley::PluginEntry* function()`) as the
// plugin's entry point.
#define PARLEY_PLUGIN(function) BOOST_DLL_ALIAS(function, parley_plugin_entry)
