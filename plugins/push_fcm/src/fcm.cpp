#include "fcm.hpp"

#include <stdexcept>

#include <curl/curl.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace parley::push_fcm {

namespace json = boost::json;
using push::HttpResponse;
using push::Outcome;

namespace {

constexpr std::string_view kScope = "https://www.googleapis.com/auth/firebase.messaging";
// Google accepts assertions valid for an hour at most.
constexpr std::chrono::seconds kAssertionLifetime{3600};

std::string required(const json::object& account, std::string_view key, const std::string& path) {
  const auto* value = account.if_contains(key);
  if (value == nullptr || !value->is_string() || value->get_string().empty()) {
    throw std::runtime_error(path + ": the service account has no \"" + std::string(key) + "\"");
  }
  return std::string(value->get_string());
}

std::string form_escape(std::string_view text) {
  char* escaped = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

// The google.rpc.Status of an error response, or null.
const json::object* error_status(const json::value& body) {
  const auto* top = body.if_object();
  const auto* error = top ? top->if_contains("error") : nullptr;
  return error ? error->if_object() : nullptr;
}

std::string fcm_error_code(const json::object& error) {
  const auto* details = error.if_contains("details");
  if (details == nullptr || !details->is_array()) return {};
  for (const auto& detail : details->get_array()) {
    const auto* d = detail.if_object();
    if (d == nullptr) continue;
    const auto* type = d->if_contains("@type");
    const auto* code = d->if_contains("errorCode");
    if (type && type->is_string() &&
        type->get_string().ends_with("google.firebase.fcm.v1.FcmError") && code &&
        code->is_string()) {
      return std::string(code->get_string());
    }
  }
  return {};
}

// The FcmError code of an error response ("UNREGISTERED", ...), or empty.
std::string fcm_error_code(const HttpResponse& response) {
  try {
    const json::value body = json::parse(response.body);
    const auto* error = error_status(body);
    return error ? fcm_error_code(*error) : std::string();
  } catch (const std::exception&) {
    return {};
  }
}

// Whether an INVALID_ARGUMENT is about the registration token rather than the
// rest of the request: a BadRequest field violation on message.token, or the
// FcmError form Google documents for an invalid registration token.
bool names_token_field(const json::object& error) {
  if (const auto* details = error.if_contains("details"); details && details->is_array()) {
    for (const auto& detail : details->get_array()) {
      const auto* d = detail.if_object();
      const auto* violations = d ? d->if_contains("fieldViolations") : nullptr;
      if (violations == nullptr || !violations->is_array()) continue;
      for (const auto& violation : violations->get_array()) {
        const auto* v = violation.if_object();
        const auto* field = v ? v->if_contains("field") : nullptr;
        if (field && field->is_string() && field->get_string() == "message.token") return true;
      }
    }
  }
  const auto* message = error.if_contains("message");
  return message && message->is_string() &&
         std::string_view(message->get_string()).find("registration token") !=
             std::string_view::npos;
}

// Why a token request failed, for the log: the transport error, or the
// status with the OAuth2 "error" and "error_description" of an error
// answer, and never the rest of the body (which may hold a token).
std::string token_failure(const HttpResponse& response) {
  if (response.status == 0) return "no response (" + response.error + ")";
  std::string why = "HTTP " + std::to_string(response.status);
  if (response.status == 200) {
    return why + " without a usable access_token and positive expires_in (" +
           std::to_string(response.body.size()) + " bytes, not logged)";
  }
  try {
    const auto body = json::parse(response.body);
    for (const std::string_view key : {"error", "error_description"}) {
      const auto* value = body.as_object().if_contains(key);
      if (value && value->is_string()) why += " " + std::string(value->get_string()).substr(0, 200);
    }
  } catch (const std::exception&) {
    why += " (" + std::to_string(response.body.size()) + " bytes of body, not JSON)";
  }
  return why;
}

}  // namespace

ServiceAccount load_service_account(const std::string& path) {
  const std::string text = push::read_text_file(path);
  json::value parsed;
  try {
    parsed = json::parse(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": not JSON (" + e.what() + ")");
  }
  const auto* account = parsed.if_object();
  if (account == nullptr) throw std::runtime_error(path + ": not a JSON object");
  const auto* type = account->if_contains("type");
  if (type && type->is_string() && type->get_string() != "service_account") {
    throw std::runtime_error(path + ": \"type\" is not \"service_account\"");
  }
  const std::string pem = required(*account, "private_key", path);
  auto key = [&] {
    try {
      return push::PrivateKey::from_pem(pem);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ": \"private_key\" is " + e.what());
    }
  }();
  if (!key.is_rsa()) throw std::runtime_error(path + ": \"private_key\" is not an RSA key");
  const auto* key_id = account->if_contains("private_key_id");
  const auto* token_uri = account->if_contains("token_uri");
  return ServiceAccount{
      required(*account, "project_id", path), required(*account, "client_email", path),
      key_id && key_id->is_string() ? std::string(key_id->get_string()) : std::string(),
      token_uri && token_uri->is_string() ? std::string(token_uri->get_string())
                                          : std::string("https://oauth2.googleapis.com/token"),
      std::move(key)};
}

