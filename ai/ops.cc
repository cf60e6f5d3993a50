#include "ai/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace raftsql::ai {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // Zero.
    } else {
      // Subnormal: mant * 2^-24, exact in a float.
      const float v = static_cast<float>(mant) * std::ldexp(1.0f, -24);
      std::memcpy(&bits, &v, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);  // Infinity or NaN.
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) {  // Infinity or NaN (kept a NaN).
    return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);
  }
  if (abs >= 0x477ff000) return sign | 0x7c00;  // Rounds past 65504.
  if (abs < 0x38800000) {
    // A half subnormal (or zero): round |f| / 2^-24 to nearest even.
    float a;
    std::memcpy(&a, &abs, 4);
    const float scaled = a * std::ldexp(1.0f, 24);
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  // Normal: drop 13 mantissa bits, rounding to nearest even.
  const uint32_t rounded = abs + 0xfff + ((abs >> 13) & 1);
  return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
}

void Dequantize(GgmlType type, const void* data, size_t n, float* out) {
  const auto* p = static_cast<const uint8_t*>(data);
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(out, p, n * 4);
      return;
    case GgmlType::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = HalfToFloat(h);
      }
      return;
    case GgmlType::kQ8_0:
      for (size_t b = 0; b < n / kQ8Block; ++b) {
        const uint8_t* block = p + b * kQ8BlockBytes;
        uint16_t h;
        std::memcpy(&h, block, 2);
        const float d = HalfToFloat(h);
        for (size_t i = 0; i < kQ8Block; ++i) {
          out[b * kQ8Block + i] = d * static_cast<int8_t>(block[2 + i]);
        }
      }
      return;
  }
}

namespace {

// w . x for floats, in 16 running sums (which the compiler keeps in
// vector registers) then added up.
inline float DotF32Lanes(const float* w, const float* x, size_t n) {
  constexpr size_t kLanes = 16;
  float acc[kLanes] = {};
  size_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (size_t k = 0; k < kLanes; ++k) acc[k] += w[c + k] * x[c + k];
  }
  float sum = 0;
  for (size_t k = 0; k < kLanes; ++k) sum += acc[k];
  for (; c < n; ++c) sum += w[c] * x[c];
  return sum;
}

__attribute__((target("avx2,fma"))) float DotF32Avx2(const float* w,
                                                     const float* x, size_t n) {
  return DotF32Lanes(w, x, n);
}

float DotF32Baseline(const float* w, const float* x, size_t n) {
  return DotF32Lanes(w, x, n);
}

// AVX2 with FMA where the processor has them (2 x 8 lanes), else SSE.
const auto DotF32 = [] {
  __builtin_cpu_init();  // Static initialization may run before libgcc's.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
             ? DotF32Avx2
             : DotF32Baseline;
}();

// One row of `type` times x, accumulated as ggml does (Q8_0: per block,
// then scaled).
float Dot(GgmlType type, const uint8_t* row, const float* x, size_t cols) {
  float sum = 0;
  switch (type) {
    case GgmlType::kF32:
      sum = DotF32(reinterpret_cast<const float*>(row), x, cols);
      break;
    case GgmlType::kF16:
      for (size_t c = 0; c < cols; ++c) {
        uint16_t h;
        std::memcpy(&h, row + 2 * c, 2);
        sum += HalfToFloat(h) * x[c];
      }
      break;
    case GgmlType::kQ8_0:
      for (size_t b = 0; b < cols / kQ8Block; ++b) {
        const uint8_t* block = row + b * kQ8BlockBytes;
        uint16_t h;
        std::memcpy(&h, block, 2);
        float block_sum = 0;
        for (size_t i = 0; i < kQ8Block; ++i) {
          block_sum += static_cast<int8_t>(block[2 + i]) * x[b * kQ8Block + i];
        }
        sum += HalfToFloat(h) * block_sum;
      }
      break;
  }
  return sum;
}

}  // namespace

size_t RowBytes(GgmlType type, size_t cols) {
  switch (type) {
    case GgmlType::kF32:
      return cols * 4;
    case GgmlType::kF16:
      return cols * 2;
    case GgmlType::kQ8_0:
      return cols / kQ8Block * kQ8BlockBytes;
  }
  return 0;
}

void MatVec(GgmlType type, const void* w, const float* x, size_t rows,
            size_t cols, float* out) {
  MatMul(type, w, x, 1, rows, cols, out);
}

void MatMul(GgmlType type, const void* w, const float* x, size_t batch,
            size_t rows, size_t cols, float* out) {
  const auto* p = static_cast<const uint8_t*>(w);
  const size_t row_bytes = RowBytes(type, cols);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = p + r * row_bytes;
    for (size_t b = 0; b < batch; ++b) {
      out[b * rows + r] = Dot(type, row, x + b * cols, cols);
    }
  }
}

void RmsNorm(const float* x, const float* weight, size_t n, float eps,
             float* out) {
  float ss = 0;
  for (size_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (size_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void Softmax(float* x, size_t n) {
  if (n == 0) return;
  const float max = *std::max_element(x, x + n);
  float sum = 0;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  for (size_t i = 0; i < n; ++i) x[i] /= sum;
}

void Rope(float* x, size_t heads, size_t head_dim, size_t pos, float theta) {
  for (size_t i = 0; i + 1 < head_dim; i += 2) {
    const float freq =
        std::pow(theta, -static_cast<float>(i) / static_cast<float>(head_dim));
    const float angle = static_cast<float>(pos) * freq;
    const float c = std::cos(angle), s = std::sin(angle);
    for (size_t h = 0; h < heads; ++h) {
      float* v = x + h * head_dim;
      const float a = v[i], b = v[i + 1];
      v[i] = a * c - b * s;
      v[i + 1] = a * s + b * c;
    }
  }
}

float Silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace raftsql::ai
