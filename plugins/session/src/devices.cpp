#include "devices.hpp"

#include <algorithm>

#include <parley/fields.hpp>

#include "wire.hpp"

namespace parley::session {

namespace json = boost::json;

Devices::Devices(Host& host, const Settings& settings)
    : host_(host),
      db_(*host.database()),
      settings_(settings),
      evicted_(host.metrics().counter(
          "devices_evicted_total",
          "Devices dropped because their user registered more than push.max_devices_per_user")),
      removed_invalid_(
          host.metrics().counter("devices_invalid_removed_total",
                                 "Devices removed after a push plugin reported the token dead")) {}

void Devices::register_handlers(Gateway& gateway) {
  gateway.handle("device.register",
                 [this](Request r, Reply reply) { on_register(std::move(r), std::move(reply)); },
                 {.nonblocking = true});
  gateway.handle("device.unregister",
                 [this](Request r, Reply reply) { on_unregister(std::move(r), std::move(reply)); },
                 {.nonblocking = true});
}

void Devices::subscribe(Bus& bus) {
  bus.subscribe("push.token.invalid", [this](const Event& event) { on_token_invalid(event); });
}

void Devices::check_token(std::string_view token) const {
  if (token.empty()) throw Failure(ErrorCode::bad_request, "'token' must be a non-empty string");
  if (token.size() > settings_.push_max_token_bytes) {
    throw Failure(
        ErrorCode::too_large,
        "'token' is longer than " + std::to_string(settings_.push_max_token_bytes) + " bytes");
  }
  // Tokens travel in URL paths (APNs) and JSON bodies: no control characters.
  const bool has_control = std::any_of(token.begin(), token.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
  if (has_control)
    throw Failure(ErrorCode::bad_request, "'token' must not contain control characters");
}

void Devices::on_register(Request request, Reply reply) {
  const std::string platform(fields::required_string(request.fields, "platform"));
  const std::string token(fields::required_string(request.fields, "token"));
  const auto& known = settings_.push_platforms;
  if (std::find(known.begin(), known.end(), platform) == known.end()) {
    throw Failure(ErrorCode::bad_request, "unknown platform '" + platform + "'");
  }
  if (!host_.bus().has_service("push.platform." + platform)) {
    throw Failure(ErrorCode::unsupported,
                  "push to '" + platform + "' is not enabled on this server");
  }
  check_token(token);
  const std::int64_t me = *parse_user_id(request.user_id);
  const auto max_devices = static_cast<std::int64_t>(settings_.push_max_devices_per_user);
  auto evicted = std::make_shared<std::int64_t>(0);
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::work tx(conn);
        // Serialises registrations of one user, so the eviction below counts
        // every device they have.
        tx.exec_params("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", me);
        // A token is one app install: whoever registers it last owns it.
        tx.exec_params(
            "INSERT INTO devices (token, user_id, platform) VALUES ($1, $2, $3)"
            " ON CONFLICT (token) DO UPDATE SET user_id = EXCLUDED.user_id,"
            " platform = EXCLUDED.platform, registered_at = now()",
            token, me, platform);
        // The newest registrations win: a user who got a new phone must not
        // be refused because of one they no longer have.
        const auto gone = tx.exec_params(
            "DELETE FROM devices WHERE token IN (SELECT token FROM devices WHERE user_id = $1"
            " ORDER BY registered_at DESC, token OFFSET $2)",
            me, max_devices);
        *evicted = static_cast<std::int64_t>(gone.affected_rows());
        tx.commit();
      },
      [this, reply, evicted, me](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        if (*evicted > 0) {
          evicted_.add(static_cast<double>(*evicted));
          host_.log().info("user {} passed {} devices: evicted the {} oldest", me,
                           settings_.push_max_devices_per_user, *evicted);
        }
        reply.ok();
      });
}

void Devices::on_unregister(Request request, Reply reply) {
  const std::string token(fields::required_string(request.fields, "token"));
  check_token(token);
  const std::int64_t me = *parse_user_id(request.user_id);
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::work tx(conn);
        // Another user's token or an unknown one is left alone: unregistering
        // must not let anyone silence somebody else's phone.
        tx.exec_params("DELETE FROM devices WHERE token = $1 AND user_id = $2", token, me);
        tx.commit();
      },
      [reply](const Status& status) {
        if (!status.ok()) return reply.fail(status);
        reply.ok();
      });
}

void Devices::on_token_invalid(const Event& event) {
  const auto* payload = event.payload.if_object();
  const auto* token = payload ? payload->if_contains("token") : nullptr;
  const auto* platform = payload ? payload->if_contains("platform") : nullptr;
  if (!token || !token->is_string() || !platform || !platform->is_string()) {
    host_.log().warn("ignored a malformed push.token.invalid: {}", json::serialize(event.payload));
    return;
  }
  const std::string token_text(token->get_string());
  const std::string platform_text(platform->get_string());
  const auto* reason = payload->if_contains("reason");
  const std::string reason_text =
      reason && reason->is_string() ? std::string(reason->get_string()) : "unspecified";
  db_.run(
      [=](pqxx::connection& conn) {
        pqxx::work tx(conn);
        tx.exec_params("DELETE FROM devices WHERE token = $1 AND platform = $2", token_text,
                       platform_text);
        tx.commit();
      },
      [this, platform_text, reason_text](const Status& status) {
        if (!status.ok()) {
          host_.log().warn("could not remove a dead {} token: {}", platform_text, status.message());
          return;
        }
        removed_invalid_.add();
        host_.log().info("removed a dead {} device token ({})", platform_text, reason_text);
      });
}

}  // namespace parley::session
