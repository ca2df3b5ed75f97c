// The APNs provider API over HTTP/2 with token-based authentication: one
// provider JWT (ES256) reused for every request until it is renewed, and
// POST /3/device/<token> per push.
#pragma once

#include <chrono>
#include <string>

#include <parley/sdk.hpp>

#include "dispatcher.hpp"
#include "http_loop.hpp"
#include "jwt.hpp"

namespace parley::push_apns {

struct ApnsSettings {
  std::string endpoint;  // https://api.push.apple.com or the sandbox, or a test server
  std::string key_id;    // the key's 10-character id (JWT "kid")
  std::string team_id;   // the 10-character team id (JWT "iss")
  std::string topic;     // the app's bundle id
  std::chrono::seconds expiration{86400};  // apns-expiration: now + this; 0: deliver once or never
  int priority = 10;
  std::string sound = "default";  // aps.sound; empty: silent
  // Apple refuses tokens older than an hour and renewals more often than
  // every 20 minutes.
  std::chrono::seconds jwt_refresh{3000};
};

class ApnsPlatform : public push::Platform {
 public:
  ApnsPlatform(Host& host, push::HttpLoop& loop, push::PrivateKey key, ApnsSettings settings);

  void attempt(const std::shared_ptr<push::Push>& push,
               std::function<void(push::Outcome)> done) override;

  // The JSON payload for `push` (public for the unit tests).
  static std::string payload(const push::Push& push, const std::string& sound);
  static push::Outcome classify(const push::HttpResponse& response);

 private:
  // The current provider token, minted when there is none or it is due.
  const std::string& provider_token();
  void mint();
  // Mints again after APNs called `used` expired; false when that would
  // only repeat itself (see the definition).
  bool renew_expired(const std::string& used);
  // What a BadDeviceToken means before any push went through (see the
  // definition).
  push::Outcome unconfirmed_bad_device_token();

  Host& host_;
  push::HttpLoop& loop_;
  push::PrivateKey key_;
  ApnsSettings settings_;
  Counter& jwts_minted_;

  // Loop thread only.
  std::string jwt_;
  std::chrono::steady_clock::time_point jwt_minted_at_;
  bool jwt_from_renewal_ = false;
  // APNs accepted a push since start: the endpoint matches the apps' tokens.
  bool environment_confirmed_ = false;
  push::LogThrottle environment_log_;
};

}  // namespace parley::push_apns
