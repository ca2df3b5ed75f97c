#include "report.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace parley::bench {

namespace json = boost::json;

namespace {

void collect(const json::value& v, std::vector<json::object>& runs) {
  if (v.is_array()) {
    for (const auto& e : v.get_array()) collect(e, runs);
  } else if (v.is_object()) {
    const auto& o = v.get_object();
    if (const auto* r = o.if_contains("runs")) {
      collect(*r, runs);
    } else if (o.contains("scenario")) {
      runs.push_back(o);
    }
  }
}

double number_at(const json::object& o, std::initializer_list<const char*> path) {
  const json::value* v = nullptr;
  const json::object* cur = &o;
  for (const char* key : path) {
    if (cur == nullptr) return 0;
    v = cur->if_contains(key);
    if (v == nullptr) return 0;
    cur = v->is_object() ? &v->get_object() : nullptr;
  }
  if (v == nullptr) return 0;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return 0;
}

std::string string_at(const json::object& o, const char* a, const char* b) {
  const auto* x = o.if_contains(a);
  if (x == nullptr || !x->is_object()) return {};
  const auto* y = x->get_object().if_contains(b);
  return y != nullptr && y->is_string() ? std::string(y->get_string()) : std::string();
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string latency(const json::object& run, const char* key) {
  const auto* results = run.if_contains("results");
  if (results == nullptr || !results->is_object()) return "-";
  const auto& r = results->get_object();
  if (!r.contains(key)) return "-";
  return fmt("%.2f", number_at(r, {key, "p50_ms"})) + " / " +
         fmt("%.2f", number_at(r, {key, "p90_ms"})) + " / " +
         fmt("%.2f", number_at(r, {key, "p99_ms"})) + " / " +
         fmt("%.1f", number_at(r, {key, "max_ms"}));
}

}  // namespace

int print_report(int argc, char** argv, std::ostream& out) {
  std::vector<json::object> runs;
  for (int i = 0; i < argc; ++i) {
    std::ifstream in(argv[i]);
    if (!in) {
      std::cerr << "parley-bench report: cannot read " << argv[i] << "\n";
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    json::error_code ec;
    auto value = json::parse(text, ec);
    if (!ec) {
      collect(value, runs);
      continue;
    }
    std::istringstream lines(text);  // one object per line
    for (std::string line; std::getline(lines, line);) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto v = json::parse(line, ec);
      if (ec) {
        std::cerr << "parley-bench report: " << argv[i] << " is not JSON\n";
        return 2;
      }
      collect(v, runs);
    }
  }

  // The ratio uses the ceiling measured in the same sequence: the latest
  // before the row, else the first one after it.
  double ceiling = 0;
  for (const auto& run : runs) {
    if (run.at("scenario") == "ceiling") {
      ceiling = number_at(run, {"results", "rows_per_second"});
      break;
    }
  }

  struct Figures {
    std::vector<double> main, ratio, ok_p99, delivery_p50, delivery_p99, cpu_per_delivery;
    std::string unit;
    std::string delivery = "send->delivery";  // where delivery latency is taken
  };
  std::map<std::string, Figures> groups;
  std::vector<std::string> order;

  char line[640];
  const char* format = "%-17s %-46s %-30s %-32s %s\n";
  std::snprintf(line, sizeof line, format, "scenario", "result", "send->ok p50/p90/p99/max ms",
                "send->delivery p50/p90/p99/max ms", "ok");
  out << line;
  bool all_ok = true;
  for (const auto& run : runs) {
    const std::string scenario(run.at("scenario").as_string());
    const bool ok = run.contains("ok") && run.at("ok").is_bool() && run.at("ok").as_bool();
    all_ok = all_ok && ok;
    std::string label = scenario;
    std::string result;
    if (scenario == "messaging" || scenario == "group")
      label += " " + string_at(run, "params", "mode");
    if (!groups.contains(label)) order.push_back(label);
    auto& g = groups[label];
    if (scenario == "ceiling") {
      ceiling = number_at(run, {"results", "rows_per_second"});
      result = fmt("%.0f rows/s", ceiling) + " (batch " +
               fmt("%.0f", number_at(run, {"params", "batch"})) + ")";
      g.main.push_back(ceiling);
      g.unit = "rows/s";
    } else if (scenario == "messaging") {
      const double rate = number_at(run, {"results", "messages_per_second"});
      result = fmt("%.0f msg/s", rate);
      if (string_at(run, "params", "mode") == "open") {
        result += fmt(" of %.0f offered", number_at(run, {"params", "rate"}));
      }
      if (ceiling > 0) {
        result += fmt(", %.2f of ceiling", rate / ceiling);
        g.ratio.push_back(rate / ceiling);
      }
      g.main.push_back(rate);
      g.unit = "msg/s";
      g.ok_p99.push_back(number_at(run, {"results", "send_to_ok", "p99_ms"}));
      g.delivery_p50.push_back(number_at(run, {"results", "send_to_delivery", "p50_ms"}));
      g.delivery_p99.push_back(number_at(run, {"results", "send_to_delivery", "p99_ms"}));
    } else if (scenario == "group") {
      const double rate = number_at(run, {"results", "deliveries_per_second"});
      result = fmt("%.0f deliv/s", rate) +
               fmt(" (%.0f msg/s", number_at(run, {"results", "messages_per_second"}));
      if (string_at(run, "params", "mode") == "open") {
        result += fmt(" of %.0f offered", number_at(run, {"params", "rate"}));
      }
      result += fmt(" x %.0f)", number_at(run, {"params", "members"}) - 1);
      g.main.push_back(rate);
      g.unit = "deliveries/s";
      g.delivery = "send->last member";
      g.ok_p99.push_back(number_at(run, {"results", "send_to_ok", "p99_ms"}));
      g.delivery_p50.push_back(
          number_at(run, {"results", "send_to_delivery_last_member", "p50_ms"}));
      g.delivery_p99.push_back(
          number_at(run, {"results", "send_to_delivery_last_member", "p99_ms"}));
      g.cpu_per_delivery.push_back(number_at(run, {"results", "server_cpu_us_per_delivery"}));
    } else if (scenario == "idle") {
      result = fmt("%.0f conns, ", number_at(run, {"results", "connections"})) +
               fmt("%.0f B/conn", number_at(run, {"results", "bytes_per_connection"}));
      g.main.push_back(number_at(run, {"results", "bytes_per_connection"}));
      g.unit = "bytes/connection";
    } else if (scenario == "reconnect") {
      result = fmt("%.0f users", number_at(run, {"results", "users"})) +
               fmt(" x %.0f msgs: ", number_at(run, {"results", "messages_per_user"})) +
               fmt("synced in %.2f s", number_at(run, {"results", "storm_seconds"}));
      g.main.push_back(number_at(run, {"results", "storm_seconds"}));
      g.unit = "s until all synced";
    } else if (scenario == "presence") {
      const double events = number_at(run, {"results", "presence_events_per_second"});
      result = fmt("%.0f subs, ", number_at(run, {"results", "subscriptions"})) +
               fmt("%.0f events/s, ", events) +
               fmt("%.0f B/sub", number_at(run, {"results", "server_bytes_per_subscription"}));
      g.main.push_back(events);
      g.unit = "presence events/s";
    } else {
      result = "(see JSON)";
    }
    // Presence has no sends: its two latency columns are the delays of
    // offline and online events to the watchers.
    std::string ok_col = latency(run, "send_to_ok");
    std::string second = latency(run, "send_to_delivery");
    if (scenario == "reconnect") {
      ok_col = "-";
      second = "login->synced " + latency(run, "login_to_synced");
    } else if (scenario == "group") {
      second = "last " + latency(run, "send_to_delivery_last_member");
    } else if (scenario == "presence") {
      ok_col = "offline " + latency(run, "offline_delay");
      second = "online " + latency(run, "online_delay");
    }
    std::snprintf(line, sizeof line, format, label.c_str(), result.c_str(), ok_col.c_str(),
                  second.c_str(), ok ? "yes" : "FAILED");
    out << line;
  }

  bool repeated = false;
  for (const auto& [label, g] : groups) repeated = repeated || g.main.size() > 1;
  if (repeated) {
    auto median = [](std::vector<double> v) {
      if (v.empty()) return 0.0;
      std::sort(v.begin(), v.end());
      const auto n = v.size();
      return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    };
    out << "\nmedians:\n";
    for (const auto& label : order) {
      const auto& g = groups[label];
      std::string text = fmt(g.unit[0] == 's' ? "%.2f " : "%.0f ", median(g.main)) + g.unit +
                         fmt(" (%.0f runs)", static_cast<double>(g.main.size()));
      if (!g.ratio.empty()) text += fmt(", %.2f of ceiling", median(g.ratio));
      if (!g.delivery_p99.empty()) {
        text += fmt(", send->ok p99 %.1f ms", median(g.ok_p99)) + ", " + g.delivery +
                fmt(" p50 %.1f ms", median(g.delivery_p50)) +
                fmt(" p99 %.1f ms", median(g.delivery_p99));
      }
      if (!g.cpu_per_delivery.empty()) {
        text += fmt(", parleyd %.2f us CPU/delivery", median(g.cpu_per_delivery));
      }
      std::snprintf(line, sizeof line, "%-17s %s\n", label.c_str(), text.c_str());
      out << line;
    }
  }
  return all_ok ? 0 : 1;
}

}  // namespace parley::bench
