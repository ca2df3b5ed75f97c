// What plugins register is checked and rendered so that /metrics stays
// parseable: one series per label set, escaped help, valid names, and no
// reaching into the kernel's or another plugin's metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "metrics_registry.hpp"

namespace parley::kernel {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsRegistryTest, LabelsGivenInAnotherOrderAreTheSameSeries) {
  MetricsRegistry registry;
  PluginMetrics probe(registry, "probe");
  probe.counter("hits_total", "Hits", {{"a", "1"}, {"b", "2"}}).add();
  probe.counter("hits_total", "Hits", {{"b", "2"}, {"a", "1"}}).add();
  const auto text = registry.render();
  EXPECT_THAT(text, HasSubstr("parley_probe_hits_total{a=\"1\",b=\"2\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("b=\"2\",a=")));
}

TEST(MetricsRegistryTest, HelpTextIsOneEscapedLine) {
  MetricsRegistry registry;
  PluginMetrics probe(registry, "probe");
  probe.gauge("depth", "first line\nsecond \\ line").set(3);
  EXPECT_THAT(registry.render(),
              HasSubstr("# HELP parley_probe_depth first line\\nsecond \\\\ line\n"
                        "# TYPE parley_probe_depth gauge\nparley_probe_depth 3\n"));
}

TEST(MetricsRegistryTest, NamesPrometheusCannotParseAreRefused) {
  MetricsRegistry registry;
  PluginMetrics probe(registry, "probe");
  EXPECT_THROW(probe.gauge("odd name-with dash", "h"), std::invalid_argument);
  EXPECT_THROW(probe.counter("9lives_total", "h"), std::invalid_argument);
  EXPECT_THROW(probe.counter("ok_total", "h", {{"bad label", "x"}}), std::invalid_argument);
  EXPECT_THROW(probe.counter("ok_total", "h", {{"__reserved", "x"}}), std::invalid_argument);
  EXPECT_THROW(probe.counter("ok_total", "h", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THAT(registry.render(), Not(HasSubstr("odd")));
}

TEST(MetricsRegistryTest, APluginCannotTakeTheKernelsOrAnotherPluginsMetric) {
  MetricsRegistry registry;
  registry.gauge("parley_db_pool_size", "Pool connections").set(4);
  PluginMetrics db(registry, "db");
  try {
    db.gauge("pool_size", "mine");
    FAIL() << "a plugin named db took the kernel's parley_db_pool_size";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("already registered by the kernel"));
  }
  PluginMetrics a(registry, "a");
  PluginMetrics a_b(registry, "a_b");
  a.counter("b_c_total", "from a").add();
  EXPECT_THROW(a_b.counter("c_total", "from a_b"), std::invalid_argument);
  EXPECT_THAT(registry.render(), HasSubstr("parley_db_pool_size 4\n"));
}

TEST(MetricsRegistryTest, ANameTheKernelRegistersLaterIsReservedForIt) {
  MetricsRegistry registry;
  registry.reserve("parley_errors_total");
  PluginMetrics errors(registry, "errors");
  EXPECT_THROW(errors.counter("total", "mine"), std::invalid_argument);
  registry.counter("parley_errors_total", "Error replies", "code=\"internal\"").add();
  EXPECT_THAT(registry.render(), HasSubstr("parley_errors_total{code=\"internal\"} 1\n"));
}

}  // namespace
}  // namespace parley::kernel
