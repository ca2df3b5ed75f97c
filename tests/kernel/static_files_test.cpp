// Static file serving: the resolver maps targets to files strictly inside its
// root however they are encoded, and a real parleyd serves those files over
// HTTP with their content types and cache headers, next to its operator
// endpoints, while a secret file beside the root is never served.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "kernel_config.hpp"
#include "parleyd_process.hpp"
#include "static_files.hpp"
#include "temp_dir.hpp"

namespace parley::kernel {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using ::testing::HasSubstr;

const std::string kSecret = "the secret next to the web root";

// A web root `www` with a secret file beside it and a symlink pointing out.
class StaticFilesTest : public ::testing::Test {
 protected:
  StaticFilesTest() {
    fs::create_directories(root() / "assets");
    put("www/index.html", "<!doctype html><title>home</title>");
    put("www/app.js", "export const x = 1;\n");
    put("www/assets/logo.svg", "<svg/>");
    put("www/assets/index.html", "nested");
    put("www/.hidden", "hidden");
    put("secret.txt", kSecret);
    put("www-secret/file.txt", kSecret);
    fs::create_symlink(dir_.path() / "secret.txt", root() / "escape.txt");
    fs::create_directory_symlink(dir_.path(), root() / "outside");
    // A reader that opened this pipe would block forever: requests that
    // reach it prove the server never opens what lies outside.
    mkfifo((dir_.path() / "pipe").c_str(), 0644);
    fs::create_symlink(dir_.path() / "pipe", root() / "pipe-link");
  }
  fs::path root() const { return dir_.path() / "www"; }
  fs::path put(const std::string& name, const std::string& content) {
    fs::create_directories((dir_.path() / name).parent_path());
    return dir_.write(name, content);
  }
  TempDir dir_;
};

const std::vector<std::string> kTraversals = {
    "/../secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E%2Fsecret.txt",
    "/assets/../../secret.txt",
    "/assets/%2e%2e/%2e%2e/secret.txt",
    "/..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/..%5csecret.txt",
    "/escape.txt",
    "/outside/secret.txt",
    "/../pipe",
    "/pipe-link",
    "/outside/pipe",
    "/../www-secret/file.txt",
    "/%2e%2e%2fwww-secret/file.txt",
    "//etc/passwd",
    "/etc/passwd",
    "secret.txt",
    "../secret.txt",
    "http://localhost/../secret.txt",
    "/index.html%00.png",
    "/%",
    "/%2",
    "/%zz",
    "/%252e%252e/secret.txt",
    "/.hidden",
    "/./index.html",
    "/nothing.html",
    "/assets",
};

TEST_F(StaticFilesTest, ResolvesFilesInsideTheRoot) {
  StaticFiles files(root(), "");
  const auto canonical_root = fs::canonical(root());
  EXPECT_EQ(files.resolve("/"), canonical_root / "index.html");
  EXPECT_EQ(files.resolve("/index.html"), canonical_root / "index.html");
  EXPECT_EQ(files.resolve("/app.js?v=3#top"), canonical_root / "app.js");
  EXPECT_EQ(files.resolve("/assets/logo.svg"), canonical_root / "assets" / "logo.svg");
  EXPECT_EQ(files.resolve("/assets/"), canonical_root / "assets" / "index.html");
  EXPECT_EQ(files.resolve("/%61pp.js"), canonical_root / "app.js");
  EXPECT_EQ(files.resolve("//assets//logo.svg"), canonical_root / "assets" / "logo.svg");
}

TEST_F(StaticFilesTest, RefusesEveryPathOutsideTheRoot) {
  StaticFiles files(root(), "");
  for (const auto& target : kTraversals) {
    EXPECT_EQ(files.resolve(target), std::nullopt) << target;
    const auto response = files.serve(target, "");
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_THAT(response.body, ::testing::Not(HasSubstr(kSecret))) << target;
  }
}

TEST_F(StaticFilesTest, ContentTypes) {
  EXPECT_EQ(content_type_for("a.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("a.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("a.PNG"), "image/png");
  EXPECT_EQ(content_type_for("a.json"), "application/json");
  EXPECT_EQ(content_type_for("a.ico"), "image/x-icon");
  EXPECT_EQ(content_type_for("a.webmanifest"), "application/manifest+json");
  EXPECT_EQ(content_type_for("a.woff2"), "font/woff2");
  EXPECT_EQ(content_type_for("a.bin"), std::nullopt);
  EXPECT_EQ(content_type_for("README.md"), std::nullopt);
  EXPECT_EQ(content_type_for("app.js.map"), std::nullopt);
  EXPECT_EQ(content_type_for("Makefile"), std::nullopt);
}

// A folder's other files (a README, notes, source maps, backups) are not
// published: only files of a known web type are served.
TEST_F(StaticFilesTest, FilesOfNoKnownWebTypeAreNotServed) {
  put("www/README.md", kSecret);
  put("www/app.js.map", kSecret);
  put("www/assets/notes", kSecret);
  put("www/index.html.bak", kSecret);
  StaticFiles files(root(), "");
  for (const std::string target :
       {"/README.md", "/app.js.map", "/assets/notes", "/index.html.bak", "/readme.md"}) {
    EXPECT_EQ(files.resolve(target), std::nullopt) << target;
    const auto response = files.serve(target, "");
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_THAT(response.body, ::testing::Not(HasSubstr(kSecret))) << target;
  }
  EXPECT_EQ(files.serve("/app.js", "").status, 200);
}

std::map<std::string, std::string> header_map(const StaticResponse& response) {
  return {response.headers.begin(), response.headers.end()};
}

TEST_F(StaticFilesTest, PagesAreRevalidatedAndAssetsCarryValidators) {
  StaticFiles files(root(), "");
  const auto page = files.serve("/", "");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.body, "<!doctype html><title>home</title>");
  EXPECT_EQ(header_map(page).at("Cache-Control"), "no-cache");

  const auto script = files.serve("/app.js", "");
  ASSERT_EQ(script.status, 200);
  const auto headers = header_map(script);
  EXPECT_THAT(headers.at("Cache-Control"), HasSubstr("max-age="));
  EXPECT_THAT(headers.at("Last-Modified"), HasSubstr(" GMT"));
  const auto etag = headers.at("ETag");
  EXPECT_EQ(etag.front(), '"');

  const auto revalidated = files.serve("/app.js", etag);
  EXPECT_EQ(revalidated.status, 304);
  EXPECT_TRUE(revalidated.body.empty());
  EXPECT_EQ(files.serve("/app.js", "\"other\"").status, 200);

  put("www/app.js", "export const x = 22;\n");
  const auto changed = files.serve("/app.js", etag);
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, "export const x = 22;\n");
}

