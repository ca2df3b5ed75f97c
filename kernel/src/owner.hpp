// Who registered something with the kernel: a plugin's name, for log lines
// and clean-up, and a reference that keeps its library loaded while the
// registration (or a copy of its handler) is alive.
#pragma once

#include <memory>
#include <string>

namespace parley::kernel {

struct Owner {
  std::string name;
  std::shared_ptr<void> keepalive;
};
using OwnerPtr = std::shared_ptr<const Owner>;

}  // namespace parley::kernel
