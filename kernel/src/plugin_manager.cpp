#include "plugin_manager.hpp"

namespace parley::kernel {

namespace {

PluginInfo info_of(const PluginLibrary& lib, bool enabled) {
  return {lib.entry->name,
          lib.entry->version ? lib.entry->version : "",
          lib.entry->description ? lib.entry->description : "",
          lib.path.string(),
          lib.requires_list(),
          lib.wants_list(),
          lib.declarations(),
          enabled,
          {}};
}

// What the plugin threw, for a message; call inside a catch block. A plugin
// may throw anything, and `throw 42;` must fail its start, not end the
// process.
std::string thrown_text() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "it threw something that is not a std::exception";
  }
}

}  // namespace

PluginManager::PluginManager(KernelServices services, std::shared_ptr<spdlog::logger> log)
    : services_(services), log_(std::move(log)) {}

PluginManager::~PluginManager() {
  stop_all();
  destroy_all();
}

void PluginManager::load(const KernelConfig& config) {
  std::vector<Loaded> loaded;
  std::vector<const PluginConfig*> configs;
  for (const auto& pc : config.plugins) {
    if (!pc.enabled) {
      pc.config->mark_all_known();
      continue;
    }
    Loaded l;
    l.library = open_plugin_library(pc.name, config.library_path(pc));
    loaded.push_back(std::move(l));
    configs.push_back(&pc);
  }

  std::vector<DependencyInfo> deps;
  for (const auto& l : loaded)
    deps.push_back({l.library.entry->name, l.library.requires_list(), l.library.wants_list()});
  const auto order = start_order(deps);

  for (std::size_t i : order) {
    Loaded& l = loaded[i];
    const PluginConfig& pc = *configs[i];
    const Declarations declared = l.library.declarations();
    l.owner = std::make_shared<const Owner>(
        Owner{pc.name, l.library.library, declared.handles, declared.serves});
    l.host = std::make_unique<PluginHost>(services_, l.owner, pc.log_level);
    try {
      l.plugin.reset(l.library.entry->create(*l.host));
    } catch (...) {
      throw PluginError("plugin '" + pc.name + "': create failed: " + thrown_text());
    }
    if (!l.plugin) throw PluginError("plugin '" + pc.name + "': create returned nothing");
    try {
      l.plugin->configure(*pc.config);
    } catch (const ConfigError&) {
      throw;
    } catch (...) {
      throw ConfigError(pc.config->file() + ":" + std::to_string(pc.config->line()) + ": " +
                        pc.config->path() + ": " + thrown_text());
    }
    plugins_.push_back(std::move(l));
  }
  config.document->check_unknown_keys();
}

void PluginManager::start_all() {
  for (auto& l : plugins_) {
    try {
      log_->info("starting plugin '{}' {}", l.owner->name, l.library.entry->version);
      l.plugin->start();
      l.started = true;
    } catch (...) {
      const std::string message =
          "plugin '" + l.owner->name + "' failed to start: " + thrown_text();
      log_->error("{}", message);
      // What it registered before failing goes too.
      services_.bus.remove_owner(l.owner->name);
      services_.router.remove_owner(l.owner->name);
      stop_all();
      throw PluginError(message);
    }
  }
}

void PluginManager::stop_one(Loaded& l) {
  if (!l.started) return;
  l.started = false;
  services_.router.remove_owner(l.owner->name);
  services_.bus.remove_owner(l.owner->name);
  try {
    log_->info("stopping plugin '{}'", l.owner->name);
    l.plugin->stop();
  } catch (...) {
    log_->error("plugin '{}' failed to stop cleanly: {}", l.owner->name, thrown_text());
  }
}

void PluginManager::stop_all() {
  for (auto it = plugins_.rbegin(); it != plugins_.rend(); ++it) stop_one(*it);
}

void PluginManager::destroy_all() {
  while (!plugins_.empty()) {
    Loaded& l = plugins_.back();
    try {
      l.plugin.reset();
    } catch (...) {
      log_->error("plugin '{}' threw from its destructor", l.owner->name);
    }
    plugins_.pop_back();
  }
}

bool PluginManager::all_started() const {
  return std::all_of(plugins_.begin(), plugins_.end(), [](const auto& l) { return l.started; });
}

std::vector<std::string> PluginManager::start_order_names() const {
  std::vector<std::string> out;
  for (const auto& l : plugins_) out.push_back(l.owner->name);
  return out;
}

std::vector<PluginInfo> PluginManager::infos() const {
  std::vector<PluginInfo> out;
  for (const auto& l : plugins_) out.push_back(info_of(l.library, true));
  return out;
}

std::vector<PluginInfo> read_manifests(const KernelConfig& config) {
  std::vector<PluginInfo> out;
  std::vector<DependencyInfo> enabled;
  for (const auto& pc : config.plugins) {
    PluginInfo info;
    try {
      info = info_of(open_plugin_library(pc.name, config.library_path(pc)), pc.enabled);
    } catch (const std::exception& e) {
      // A disabled entry is not loaded at start: a library that is not
      // there (yet) is shown, not an error.
      if (pc.enabled) throw;
      info.name = pc.name;
      info.path = config.library_path(pc).string();
      info.enabled = false;
      info.unreadable = e.what();
    }
    if (pc.enabled) enabled.push_back({info.name, info.requires_list, info.wants_list});
    out.push_back(std::move(info));
  }
  // The same dependency check as start-up: a missing hard dependency or a
  // cycle is an error here too.
  start_order(enabled);
  return out;
}

}  // namespace parley::kernel
