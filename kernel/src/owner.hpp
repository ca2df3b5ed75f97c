// Who registered something with the kernel: a plugin's name, for log lines
// and clean-up, and a reference that keeps its library loaded while the
// registration (or a copy of its handler) is alive.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace parley::kernel {

struct Owner {
  std::string name;
  std::shared_ptr<void> keepalive;
  // What the plugin's manifest says it handles and serves; registering
  // anything else is refused (the kernel's own tests build owners freely).
  std::vector<std::string> handles{};
  std::vector<std::string> serves{};
};

// Throws unless `owner` declared `name` in `declared` (a manifest list).
inline void require_declared(const Owner& owner, const std::vector<std::string>& declared,
                             std::string_view kind, const std::string& name) {
  for (const auto& d : declared)
    if (d == name || d == "*") return;  // "*": a test or diagnostic plugin
  throw std::runtime_error("plugin '" + owner.name + "' registers " + std::string(kind) + " '" +
                           name + "', which its manifest does not declare");
}
using OwnerPtr = std::shared_ptr<const Owner>;

}  // namespace parley::kernel
