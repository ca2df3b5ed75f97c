// Loading real plugin libraries: manifests, ABI checks, dependency order,
// start-up rollback, and stop order.
#include <gmock/gmock.h>

#include <gtest/gtest.h>
#include <boost/version.hpp>

#include "kernel.hpp"
#include "kernel_config.hpp"
#include "temp_dir.hpp"

namespace parley::kernel {
namespace {

using test::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PluginManagerTest : public ::testing::Test {
 protected:
  // A config listing `plugins` (name, extra config lines), all journaling to one file.
  std::unique_ptr<Kernel> make_kernel(
      const std::vector<std::pair<std::string, std::string>>& plugins) {
    std::string yaml = std::string("plugin_dir: ") + TEST_PLUGIN_DIR +
                       "\nserver:\n  listen: 127.0.0.1\n  port: 0\nplugins:\n";
    for (const auto& [name, extra] : plugins) {
      yaml += "  - name: " + name + "\n";
      if (name.rfind("lib:", 0) == 0) continue;
      yaml += "    config:\n      journal: " + journal().string() + "\n" + extra;
    }
    const auto file = dir_.write("parley.yaml", yaml);
    return std::make_unique<Kernel>(load_kernel_config(file.string()));
  }

  std::filesystem::path journal() const { return dir_.path() / "journal.txt"; }

  std::vector<std::string> journal_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(test::read_file(journal()));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::string load_error(const std::vector<std::pair<std::string, std::string>>& plugins) {
    try {
      make_kernel(plugins)->load();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  }

  TempDir dir_;
};

TEST_F(PluginManagerTest, GoodPluginLoadsStartsAndStops) {
  auto kernel = make_kernel({{"alpha", ""}});
  kernel->load();
  kernel->start();
  EXPECT_TRUE(kernel->ready());
  kernel->stop();
  EXPECT_THAT(journal_lines(), ElementsAre("start alpha", "stop alpha"));
}

TEST_F(PluginManagerTest, ManifestIsReadable) {
  auto kernel = make_kernel({{"beta", ""}, {"alpha", ""}});
  kernel->load();
  auto infos = kernel->plugins().infos();
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[1].name, "beta");
  EXPECT_EQ(infos[1].version, "1.0.0");
  EXPECT_THAT(infos[1].requires_list, ElementsAre("alpha"));
}

TEST_F(PluginManagerTest, MissingLibraryIsNamed) {
  const auto error = load_error({{"nonexistent", ""}});
  EXPECT_THAT(error, HasSubstr("plugin 'nonexistent'"));
  EXPECT_THAT(error, HasSubstr("does not exist"));
}

TEST_F(PluginManagerTest, FileThatIsNotALibraryIsRefused) {
  const auto error = load_error({{"not_a_library", ""}});
  EXPECT_THAT(error, HasSubstr("plugin 'not_a_library'"));
  EXPECT_THAT(error, HasSubstr("cannot load the library"));
}

TEST_F(PluginManagerTest, LibraryWithoutEntrySymbolIsRefused) {
  const auto error = load_error({{"no_entry", ""}});
  EXPECT_THAT(error, HasSubstr("not a Parley plugin"));
  EXPECT_THAT(error, HasSubstr("parley_plugin_entry"));
}

TEST_F(PluginManagerTest, OtherSdkAbiIsRefusedNamingBothVersions) {
  const auto error = load_error({{"future_abi", ""}});
  EXPECT_THAT(error, HasSubstr("built against Parley SDK ABI 999"));
  EXPECT_THAT(error,
              HasSubstr("this kernel speaks SDK ABI " + std::to_string(PARLEY_SDK_ABI_VERSION)));
  EXPECT_FALSE(std::filesystem::exists(journal())) << "nothing in the plugin may run";
}

TEST_F(PluginManagerTest, OtherBuildFingerprintIsRefusedNamingTheFieldAndBothValues) {
  const auto error = load_error({{"other_boost", ""}});
  EXPECT_THAT(error, HasSubstr("plugin 'other_boost'"));
  EXPECT_THAT(error, HasSubstr("built with Boost (BOOST_VERSION) 107000"));
  EXPECT_THAT(error, HasSubstr("this kernel with " + std::to_string(BOOST_VERSION)));
  EXPECT_FALSE(std::filesystem::exists(journal())) << "nothing in the plugin may run";
}

TEST_F(PluginManagerTest, DependencyCycleStopsStartupNamingThePlugins) {
  const auto error = load_error({{"cycle_a", ""}, {"cycle_b", ""}});
  EXPECT_THAT(error, HasSubstr("cycle"));
  EXPECT_THAT(error, HasSubstr("cycle_a"));
  EXPECT_THAT(error, HasSubstr("cycle_b"));
}

TEST_F(PluginManagerTest, MissingHardDependencyStopsStartup) {
  const auto error = load_error({{"needs_missing", ""}});
  EXPECT_THAT(error, HasSubstr("plugin 'needs_missing' requires plugin 'nowhere'"));
}

TEST_F(PluginManagerTest, DisabledHardDependencyCountsAsMissing) {
  std::string yaml = std::string("plugin_dir: ") + TEST_PLUGIN_DIR +
                     "\nplugins:\n  - name: alpha\n    enabled: false\n  - name: beta\n    "
                     "config:\n      journal: " +
                     journal().string() + "\n";
  const auto file = dir_.write("parley.yaml", yaml);
  Kernel kernel(load_kernel_config(file.string()));
  try {
    kernel.load();
    FAIL() << "expected a missing dependency";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("requires plugin 'alpha'"));
  }
}

TEST_F(PluginManagerTest, StartsInDependencyOrderAndStopsInReverse) {
  // Listed in the worst order: gamma wants beta, beta requires alpha.
  auto kernel = make_kernel({{"gamma", ""}, {"beta", ""}, {"alpha", ""}});
  kernel->load();
  kernel->start();
  kernel->stop();
  EXPECT_THAT(journal_lines(), ElementsAre("start alpha", "start beta", "start gamma", "stop gamma",
                                           "stop beta", "stop alpha"));
}

TEST_F(PluginManagerTest, SoftDependencyAbsentIsFine) {
  auto kernel = make_kernel({{"gamma", ""}});
  kernel->load();
  kernel->start();
  kernel->stop();
  EXPECT_THAT(journal_lines(), ElementsAre("start gamma", "stop gamma"));
}

TEST_F(PluginManagerTest, TwoPluginsHandlingOneRequestTypeIsAStartupErrorNamingBoth) {
  auto kernel = make_kernel(
      {{"alpha", "      handle: [shared.type]\n"}, {"gamma", "      handle: [shared.type]\n"}});
  kernel->load();
  try {
    kernel->start();
    FAIL() << "expected start to fail";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("'shared.type' is registered by both plugin 'alpha' and plugin 'gamma'"));
  }
  EXPECT_THAT(journal_lines(), ElementsAre("start alpha", "start gamma", "stop alpha"));
}

