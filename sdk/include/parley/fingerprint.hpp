// The build fingerprint: the facts about a build that must match between the
// kernel and a plugin because C++ types cross the boundary between them
// (std::string, std::function, boost::json values, libpqxx connections,
// exceptions). Like PostgreSQL's magic block, the kernel compares each field
// and refuses a plugin naming the first that differs and both values.
//
// Each macro below can be set on the compiler's command line; the SDK's own
// tests do that to build a plugin that claims another build.
#pragma once

#include <cstdint>

#include <boost/version.hpp>
#include <pqxx/version.hxx>

#include "parley/version.hpp"

#define PARLEY_FINGERPRINT_STR2(x) #x
#define PARLEY_FINGERPRINT_STR(x) PARLEY_FINGERPRINT_STR2(x)

#ifndef PARLEY_FINGERPRINT_COMPILER
#if defined(__clang__)
#define PARLEY_FINGERPRINT_COMPILER \
  "clang " PARLEY_FINGERPRINT_STR(__clang_major__) "." PARLEY_FINGERPRINT_STR(__clang_minor__)
#elif defined(__GNUC__)
#define PARLEY_FINGERPRINT_COMPILER \
  "gcc " PARLEY_FINGERPRINT_STR(__GNUC__) "." PARLEY_FINGERPRINT_STR(__GNUC_MINOR__)
#else
#define PARLEY_FINGERPRINT_COMPILER "unknown"
#endif
#endif

#ifndef PARLEY_FINGERPRINT_STDLIB
#if defined(_GLIBCXX_RELEASE)
#define PARLEY_FINGERPRINT_STDLIB "libstdc++ " PARLEY_FINGERPRINT_STR(_GLIBCXX_RELEASE)
#elif defined(_LIBCPP_VERSION)
#define PARLEY_FINGERPRINT_STDLIB "libc++ " PARLEY_FINGERPRINT_STR(_LIBCPP_VERSION)
#else
#define PARLEY_FINGERPRINT_STDLIB "unknown"
#endif
#endif

#ifndef PARLEY_FINGERPRINT_CXX11_ABI
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define PARLEY_FINGERPRINT_CXX11_ABI _GLIBCXX_USE_CXX11_ABI
#else
#define PARLEY_FINGERPRINT_CXX11_ABI -1
#endif
#endif

#ifndef PARLEY_FINGERPRINT_BOOST_VERSION
#define PARLEY_FINGERPRINT_BOOST_VERSION BOOST_VERSION
#endif

#ifndef PARLEY_FINGERPRINT_PQXX_VERSION
#define PARLEY_FINGERPRINT_PQXX_VERSION PQXX_VERSION
#endif

namespace parley {

struct BuildFingerprint {
  const char* compiler;          // "gcc 12.2": major and minor version
  const char* standard_library;  // "libstdc++ 12"
  int cxx11_abi;                 // _GLIBCXX_USE_CXX11_ABI (the std::string layout)
  long cplusplus;                // __cplusplus (the language standard)
  int boost_version;             // BOOST_VERSION (boost::json values cross)
  const char* pqxx_version;      // PQXX_VERSION (pqxx::connection crosses)
  const char* sdk_version;       // PARLEY_SDK_VERSION
};

// The fingerprint of the code that includes this header, evaluated in that
// code: in a plugin, the plugin's build; in the kernel, the kernel's.
inline const BuildFingerprint* this_build_fingerprint() {
  static const BuildFingerprint fingerprint{PARLEY_FINGERPRINT_COMPILER,
                                            PARLEY_FINGERPRINT_STDLIB,
                                            PARLEY_FINGERPRINT_CXX11_ABI,
                                            __cplusplus,
                                            PARLEY_FINGERPRINT_BOOST_VERSION,
                                            PARLEY_FINGERPRINT_PQXX_VERSION,
                                            PARLEY_SDK_VERSION};
  return &fingerprint;
}

}  // namespace parley
