#include "common/service/redact.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace coupon {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

TEST(RedactDsn, UriPasswordAndSecretParametersGoTheRestStays) {
  EXPECT_EQ(RedactDsn("postgresql://coupon:s3cr%40t@db.internal:5432/coupon"
                      "?sslmode=verify-full&sslpassword=keypass&application_name=gw"),
            "postgresql://coupon:***@db.internal:5432/coupon"
            "?sslmode=verify-full&sslpassword=***&application_name=gw");
  EXPECT_EQ(RedactDsn("postgres://u:p@w@h/db"), "postgres://u:***@h/db");
  EXPECT_EQ(RedactDsn("postgresql://u@h/db?password=pw"),
            "postgresql://u@h/db?password=***");
  // Nothing secret: unchanged.
  EXPECT_EQ(RedactDsn("postgresql://u@h:5432/db?sslmode=require"),
            "postgresql://u@h:5432/db?sslmode=require");
  EXPECT_EQ(RedactDsn("postgresql://h"), "postgresql://h");
}

TEST(RedactDsn, KeywordFormWithQuotesAndEscapes) {
  EXPECT_EQ(RedactDsn("host=db user=coupon password=hunter22 sslmode=require"),
            "host=db user=coupon password=*** sslmode=require");
  EXPECT_EQ(RedactDsn("host=db password = 'two words \\' quote' dbname=x"),
            "host=db password = '***' dbname=x");
  EXPECT_EQ(RedactDsn("PASSWORD=x host=h"), "PASSWORD=*** host=h");
  // A stray word may be a value whose key was mistyped: hidden.
  EXPECT_EQ(RedactDsn("host=h passwrd hunter22"), "host=h ***");
}

TEST(DsnSecrets, RawAndDecodedForms) {
  EXPECT_THAT(DsnSecrets("postgresql://u:s3cr%40t@h/db"),
              UnorderedElementsAre("s3cr%40t", "s3cr@t"));
  EXPECT_THAT(DsnSecrets("host=h password='a\\'bcd'"),
              UnorderedElementsAre("a\\'bcd", "a'bcd"));
  EXPECT_THAT(DsnSecrets("postgresql://u@h/db"), ::testing::IsEmpty());
}

TEST(ScrubSecrets, ReplacesEveryOccurrenceOfLongEnoughSecrets) {
  EXPECT_EQ(ScrubSecrets("invalid percent-encoded token: \"pa%zzword\"",
                         DsnSecrets("postgresql://u:pa%zzword@h/db")),
            "invalid percent-encoded token: \"***\"");
  EXPECT_EQ(ScrubSecrets("abc and abcdef", {"abc", "abcdef"}), "abc and ***");
  EXPECT_EQ(ScrubSecrets("nothing here", {}), "nothing here");
}

TEST(IsSecretKey, CoversLibpqLibrdkafkaAndOurFlags) {
  for (const char* key :
       {"password", "sslpassword", "sasl.password", "ssl.key.password",
        "ssl.keystore.password", "ssl.key.pem", "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config", "REDIS_PASSWORD", "redis_password",
        "admin_token", "ADMIN_TOKEN"}) {
    EXPECT_TRUE(IsSecretKey(key)) << key;
  }
  for (const char* key : {"sslmode", "sasl.username", "security.protocol",
                          "ssl.certificate.pem", "ssl.ca.location", "host"}) {
    EXPECT_FALSE(IsSecretKey(key)) << key;
  }
}

TEST(RedactProperties, SecretValuesGoNamesStay) {
  const std::string shown = RedactProperties(
      {{"security.protocol", "SASL_SSL"},
       {"sasl.mechanism", "SCRAM-SHA-512"},
       {"sasl.username", "gateway"},
       {"sasl.password", "kafka-secret"},
       {"ssl.key.password", "key-secret"}});
  EXPECT_EQ(shown,
            "sasl.mechanism=SCRAM-SHA-512,sasl.password=***,sasl.username=gateway,"
            "security.protocol=SASL_SSL,ssl.key.password=***");
  EXPECT_THAT(shown, Not(HasSubstr("secret")));
}

}  // namespace
}  // namespace coupon
