// The GGUF loader: a file written here reads back exactly; every kind of
// bad file is refused with its reason, and every truncation of a good one
// is refused without reading past the end.
#include "ai/gguf.h"

#include <cstring>

#include "ai/gguf_writer.h"
#include "ai/ops.h"
#include "gtest/gtest.h"

namespace raftsql::ai {
namespace {

// A GGUF file, built field by field.
class Writer {
 public:
  template <typename T>
  Writer& Put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
    return *this;
  }
  Writer& Str(const std::string& s) {
    Put<uint64_t>(s.size());
    out += s;
    return *this;
  }
  Writer& Header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    return Put<uint32_t>(0x46554747)
        .Put<uint32_t>(version)
        .Put(tensors)
        .Put(kvs);
  }
  Writer& Tensor(const std::string& name, std::vector<uint64_t> dims,
                 uint32_t type, uint64_t offset) {
    Str(name).Put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) Put(d);
    return Put(type).Put(offset);
  }
  Writer& Align(size_t a = 32) {
    while (out.size() % a != 0) out.push_back('\0');
    return *this;
  }
  std::string out;
};

// Three tensors (F32 4x2, Q8_0 32, F16 3) and four keys.
std::string GoodFile() {
  Writer w;
  w.Header(3, 4);
  w.Str("general.architecture").Put<uint32_t>(8).Str("llama");
  w.Str("llama.block_count").Put<uint32_t>(4).Put<uint32_t>(2);
  w.Str("llama.rope.freq_base").Put<uint32_t>(6).Put<float>(10000.f);
  w.Str("tokenizer.ggml.tokens")
      .Put<uint32_t>(9)
      .Put<uint32_t>(8)
      .Put<uint64_t>(3);
  w.Str("<s>").Str("a").Str("b");
  w.Tensor("w", {4, 2}, 0, 0);
  w.Tensor("q", {32}, 8, 32);
  w.Tensor("h", {3}, 1, 96);
  w.Align();
  std::string data(96 + 6, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i);
  return w.out + data;
}

TEST(Gguf, AGoodFileReadsBackExactly) {
  const std::string bytes = GoodFile();
  absl::StatusOr<GgufFile> f = ParseGguf(bytes);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version, 3u);
  EXPECT_EQ(*f->String("general.architecture"), "llama");
  EXPECT_EQ(*f->Uint("llama.block_count"), 2u);
  EXPECT_DOUBLE_EQ(*f->Float("llama.rope.freq_base"), 10000.0);
  const GgufValue& tokens = f->metadata.at("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.items.size(), 3u);
  EXPECT_EQ(tokens.items[1].s, "a");
  ASSERT_EQ(f->tensors.size(), 3u);
  EXPECT_EQ(f->data_offset % 32, 0u);
  const GgufTensor* q = f->Tensor("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::kQ8_0);
  EXPECT_EQ(q->bytes, 34u);
  EXPECT_EQ(q->offset, f->data_offset + 32);
  EXPECT_EQ(f->Tensor("w")->bytes, 32u);
  EXPECT_EQ(f->Tensor("h")->bytes, 6u);
  EXPECT_EQ(f->Tensor("h")->offset + 6, bytes.size());
  EXPECT_FALSE(f->Uint("general.architecture").ok());
}

TEST(Gguf, WhatTheWriterWritesReadsBack) {
  std::vector<float> values(64);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * i - 3;
  const std::string bytes =
      GgufWriter()
          .String("general.architecture", "llama")
          .Uint32("llama.block_count", 2)
          .Floats("tokenizer.ggml.scores", {0.5f, -1})
          .Int32s("tokenizer.ggml.token_type", {1, 6})
          .Strings("tokenizer.ggml.tokens", {"a", "<0x0A>"})
          .Tensor("f", {3}, GgmlType::kF32, Encode(GgmlType::kF32, {1, 2, 3}))
          .Tensor("q", {64}, GgmlType::kQ8_0, Encode(GgmlType::kQ8_0, values))
          .Tensor("h", {2}, GgmlType::kF16, Encode(GgmlType::kF16, {1, -2}))
          .Finish();
  absl::StatusOr<GgufFile> f = ParseGguf(bytes);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f->Uint("llama.block_count"), 2u);
  EXPECT_EQ(f->metadata.at("tokenizer.ggml.tokens").items[1].s, "<0x0A>");
  EXPECT_EQ(f->metadata.at("tokenizer.ggml.token_type").items[1].i, 6);
  EXPECT_DOUBLE_EQ(f->metadata.at("tokenizer.ggml.scores").items[1].f, -1);
  const GgufTensor* q = f->Tensor("q");
  ASSERT_NE(q, nullptr);
  std::vector<float> back(64);
  Dequantize(q->type, bytes.data() + q->offset, 64, back.data());
  for (size_t i = 0; i < 64; ++i) {
    // Q8_0 keeps each value within half a step of its block's scale.
    EXPECT_NEAR(back[i], values[i], 0.5 * 12.75 / 127 + 1e-3) << i;
  }
  float h[2];
  Dequantize(GgmlType::kF16, bytes.data() + f->Tensor("h")->offset, 2, h);
  EXPECT_EQ(h[1], -2);
}

