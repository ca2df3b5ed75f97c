// Config validation: each class of error names the file, line and key path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernel.hpp"
#include "kernel_config.hpp"
#include "temp_dir.hpp"

namespace parley::kernel {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

std::string load_error(const std::string& yaml) {
  TempDir dir;
  const auto file = dir.write("parley.yaml", yaml);
  try {
    auto config = load_kernel_config(file.string());
    Kernel kernel(std::move(config));
    kernel.load();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

const std::string kPluginDir = std::string("plugin_dir: ") + TEST_PLUGIN_DIR + "\n";

TEST(Config, ValidConfigLoads) {
  EXPECT_EQ(
      load_error(
          kPluginDir +
          "server:\n  port: 0\nplugins:\n  - name: alpha\n    config:\n      journal: /dev/null\n"),
      "");
}

TEST(Config, UnknownTopLevelKeyNamesLineAndKey) {
  const auto error = load_error(kPluginDir + "server:\n  port: 0\nsurprise: 1\n");
  EXPECT_THAT(error, HasSubstr("parley.yaml:4: surprise: unknown key"));
}

TEST(Config, UnknownNestedKeyHasFullPath) {
  const auto error = load_error(kPluginDir + "server:\n  port: 0\n  prot: 9\n");
  EXPECT_THAT(error, HasSubstr(":4: server.prot: unknown key"));
}

TEST(Config, UnknownKeyInsidePluginBlockHasFullPath) {
  const auto error = load_error(
      kPluginDir +
      "plugins:\n  - name: alpha\n    config:\n      journal: /dev/null\n      colour: red\n");
  EXPECT_THAT(error, HasSubstr(":6: plugins[0].config.colour: unknown key"));
}

TEST(Config, WrongTypeNamesExpectedType) {
  const auto error = load_error(kPluginDir + "server:\n  port: eighty\n");
  EXPECT_THAT(error, HasSubstr(":3: server.port: expected an integer, got \"eighty\""));
}

TEST(Config, WrongTypeInPluginBlock) {
  const auto error = load_error(kPluginDir +
                                "plugins:\n  - name: alpha\n    config:\n      journal: "
                                "/dev/null\n      fail_start: maybe\n");
  EXPECT_THAT(error,
              HasSubstr(":6: plugins[0].config.fail_start: expected true or false, got \"maybe\""));
}

TEST(Config, MissingRequiredKeyInPluginBlock) {
  const auto error =
      load_error(kPluginDir + "plugins:\n  - name: alpha\n    config:\n      greeting: hi\n");
  EXPECT_THAT(error, HasSubstr("plugins[0].config.journal: required key is missing"));
}

TEST(Config, MissingPluginNameIsReported) {
  const auto error = load_error(kPluginDir + "plugins:\n  - library: parley_alpha.so\n");
  EXPECT_THAT(error, HasSubstr(":3: plugins[0].name: required key is missing"));
}

TEST(Config, MissingPluginLibraryIsNamed) {
  const auto error = load_error(kPluginDir + "plugins:\n  - name: ghost\n");
  EXPECT_THAT(error, HasSubstr("plugin 'ghost'"));
  EXPECT_THAT(error, HasSubstr("parley_ghost.so"));
  EXPECT_THAT(error, HasSubstr("does not exist"));
}

TEST(Config, OutOfRangeValue) {
  const auto error = load_error(kPluginDir + "server:\n  port: 70000\n");
  EXPECT_THAT(error, HasSubstr(":3: server.port: must be between 0 and 65535"));
}

TEST(Config, APluginCanPointAtOneItemOfAList) {
  TempDir dir;
  const auto file = dir.write("parley.yaml",
                              "plugins:\n  - name: x\n    config:\n      words:\n"
                              "        - fine\n        - \"bad word\"\n");
  auto config = load_kernel_config(file.string());
  Config* block = config.plugins.at(0).config;
  try {
    block->fail_item("words", 1, "must be one word");
    FAIL() << "fail_item returned";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("parley.yaml:6: plugins[0].config.words[1]: must be one word"));
  }
}

TEST(Config, SyntaxErrorHasLine) {
  const auto error = load_error("server:\n  port: [1, 2\n");
  EXPECT_THAT(error, HasSubstr("parley.yaml:"));
  EXPECT_THAT(error, HasSubstr("invalid YAML"));
}

TEST(Config, EnvironmentVariablesAreSubstituted) {
  setenv("PARLEY_TEST_GREETING", "bonjour", 1);
  TempDir dir;
  const auto file =
      dir.write("parley.yaml", kPluginDir + "database:\n  url: ${PARLEY_TEST_GREETING}-db\n");
  EXPECT_EQ(load_kernel_config(file.string()).database.url, "bonjour-db");
}

TEST(Config, EnvironmentDefaultIsUsedWhenUnset) {
  unsetenv("PARLEY_TEST_UNSET");
  TempDir dir;
  const auto file =
      dir.write("parley.yaml", kPluginDir + "database:\n  url: ${PARLEY_TEST_UNSET:-fallback}\n");
  EXPECT_EQ(load_kernel_config(file.string()).database.url, "fallback");
}

TEST(Config, UnsetEnvironmentVariableIsAnError) {
  unsetenv("PARLEY_TEST_UNSET");
  const auto error = load_error(kPluginDir + "database:\n  url: ${PARLEY_TEST_UNSET}\n");
  EXPECT_THAT(error,
              HasSubstr(":3: database.url: environment variable PARLEY_TEST_UNSET is not set"));
}

TEST(Config, DisabledPluginIsNotLoadedNorValidated) {
  EXPECT_EQ(
      load_error(kPluginDir +
                 "plugins:\n  - name: ghost\n    enabled: false\n    config:\n      anything: 1\n"),
      "");
}

}  // namespace
}  // namespace parley::kernel

