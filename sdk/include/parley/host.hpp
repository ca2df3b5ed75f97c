// What the kernel gives a plugin: one object, created for that plugin and
// valid from create() until the plugin is destroyed. Its interface only grows
// at the end, within one SDK ABI version.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>

#include "parley/bus.hpp"
#include "parley/clock.hpp"
#include "parley/log.hpp"
#include "parley/metrics.hpp"

namespace parley {

class Database;
class Gateway;

// A scheduled callback; cancel() before it runs prevents it.
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void cancel() = 0;
};

class Host {
 public:
  virtual ~Host() = default;

  // The plugin's name, as in its manifest and the config.
  virtual std::string_view plugin_name() const = 0;
  virtual Log& log() = 0;
  virtual Bus& bus() = 0;
  virtual const Clock& clock() const = 0;
  virtual Metrics& metrics() = 0;
  virtual Gateway& gateway() = 0;
  // The message store, or nullptr when the config names no database.
  virtual Database* database() = 0;

  // Runs `task` on a worker thread.
  virtual void post(std::function<void()> task) = 0;
  // Runs `task` on a worker thread after `delay`.
  virtual std::shared_ptr<Timer> schedule(std::chrono::milliseconds delay,
                                          std::function<void()> task) = 0;
  // Runs slow CPU work (password hashing) on the kernel's small CPU pool
  // (`cpu_threads`), never on the request workers, so that it cannot stall
  // chat. Returns false, without running it, when `cpu_queue_limit` tasks
  // are already waiting: answer the client `unavailable`.
  virtual bool offload(std::function<void()> task) = 0;
};

}  // namespace parley
