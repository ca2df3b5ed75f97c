// The gateway's connection caps (server.max_connections and
// max_connections_per_address): every accepted socket holds one place from
// accept until it closes, HTTP, TLS handshake and WebSocket alike, so that
// no kind of connection can use up the descriptors the others need.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "parley/metrics.hpp"

namespace parley::kernel {

class ConnectionCaps {
 public:
  enum class Cap { none, total, per_address };

  // One socket's place: in all, and for its address once that is known.
  // Given back when destroyed; moving it moves the place (an upgraded
  // socket keeps the one it was accepted with).
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept
        : caps_(std::exchange(other.caps_, nullptr)), address_(std::move(other.address_)) {}
    Slot& operator=(Slot&&) = delete;
    ~Slot() {
      if (caps_ != nullptr) caps_->release(address_);
    }
    explicit operator bool() const { return caps_ != nullptr; }
    // Whether the slot counts toward an address's cap.
    bool has_address() const { return !address_.empty(); }

   private:
    friend class ConnectionCaps;
    Slot(ConnectionCaps* caps, std::string address) : caps_(caps), address_(std::move(address)) {}
    ConnectionCaps* caps_ = nullptr;
    std::string address_;
  };

  // `open_sockets`, when given, follows the number of places taken.
  ConnectionCaps(std::size_t max_total, std::size_t max_per_address, Gauge* open_sockets = nullptr)
      : max_total_(max_total), max_per_address_(max_per_address), open_sockets_(open_sockets) {}

  // A place for a new socket in all and, unless `address` is empty (a peer
  // whose client is not known yet), for `address`. An empty Slot when a cap
  // is full; `refused` then says which.
  Slot admit(std::string address, Cap& refused) {
    refused = Cap::none;
    if (open_.fetch_add(1) >= max_total_) {
      open_.fetch_sub(1);
      refused = Cap::total;
      return {};
    }
    if (!address.empty() && !count_address(address)) {
      open_.fetch_sub(1);
      refused = Cap::per_address;
      return {};
    }
    if (open_sockets_ != nullptr) open_sockets_->add(1);
    return Slot(this, std::move(address));
  }

  // Counts an admitted slot that has no address yet for `address` too (the
  // client behind a trusted proxy, known at its WebSocket upgrade). False,
  // and the slot unchanged, when that address is full.
  bool add_address(Slot& slot, std::string address) {
    if (address.empty() || slot.has_address()) return true;
    if (!count_address(address)) return false;
    slot.address_ = std::move(address);
    return true;
  }

  std::size_t open() const { return open_.load(); }

 private:
  bool count_address(const std::string& address) {
    std::lock_guard lock(mutex_);
    auto& count = per_address_[address];
    if (count >= max_per_address_) {
      if (count == 0) per_address_.erase(address);
      return false;
    }
    ++count;
    return true;
  }

  void release(const std::string& address) {
    open_.fetch_sub(1);
    if (open_sockets_ != nullptr) open_sockets_->add(-1);
    if (address.empty()) return;
    std::lock_guard lock(mutex_);
    if (auto it = per_address_.find(address); it != per_address_.end() && --it->second == 0)
      per_address_.erase(it);
  }

  const std::size_t max_total_;
  const std::size_t max_per_address_;
  Gauge* const open_sockets_;
  std::atomic<std::size_t> open_{0};
  std::mutex mutex_;
  std::unordered_map<std::string, std::size_t> per_address_;
};

}  // namespace parley::kernel