// --- configuration ---

TEST_F(StaticFilesTest, ConfigResolvesARelativeFolderAgainstTheConfigFile) {
  const auto file = put("conf/parley.yaml", "server:\n  static_dir: ../www\n");
  const auto config = load_kernel_config(file.string());
  EXPECT_EQ(fs::canonical(config.server.static_dir), fs::canonical(root()));
  EXPECT_TRUE(config.server.static_dir.is_absolute());
}

TEST_F(StaticFilesTest, ConfigWithoutTheKeyServesNothing) {
  const auto file = put("conf/parley.yaml", "server:\n  port: 0\n");
  EXPECT_TRUE(load_kernel_config(file.string()).server.static_dir.empty());
}

TEST_F(StaticFilesTest, AMissingFolderIsAConfigErrorWithItsLine) {
  const auto file = put("conf/parley.yaml", "server:\n  port: 0\n  static_dir: nowhere\n");
  try {
    load_kernel_config(file.string());
    FAIL() << "a missing static_dir was accepted";
  } catch (const std::exception& e) {
    EXPECT_THAT(e.what(), HasSubstr("parley.yaml:3: server.static_dir: no such folder"));
  }
}

// --- over HTTP, against a real parleyd ---

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// Sends `head` (request line and headers) byte for byte, so targets reach the
// server exactly as written, and reads the response until the server closes.
RawResponse raw_http(int port, const std::string& head) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return {};
  }
  const std::string request = head + "Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return {};
  }
  std::string text;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, n);
  close(fd);

  RawResponse response;
  const auto end_of_head = text.find("\r\n\r\n");
  if (text.rfind("HTTP/1.1 ", 0) != 0 || end_of_head == std::string::npos) return response;
  response.status = std::stoi(text.substr(9, 3));
  response.body = text.substr(end_of_head + 4);
  std::size_t line = text.find("\r\n") + 2;
  while (line < end_of_head) {
    const auto next = text.find("\r\n", line);
    const auto colon = text.find(':', line);
    std::string name = text.substr(line, colon - line);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    response.headers[name] = text.substr(colon + 2, next - colon - 2);
    line = next + 2;
  }
  return response;
}

RawResponse get(int port, const std::string& target, const std::string& extra = "") {
  return raw_http(port, "GET " + target + " HTTP/1.1\r\n" + extra);
}

