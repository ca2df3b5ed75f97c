// A scenario is one kind of measurement (`parley-bench NAME [options]`).
// Adding one: a class deriving from Scenario in bench/src/scenarios/, its
// options read in configure(), the measurement in run(), and
// PARLEY_BENCH_SCENARIO(ClassName) at the end of the file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "client.hpp"
#include "options.hpp"

namespace parley::bench {

// What every scenario gets: the common options, a run id, where results go.
class Context {
 public:
  std::string run_id;                        // unique per run: makes emails unique
  NetConfig net;                             // --url, --threads, --source-addresses
  std::optional<pid_t> server_pid;           // --server-pid
  std::chrono::milliseconds timeout{60000};  // --timeout: bound on each setup phase

  boost::json::object results;  // the scenario's measurements

  // Records a failure; the run still writes its JSON, then exits non-zero.
  void fail(const std::string& why) { failures.push_back(why); }
  bool failed() const { return !failures.empty(); }
  std::vector<std::string> failures;
};

class Scenario {
 public:
  virtual ~Scenario() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view description() const = 0;
  // Reads the scenario's own options (before anything runs, so a typo in an
  // option stops the run at once).
  virtual void configure(Options& options) = 0;
  virtual void run(Context& ctx) = 0;
  // Whether the scenario talks to parleyd (needs --url).
  virtual bool uses_server() const { return true; }
};

using ScenarioFactory = std::function<std::unique_ptr<Scenario>()>;
std::map<std::string, ScenarioFactory>& scenario_registry();

struct ScenarioRegistration {
  ScenarioRegistration(const std::string& name, ScenarioFactory factory) {
    scenario_registry().emplace(name, std::move(factory));
  }
};

#define PARLEY_BENCH_SCENARIO(NAME, TYPE)                                                     \
  static const ::parley::bench::ScenarioRegistration parley_bench_registration_##TYPE {       \
    NAME, [] { return std::unique_ptr<::parley::bench::Scenario>(std::make_unique<TYPE>()); } \
  }

// Helpers shared by scenarios.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
inline std::chrono::milliseconds seconds_ms(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0));
}

}  // namespace parley::bench
