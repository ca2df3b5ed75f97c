#include "plugin_library.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <map>

namespace parley::kernel {

namespace {

std::vector<std::string> to_list(const char* const* names) {
  std::vector<std::string> out;
  for (; names != nullptr && *names != nullptr; ++names) out.emplace_back(*names);
  return out;
}

// Refuses a plugin whose build differs from the kernel's in anything that
// changes the types crossing the boundary, naming the field and both values.
void check_fingerprint(const std::string& where, const BuildFingerprint* plugin) {
  const BuildFingerprint& kernel = *this_build_fingerprint();
  if (plugin == nullptr) throw PluginError(where + ": the manifest has no build fingerprint");
  auto refuse = [&](std::string_view field, const std::string& theirs, const std::string& ours) {
    throw PluginError(where + ": built with " + std::string(field) + " " + theirs +
                      ", this kernel with " + ours + "; rebuild the plugin with the kernel's " +
                      "toolchain and libraries");
  };
  auto text = [](const char* value) { return std::string(value != nullptr ? value : "(none)"); };
  if (text(plugin->compiler) != text(kernel.compiler))
    refuse("compiler", text(plugin->compiler), text(kernel.compiler));
  if (text(plugin->standard_library) != text(kernel.standard_library))
    refuse("standard library", text(plugin->standard_library), text(kernel.standard_library));
  if (plugin->cxx11_abi != kernel.cxx11_abi)
    refuse("_GLIBCXX_USE_CXX11_ABI", std::to_string(plugin->cxx11_abi),
           std::to_string(kernel.cxx11_abi));
  if (plugin->cplusplus != kernel.cplusplus)
    refuse("C++ standard (__cplusplus)", std::to_string(plugin->cplusplus),
           std::to_string(kernel.cplusplus));
  if (plugin->boost_version != kernel.boost_version)
    refuse("Boost (BOOST_VERSION)", std::to_string(plugin->boost_version),
           std::to_string(kernel.boost_version));
  if (text(plugin->pqxx_version) != text(kernel.pqxx_version))
    refuse("libpqxx", text(plugin->pqxx_version), text(kernel.pqxx_version));
  if (text(plugin->sdk_version) != text(kernel.sdk_version)) {
    // Here the cure is other headers, not another compiler.
    throw PluginError(where + ": built with Parley SDK " + text(plugin->sdk_version) +
                      ", this kernel with " + text(kernel.sdk_version) +
                      "; rebuild the plugin against the kernel's SDK (" + text(kernel.sdk_version) +
                      ")");
  }
}

}  // namespace

std::vector<std::string> PluginLibrary::requires_list() const {
  return to_list(entry->hard_dependencies);
}
std::vector<std::string> PluginLibrary::wants_list() const {
  return to_list(entry->soft_dependencies);
}
Declarations PluginLibrary::declarations() const {
  return {to_list(entry->handles), to_list(entry->serves), to_list(entry->publishes),
          to_list(entry->subscribes), to_list(entry->hooks)};
}

PluginLibrary open_plugin_library(const std::string& expected_name,
                                  const std::filesystem::path& path) {
  const std::string where = "plugin '" + expected_name + "' (" + path.string() + ")";
  std::error_code exists_error;
  if (!std::filesystem::exists(path, exists_error)) {
    throw PluginError(where + ": the library file does not exist");
  }
  auto library = std::make_shared<boost::dll::shared_library>();
  boost::system::error_code ec;
  library->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    const char* detail = dlerror();
    throw PluginError(where +
                      ": cannot load the library: " + (detail != nullptr ? detail : ec.message()));
  }
  if (!library->has("parley_plugin_entry")) {
    throw PluginError(where + ": not a Parley plugin (it exports no parley_plugin_entry)");
  }
  auto& entry_function = library->get_alias<PluginEntryFunction>("parley_plugin_entry");
  const PluginEntry* entry = entry_function();
  if (entry == nullptr) throw PluginError(where + ": parley_plugin_entry returned no manifest");
  if (entry->sdk_abi != kSdkAbiVersion) {
    throw PluginError(where + ": built against Parley SDK ABI " + std::to_string(entry->sdk_abi) +
                      ", this kernel speaks SDK ABI " + std::to_string(kSdkAbiVersion) +
                      "; rebuild the plugin against this SDK");
  }
  check_fingerprint(where, entry->fingerprint);
  if (entry->name == nullptr || expected_name != entry->name) {
    throw PluginError(where + ": the library is plugin '" +
                      std::string(entry->name ? entry->name : "") + "', not '" + expected_name +
                      "'");
  }
  if (entry->create == nullptr) throw PluginError(where + ": the manifest has no create function");
  return {std::move(library), entry, path};
}

std::vector<std::size_t> start_order(const std::vector<DependencyInfo>& plugins) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < plugins.size(); ++i) index[plugins[i].name] = i;

  std::vector<std::vector<std::size_t>> deps(plugins.size());
  for (std::size_t i = 0; i < plugins.size(); ++i) {
    for (const auto& r : plugins[i].requires_list) {
      auto it = index.find(r);
      if (it == index.end()) {
        throw PluginError("plugin '" + plugins[i].name + "' requires plugin '" + r +
                          "', which is not configured or not enabled");
      }
      deps[i].push_back(it->second);
    }
    for (const auto& w : plugins[i].wants_list) {
      if (auto it = index.find(w); it != index.end()) deps[i].push_back(it->second);
    }
  }

  enum class Mark { none, visiting, done };
  std::vector<Mark> marks(plugins.size(), Mark::none);
  std::vector<std::size_t> order;
  std::vector<std::size_t> stack;
  auto visit = [&](auto&& self, std::size_t i) -> void {
    if (marks[i] == Mark::done) return;
    if (marks[i] == Mark::visiting) {
      auto from = std::find(stack.begin(), stack.end(), i);
      std::string cycle;
      for (auto it = from; it != stack.end(); ++it) cycle += plugins[*it].name + " -> ";
      cycle += plugins[i].name;
      throw PluginError("plugin dependency cycle: " + cycle);
    }
    marks[i] = Mark::visiting;
    stack.push_back(i);
    for (std::size_t d : deps[i]) self(self, d);
    stack.pop_back();
    marks[i] = Mark::done;
    order.push_back(i);
  };
  for (std::size_t i = 0; i < plugins.size(); ++i) visit(visit, i);
  return order;
}

}  // namespace parley::kernel