class StaticFilesOverHttp : public StaticFilesTest {
 protected:
  test::ParleydProcess::Options options() {
    test::ParleydProcess::Options o;
    o.plugin_dir = TEST_PLUGIN_DIR;
    o.plugins_yaml =
        "  - name: alpha\n    config:\n      journal: " + (dir_.path() / "journal").string() + "\n";
    o.server_yaml = "  static_dir: " + root().string() + "\n";
    return o;
  }
};

TEST_F(StaticFilesOverHttp, ServesTheFolderWithTypesAndCacheHeaders) {
  test::ParleydProcess server(options());
  const auto page = get(server.port(), "/");
  ASSERT_EQ(page.status, 200) << server.log();
  EXPECT_EQ(page.body, "<!doctype html><title>home</title>");
  EXPECT_EQ(page.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(page.headers.at("cache-control"), "no-cache");
  // By default a page may load and connect only to its own origin, and no
  // other site may frame it.
  EXPECT_THAT(page.headers.at("content-security-policy"), HasSubstr("default-src 'self'"));
  EXPECT_THAT(page.headers.at("content-security-policy"), HasSubstr("frame-ancestors 'none'"));
  EXPECT_EQ(page.headers.at("referrer-policy"), "no-referrer");

  const auto script = get(server.port(), "/app.js");
  ASSERT_EQ(script.status, 200);
  EXPECT_EQ(script.headers.at("content-type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(script.headers.at("x-content-type-options"), "nosniff");
  EXPECT_EQ(script.body, "export const x = 1;\n");
  ASSERT_TRUE(script.headers.count("etag"));
  EXPECT_TRUE(script.headers.count("last-modified"));

  const auto revalidated =
      get(server.port(), "/app.js", "If-None-Match: " + script.headers.at("etag") + "\r\n");
  EXPECT_EQ(revalidated.status, 304);
  EXPECT_TRUE(revalidated.body.empty());

  EXPECT_EQ(get(server.port(), "/assets/logo.svg").headers.at("content-type"), "image/svg+xml");

  const auto head = raw_http(server.port(), "HEAD /app.js HTTP/1.1\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers.at("content-length"), std::to_string(script.body.size()));
  EXPECT_TRUE(head.body.empty());

  EXPECT_EQ(get(server.port(), "/missing.js").status, 404);
  EXPECT_EQ(raw_http(server.port(), "POST /index.html HTTP/1.1\r\nContent-Length: 0\r\n").status,
            405);
}

TEST_F(StaticFilesOverHttp, TheOperatorSetsOrTurnsOffTheContentSecurityPolicy) {
  auto o = options();
  o.server_yaml += "  static_content_security_policy: \"default-src https:\"\n";
  test::ParleydProcess custom(o);
  EXPECT_EQ(get(custom.port(), "/").headers.at("content-security-policy"), "default-src https:")
      << custom.log();

  o = options();
  o.server_yaml += "  static_content_security_policy: \"\"\n";
  test::ParleydProcess none(o);
  const auto page = get(none.port(), "/");
  ASSERT_EQ(page.status, 200) << none.log();
  EXPECT_EQ(page.headers.count("content-security-policy"), 0u);
}

TEST_F(StaticFilesOverHttp, OperatorEndpointsTakePrecedence) {
  // Files named like the endpoints must not shadow them.
  put("www/healthz", "shadow");
  put("www/metrics", "shadow");
  test::ParleydProcess server(options());
  const auto health = get(server.port(), "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  EXPECT_EQ(get(server.port(), "/readyz").status, 200);
  EXPECT_THAT(get(server.port(), "/metrics").body, HasSubstr("parley_connections"));
}

TEST_F(StaticFilesOverHttp, TraversalAttemptsAreNotFoundAndNeverReadOutside) {
  test::ParleydProcess server(options());
  for (const auto& target : kTraversals) {
    // Targets a client library would normalise are sent raw here.
    const auto response = get(server.port(), target);
    EXPECT_EQ(response.status, 404) << target;
    EXPECT_THAT(response.body, ::testing::Not(HasSubstr(kSecret))) << target;
  }
  EXPECT_EQ(get(server.port(), "/").status, 200) << "the server still serves";
}

TEST_F(StaticFilesOverHttp, WithoutTheKeyNothingIsServed) {
  auto o = options();
  o.server_yaml.clear();
  test::ParleydProcess server(o);
  EXPECT_EQ(get(server.port(), "/").status, 404);
  EXPECT_EQ(get(server.port(), "/healthz").status, 200);
}

}  // namespace
}  // namespace parley::kernel
