// What the load generator reads from the machine: file descriptor limits,
// a process's resident memory and CPU time, load and processor facts.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/json/object.hpp>

namespace parley::bench {

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns both.
boost::json::object raise_fd_limit();

// VmRSS of `pid`, in bytes; nullopt when it cannot be read.
std::optional<std::uint64_t> rss_bytes(pid_t pid);

// nproc, load averages, kernel, CPU model, memory.
boost::json::object machine_info();

std::string utc_now();

// CPU used between start() and stop(): by this process, by the server
// (when its pid is known), and by the whole machine (busy fraction of all
// cores, which includes PostgreSQL).
class CpuMeter {
 public:
  explicit CpuMeter(std::optional<pid_t> server = std::nullopt) : server_(server) {}
  void start();
  boost::json::object stop();

 private:
  struct Sample {
    std::chrono::steady_clock::time_point when;
    double self_s = 0;
    double server_s = -1;
    std::uint64_t total = 0;
    std::uint64_t idle = 0;
  };
  Sample sample() const;

  std::optional<pid_t> server_;
  Sample start_;
};

}  // namespace parley::bench
