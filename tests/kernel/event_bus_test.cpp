// The event bus: publish/subscribe, request/reply with errors and timeouts,
// hooks with priority, veto and rewrite, isolation of throwing handlers, and
// many publishers at once (run under -DPARLEY_SANITIZE=thread too).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/thread_pool.hpp>

#include "event_bus.hpp"
#include "logging.hpp"

namespace parley::kernel {
namespace {

using namespace std::chrono_literals;

class EventBusTest : public ::testing::Test {
 protected:
  EventBusTest()
      : pool_(4), bus_(pool_.get_executor(), make_logger("bus-test", LogLevel::critical)) {}
  ~EventBusTest() override {
    pool_.stop();
    pool_.join();
  }

  OwnerPtr owner(const std::string& name) {
    return std::make_shared<const Owner>(Owner{name, nullptr});
  }

  Response request_and_wait(const std::string& name, boost::json::value payload,
                            std::chrono::milliseconds timeout) {
    std::promise<Response> promise;
    bus_.request(owner("asker"), name, std::move(payload), timeout,
                 [&promise](Response r) { promise.set_value(std::move(r)); });
    auto future = promise.get_future();
    EXPECT_EQ(future.wait_for(5s), std::future_status::ready);
    return future.get();
  }

  boost::asio::thread_pool pool_;
  EventBus bus_;
};

// Counts calls and lets a test wait for a number of them.
class Counter {
 public:
  void hit() {
    std::lock_guard lock(mutex_);
    ++count_;
    cv_.notify_all();
  }
  bool wait_for(int n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int count_ = 0;
};

TEST_F(EventBusTest, PublishReachesEverySubscriberOfTheName) {
  Counter a, b, other;
  std::string seen;
  std::mutex m;
  bus_.subscribe(owner("a"), "chat.stored", [&](const Event& e) {
    std::lock_guard lock(m);
    seen = std::string(e.payload.at("text").as_string());
    a.hit();
  });
  bus_.subscribe(owner("b"), "chat.stored", [&](const Event&) { b.hit(); });
  bus_.subscribe(owner("c"), "chat.other", [&](const Event&) { other.hit(); });
  bus_.publish("chat.stored", boost::json::object{{"text", "hi"}});
  ASSERT_TRUE(a.wait_for(1));
  ASSERT_TRUE(b.wait_for(1));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(other.count(), 0);
  std::lock_guard lock(m);
  EXPECT_EQ(seen, "hi");
}

TEST_F(EventBusTest, OneSubscriptionSeesEventsInPublishOrder) {
  std::vector<int> seen;
  std::mutex m;
  Counter done;
  bus_.subscribe(owner("a"), "n", [&](const Event& e) {
    std::lock_guard lock(m);
    seen.push_back(static_cast<int>(e.payload.as_int64()));
    done.hit();
  });
  for (int i = 0; i < 500; ++i) bus_.publish("n", i);
  ASSERT_TRUE(done.wait_for(500));
  std::lock_guard lock(m);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(seen[i], i);
}

TEST_F(EventBusTest, APrefixSubscriptionSeesEveryMatchingNameInPublishOrder) {
  std::vector<std::string> seen;
  std::mutex m;
  Counter done;
  bus_.subscribe(owner("a"), "user.*", [&](const Event& e) {
    std::lock_guard lock(m);
    seen.push_back(e.name + "=" + std::to_string(e.payload.as_int64()));
    done.hit();
  });
  for (int i = 0; i < 300; ++i) {
    bus_.publish(i % 2 ? "user.online" : "user.offline", i);
    bus_.publish("other.online", i);  // not under the prefix
  }
  bus_.publish("user", 0);  // the prefix without its dot does not match
  ASSERT_TRUE(done.wait_for(300));
  std::lock_guard lock(m);
  ASSERT_EQ(seen.size(), 300u);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(seen[static_cast<std::size_t>(i)],
              std::string(i % 2 ? "user.online" : "user.offline") + "=" + std::to_string(i));
  }
}

TEST_F(EventBusTest, AThrownFailureInAHookVetoesWithItsCode) {
  bus_.hook(owner("filter"), "h", 0,
            [](boost::json::object&) -> HookResult { throw Failure(ErrorCode::forbidden, "no"); });
  boost::json::object payload;
  const Status s = bus_.run_hooks("h", payload);
  EXPECT_EQ(s.code(), ErrorCode::forbidden);
}

TEST_F(EventBusTest, AFailClosedHookThatThrowsVetoesAndAnOpenOneProceeds) {
  bus_.hook(owner("open"), "open", 0,
            [](boost::json::object&) -> HookResult { throw std::runtime_error("bug"); });
  bus_.hook(
      owner("closed"), "closed", 0,
      [](boost::json::object&) -> HookResult { throw std::runtime_error("bug"); },
      HookOptions{.fail_closed = true});
  boost::json::object payload;
  EXPECT_TRUE(bus_.run_hooks("open", payload).ok());
  EXPECT_EQ(bus_.run_hooks("closed", payload).code(), ErrorCode::internal);
}

TEST_F(EventBusTest, AVetoCarriesItsReason) {
  bus_.hook(owner("filter"), "h", 0, [](boost::json::object&) {
    return HookResult::veto(ErrorCode::forbidden, "blocked word", "profanity");
  });
  boost::json::object payload;
  const Status s = bus_.run_hooks("h", payload);
  EXPECT_EQ(s.reason(), "profanity");
}

TEST_F(EventBusTest, ThrowingSubscriberDoesNotAffectOthers) {
  Counter good;
  bus_.subscribe(owner("bad"), "e", [](const Event&) { throw std::runtime_error("boom"); });
  bus_.subscribe(owner("good"), "e", [&](const Event&) { good.hit(); });
  bus_.publish("e", nullptr);
  bus_.publish("e", nullptr);
  EXPECT_TRUE(good.wait_for(2));
}

TEST_F(EventBusTest, EventHasStableJsonForm) {
  EXPECT_EQ(to_json(Event{"session.message.stored", boost::json::object{{"seq", 3}}}),
            R"({"event":"session.message.stored","payload":{"seq":3}})");
}

TEST_F(EventBusTest, RequestGetsTheServiceAnswer) {
  bus_.serve(owner("math"), "math.double",
             [](const boost::json::value& v, ServiceReply reply) { reply.ok(v.as_int64() * 2); });
  auto r = request_and_wait("math.double", 21, 1s);
  ASSERT_TRUE(r.ok()) << r.status.message();
  EXPECT_EQ(r.value.as_int64(), 42);
}

TEST_F(EventBusTest, RequestCanBeAnsweredLaterFromAnotherThread) {
  std::thread later;
  bus_.serve(owner("slow"), "slow.answer", [&later](const boost::json::value&, ServiceReply reply) {
    later = std::thread([reply] {
      std::this_thread::sleep_for(50ms);
      reply.ok("late");
    });
  });
  auto r = request_and_wait("slow.answer", nullptr, 2s);
  later.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value.as_string(), "late");
}

TEST_F(EventBusTest, RequestGetsTheServiceError) {
  bus_.serve(owner("s"), "s.fail", [](const boost::json::value&, ServiceReply reply) {
    reply.error(ErrorCode::not_found, "no such thing");
  });
  auto r = request_and_wait("s.fail", nullptr, 1s);
  EXPECT_EQ(r.status.code(), ErrorCode::not_found);
  EXPECT_EQ(r.status.message(), "no such thing");
}

TEST_F(EventBusTest, ThrowingServiceAnswersInternalOrItsFailureCode) {
  bus_.serve(owner("s"), "s.throw",
             [](const boost::json::value&, ServiceReply) { throw std::runtime_error("x"); });
  bus_.serve(owner("s"), "s.failure", [](const boost::json::value&, ServiceReply) {
    throw Failure(ErrorCode::forbidden, "no");
  });
  EXPECT_EQ(request_and_wait("s.throw", nullptr, 1s).status.code(), ErrorCode::internal);
  EXPECT_EQ(request_and_wait("s.failure", nullptr, 1s).status.code(), ErrorCode::forbidden);
}

TEST_F(EventBusTest, RequestTimesOutWhenServiceNeverAnswers) {
  std::vector<ServiceReply> kept;  // holds the reply open so only the timeout can end the request
  std::mutex m;
  bus_.serve(owner("s"), "s.silent", [&](const boost::json::value&, ServiceReply reply) {
    std::lock_guard lock(m);
    kept.push_back(reply);
  });
  auto r = request_and_wait("s.silent", nullptr, 100ms);
  EXPECT_EQ(r.status.code(), ErrorCode::timeout);
  // An answer after the timeout is ignored (the callback ran exactly once).
  std::lock_guard lock(m);
  kept.front().ok("too late");
}

TEST_F(EventBusTest, ReplyDroppedWithoutAnswerIsInternal) {
  bus_.serve(owner("s"), "s.forgetful", [](const boost::json::value&, ServiceReply) {});
  EXPECT_EQ(request_and_wait("s.forgetful", nullptr, 2s).status.code(), ErrorCode::internal);
}

TEST_F(EventBusTest, RequestWithoutServiceIsUnsupported) {
  EXPECT_EQ(request_and_wait("nobody.home", nullptr, 1s).status.code(), ErrorCode::unsupported);
}

TEST_F(EventBusTest, SecondServerOfANameIsRefusedNamingBoth) {
  bus_.serve(owner("first"), "x.y", [](const boost::json::value&, ServiceReply r) { r.ok(); });
  try {
    bus_.serve(owner("second"), "x.y", [](const boost::json::value&, ServiceReply r) { r.ok(); });
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("'first'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'second'"), std::string::npos);
  }
}

