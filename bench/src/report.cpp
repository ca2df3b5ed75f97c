#include "report.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>
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
  return fmt("%.2f", number_at(r, {key, "p50_ms"})) + " / " + fmt("%.2f", number_at(r, {key, "p90_ms"})) + " / " +
         fmt("%.2f", number_at(r, {key, "p99_ms"})) + " / " + fmt("%.1f", number_at(r, {key, "max_ms"}));
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

  double ceiling = 0;
  for (const auto& run : runs) {
    if (run.at("scenario") == "ceiling") ceiling = number_at(run, {"results", "rows_per_second"});
  }

  char line[512];
  std::snprintf(line, sizeof line, "%-18s %-44s %-30s %-30s %s\n", "scenario", "result",
                "send->ok p50/p90/p99/max ms", "send->delivery p50/p90/p99/max", "ok");
  out << line;
  bool all_ok = true;
  for (const auto& run : runs) {
    const std::string scenario(run.at("scenario").as_string());
    const bool ok = run.contains("ok") && run.at("ok").is_bool() && run.at("ok").as_bool();
    all_ok = all_ok && ok;
    std::string label = scenario;
    std::string result;
    if (scenario == "ceiling") {
      result = fmt("%.0f rows/s", number_at(run, {"results", "rows_per_second"})) + " (batch " +
               fmt("%.0f", number_at(run, {"params", "batch"})) + ")";
    } else if (scenario == "messaging") {
      label += " " + string_at(run, "params", "mode");
      const double rate = number_at(run, {"results", "messages_per_second"});
      result = fmt("%.0f msg/s", rate);
      if (string_at(run, "params", "mode") == "open") {
        result += fmt(" of %.0f offered", number_at(run, {"params", "rate"}));
      }
      if (ceiling > 0) result += fmt(", %.2f of ceiling", rate / ceiling);
    } else if (scenario == "idle") {
      result = fmt("%.0f conns, ", number_at(run, {"results", "connections"})) +
               fmt("%.0f B/conn", number_at(run, {"results", "bytes_per_connection"}));
    } else if (scenario == "reconnect") {
      result = fmt("%.0f users", number_at(run, {"results", "users"})) +
               fmt(" x %.0f msgs: ", number_at(run, {"results", "messages_per_user"})) +
               fmt("synced in %.2f s", number_at(run, {"results", "storm_seconds"}));
    } else {
      result = "(see JSON)";
    }
    const std::string ok_col = scenario == "reconnect" ? "-" : latency(run, "send_to_ok");
    const std::string second = scenario == "reconnect" ? "login->synced " + latency(run, "login_to_synced")
                                                       : latency(run, "send_to_delivery");
    std::snprintf(line, sizeof line, "%-18s %-44s %-30s %-30s %s\n", label.c_str(), result.c_str(), ok_col.c_str(),
                  second.c_str(), ok ? "yes" : "FAILED");
    out << line;
  }
  return all_ok ? 0 : 1;
}

}  // namespace parley::bench