FcmPlatform::FcmPlatform(Host& host, push::HttpLoop& loop, ServiceAccount account,
                         FcmSettings settings)
    : host_(host),
      loop_(loop),
      account_(std::move(account)),
      settings_(std::move(settings)),
      send_url_(settings_.endpoint + "/v1/projects/" + account_.project_id + "/messages:send"),
      token_fetches_(
          host.metrics().counter("access_token_fetches_total", "OAuth2 access tokens requested")),
      token_failures_(host.metrics().counter("access_token_failures_total",
                                             "OAuth2 access token requests that failed")) {}

bool FcmPlatform::have_access_token() const {
  return !access_token_.empty() && std::chrono::steady_clock::now() < refresh_at_;
}

void FcmPlatform::attempt(const std::shared_ptr<push::Push>& push,
                          std::function<void(Outcome)> done) {
  if (have_access_token()) return send(push, std::move(done));
  waiting_.push_back({push, std::move(done)});
  fetch_access_token();
}

void FcmPlatform::fetch_access_token() {
  if (fetching_) return;
  fetching_ = true;
  token_fetches_.add();
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
  if (!account_.private_key_id.empty()) header["kid"] = account_.private_key_id;
  const std::string assertion = push::make_jwt(account_.key, header,
                                               {{"iss", account_.client_email},
                                                {"scope", kScope},
                                                {"aud", account_.token_uri},
                                                {"iat", now},
                                                {"exp", now + kAssertionLifetime.count()}});
  push::HttpRequest request;
  request.url = account_.token_uri;
  request.headers = {"Content-Type: application/x-www-form-urlencoded"};
  request.body = "grant_type=" + form_escape("urn:ietf:params:oauth:grant-type:jwt-bearer") +
                 "&assertion=" + form_escape(assertion);
  const auto asked = std::chrono::steady_clock::now();
  loop_.send(std::move(request), [this, asked](HttpResponse response) {
    fetching_ = false;
    std::string token;
    long long expires_in = 0;
    if (response.status == 200) {
      try {
        const auto body = json::parse(response.body);
        token = std::string(body.at("access_token").as_string());
        expires_in = body.at("expires_in").to_number<long long>();
      } catch (const std::exception&) {
        token.clear();
      }
    }
    auto waiting = std::move(waiting_);
    waiting_.clear();
    if (token.empty() || expires_in <= 0) {
      token_failures_.add();
      // Never the body: a 200 holds a live bearer token even when its
      // expires_in is missing or wrong.
      const std::string why = token_failure(response);
      host_.log().warn("FCM access token request failed: {}", why);
      for (auto& w : waiting) w.done(Outcome::retry("access_token", {}, why));
      return;
    }
    access_token_ = std::move(token);
    // Renewed a minute before it expires (or halfway, for short lifetimes),
    // so no request goes out with a token about to lapse.
    const auto lifetime = std::chrono::seconds(expires_in);
    refresh_at_ = asked + std::max(lifetime - std::chrono::seconds(60),
                                   std::chrono::duration_cast<std::chrono::seconds>(lifetime / 2));
    for (auto& w : waiting) send(w.push, std::move(w.done));
  });
}

