// Firebase Cloud Messaging HTTP v1: an OAuth2 access token from the service
// account's signed JWT assertion, and projects.messages.send per token.
#pragma once

#include <chrono>
#include <deque>
#include <string>

#include <parley/sdk.hpp>

#include "dispatcher.hpp"
#include "http_loop.hpp"
#include "jwt.hpp"

namespace parley::push_fcm {

struct ServiceAccount {
  std::string project_id;
  std::string client_email;
  std::string private_key_id;
  std::string token_uri;
  push::PrivateKey key;
};

// Parses a service-account JSON file; throws std::runtime_error naming what
// is missing or wrong.
ServiceAccount load_service_account(const std::string& path);

struct FcmSettings {
  std::string endpoint = "https://fcm.googleapis.com";
  std::string android_priority = "high";  // "high" or "normal"
  std::chrono::seconds ttl{86400};
  // FCM's ErrorCode reference for QUOTA_EXCEEDED: "exponential backoff with
  // a minimum initial delay of 1 minute"; the quota refills per minute.
  std::chrono::milliseconds quota_backoff_min{60000};
};

class FcmPlatform : public push::Platform {
 public:
  FcmPlatform(Host& host, push::HttpLoop& loop, ServiceAccount account, FcmSettings settings);

  void attempt(const std::shared_ptr<push::Push>& push,
               std::function<void(push::Outcome)> done) override;

  // The FCM v1 request body for `push` (public for the unit tests).
  static std::string message_body(const push::Push& push, const FcmSettings& settings);
  // What an FCM error response means for the push.
  static push::Outcome classify(const push::HttpResponse& response);

 private:
  struct Waiting {
    std::shared_ptr<push::Push> push;
    std::function<void(push::Outcome)> done;
  };
  bool have_access_token() const;
  void fetch_access_token();
  void send(const std::shared_ptr<push::Push>& push, std::function<void(push::Outcome)> done);

  Host& host_;
  push::HttpLoop& loop_;
  ServiceAccount account_;
  FcmSettings settings_;
  std::string send_url_;
  Counter& token_fetches_;
  Counter& token_failures_;

  // Loop thread only.
  std::string access_token_;
  std::chrono::steady_clock::time_point refresh_at_;
  bool fetching_ = false;
  std::deque<Waiting> waiting_;
  push::LogThrottle third_party_log_;
};

}  // namespace parley::push_fcm
