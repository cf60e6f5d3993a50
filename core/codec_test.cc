// The record codec: CRC-32C by instruction and by table agree (and with
// the standard's check value), and a record reads back what was appended
// while a damaged one does not.
#include "core/codec.h"

#include <string>

#include "gtest/gtest.h"

namespace raftsql::core {
namespace {

TEST(Codec, Crc32cMatchesTheCheckValueAndTheTableAtEveryLength) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);  // RFC 3720's check value.
  EXPECT_EQ(Crc32cByTable("123456789"), 0xe3069283u);
  std::string data;
  uint32_t x = 12345;
  for (int n = 0; n < 300; ++n) {
    EXPECT_EQ(Crc32c(data), Crc32cByTable(data)) << n;
    x = x * 1103515245u + 12345u;
    data.push_back(static_cast<char>(x >> 16));
  }
}

TEST(Codec, Crc32cOfLongDataMatchesTheTable) {
  // Three stretches of 4 KiB run as three streams, then are joined: every
  // length around their multiples, from every alignment.
  std::string data;
  uint32_t x = 54321;
  for (int n = 0; n < 40000; ++n) {
    x = x * 1103515245u + 12345u;
    data.push_back(static_cast<char>(x >> 16));
  }
  const std::string_view all(data);
  for (size_t n : {12287, 12288, 12289, 12295, 24576, 24583, 36864, 39990}) {
    for (size_t start : {0, 1, 3, 8}) {
      EXPECT_EQ(Crc32c(all.substr(start, n)),
                Crc32cByTable(all.substr(start, n)))
          << n << " from " << start;
      EXPECT_EQ(Crc32cExtend(Crc32c(all.substr(start, 100)),
                             all.substr(start + 100, n - 100)),
                Crc32cByTable(all.substr(start, n)))
          << n << " from " << start;
    }
  }
}

TEST(Codec, Crc32cExtendedPieceByPieceIsTheCrcOfTheWhole) {
  std::string data;
  for (int n = 0; n < 300; ++n) data.push_back(static_cast<char>(n * 7));
  for (size_t cut : {0, 1, 7, 8, 9, 150, 300}) {
    const std::string_view whole(data);
    EXPECT_EQ(
        Crc32cExtend(Crc32cExtend(0, whole.substr(0, cut)), whole.substr(cut)),
        Crc32c(whole))
        << cut;
  }
}

TEST(Codec, Crc32cOfPiecesCombinesIntoTheCrcOfTheWhole) {
  std::string data;
  for (size_t n = 0; n < (3u << 20) + 5; ++n) {
    data.push_back(static_cast<char>((n * 131) ^ (n >> 9)));
  }
  const std::string_view whole(data);
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, size_t{4096},
                     size_t{1} << 20, (size_t{1} << 20) + 3, whole.size()}) {
    const std::string_view a = whole.substr(0, cut);
    const std::string_view b = whole.substr(cut);
    EXPECT_EQ(Crc32cCombine(Crc32c(a), Crc32c(b), b.size()), Crc32c(whole))
        << cut;
  }
  // Three 1 MiB pieces and a short one, joined in order.
  uint32_t crc = 0;
  for (size_t at = 0; at < whole.size(); at += 1 << 20) {
    const std::string_view piece = whole.substr(at, 1 << 20);
    crc = Crc32cCombine(crc, Crc32c(piece), piece.size());
  }
  EXPECT_EQ(crc, Crc32c(whole));
}

TEST(Codec, ARecordReadsBackAndADamagedOneDoesNot) {
  std::string out = "prefix";
  AppendRecord(out, 7, "payload");
  std::string_view in = std::string_view(out).substr(6);
  std::optional<Record> r = ReadRecord(in);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->type, 7);
  EXPECT_EQ(r->payload, "payload");
  EXPECT_TRUE(in.empty());
  out[out.size() - 1] ^= 1;
  std::string_view damaged = std::string_view(out).substr(6);
  EXPECT_FALSE(ReadRecord(damaged).has_value());
}

}  // namespace
}  // namespace raftsql::core
