// Offers a stored message to the push plugins: for each offline recipient and
// each platform they have devices on, one push.offer.<platform> event with
// that user's tokens, the title, body and badge.
#pragma once

#include <cstdint>
#include <vector>

#include <parley/sdk.hpp>

#include "settings.hpp"
#include "wire.hpp"

namespace parley::session {

class PushOffers {
 public:
  PushOffers(Host& host, const Settings& settings);

  // `recipients` are the users known to be offline. Reads their devices and
  // badges in one database job; publishes nothing for users without devices.
  void offer(const StoredMessage& message, std::vector<std::int64_t> recipients);

 private:
  Host& host_;
  Database& db_;
  const Settings& settings_;
  Counter& offers_;
};

}  // namespace parley::session
