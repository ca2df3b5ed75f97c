// An example Parley plugin: the request "shout" {text} answers the text in
// upper case, delivers it to every connection of the caller, and keeps a
// count in /metrics. With a database, each shout is stored.
#include <cctype>

#include <parley/fields.hpp>
#include <parley/migrations.hpp>
#include <parley/sdk.hpp>

namespace {

class ShoutPlugin : public parley::Plugin {
 public:
  explicit ShoutPlugin(parley::Host& host) : host_(host) {}

  void configure(parley::Config& config) override {
    max_length_ = config.int_in("max_length", 200, 1, 10000);
  }

  void start() override {
    if (auto* db = host_.database()) db->migrate(parley_plugin_migrations());
    auto& shouts = host_.metrics().counter("shouts_total", "Shouts answered");
    host_.gateway().handle("shout", [this, &shouts](parley::Request request, parley::Reply reply) {
      std::string text(parley::fields::required_string(request.fields, "text"));
      if (static_cast<std::int64_t>(text.size()) > max_length_) {
        throw parley::Failure(parley::ErrorCode::too_large, "too loud");
      }
      for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      shouts.add();
      host_.gateway().deliver(request.user_id,
                              parley::make_frame({{"type", "shout"}, {"text", text}}),
                              request.connection);
      reply.ok({{"text", text}});
    });
    host_.log().info("ready to shout up to {} bytes", max_length_);
  }

  void stop() override {}

 private:
  parley::Host& host_;
  std::int64_t max_length_ = 200;
};

const char* const kNone[] = {nullptr};
const char* const kHandles[] = {"shout", nullptr};

const parley::PluginEntry* entry() {
  static const parley::PluginEntry manifest{
      PARLEY_SDK_ABI_VERSION,
      "shout",
      "1.0.0",
      "answers in capitals (an SDK example)",
      kNone,
      kNone,
      [](parley::Host& host) -> parley::Plugin* { return new ShoutPlugin(host); },
      kHandles};
  return &manifest;
}

}  // namespace

PARLEY_PLUGIN(entry)
