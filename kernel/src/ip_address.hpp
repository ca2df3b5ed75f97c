// How the gateway writes a client's IP address, the same in the config it
// compares with (trusted_proxies) and for the peers it counts.
#pragma once

#include <algorithm>
#include <string>
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

// The key the per-address caps count `text` under: an IPv4 address as
// itself, an IPv6 address as its /64 ("2001:db8:1:2::/64"), since one
// host or home is typically given a whole /64 and picks addresses in it at
// will. Anything that is not an address is its own key. A NAT64 address
// (64:ff9b::/96 and 64:ff9b:1::/48, RFC 6052 and 8215) stands for one IPv4
// client each and counts as itself: grouped by /64, every IPv4 user behind
// the translator would share one key.
inline std::string address_group(std::string_view text) {
  boost::system::error_code ec;
  const auto ip = unmapped(boost::asio::ip::make_address(text, ec));
  if (ec) return std::string(text);
  if (ip.is_v4()) return ip.to_string();
  auto bytes = ip.to_v6().to_bytes();
  if (bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b) {
    return ip.to_string();
  }
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::make_address_v6(bytes).to_string() + "/64";
}

}  // namespace parley::kernel
