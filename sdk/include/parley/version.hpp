// The SDK's version and the ABI version the kernel checks before it calls
// anything in a plugin.
#pragma once

#include <cstdint>

// Bumped whenever a type or interface that crosses the plugin boundary
// changes in a way that breaks already-built plugins. The kernel refuses a
// plugin whose manifest names another ABI version.
#define PARLEY_SDK_ABI_VERSION 2u

// The release of the SDK headers, for humans and --version output.
#define PARLEY_SDK_VERSION "2.2.0"

namespace parley {
inline constexpr std::uint32_t kSdkAbiVersion = PARLEY_SDK_ABI_VERSION;
}  // namespace parley
