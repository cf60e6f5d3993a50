// The TinyLLM runtime's numeric kernels (issue 18, part 3), on plain
// arrays: half floats, Q8_0 blocks (ggml's layout: per 32 values one half
// scale then 32 int8), the matrix-vector product for each weight type, and
// the Llama layer's pieces (RMSNorm, softmax, RoPE on adjacent pairs, SiLU).
// Readable first, as llama2.c is; speed is measured later against
// PyTorch and OpenBLAS.
#ifndef RAFTSQL_AI_OPS_H_
#define RAFTSQL_AI_OPS_H_

#include <cstddef>
#include <cstdint>

#include "ai/gguf.h"

namespace raftsql::ai {

float HalfToFloat(uint16_t h);
// Round to nearest even; overflow to infinity.
uint16_t FloatToHalf(float f);

inline constexpr size_t kQ8Block = 32;
inline constexpr size_t kQ8BlockBytes = 34;

// `n` values of `type` at `data` as floats into `out` (Q8_0: n a multiple
// of 32).
void Dequantize(GgmlType type, const void* data, size_t n, float* out);

// out[r] = sum_c w[r][c] * x[c] for r < rows, c < cols, where w holds
// `rows` rows of `cols` values of `type` (a GGUF weight of dims {cols,
// rows}). Accumulates in float, in blocks for Q8_0 as ggml does.
void MatVec(GgmlType type, const void* w, const float* x, size_t rows,
            size_t cols, float* out);
// The same for `batch` vectors at once (x: batch rows of `cols`, out:
// batch rows of `rows`): each weight row is read once for all of them (a
// prompt's prefill). Row b of out is exactly MatVec's for row b of x.
void MatMul(GgmlType type, const void* w, const float* x, size_t batch,
            size_t rows, size_t cols, float* out);
// Bytes of one row of `cols` values of `type`.
size_t RowBytes(GgmlType type, size_t cols);

// out = x / sqrt(mean(x^2) + eps) * weight.
void RmsNorm(const float* x, const float* weight, size_t n, float eps,
             float* out);
// In place, numerically stable (the maximum subtracted first).
void Softmax(float* x, size_t n);
// Rotates each adjacent pair (2i, 2i+1) of every head of `x` (`heads` heads
// of `head_dim`) by pos * theta^(-2i/head_dim).
void Rope(float* x, size_t heads, size_t head_dim, size_t pos, float theta);
// x * sigmoid(x).
float Silu(float x);

}  // namespace raftsql::ai

#endif  // RAFTSQL_AI_OPS_H_