// A clock the test drives: plugins see its time, not the system's.
class ManualClock : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override { return now_; }
  std::chrono::system_clock::time_point now_{std::chrono::milliseconds(1'000'000)};
};

// Captures a request's answer.
class CapturingSink : public ReplySink {
 public:
  void answer(Status status, boost::json::object result) override {
    status_ = status;
    result_ = std::move(result);
  }
  Status status_;
  boost::json::object result_;
};

TEST_F(PluginManagerTest, PluginsSeeTheClockTheKernelGivesThem) {
  ManualClock clock;
  const auto file = dir_.write(
      "clock.yaml",
      std::string("server:\n  listen: 127.0.0.1\n  port: 0\nplugin_dir: ") + TEST_PLUGIN_DIR +
          "\nplugins:\n  - name: alpha\n    config:\n      journal: " + journal().string() + "\n");
  Kernel kernel(load_kernel_config(file.string()), &clock);
  kernel.load();
  kernel.start();
  auto route = kernel.router().find("alpha.echo");
  ASSERT_TRUE(route);
  auto ask = [&] {
    auto sink = std::make_shared<CapturingSink>();
    kernel.router().invoke(*route, Request{"alpha.echo", {}, 1, "u", "127.0.0.1"}, Reply(sink));
    return sink->result_.at("now_ms").as_int64();
  };
  EXPECT_EQ(ask(), 1'000'000);
  clock.now_ += std::chrono::hours(24);
  EXPECT_EQ(ask(), 1'000'000 + 24 * 3600 * 1000);
  kernel.stop();
}

TEST_F(PluginManagerTest, FailedStartStopsTheAlreadyStartedInReverse) {
  auto kernel = make_kernel({{"alpha", ""}, {"beta", ""}, {"gamma", "      fail_start: true\n"}});
  kernel->load();
  try {
    kernel->start();
    FAIL() << "expected start to fail";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("plugin 'gamma' failed to start: told to fail"));
  }
  EXPECT_THAT(journal_lines(),
              ElementsAre("start alpha", "start beta", "start gamma", "stop beta", "stop alpha"));
  EXPECT_FALSE(kernel->ready());
}

TEST_F(PluginManagerTest, AStartThatThrowsANonExceptionFailsLikeAnyOther) {
  auto kernel = make_kernel({{"alpha", ""}, {"beta", "      throw_int_in_start: true\n"}});
  kernel->load();
  try {
    kernel->start();
    FAIL() << "expected start to fail";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("plugin 'beta' failed to start: it threw something that is "
                                    "not a std::exception"));
  }
  EXPECT_THAT(journal_lines(), ElementsAre("start alpha", "start beta", "stop alpha"));
}

}  // namespace
}  // namespace parley::kernel
