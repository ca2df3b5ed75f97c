#include "jwt.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json/serialize.hpp>

namespace parley::push {

namespace {

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

std::string digest_sign(const PrivateKey& key, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    throw std::runtime_error("cannot start a signature: " + openssl_error());
  }
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t size = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &size, data, input.size()) != 1) {
    throw std::runtime_error("cannot size a signature: " + openssl_error());
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, data,
                     input.size()) != 1) {
    throw std::runtime_error("cannot sign: " + openssl_error());
  }
  signature.resize(size);
  return signature;
}

}  // namespace

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

PrivateKey::PrivateKey(evp_pkey_st* key) : key_(key, EVP_PKEY_free) {}

PrivateKey PrivateKey::from_pem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) throw std::runtime_error("out of memory");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) {
    throw std::runtime_error("not a PEM private key (" + openssl_error() + ")");
  }
  return PrivateKey(key);
}

bool PrivateKey::is_rsa() const {
  return EVP_PKEY_is_a(key_.get(), "RSA") == 1;
}

bool PrivateKey::is_p256() const {
  if (EVP_PKEY_is_a(key_.get(), "EC") != 1) return false;
  char curve[64] = {};
  std::size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(key_.get(), "group", curve, sizeof curve, &length) != 1) {
    return false;
  }
  const std::string_view name(curve, length);
  return name == "prime256v1" || name == "P-256";
}

std::string sign_rs256(const PrivateKey& key, std::string_view input) {
  if (!key.is_rsa()) throw std::runtime_error("RS256 needs an RSA key");
  return digest_sign(key, input);
}

std::string sign_es256(const PrivateKey& key, std::string_view input) {
  if (!key.is_p256()) throw std::runtime_error("ES256 needs an EC P-256 key");
  const std::string der = digest_sign(key, input);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
  if (!sig) throw std::runtime_error("cannot read an ECDSA signature: " + openssl_error());
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32) {
    throw std::runtime_error("an ECDSA signature component does not fit 32 bytes");
  }
  return raw;
}

std::string make_jwt(const PrivateKey& key, const boost::json::object& header,
                     const boost::json::object& claims) {
  const auto* alg = header.if_contains("alg");
  if (alg == nullptr || !alg->is_string()) throw std::runtime_error("a JWT header needs \"alg\"");
  const std::string input =
      base64url(boost::json::serialize(header)) + "." + base64url(boost::json::serialize(claims));
  std::string signature;
  if (alg->get_string() == "RS256") {
    signature = sign_rs256(key, input);
  } else if (alg->get_string() == "ES256") {
    signature = sign_es256(key, input);
  } else {
    throw std::runtime_error("unsupported JWT algorithm " + std::string(alg->get_string()));
  }
  return input + "." + base64url(signature);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return text.str();
}

}  // namespace parley::push
