// parley-bench: the load generator. See docs/benchmarks.md.
//   parley-bench SCENARIO [--option value ...]
//   parley-bench list
//   parley-bench report RESULTS.json...
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include <boost/asio/ip/tcp.hpp>
#include <boost/json/serialize.hpp>

#include "report.hpp"
#include "scenario.hpp"
#include "system.hpp"

namespace parley::bench {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr const char* kUsage = R"(usage:
  parley-bench SCENARIO [options]     run a scenario, print one JSON object
  parley-bench list                   the scenarios
  parley-bench report FILE...         a table of results (JSON from runs)

options of every scenario that talks to parleyd:
  --url ws://127.0.0.1:8080/ws   the server
  --threads N                    I/O threads of the generator (default 1)
  --source-addresses N|A,B,...   bind 127.0.0.1..127.0.0.N (or the given
                                 addresses) round-robin, to pass 64k connections
  --server-pid PID               parleyd's process: its CPU time and memory
  --timeout S                    bound on every setup phase (default 120)
  --output FILE                  write the JSON there instead of stdout
  --run-id ID                    makes account emails unique (default: random)
)";

WsTarget parse_url(const std::string& url) {
  const std::string scheme = "ws://";
  if (url.rfind(scheme, 0) != 0)
    throw OptionError("--url must start with ws:// (wss is not supported)");
  std::string rest = url.substr(scheme.size());
  WsTarget target;
  const auto slash = rest.find('/');
  target.path = slash == std::string::npos ? "/" : rest.substr(slash);
  rest = rest.substr(0, slash);
  const auto colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  target.host = rest;
  asio::io_context ioc;
  asio::ip::tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  const auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty())
    throw OptionError("--url: cannot resolve '" + rest + "': " + ec.message());
  for (const auto& entry : results) {
    if (entry.endpoint().address().is_v4()) {
      target.server = entry.endpoint();
      return target;
    }
  }
  target.server = results.begin()->endpoint();
  return target;
}

std::vector<asio::ip::address> parse_sources(const std::string& text) {
  std::vector<asio::ip::address> out;
  if (text.empty() || text == "0") return out;
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    const int n = std::stoi(text);
    if (n < 1 || n > 254)
      throw OptionError("--source-addresses: between 1 and 254 loopback addresses");
    for (int i = 1; i <= n; ++i)
      out.push_back(asio::ip::make_address("127.0.0." + std::to_string(i)));
    return out;
  }
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const auto item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    boost::system::error_code ec;
    out.push_back(asio::ip::make_address(item, ec));
    if (ec) throw OptionError("--source-addresses: '" + item + "' is not an IP address");
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string random_run_id() {
  std::random_device rd;
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id;
  for (int i = 0; i < 8; ++i) id += digits[rd() % 36];
  return id;
}

int run_scenario(const std::string& name, int argc, char** argv) {
  auto& registry = scenario_registry();
  const auto it = registry.find(name);
  if (it == registry.end()) {
    std::cerr << "parley-bench: unknown scenario '" << name << "'\n" << kUsage;
    return 2;
  }
  auto scenario = it->second();
  Context ctx;
  std::string output;
  json::object params;
  try {
    Options options(argc, argv, 2);
    output = options.string("output", "");
    ctx.run_id = options.string("run-id", random_run_id());
    if (ctx.run_id.empty() || ctx.run_id.size() > 24 ||
        ctx.run_id.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
            std::string::npos) {
      throw OptionError("--run-id: 1 to 24 letters, digits or _");
    }
    ctx.timeout = seconds_ms(options.number("timeout", 120, 1, 86400));
    if (options.has("server-pid")) {
      ctx.server_pid = static_cast<pid_t>(options.integer("server-pid", 0, 1, 1 << 30));
    }
    if (scenario->uses_server()) {
      ctx.net.target = parse_url(options.string("url", "ws://127.0.0.1:8080/ws"));
      ctx.net.threads = static_cast<int>(options.integer("threads", 1, 1, 256));
      ctx.net.sources = parse_sources(options.string("source-addresses", ""));
    }
    scenario->configure(options);
    if (const auto unused = options.unused(); !unused.empty()) {
      std::string list;
      for (const auto& u : unused) list += " --" + u;
      throw OptionError("options not known to '" + name + "':" + list);
    }
    params = options.used();
    params.erase("output");
  } catch (const std::exception& e) {
    std::cerr << "parley-bench " << name << ": " << e.what() << "\n";
    return 2;
  }

  json::object out;
  out["tool"] = "parley-bench";
  out["scenario"] = name;
  out["run_id"] = ctx.run_id;
  out["started_at"] = utc_now();
  out["params"] = params;
  out["fd_limit"] = raise_fd_limit();
  json::object machine = machine_info();
  machine["loadavg_before"] = machine["loadavg"];
  machine.erase("loadavg");

  const auto start = Clock::now();
  try {
    scenario->run(ctx);
  } catch (const std::exception& e) {
    ctx.fail(std::string("error: ") + e.what());
  }
  machine["loadavg_after"] = machine_info()["loadavg"];
  out["elapsed_seconds"] = std::round(seconds_since(start) * 1000) / 1000;
  out["results"] = std::move(ctx.results);
  out["machine"] = std::move(machine);
  out["ok"] = !ctx.failed();
  json::array failures;
  for (const auto& f : ctx.failures) failures.push_back(json::string(f));
  out["failures"] = std::move(failures);

  const std::string text = json::serialize(out) + "\n";
  if (output.empty()) {
    std::cout << text << std::flush;
  } else {
    std::ofstream file(output);
    file << text;
    if (!file) {
      std::cerr << "parley-bench: cannot write " << output << "\n";
      return 1;
    }
  }
  for (const auto& f : ctx.failures)
    std::cerr << "parley-bench " << name << ": FAILED: " << f << "\n";
  return ctx.failed() ? 1 : 0;
}

}  // namespace
}  // namespace parley::bench

int main(int argc, char** argv) {
  using namespace parley::bench;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cerr << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "list") {
    for (const auto& [name, factory] : scenario_registry()) {
      std::cout << name << "\t" << factory()->description() << "\n";
    }
    return 0;
  }
  if (command == "report") return print_report(argc - 2, argv + 2, std::cout);
  return run_scenario(command, argc, argv);
}