TEST_F(EventBusTest, HooksRunByPriorityAndMayRewrite) {
  std::vector<std::string> order;
  bus_.hook(owner("low"), "before.store", 1, [&](boost::json::object& p) {
    order.push_back("low");
    p["text"] = std::string(p["text"].as_string()) + "+low";
    return HookResult::proceed();
  });
  bus_.hook(owner("high"), "before.store", 10, [&](boost::json::object& p) {
    order.push_back("high");
    p["text"] = std::string(p["text"].as_string()) + "+high";
    return HookResult::proceed();
  });
  boost::json::object payload{{"text", "m"}};
  EXPECT_TRUE(bus_.run_hooks("before.store", payload).ok());
  EXPECT_EQ(order, (std::vector<std::string>{"high", "low"}));
  EXPECT_EQ(payload["text"].as_string(), "m+high+low");
}

TEST_F(EventBusTest, VetoStopsTheChainAndIsReturned) {
  bool later_ran = false;
  bus_.hook(owner("filter"), "before.store", 5,
            [](boost::json::object&) { return HookResult::veto(ErrorCode::forbidden, "spam"); });
  bus_.hook(owner("later"), "before.store", 1, [&](boost::json::object&) {
    later_ran = true;
    return HookResult::proceed();
  });
  boost::json::object payload;
  auto status = bus_.run_hooks("before.store", payload);
  EXPECT_EQ(status.code(), ErrorCode::forbidden);
  EXPECT_EQ(status.message(), "spam");
  EXPECT_FALSE(later_ran);
}