std::string FcmPlatform::message_body(const push::Push& push, const FcmSettings& settings) {
  json::object data{{"conversation", push.conversation},
                    {"message_id", push.message_id},
                    {"badge", std::to_string(push.badge)}};
  if (!push.group_id.empty()) data["group_id"] = push.group_id;
  // No collapse_key: FCM keeps at most four collapse keys per device (which
  // four is arbitrary) and throttles collapsible messages, so an offline
  // phone could lose whole conversations; FCM's documentation names chat as
  // the case for non-collapsible messages. The notification tag still shows
  // one entry per conversation in the drawer, on the device.
  json::object android{{"priority", settings.android_priority},
                       {"ttl", std::to_string(settings.ttl.count()) + "s"},
                       {"notification", json::object{{"tag", push.conversation},
                                                     {"notification_count", push.badge}}}};
  // FCM refuses messages whose keys and values pass 4096 bytes; measuring
  // the whole request keeps well inside that.
  return push::fit_payload(push.body, push::kMaxPayloadBytes, [&](const std::string& body) {
    return json::serialize(json::object{
        {"message",
         json::object{{"token", push.token},
                      {"notification", json::object{{"title", push.title}, {"body", body}}},
                      {"data", data},
                      {"android", android}}}});
  });
}

Outcome FcmPlatform::classify(const HttpResponse& response) {
  if (response.status == 200) return Outcome::sent();
  if (response.status == 0) return Outcome::retry("transport", {}, response.error);
  json::value body;
  try {
    body = json::parse(response.body);
  } catch (const std::exception&) {
  }
  const auto* error = error_status(body);
  const std::string fcm_code = error ? fcm_error_code(*error) : std::string();
  const std::string detail = response.body.substr(0, 1024);
  std::optional<std::chrono::milliseconds> retry_after;
  if (auto after = response.retry_after()) retry_after = *after;
  // Only the service's own verdict on the token removes it: a bare 404 is
  // as likely a wrong endpoint or project, which must not wipe every device.
  if (fcm_code == "UNREGISTERED") return Outcome::token_invalid("unregistered");
  if (response.status == 400) {
    if (error && names_token_field(*error)) return Outcome::token_invalid("invalid_token");
    return Outcome::failed("invalid_argument", detail);
  }
  if (response.status == 429) return Outcome::retry("quota_exceeded", retry_after, detail);
  if (response.status >= 500) {
    return Outcome::retry(response.status == 503 ? "unavailable" : "internal", retry_after, detail);
  }
  if (!fcm_code.empty()) return Outcome::failed(push::snake_case(fcm_code), detail);
  return Outcome::failed("http_" + std::to_string(response.status), detail);
}

void FcmPlatform::send(const std::shared_ptr<push::Push>& push, std::function<void(Outcome)> done) {
  push::HttpRequest request;
  request.url = send_url_;
  request.headers = {"Content-Type: application/json; charset=UTF-8",
                     "Authorization: Bearer " + access_token_};
  request.body = message_body(*push, settings_);
  loop_.send(std::move(request), [this, push, done = std::move(done),
                                  used = access_token_](HttpResponse response) mutable {
    if (response.status == 401) {
      const std::string fcm_code = fcm_error_code(response);
      if (fcm_code.empty()) {
        // Our access token was revoked or expired early: fetch a new one
        // and try once more without spending an attempt. A second 401 with
        // a fresh token is not the token's age, and dropping the shared
        // token again would only stall every other push behind new fetches.
        if (!push->renewed_credentials) {
          push->renewed_credentials = true;
          if (used == access_token_) access_token_.clear();
          return attempt(push, std::move(done));
        }
        return done(Outcome::retry("unauthenticated", {}, response.body));
      }
      // A 401 that carries an FcmError is not about our access token:
      // THIRD_PARTY_AUTH_ERROR means the project's APNs key or web push
      // credentials in Firebase are missing or invalid, which only the
      // operator can fix. classify() fails the push; the token stays.
      if (fcm_code == "THIRD_PARTY_AUTH_ERROR" && third_party_log_.admit(fcm_code)) {
        host_.log().error(
            "FCM answers THIRD_PARTY_AUTH_ERROR: the APNs authentication key or the web push "
            "credentials of Firebase project {} are missing or invalid (Firebase console, "
            "Project settings, Cloud Messaging); pushes to iOS and web clients through FCM fail "
            "until then (failures_total{{reason=\"third_party_auth_error\"}})",
            account_.project_id);
      }
    }
    auto outcome = classify(response);
    if (outcome.kind == Outcome::Kind::retry && outcome.reason == "quota_exceeded") {
      // Sooner than that, the retry only spends quota of the same minute.
      outcome.retry_after = std::max(outcome.retry_after.value_or(std::chrono::milliseconds(0)),
                                     settings_.quota_backoff_min);
    }
    done(std::move(outcome));
  });
}

}  // namespace parley::push_fcm
