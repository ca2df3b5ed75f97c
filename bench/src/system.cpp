#include "system.hpp"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <sstream>

#include <boost/json/array.hpp>

namespace parley::bench {

namespace json = boost::json;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// utime + stime of a process, in seconds; -1 when unreadable.
double process_cpu_seconds(const std::string& pid) {
  const std::string stat = read_text("/proc/" + pid + "/stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  // After the command: state is field 3; utime and stime are 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double round_to(double v, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

}  // namespace

json::object raise_fd_limit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return {{"soft", static_cast<std::uint64_t>(limit.rlim_cur)},
          {"hard", static_cast<std::uint64_t>(limit.rlim_max)}};
}

std::optional<std::uint64_t> rss_bytes(pid_t pid) {
  const std::string status = read_text("/proc/" + std::to_string(pid) + "/status");
  const auto pos = status.find("VmRSS:");
  if (pos == std::string::npos) return std::nullopt;
  try {
    return std::stoull(status.substr(pos + 6)) * 1024;  // kB
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

json::object machine_info() {
  json::object info;
  info["nproc"] = sysconf(_SC_NPROCESSORS_ONLN);
  json::array load;
  {
    std::istringstream in(read_text("/proc/loadavg"));
    double v = 0;
    for (int i = 0; i < 3 && in >> v; ++i) load.push_back(v);
  }
  info["loadavg"] = std::move(load);
  utsname u{};
  if (uname(&u) == 0) info["kernel"] = std::string(u.sysname) + " " + u.release;
  std::istringstream cpuinfo(read_text("/proc/cpuinfo"));
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) info["cpu_model"] = line.substr(colon + 2);
      break;
    }
  }
  std::istringstream meminfo(read_text("/proc/meminfo"));
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) == 0) {
      info["mem_total_bytes"] = std::stoull(line.substr(9)) * 1024;
      break;
    }
  }
  return info;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

CpuMeter::Sample CpuMeter::sample() const {
  Sample s;
  s.when = std::chrono::steady_clock::now();
  s.self_s = process_cpu_seconds("self");
  if (server_) s.server_s = process_cpu_seconds(std::to_string(*server_));
  std::istringstream in(read_text("/proc/stat"));
  std::string cpu;
  in >> cpu;
  std::uint64_t v = 0;
  for (int i = 0; i < 8 && in >> v; ++i) {  // guest time is already in user
    s.total += v;
    if (i == 3 || i == 4) s.idle += v;  // idle, iowait
  }
  return s;
}

void CpuMeter::start() {
  start_ = sample();
}

json::object CpuMeter::stop() {
  const Sample end = sample();
  const double wall = std::chrono::duration<double>(end.when - start_.when).count();
  json::object out{{"wall_s", round_to(wall, 3)},
                   {"generator_cpu_s", round_to(end.self_s - start_.self_s, 3)}};
  if (server_ && start_.server_s >= 0 && end.server_s >= 0) {
    out["server_cpu_s"] = round_to(end.server_s - start_.server_s, 3);
  }
  const auto total = end.total - start_.total;
  if (total > 0) {
    out["machine_busy_fraction"] =
        round_to(1.0 - static_cast<double>(end.idle - start_.idle) / static_cast<double>(total), 3);
  }
  return out;
}

}  // namespace parley::bench