TEST_F(EventBusTest, ThrowingHookIsSkipped) {
  bool after_ran = false;
  bus_.hook(owner("bad"), "h", 5,
            [](boost::json::object&) -> HookResult { throw std::runtime_error("bad"); });
  bus_.hook(owner("good"), "h", 1, [&](boost::json::object&) {
    after_ran = true;
    return HookResult::proceed();
  });
  boost::json::object payload;
  EXPECT_TRUE(bus_.run_hooks("h", payload).ok());
  EXPECT_TRUE(after_ran);
}

TEST_F(EventBusTest, RemovedOwnerGetsNothingMore) {
  Counter c;
  bus_.subscribe(owner("gone"), "e", [&](const Event&) { c.hit(); });
  bus_.serve(owner("gone"), "gone.s", [](const boost::json::value&, ServiceReply r) { r.ok(); });
  bus_.remove_owner("gone");
  bus_.publish("e", nullptr);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(c.count(), 0);
  EXPECT_FALSE(bus_.has_service("gone.s"));
}

TEST_F(EventBusTest, SaysWhetherAnEventOrAHookHasListeners) {
  EXPECT_FALSE(bus_.has_subscribers("chat.sent"));
  EXPECT_FALSE(bus_.has_hooks("chat.before"));
  bus_.subscribe(owner("exact"), "chat.sent", [](const Event&) {});
  bus_.subscribe(owner("prefix"), "user.*", [](const Event&) {});
  bus_.hook(owner("filter"), "chat.before", 0, [](boost::json::object&) { return HookResult{}; });
  EXPECT_TRUE(bus_.has_subscribers("chat.sent"));
  EXPECT_TRUE(bus_.has_subscribers("user.online"));
  EXPECT_FALSE(bus_.has_subscribers("chat.sent.more"));
  EXPECT_FALSE(bus_.has_subscribers("user"));
  EXPECT_TRUE(bus_.has_hooks("chat.before"));
  EXPECT_FALSE(bus_.has_hooks("chat.sent"));
  // A stopped plugin's registrations no longer count.
  bus_.remove_owner("exact");
  bus_.remove_owner("prefix");
  bus_.remove_owner("filter");
  EXPECT_FALSE(bus_.has_subscribers("chat.sent"));
  EXPECT_FALSE(bus_.has_subscribers("user.online"));
  EXPECT_FALSE(bus_.has_hooks("chat.before"));
}

TEST_F(EventBusTest, ManyThreadsPublishingAtOnce) {
  constexpr int kThreads = 8;
  constexpr int kEach = 2000;
  std::atomic<int> received{0};
  Counter all;
  for (int s = 0; s < 3; ++s) {
    bus_.subscribe(owner("s" + std::to_string(s)), "load", [&](const Event&) {
      if (received.fetch_add(1) + 1 == 3 * kThreads * kEach) all.hit();
    });
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        bus_.publish("load", boost::json::object{{"t", t}, {"i", i}});
        if (i % 500 == 0) {
          bus_.subscribe(owner("late" + std::to_string(t)), "other", [](const Event&) {});
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(all.wait_for(1, 30s)) << received.load();
  EXPECT_EQ(received.load(), 3 * kThreads * kEach);
}

}  // namespace
}  // namespace parley::kernel
