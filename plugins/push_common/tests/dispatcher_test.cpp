// The dispatcher's text helpers.
#include "dispatcher.hpp"

#include <gtest/gtest.h>

#include <set>

#include <boost/json.hpp>

namespace parley::push {
namespace {

TEST(SnakeCase, TurnsServiceErrorNamesIntoMetricNameParts) {
  EXPECT_EQ(snake_case("BadDeviceToken"), "bad_device_token");
  EXPECT_EQ(snake_case("QUOTA_EXCEEDED"), "quota_exceeded");
  EXPECT_EQ(snake_case("unregistered"), "unregistered");
  EXPECT_EQ(snake_case("http 503"), "http_503");
  EXPECT_EQ(snake_case("!!"), "unknown");
}

TEST(RetryDelay, DoublesUpToTheCapWithJitterAndHonoursRetryAfter) {
  using std::chrono::milliseconds;
  std::mt19937_64 random(42);
  std::set<long long> seen;
  for (int i = 0; i < 200; ++i) {
    const auto first = retry_delay(1, milliseconds(100), milliseconds(1000), {}, random).count();
    EXPECT_GE(first, 50);
    EXPECT_LE(first, 100);
    seen.insert(first);
    const auto third = retry_delay(3, milliseconds(100), milliseconds(1000), {}, random).count();
    EXPECT_GE(third, 200);
    EXPECT_LE(third, 400);
    const auto capped = retry_delay(10, milliseconds(100), milliseconds(1000), {}, random).count();
    EXPECT_GE(capped, 500);
    EXPECT_LE(capped, 1000);
    const auto floored =
        retry_delay(1, milliseconds(100), milliseconds(1000), milliseconds(5000), random).count();
    EXPECT_EQ(floored, 5000);
  }
  EXPECT_GT(seen.size(), 10u);  // jittered, not fixed
}

TEST(TruncateUtf8, CutsOnACharacterBoundaryAndMarksTheCut) {
  EXPECT_EQ(truncate_utf8("short", 10), "short");
  EXPECT_EQ(truncate_utf8("exactly10!", 10), "exactly10!");
  EXPECT_EQ(truncate_utf8("0123456789ab", 10), "0123456\xE2\x80\xA6");
  // "é" is two bytes: a cut inside it backs off to before it.
  EXPECT_EQ(truncate_utf8("abcde\xC3\xA9ghij", 9), "abcde\xE2\x80\xA6");
  EXPECT_EQ(truncate_utf8("abcde\xC3\xA9ghij", 10), "abcde\xC3\xA9\xE2\x80\xA6");
  EXPECT_EQ(truncate_utf8("abcdefgh", 2), "");
}

TEST(PushPayload, ShortensAControlCharacterBodyByWholeCodePointsUntilItFits) {
  auto build = [](const std::string& body) {
    return boost::json::serialize(boost::json::object{{"body", body}});
  };
  // 1000 control characters: 6 bytes each once escaped, about 6 KB.
  const std::string controls(1000, '\x01');
  const std::string fitted = fit_payload(controls, kMaxPayloadBytes, build);
  EXPECT_LE(fitted.size(), kMaxPayloadBytes);
  EXPECT_GT(fitted.size(), kMaxPayloadBytes - 6 - 3);  // the longest prefix that fits
  const std::string body(boost::json::parse(fitted).at("body").as_string());
  ASSERT_GT(body.size(), 3u);
  EXPECT_EQ(body.substr(body.size() - 3), "\xE2\x80\xA6");
  EXPECT_EQ(body.substr(0, body.size() - 3), std::string(body.size() - 3, '\x01'));

  // Mixed with two-byte characters, the cut never splits one.
  std::string mixed;
  for (int i = 0; i < 500; ++i) mixed += "\x02\xC3\xA9";
  const std::string mixed_fit = fit_payload(mixed, 1000, build);
  EXPECT_LE(mixed_fit.size(), 1000u);
  const std::string mixed_body(boost::json::parse(mixed_fit).at("body").as_string());
  EXPECT_EQ(mixed_body.substr(mixed_body.size() - 3), "\xE2\x80\xA6");
  EXPECT_EQ(mixed.rfind(mixed_body.substr(0, mixed_body.size() - 3), 0), 0u);
  EXPECT_EQ((mixed_body.size() - 3) % 3, 0u);

  // What fits already is left alone; when nothing fits the body goes.
  EXPECT_EQ(fit_payload("hi", 100, build), R"({"body":"hi"})");
  EXPECT_EQ(fit_payload("hi", 5, build), R"({"body":""})");
}

TEST(PushRetryAfter, ReadsSecondsOrAnHttpDateAndCapsIt) {
  HttpResponse response;
  EXPECT_EQ(response.retry_after(), std::nullopt);
  response.headers["retry-after"] = "120";
  EXPECT_EQ(response.retry_after(), std::chrono::seconds(120));
  response.headers["retry-after"] = "99999999999999999999999";
  EXPECT_EQ(response.retry_after(), HttpResponse::kMaxRetryAfter);
  response.headers["retry-after"] = "86400";
  EXPECT_EQ(response.retry_after(), HttpResponse::kMaxRetryAfter);
  response.headers["retry-after"] = "-5";
  EXPECT_EQ(response.retry_after(), std::nullopt);
  response.headers["retry-after"] = "soon";
  EXPECT_EQ(response.retry_after(), std::nullopt);
  // A date in the past: retry at once; one far ahead: the cap.
  response.headers["retry-after"] = "Wed, 21 Oct 2015 07:28:00 GMT";
  EXPECT_EQ(response.retry_after(), std::chrono::seconds(0));
  response.headers["retry-after"] = "Fri, 01 Jan 2100 00:00:00 GMT";
  EXPECT_EQ(response.retry_after(), HttpResponse::kMaxRetryAfter);
}

TEST(DispatcherLogThrottle, LetsOneLinePerKindThroughPerIntervalAndCountsTheRest) {
  LogThrottle throttle(std::chrono::hours(1));
  EXPECT_EQ(throttle.admit("failed quota"), std::optional<std::size_t>(0));
  EXPECT_EQ(throttle.admit("failed quota"), std::nullopt);
  EXPECT_EQ(throttle.admit("failed quota"), std::nullopt);
  // Another kind has its own allowance.
  EXPECT_EQ(throttle.admit("failed http_404"), std::optional<std::size_t>(0));

  LogThrottle every_time(std::chrono::steady_clock::duration::zero());
  EXPECT_EQ(every_time.admit("k"), std::optional<std::size_t>(0));
  EXPECT_EQ(every_time.admit("k"), std::optional<std::size_t>(0));
}

}  // namespace
}  // namespace parley::push
