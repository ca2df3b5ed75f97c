#include "scenario.hpp"

namespace parley::bench {

std::map<std::string, ScenarioFactory>& scenario_registry() {
  static std::map<std::string, ScenarioFactory> registry;
  return registry;
}

}  // namespace parley::bench
