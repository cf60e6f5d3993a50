#include "ai/gguf_writer.h"

#include <cmath>
#include <cstring>

#include "ai/ops.h"

namespace raftsql::ai {
namespace {

constexpr uint64_t kAlignment = 32;

template <typename T>
void Put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void PutString(std::string& out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out += s;
}

}  // namespace

void GgufWriter::Key(const std::string& key, uint32_t type) {
  ++keys_;
  PutString(metadata_, key);
  Put<uint32_t>(metadata_, type);
}

GgufWriter& GgufWriter::Uint32(const std::string& key, uint32_t v) {
  Key(key, 4);
  Put(metadata_, v);
  return *this;
}

GgufWriter& GgufWriter::Float32(const std::string& key, float v) {
  Key(key, 6);
  Put(metadata_, v);
  return *this;
}

GgufWriter& GgufWriter::String(const std::string& key, const std::string& v) {
  Key(key, 8);
  PutString(metadata_, v);
  return *this;
}

GgufWriter& GgufWriter::Strings(const std::string& key,
                                const std::vector<std::string>& v) {
  Key(key, 9);
  Put<uint32_t>(metadata_, 8);
  Put<uint64_t>(metadata_, v.size());
  for (const std::string& s : v) PutString(metadata_, s);
  return *this;
}

GgufWriter& GgufWriter::Floats(const std::string& key,
                               const std::vector<float>& v) {
  Key(key, 9);
  Put<uint32_t>(metadata_, 6);
  Put<uint64_t>(metadata_, v.size());
  for (float f : v) Put(metadata_, f);
  return *this;
}

GgufWriter& GgufWriter::Int32s(const std::string& key,
                               const std::vector<int32_t>& v) {
  Key(key, 9);
  Put<uint32_t>(metadata_, 5);
  Put<uint64_t>(metadata_, v.size());
  for (int32_t i : v) Put(metadata_, i);
  return *this;
}

GgufWriter& GgufWriter::Tensor(const std::string& name,
                               std::vector<uint64_t> dims, GgmlType type,
                               std::string data) {
  tensors_.push_back({name, std::move(dims), type, std::move(data)});
  return *this;
}

std::string GgufWriter::Finish() const {
  std::string out;
  Put<uint32_t>(out, 0x46554747);  // "GGUF"
  Put<uint32_t>(out, 3);
  Put<uint64_t>(out, tensors_.size());
  Put<uint64_t>(out, keys_);
  out += metadata_;
  uint64_t offset = 0;
  for (const Pending& t : tensors_) {
    PutString(out, t.name);
    Put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) Put(out, d);
    Put<uint32_t>(out, static_cast<uint32_t>(t.type));
    Put(out, offset);
    offset += (t.data.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  for (const Pending& t : tensors_) {
    out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, '\0');
    out += t.data;
  }
  return out;
}

std::string Encode(GgmlType type, const std::vector<float>& values) {
  std::string out;
  switch (type) {
    case GgmlType::kF32:
      for (float f : values) Put(out, f);
      break;
    case GgmlType::kF16:
      for (float f : values) Put(out, FloatToHalf(f));
      break;
    case GgmlType::kQ8_0:
      for (size_t b = 0; b + kQ8Block <= values.size(); b += kQ8Block) {
        float amax = 0;
        for (size_t i = 0; i < kQ8Block; ++i) {
          amax = std::max(amax, std::fabs(values[b + i]));
        }
        const float d = amax / 127;
        const float id = d != 0 ? 1 / d : 0;
        Put(out, FloatToHalf(d));
        for (size_t i = 0; i < kQ8Block; ++i) {
          Put(out, static_cast<int8_t>(std::lround(values[b + i] * id)));
        }
      }
      break;
  }
  return out;
}

}  // namespace raftsql::ai
