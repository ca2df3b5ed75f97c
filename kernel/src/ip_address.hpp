// How the gateway writes a client's IP address, the same in the config it
// compares with (trusted_proxies) and for the peers it counts.
#pragma once

#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace parley::kernel {

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack listener
// sees an IPv4 peer) as that IPv4 address; any other address unchanged.
inline boost::asio::ip::address unmapped(const boost::asio::ip::address& ip) {
  if (ip.is_v6() && ip.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, ip.to_v6());
  }
  return ip;
}

// Whether `text` is a loopback address (127.0.0.0/8, ::1, or either
// IPv4-mapped); false for anything that is not an address.
inline bool is_loopback(std::string_view text) {
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(text, ec);
  return !ec && unmapped(ip).is_loopback();
}

}  // namespace parley::kernel
