// A small real plugin for the kernel's tests, built several times under
// different names and dependencies (see tests/kernel/CMakeLists.txt). It
// appends "start <name>" / "stop <name>" to the file named by `journal`, may
// be told to fail in start(), and answers the request type "<name>.echo"
// (and a few more that let the gateway tests drive the kernel).
#include <chrono>
#include <fstream>
#include <mutex>

#include <parley/fields.hpp>
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
    throw_int_in_start_ = config.bool_or("throw_int_in_start", false);
    greeting_ = config.string_or("greeting", "hello");
    extra_types_ = config.get_string_list("handle").value_or(std::vector<std::string>{});
    record_ = config.get_string_list("record").value_or(std::vector<std::string>{});
    if (auto* filter = config.section("filter")) {
      filter_hook_ = filter->require_string("hook");
      veto_word_ = filter->string_or("veto", "");
      rewrite_from_ = filter->string_or("rewrite_from", "");
      rewrite_to_ = filter->string_or("rewrite_to", "");
    }
  }

  void start() override {
    write("start");
    if (fail_start_) throw std::runtime_error("told to fail");
    if (throw_int_in_start_) throw 42;  // not a std::exception: still a failed start
    start_observing();
    auto echo = [this](parley::Request request, parley::Reply reply) {
      boost::json::object result;
      result["greeting"] = greeting_;
      result["user_id"] = request.user_id;
      result["now_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                             host_.clock().now().time_since_epoch())
                             .count();
      reply.ok(std::move(result));
    };
    host_.gateway().handle(std::string(JOURNAL_PLUGIN_NAME) + ".echo", echo,
                           {.before_login = true});
    for (const auto& type : extra_types_)
      host_.gateway().handle(type, echo, {.before_login = true});
    // Sends `count` events of `size` bytes to the caller's connection: lets
    // the gateway tests pile events onto a client that stopped reading.
    host_.gateway().handle(
        std::string(JOURNAL_PLUGIN_NAME) + ".flood",
        [this](parley::Request request, parley::Reply reply) {
          const auto count = parley::fields::required_int(request.fields, "count");
          const auto size = parley::fields::required_int(request.fields, "size");
          const auto frame = parley::make_frame(
              {{"type", "flood"}, {"pad", std::string(static_cast<std::size_t>(size), 'x')}});
          reply.ok();
          for (std::int64_t i = 0; i < count; ++i) host_.gateway().send(request.connection, frame);
        },
        {.before_login = true});

    // Logs the connection in as `user`, and out: lets the gateway tests
    // see what the kernel does with a connection's login state.
    host_.gateway().handle(std::string(JOURNAL_PLUGIN_NAME) + ".login",
                           [this](parley::Request request, parley::Reply reply) {
                             parley::Binding binding;
                             binding.user_id =
                                 parley::fields::required_string(request.fields, "user");
                             host_.gateway().bind_user(request.connection, std::move(binding));
                             reply.ok();
                           },
                           {.before_login = true});
    host_.gateway().handle(std::string(JOURNAL_PLUGIN_NAME) + ".logout",
                           [this](parley::Request request, parley::Reply reply) {
                             host_.gateway().unbind_user(request.connection);
                             reply.ok();
                           });

    // Delivers one frame to the listed users (Gateway::deliver_many).
    host_.gateway().handle(
        std::string(JOURNAL_PLUGIN_NAME) + ".deliver",
        [this](parley::Request request, parley::Reply reply) {
          std::vector<std::string> users;
          for (const auto& u : request.fields.at("users").as_array())
            users.emplace_back(u.as_string());
          host_.gateway().deliver_many(
              users,
              parley::make_frame({{"type", "delivered"}, {"text", request.fields.at("text")}}),
              request.connection);
          reply.ok();
        });
  }

  void stop() override { write("stop"); }

  // Appends each recorded event's JSON form to the journal, and may filter
  // a hook's "message" field: lets other plugins' tests observe the bus.
  void start_observing() {
    for (const auto& name : record_) {
      host_.bus().subscribe(
          name, [this](const parley::Event& event) { write(parley::to_json(event).c_str()); });
    }
    if (filter_hook_.empty()) return;
    host_.bus().hook(filter_hook_, 0, [this](boost::json::object& payload) {
      std::string text(payload["message"].as_string());
      if (!veto_word_.empty() && text.find(veto_word_) != std::string::npos) {
        return parley::HookResult::veto(parley::ErrorCode::forbidden, "message refused by filter");
      }
      if (!rewrite_from_.empty()) {
        for (auto pos = text.find(rewrite_from_); pos != std::string::npos;
             pos = text.find(rewrite_from_, pos)) {
          text.replace(pos, rewrite_from_.size(), rewrite_to_);
          pos += rewrite_to_.size();
        }
        payload["message"] = text;
      }
      return parley::HookResult::proceed();
    });
  }

 private:
  void write(const std::string& what) {
    std::lock_guard lock(journal_mutex_);
    std::ofstream out(journal_, std::ios::app);
    out << what << " " << JOURNAL_PLUGIN_NAME << "\n";
  }

  parley::Host& host_;
  std::mutex journal_mutex_;
  std::string journal_;
  std::string greeting_;
  bool fail_start_ = false;
  bool throw_int_in_start_ = false;
  std::vector<std::string> record_;
  std::vector<std::string> extra_types_;
  std::string filter_hook_;
  std::string veto_word_;
  std::string rewrite_from_;
  std::string rewrite_to_;
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

// Its request types come from its config, so it declares them all.
const char* const kAnything[] = {"*", nullptr};

const parley::PluginEntry* entry() {
  static const parley::PluginEntry manifest{
      JOURNAL_PLUGIN_ABI,
      JOURNAL_PLUGIN_NAME,
      "1.0.0",
      "records its lifecycle for the kernel's tests",
      kRequires,
      kWants,
      [](parley::Host& host) -> parley::Plugin* { return new JournalPlugin(host); },
      kAnything,
      kAnything,
      nullptr,
      kAnything,
      kAnything};
  return &manifest;
}

}  // namespace

PARLEY_PLUGIN(entry)
