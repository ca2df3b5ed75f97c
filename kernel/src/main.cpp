// parleyd: the Parley kernel.
//
//   parleyd [--config FILE]         run the server (default FILE: config/parley.yaml)
//   parleyd --check-config FILE     validate FILE and the plugins it names, then exit
//   parleyd --list-plugins [--config FILE]
//   parleyd --version
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kernel.hpp"
#include "logging.hpp"
#include "parley/version.hpp"
#include "thread_names.hpp"

namespace {

constexpr const char* kUsage =
    "usage: parleyd [--config FILE]\n"
    "       parleyd --check-config FILE\n"
    "       parleyd --list-plugins [--config FILE]\n"
    "       parleyd --version\n";

int fail(const std::string& message) {
  std::cerr << "parleyd: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace parley::kernel;
  std::string config_file = "config/parley.yaml";
  enum class Mode { run, check, list } mode = Mode::run;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {
      std::cout << "parleyd " << PARLEY_VERSION << " (SDK " << PARLEY_SDK_VERSION << ", SDK ABI "
                << PARLEY_SDK_ABI_VERSION << ")\n";
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if ((arg == "--config" || arg == "--check-config") && i + 1 < argc) {
      config_file = argv[++i];
      if (arg == "--check-config") mode = Mode::check;
    } else if (arg == "--list-plugins") {
      mode = Mode::list;
    } else {
      std::cerr << kUsage;
      return 2;
    }
  }

  // Each connection is a file descriptor: allow as many as the hard limit does.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  // Signals are taken by sigwait() below, so every thread must block them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  KernelConfig config;
  try {
    config = load_kernel_config(config_file);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  configure_logging(config.log);

  if (mode == Mode::list) {
    try {
      for (const auto& p : read_manifests(config)) {
        if (!p.unreadable.empty()) {
          std::cout << fmt::format("{} (disabled; not readable: {})\n  library: {}\n", p.name,
                                   p.unreadable, p.path);
          continue;
        }
        std::cout << fmt::format("{} {}{}\n  {}\n  library: {}\n", p.name, p.version,
                                 p.enabled ? "" : " (disabled)", p.description, p.path);
        // Only the lists a plugin has, so that an empty one is not mistaken for a value.
        auto line = [](std::string_view label, const std::vector<std::string>& names) {
          if (!names.empty()) std::cout << fmt::format("  {}: {}\n", label, fmt::join(names, ", "));
        };
        line("requires", p.requires_list);
        line("wants", p.wants_list);
        line("handles", p.declared.handles);
        line("serves", p.declared.serves);
        line("publishes", p.declared.publishes);
        line("subscribes", p.declared.subscribes);
        line("hooks", p.declared.hooks);
      }
    } catch (const std::exception& e) {
      return fail(e.what());
    }
    return 0;
  }

  const auto shutdown_timeout = config.shutdown_timeout;
  auto kernel = std::make_unique<Kernel>(std::move(config));
  try {
    kernel->load();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (mode == Mode::check) {
    std::cout << config_file << ": ok\n";
    return 0;
  }

  try {
    kernel->start();
  } catch (const std::exception& e) {
    return fail(e.what());
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  const auto timeout = shutdown_timeout;
  std::fprintf(stderr, "parleyd: %s received, stopping\n", strsignal(signal_number));
  // A stop that hangs (a plugin that never returns) must not keep the
  // process alive: past the bound, exit anyway, and say so.
  std::thread watchdog([timeout] {
    parley::kernel::name_this_thread("parley-stopping");
    std::this_thread::sleep_for(timeout);
    std::fprintf(stderr, "parleyd: stop took longer than %lld ms, exiting\n",
                 static_cast<long long>(timeout.count()));
    std::_Exit(3);
  });
  watchdog.detach();
  kernel->stop();
  kernel.reset();
  return 0;
}
