// JWT signing checked with OpenSSL's verification, independently of the
// signing code path.
#include "jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>

#include "push_test_support.hpp"

namespace parley::push {
namespace {

std::string b64url_decode(std::string_view text) {
  std::string standard(text);
  for (auto& c : standard) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (standard.size() % 4 != 0) standard += '=';
  std::string out(standard.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(standard.data()),
                                static_cast<int>(standard.size()));
  EXPECT_GE(n, 0);
  const std::size_t padding = standard.size() - text.size();
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

EVP_PKEY* load_public(const std::filesystem::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  EXPECT_NE(f, nullptr);
  EVP_PKEY* key = PEM_read_PUBKEY(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return key;
}

bool verify(EVP_PKEY* key, std::string_view input, std::string_view signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  const int ok = EVP_DigestVerify(
      ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(input.data()), input.size());
  EVP_MD_CTX_free(ctx);
  return ok == 1;
}

// A JWS ES256 signature (r||s) as the DER that OpenSSL verifies.
std::string der_of_raw(std::string_view raw) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  const int n = i2d_ECDSA_SIG(sig, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  return out;
}

struct Parts {
  std::string header, claims, signature, signing_input;
};

Parts split(const std::string& jwt) {
  const auto a = jwt.find('.');
  const auto b = jwt.find('.', a + 1);
  EXPECT_NE(b, std::string::npos);
  EXPECT_EQ(jwt.find('.', b + 1), std::string::npos);
  return {b64url_decode(jwt.substr(0, a)), b64url_decode(jwt.substr(a + 1, b - a - 1)),
          b64url_decode(jwt.substr(b + 1)), jwt.substr(0, b)};
}

class JwtTest : public ::testing::Test {
 protected:
  test::TestKeys keys_;
};

TEST(Base64Url, EncodesWithoutPaddingInTheUrlAlphabet) {
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foo"), "Zm9v");
  EXPECT_EQ(base64url("\xfb\xff\xfe"), "-__-");
}

TEST_F(JwtTest, Rs256VerifiesWithTheRsaPublicKey) {
  const auto key = PrivateKey::from_pem(test::read_file(keys_.rsa_key));
  ASSERT_TRUE(key.is_rsa());
  const std::string jwt = make_jwt(key, {{"alg", "RS256"}, {"typ", "JWT"}},
                                   {{"iss", "sa@example.iam.gserviceaccount.com"}, {"iat", 1}});
  const auto parts = split(jwt);
  EXPECT_EQ(boost::json::parse(parts.header).at("alg").as_string(), "RS256");
  EXPECT_EQ(boost::json::parse(parts.claims).at("iss").as_string(),
            "sa@example.iam.gserviceaccount.com");
  EXPECT_EQ(parts.signature.size(), 256u);  // 2048-bit key
  EVP_PKEY* pub = load_public(keys_.rsa_public);
  EXPECT_TRUE(verify(pub, parts.signing_input, parts.signature));
  EXPECT_FALSE(verify(pub, parts.signing_input + "x", parts.signature));
  EVP_PKEY_free(pub);
}

TEST_F(JwtTest, Es256IsRawRAndSThatVerifyWithTheEcPublicKey) {
  const auto key = PrivateKey::from_pem(test::read_file(keys_.ec_key));
  ASSERT_TRUE(key.is_p256());
  EVP_PKEY* pub = load_public(keys_.ec_public);
  // ECDSA signatures are randomised and r or s may have leading zero bytes:
  // several signatures exercise the fixed-width padding.
  for (int i = 0; i < 20; ++i) {
    const std::string jwt = make_jwt(key, {{"alg", "ES256"}, {"kid", "ABC123DEFG"}},
                                     {{"iss", "DEF123GHIJ"}, {"iat", i}});
    const auto parts = split(jwt);
    ASSERT_EQ(parts.signature.size(), 64u);
    EXPECT_TRUE(verify(pub, parts.signing_input, der_of_raw(parts.signature)));
    EXPECT_FALSE(verify(pub, parts.signing_input + "x", der_of_raw(parts.signature)));
  }
  EVP_PKEY_free(pub);
}

TEST_F(JwtTest, WrongKeyKindsAreRefused) {
  const auto rsa = PrivateKey::from_pem(test::read_file(keys_.rsa_key));
  const auto ec = PrivateKey::from_pem(test::read_file(keys_.ec_key));
  EXPECT_THROW(make_jwt(rsa, {{"alg", "ES256"}}, {}), std::runtime_error);
  EXPECT_THROW(make_jwt(ec, {{"alg", "RS256"}}, {}), std::runtime_error);
  EXPECT_THROW(make_jwt(ec, {{"alg", "none"}}, {}), std::runtime_error);
  EXPECT_THROW(
      PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"),
      std::runtime_error);
}

}  // namespace
}  // namespace parley::push
