// The `session.contacts` bus service: which of some user ids are not users,
// and which have exchanged a 1:1 message with a given user. The group plugin
// checks new members with it; presence checks who may see whom.
#pragma once

#include <parley/sdk.hpp>

namespace parley::session {

class Contacts {
 public:
  explicit Contacts(Host& host);

  // Serves session.contacts on the bus. Call from start().
  void serve();

 private:
  void answer(const boost::json::value& payload, ServiceReply reply);

  Host& host_;
};

}  // namespace parley::session
