// A small real plugin for the kernel's tests, built several times under
// different names and dependencies (see tests/kernel/CMakeLists.txt). It
// appends "start <name>" / "stop <name>" to the file named by `journal`, may
// be told to fail in start(), and answers the request type "<name>.echo".
#include <fstream>

#include <parley/sdk.hpp>

#ifndef JOURNAL_PLUGIN_NAME
#error "JOURNAL_PLUGIN_NAME must be defined"
#endif
#ifndef JOURNAL_PLUGIN_ABI
#define JOURNAL_PLUGIN_ABI PARLEY_SDK_ABI_VERSION
#endif

namespace {

class JournalPlugin : public parley::Plugin {
 public:
  explicit JournalPlugin(parley::Host& host) : host_(host) {}

  void configure(parley::Config& config) override {
    journal_ = config.require_string("journal");
    fail_start_ = config.bool_or("fail_start", false);
    greeting_ = config.string_or("greeting", "hello");
  }

  void start() override {
    write("start");
    if (fail_start_) throw std::runtime_error("told to fail");
    host_.gateway().handle(std::string(JOURNAL_PLUGIN_NAME) + ".echo",
                           [this](parley::Request request, parley::Reply reply) {
                             boost::json::object result;
                             result["greeting"] = greeting_;
                             result["user_id"] = request.user_id;
                             reply.ok(std::move(result));
                           },
                           {.before_login = true});
  }

  void stop() override { write("stop"); }

 private:
  void write(const char* what) {
    std::ofstream out(journal_, std::ios::app);
    out << what << " " << JOURNAL_PLUGIN_NAME << "\n";
  }

  parley::Host& host_;
  std::string journal_;
  std::string greeting_;
  bool fail_start_ = false;
};

#ifdef JOURNAL_PLUGIN_REQUIRES
const char* const kRequires[] = {JOURNAL_PLUGIN_REQUIRES, nullptr};
#else
const char* const kRequires[] = {nullptr};
#endif
#ifdef JOURNAL_PLUGIN_WANTS
const char* const kWants[] = {JOURNAL_PLUGIN_WANTS, nullptr};
#else
const char* const kWants[] = {nullptr};
#endif

const parley::PluginEntry* entry() {
  static const parley::PluginEntry manifest{
      JOURNAL_PLUGIN_ABI, JOURNAL_PLUGIN_NAME, "1.0.0", "records its lifecycle for the kernel's tests",
      kRequires,          kWants,
      [](parley::Host& host) -> parley::Plugin* { return new JournalPlugin(host); }};
  return &manifest;
}

}  // namespace

PARLEY_PLUGIN(entry)