TEST(Gguf, EveryTruncationIsRefused) {
  const std::string bytes = GoodFile();
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(ParseGguf(std::string_view(bytes).substr(0, n)).ok()) << n;
  }
}

// The reason a one-field variant of a file is refused.
std::string Refusal(const std::string& bytes) {
  absl::StatusOr<GgufFile> f = ParseGguf(bytes);
  return f.ok() ? "accepted" : std::string(f.status().message());
}

TEST(Gguf, EachBadFileIsRefusedWithItsReason) {
  std::string bad_magic = GoodFile();
  bad_magic[0] = 'X';
  EXPECT_NE(Refusal(bad_magic).find("bad magic"), std::string::npos);
  EXPECT_NE(Refusal(Writer().Header(0, 0, 2).out).find("version 2"),
            std::string::npos);
  EXPECT_NE(Refusal(Writer().Header(1 << 20, 0).out).find("bounds"),
            std::string::npos);
  // A tensor type the runtime does not compute (Q4_0).
  EXPECT_NE(Refusal(Writer().Header(1, 0).Tensor("x", {32}, 2, 0).Align().out +
                    std::string(18, '\0'))
                .find("tensor type 2"),
            std::string::npos);
  // Q8_0 needs whole blocks of 32.
  EXPECT_NE(Refusal(Writer().Header(1, 0).Tensor("x", {30}, 8, 0).Align().out +
                    std::string(34, '\0'))
                .find("do not fit"),
            std::string::npos);
  // Data past the end; overlapping; misaligned; a zero dimension.
  EXPECT_NE(Refusal(Writer().Header(1, 0).Tensor("x", {64}, 0, 0).Align().out +
                    std::string(100, '\0'))
                .find("past the end"),
            std::string::npos);
  EXPECT_NE(Refusal(Writer()
                        .Header(2, 0)
                        .Tensor("x", {16}, 0, 0)
                        .Tensor("y", {16}, 0, 32)
                        .Align()
                        .out +
                    std::string(128, '\0'))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(Refusal(Writer().Header(1, 0).Tensor("x", {4}, 0, 4).Align().out +
                    std::string(64, '\0'))
                .find("not aligned"),
            std::string::npos);
  EXPECT_NE(Refusal(Writer().Header(1, 0).Tensor("x", {0}, 0, 0).Align().out)
                .find("a dimension of 0"),
            std::string::npos);
  // Absurd sizes chosen by the file: a string, an array, a shape.
  EXPECT_NE(Refusal(Writer().Header(0, 1).Put<uint64_t>(uint64_t{1} << 62).out)
                .find("truncated"),
            std::string::npos);
  EXPECT_NE(Refusal(Writer()
                        .Header(0, 1)
                        .Str("k")
                        .Put<uint32_t>(9)
                        .Put<uint32_t>(0)
                        .Put<uint64_t>(uint64_t{1} << 40)
                        .out)
                .find("too many array items"),
            std::string::npos);
  EXPECT_NE(Refusal(Writer()
                        .Header(1, 0)
                        .Tensor("x", {1 << 30, 1 << 30, 1 << 30}, 0, 0)
                        .out)
                .find("a dimension of"),
            std::string::npos);
  // A key twice, a bool that is 2, alignment that is not a power of two.
  EXPECT_NE(Refusal(Writer()
                        .Header(0, 2)
                        .Str("k")
                        .Put<uint32_t>(4)
                        .Put<uint32_t>(1)
                        .Str("k")
                        .Put<uint32_t>(4)
                        .Put<uint32_t>(2)
                        .out)
                .find("twice"),
            std::string::npos);
  EXPECT_NE(
      Refusal(
          Writer().Header(0, 1).Str("b").Put<uint32_t>(7).Put<uint8_t>(2).out)
          .find("bool"),
      std::string::npos);
  EXPECT_NE(Refusal(Writer()
                        .Header(0, 1)
                        .Str("general.alignment")
                        .Put<uint32_t>(4)
                        .Put<uint32_t>(48)
                        .out)
                .find("power of two"),
            std::string::npos);
}

}  // namespace
}  // namespace raftsql::ai
