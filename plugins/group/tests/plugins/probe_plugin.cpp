// A test plugin that lets a WebSocket client ask a bus service:
// {"type": "probe.ask", "service": S, "payload": P} is answered with
// {"value": V} (the service's answer) or the service's error. Group tests
// use it to check group.shared and session.contacts.
#include <chrono>

#include <parley/fields.hpp>
#include <parley/sdk.hpp>

namespace {

class ProbePlugin : public parley::Plugin {
 public:
  explicit ProbePlugin(parley::Host& host) : host_(host) {}

  void configure(parley::Config&) override {}

  void start() override {
    host_.gateway().handle(
        "probe.ask",
        [this](parley::Request request, parley::Reply reply) {
          std::string service(parley::fields::required_string(request.fields, "service"));
          const auto* payload = request.fields.if_contains("payload");
          host_.bus().request(std::move(service), payload ? *payload : boost::json::value{},
                              std::chrono::seconds(5), [reply](parley::Response response) {
                                if (!response.ok()) return reply.fail(response.status);
                                reply.ok({{"value", std::move(response.value)}});
                              });
        },
        {.before_login = false, .nonblocking = true});
  }

  void stop() override {}

 private:
  parley::Host& host_;
};

const char* const kNone[] = {nullptr};
const char* const kHandles[] = {"probe.ask", nullptr};

const parley::PluginEntry* entry() {
  static const parley::PluginEntry manifest{
      PARLEY_SDK_ABI_VERSION,
      "probe",
      "1.0.0",
      "asks bus services for the group plugin's tests",
      kNone,
      kNone,
      [](parley::Host& host) -> parley::Plugin* { return new ProbePlugin(host); },
      kHandles};
  return &manifest;
}

}  // namespace

PARLEY_PLUGIN(entry)
