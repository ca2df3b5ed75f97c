#include "static_files.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>

namespace parley::kernel {

namespace fs = std::filesystem;

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a URL path; nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// Whether `path` is `root` or lies below it, component by component (a
// string prefix test would let /srv/web-secret pass for /srv/web).
bool is_within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

std::string http_date(std::time_t time) {
  std::tm tm{};
  gmtime_r(&time, &tm);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buffer;
}

StaticResponse not_found() {
  StaticResponse response;
  response.status = 404;
  response.body = "not found\n";
  return response;
}

}  // namespace

std::optional<std::string_view> content_type_for(const fs::path& file) {
  auto extension = file.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (extension == ".html" || extension == ".htm") return "text/html; charset=utf-8";
  if (extension == ".js" || extension == ".mjs") return "text/javascript; charset=utf-8";
  if (extension == ".css") return "text/css; charset=utf-8";
  if (extension == ".json") return "application/json";
  if (extension == ".webmanifest") return "application/manifest+json";
  if (extension == ".svg") return "image/svg+xml";
  if (extension == ".png") return "image/png";
  if (extension == ".jpg" || extension == ".jpeg") return "image/jpeg";
  if (extension == ".gif") return "image/gif";
  if (extension == ".webp") return "image/webp";
  if (extension == ".ico") return "image/x-icon";
  if (extension == ".woff2") return "font/woff2";
  if (extension == ".woff") return "font/woff";
  if (extension == ".avif") return "image/avif";
  if (extension == ".ttf") return "font/ttf";
  if (extension == ".otf") return "font/otf";
  if (extension == ".mp3") return "audio/mpeg";
  if (extension == ".ogg" || extension == ".oga" || extension == ".opus") return "audio/ogg";
  if (extension == ".wav") return "audio/wav";
  if (extension == ".mp4") return "video/mp4";
  if (extension == ".webm") return "video/webm";
  if (extension == ".xml") return "application/xml";
  if (extension == ".wasm") return "application/wasm";
  if (extension == ".txt") return "text/plain; charset=utf-8";
  return std::nullopt;
}

StaticFiles::StaticFiles(const fs::path& root, std::string content_security_policy)
    : root_(fs::canonical(root)), content_security_policy_(std::move(content_security_policy)) {}

std::optional<fs::path> StaticFiles::resolve(std::string_view target) const {
  target = target.substr(0, target.find_first_of("?#"));
  // Only origin-form targets: an absolute URL or a bare name is not a path here.
  if (target.empty() || target.front() != '/') return std::nullopt;
  const auto decoded = percent_decode(target);
  if (!decoded) return std::nullopt;
  if (decoded->find('\0') != std::string::npos || decoded->find('\\') != std::string::npos)
    return std::nullopt;

  fs::path relative;
  std::string_view rest(*decoded);
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const auto segment = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (segment.empty()) continue;
    // ".", ".." and hidden files (.git, .env) are never served.
    if (segment.front() == '.') return std::nullopt;
    relative /= fs::path(std::string(segment));
  }
  if (decoded->back() == '/') relative /= "index.html";

  std::error_code ec;
  const auto candidate = fs::weakly_canonical(root_ / relative, ec);
  if (ec || !is_within(candidate, root_)) return std::nullopt;
  if (!fs::is_regular_file(candidate, ec)) return std::nullopt;
  // What a folder holds besides its assets (a README, notes, source maps,
  // backups) has no web type: it is not published.
  if (!content_type_for(candidate)) return std::nullopt;
  return candidate;
}

StaticResponse StaticFiles::serve(std::string_view target, std::string_view if_none_match) const {
  const auto file = resolve(target);
  if (!file) return not_found();
  struct stat info {};
  if (::stat(file->c_str(), &info) != 0) return not_found();

  char etag[64];
  std::snprintf(etag, sizeof etag, "\"%llx-%llx\"", static_cast<unsigned long long>(info.st_size),
                static_cast<unsigned long long>(info.st_mtim.tv_sec) * 1000000000ULL +
                    static_cast<unsigned long long>(info.st_mtim.tv_nsec));

  StaticResponse response;
  response.content_type = std::string(*content_type_for(*file));
  // Pages are always revalidated so a new deploy shows at once; other assets
  // may be reused for a minute, then revalidated by ETag.
  const bool page = file->extension() == ".html";
  response.headers = {{"Cache-Control", page ? "no-cache" : "public, max-age=60"},
                      {"ETag", etag},
                      {"Last-Modified", http_date(info.st_mtim.tv_sec)},
                      // Browsers must trust the type above, not guess from the bytes.
                      {"X-Content-Type-Options", "nosniff"},
                      // Addresses of this site, tokens in a path included, stay here.
                      {"Referrer-Policy", "no-referrer"}};
  if (!content_security_policy_.empty()) {
    response.headers.emplace_back("Content-Security-Policy", content_security_policy_);
  }
  if (!if_none_match.empty() &&
      (if_none_match == "*" || if_none_match.find(etag) != std::string_view::npos)) {
    response.status = 304;
    return response;
  }
  std::ifstream in(*file, std::ios::binary);
  if (!in) return not_found();
  response.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  response.status = 200;
  return response;
}

}  // namespace parley::kernel
