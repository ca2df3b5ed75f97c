#include "apns.hpp"

#include <algorithm>
#include <cctype>

#include <curl/curl.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace parley::push_apns {

namespace json = boost::json;
using push::HttpResponse;
using push::Outcome;

namespace {

// apns-collapse-id may not exceed 64 bytes.
constexpr std::size_t kMaxCollapseIdBytes = 64;

std::string path_escape(std::string_view text) {
  char* escaped = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

std::string reason_of(const HttpResponse& response) {
  try {
    const auto body = json::parse(response.body);
    if (const auto* reason = body.as_object().if_contains("reason"); reason && reason->is_string())
      return std::string(reason->get_string());
  } catch (const std::exception&) {
  }
  return {};
}

// Apple's device tokens are bytes written in hex. Anything else was never a
// token APNs issued, whatever environment it is sent to.
bool looks_like_device_token(std::string_view token) {
  return !token.empty() && token.size() % 2 == 0 &&
         std::all_of(token.begin(), token.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

long long unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ApnsPlatform::ApnsPlatform(Host& host, push::HttpLoop& loop, push::PrivateKey key,
                           ApnsSettings settings)
    : host_(host),
      loop_(loop),
      key_(std::move(key)),
      settings_(std::move(settings)),
      jwts_minted_(
          host.metrics().counter("provider_tokens_minted_total", "APNs provider JWTs signed")) {}

void ApnsPlatform::mint() {
  jwt_ = push::make_jwt(key_, {{"alg", "ES256"}, {"kid", settings_.key_id}},
                        {{"iss", settings_.team_id}, {"iat", unix_seconds()}});
  jwt_minted_at_ = std::chrono::steady_clock::now();
  jwts_minted_.add();
}

const std::string& ApnsPlatform::provider_token() {
  if (jwt_.empty() || std::chrono::steady_clock::now() - jwt_minted_at_ >= settings_.jwt_refresh) {
    mint();
    jwt_from_renewal_ = false;
  }
  return jwt_;
}

bool ApnsPlatform::renew_expired(const std::string& used) {
  // Pushes that went out with the same stale token share one renewal.
  if (used != jwt_) return true;
  // A token minted by such a renewal and called expired again within the
  // 20 minutes Apple allows between renewals means our clock is off:
  // minting more would only earn TooManyProviderTokenUpdates.
  if (jwt_from_renewal_ &&
      std::chrono::steady_clock::now() - jwt_minted_at_ < std::chrono::minutes(20)) {
    host_.log().error(
        "APNs calls a fresh provider token expired: check this server's clock (iat {})",
        unix_seconds());
    return false;
  }
  mint();
  jwt_from_renewal_ = true;
  host_.log().info("APNs said the provider token expired: renewed it");
  return true;
}

Outcome ApnsPlatform::unconfirmed_bad_device_token() {
  // Apple answers BadDeviceToken both for a dead token and for a good one
  // sent to the other environment (sandbox tokens to production or back).
  // Until this endpoint has accepted one push, a wrong `environment` or
  // `endpoint` is as likely as a dead device, and removing on it would
  // wipe every Apple device at the first push to each: as push_fcm keeps a
  // token on a bare 404, this keeps it.
  if (environment_log_.admit("BadDeviceToken")) {
    host_.log().error(
        "APNs ({}) answers BadDeviceToken for well-formed device tokens and has accepted no push "
        "since this server started: if every push fails like this, the apps' tokens belong to "
        "the other environment (check `environment`). The devices are kept "
        "(failures_total{{reason=\"bad_device_token\"}})",
        settings_.endpoint);
  }
  return Outcome::failed("bad_device_token");
}

std::string ApnsPlatform::payload(const push::Push& push, const std::string& sound) {
  // APNs refuses a payload over 4096 bytes (413 PayloadTooLarge).
  return push::fit_payload(push.body, push::kMaxPayloadBytes, [&](const std::string& body) {
    json::object aps{{"alert", json::object{{"title", push.title}, {"body", body}}},
                     {"badge", push.badge},
                     {"thread-id", push.conversation}};
    if (!sound.empty()) aps["sound"] = sound;
    json::object root{{"aps", std::move(aps)},
                      {"conversation", push.conversation},
                      {"message_id", push.message_id}};
    if (!push.group_id.empty()) root["group_id"] = push.group_id;
    return json::serialize(root);
  });
}

Outcome ApnsPlatform::classify(const HttpResponse& response) {
  if (response.status == 200) return Outcome::sent();
  if (response.status == 0) return Outcome::retry("transport", {}, response.error);
  const std::string reason = reason_of(response);
  std::optional<std::chrono::milliseconds> retry_after;
  if (auto after = response.retry_after()) retry_after = *after;
  if (response.status == 410) return Outcome::token_invalid("unregistered");
  if (response.status == 400 && reason == "BadDeviceToken") {
    return Outcome::token_invalid("bad_device_token");
  }
  if (response.status == 429)
    return Outcome::retry("too_many_requests", retry_after, response.body);
  if (response.status >= 500) {
    return Outcome::retry(
        reason.empty() ? "http_" + std::to_string(response.status) : push::snake_case(reason),
        retry_after, response.body);
  }
  return Outcome::failed(
      reason.empty() ? "http_" + std::to_string(response.status) : push::snake_case(reason),
      response.body);
}

void ApnsPlatform::attempt(const std::shared_ptr<push::Push>& push,
                           std::function<void(Outcome)> done) {
  const std::string jwt = provider_token();
  push::HttpRequest request;
  request.url = settings_.endpoint + "/3/device/" + path_escape(push->token);
  request.headers = {
      "authorization: bearer " + jwt,
      "apns-topic: " + settings_.topic,
      "apns-push-type: alert",
      "apns-priority: " + std::to_string(settings_.priority),
      "apns-expiration: " + std::to_string(settings_.expiration.count() == 0
                                               ? 0
                                               : unix_seconds() + settings_.expiration.count()),
      "content-type: application/json"};
  if (!push->conversation.empty() && push->conversation.size() <= kMaxCollapseIdBytes) {
    request.headers.push_back("apns-collapse-id: " + push->conversation);
  }
  request.body = payload(*push, settings_.sound);
  loop_.send(std::move(request),
             [this, push, done = std::move(done), jwt](HttpResponse response) mutable {
               if (response.status == 200) environment_confirmed_ = true;
               const std::string reason = response.status == 200 ? "" : reason_of(response);
               if (response.status == 403 && reason == "ExpiredProviderToken" &&
                   !push->renewed_credentials && renew_expired(jwt)) {
                 // The push goes again at once without spending an attempt.
                 push->renewed_credentials = true;
                 return attempt(push, std::move(done));
               }
               if (response.status == 400 && reason == "BadDeviceToken" &&
                   !environment_confirmed_ && looks_like_device_token(push->token)) {
                 return done(unconfirmed_bad_device_token());
               }
               done(classify(response));
             });
}

}  // namespace parley::push_apns
