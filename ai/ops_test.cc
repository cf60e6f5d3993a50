// The numeric kernels against values worked out by hand and against a
// plain double-precision computation of the same thing.
#include "ai/ops.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace raftsql::ai {
namespace {

TEST(Ops, HalfFloatsConvertExactlyBothWays) {
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // Subnormal.
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  // Every half that is a number survives the round trip.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    EXPECT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // Ties even.
  EXPECT_EQ(FloatToHalf(70000.0f), 0x7c00);                      // Overflow.
}

// A random weight matrix stored as `type`, and its values as floats.
std::vector<uint8_t> Weights(GgmlType type, size_t n,
                             std::vector<float>* as_f) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<uint8_t> bytes(GgmlBytes(type, n));
  as_f->resize(n);
  if (type == GgmlType::kF32) {
    for (size_t i = 0; i < n; ++i) (*as_f)[i] = u(rng);
    std::memcpy(bytes.data(), as_f->data(), n * 4);
  } else if (type == GgmlType::kF16) {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = FloatToHalf(u(rng));
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  } else {
    for (size_t b = 0; b < n / kQ8Block; ++b) {
      const uint16_t d = FloatToHalf(0.01f * (1 + b % 5));
      std::memcpy(bytes.data() + b * kQ8BlockBytes, &d, 2);
      for (size_t i = 0; i < kQ8Block; ++i) {
        bytes[b * kQ8BlockBytes + 2 + i] =
            static_cast<uint8_t>(static_cast<int8_t>(rng() % 255 - 127));
      }
    }
  }
  Dequantize(type, bytes.data(), n, as_f->data());
  return bytes;
}

TEST(Ops, MatVecOfEachTypeMatchesADoubleComputation) {
  const size_t rows = 7, cols = 64;
  std::vector<float> x(cols);
  for (size_t c = 0; c < cols; ++c) x[c] = std::sin(static_cast<float>(c));
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0}) {
    std::vector<float> w;
    const std::vector<uint8_t> bytes = Weights(type, rows * cols, &w);
    std::vector<float> out(rows);
    MatVec(type, bytes.data(), x.data(), rows, cols, out.data());
    for (size_t r = 0; r < rows; ++r) {
      double want = 0;
      for (size_t c = 0; c < cols; ++c) want += double{w[r * cols + c]} * x[c];
      EXPECT_NEAR(out[r], want, 1e-4) << static_cast<int>(type) << " row " << r;
    }
  }
}

TEST(Ops, MatMulRowsEqualMatVecExactly) {
  const size_t rows = 5, cols = 96, batch = 3;
  std::vector<float> x(batch * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.37f * i);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kQ8_0}) {
    std::vector<float> w;
    const std::vector<uint8_t> bytes = Weights(type, rows * cols, &w);
    std::vector<float> all(batch * rows);
    MatMul(type, bytes.data(), x.data(), batch, rows, cols, all.data());
    for (size_t b = 0; b < batch; ++b) {
      std::vector<float> one(rows);
      MatVec(type, bytes.data(), x.data() + b * cols, rows, cols, one.data());
      for (size_t r = 0; r < rows; ++r) {
        EXPECT_EQ(all[b * rows + r], one[r]) << static_cast<int>(type);
      }
    }
    EXPECT_EQ(RowBytes(type, cols) * rows, GgmlBytes(type, rows * cols));
  }
}

TEST(Ops, NormSoftmaxRopeAndSiluGiveTheirValues) {
  const float x[4] = {1, 2, 3, 4};
  const float w[4] = {1, 1, 2, 0.5f};
  float out[4];
  RmsNorm(x, w, 4, 0, out);
  const float rms = std::sqrt(30.0f / 4);
  EXPECT_NEAR(out[2], 3 / rms * 2, 1e-6);
  float s[3] = {1000, 1000, 1001};  // Large: exp(1000) would overflow.
  Softmax(s, 3);
  EXPECT_NEAR(s[0], 1 / (2 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(s[2], std::exp(1.0) / (2 + std::exp(1.0)), 1e-6);
  float q[4] = {1, 0, 0, 1};
  Rope(q, 1, 4, 0, 10000);  // Position 0: unchanged.
  EXPECT_EQ(q[0], 1);
  EXPECT_EQ(q[3], 1);
  Rope(q, 1, 4, 1, 10000);  // First pair by 1 rad, second by 1e-2 rad.
  EXPECT_NEAR(q[0], std::cos(1.0), 1e-6);
  EXPECT_NEAR(q[1], std::sin(1.0), 1e-6);
  EXPECT_NEAR(q[2], -std::sin(0.01), 1e-6);
  EXPECT_NEAR(q[3], std::cos(0.01), 1e-6);
  EXPECT_NEAR(Silu(0), 0, 1e-7);
  EXPECT_NEAR(Silu(2), 2 / (1 + std::exp(-2.0)), 1e-6);
}

}  // namespace
}  // namespace raftsql::ai