namespace parley::kernel {
namespace {

TEST(Config, PendingRequestBytesMustHoldOneFrame) {
  const auto error = load_error(kPluginDir +
                                "server:\n  max_frame_bytes: 65536\n"
                                "  max_pending_request_bytes: 65535\n");
  EXPECT_THAT(error, HasSubstr(":4: server.max_pending_request_bytes: must be at least "
                               "max_frame_bytes (65536)"));
  EXPECT_EQ(load_error(kPluginDir + "server:\n  max_pending_request_bytes: 65536\n"), "");
  // Unset, it follows a raised max_frame_bytes: such a config, valid before
  // the key existed, still loads.
  EXPECT_EQ(load_error(kPluginDir + "server:\n  max_frame_bytes: 4194304\n"), "");
}

TEST(Config, HttpKeepaliveRequestsIsRangeChecked) {
  const auto error = load_error(kPluginDir + "server:\n  http_keepalive_requests: 0\n");
  EXPECT_THAT(error, HasSubstr(":3: server.http_keepalive_requests: must be between 1 and"));
}

// The cap must act before the descriptors run out: past the limit every
// accept fails, whoever it is for.
TEST(Config, MaxConnectionsIsLoweredToFitTheDescriptorLimit) {
  EXPECT_EQ(max_connections_within(100000, 20000, 70), 19930u);
  EXPECT_EQ(max_connections_within(5000, 20000, 70), 5000u) << "a cap that fits stays";
  EXPECT_EQ(max_connections_within(100000, 100, 70), 50u) << "a limit below the reserve";
  EXPECT_EQ(max_connections_within(100000, 1, 70), 1u);
}

TEST(Config, TheReserveCoversTheDatabasePool) {
  TempDir dir;
  auto config = load_kernel_config(
      dir.write("parley.yaml", "database:\n  url: postgresql://x/y\n  pool_size: 10\n").string());
  EXPECT_EQ(descriptor_reserve(config), kDescriptorReserve + 12);
  config.database.url.clear();
  EXPECT_EQ(descriptor_reserve(config), kDescriptorReserve);
}

}  // namespace
}  // namespace parley::kernel
