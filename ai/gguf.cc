#include "ai/gguf.h"

#include <cstdio>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"

namespace raftsql::ai {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF", little-endian.
constexpr uint32_t kVersion = 3;
constexpr uint32_t kTypeString = 8, kTypeArray = 9;

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("GGUF: ", std::string(what)));
}

// Reads the file's fields in order; every read is bounded by what is left.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  size_t position() const { return pos_; }

  template <typename T>
  std::optional<T> Get() {
    if (in_.size() - pos_ < sizeof(T)) return std::nullopt;
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::optional<std::string> String(uint64_t max) {
    std::optional<uint64_t> n = Get<uint64_t>();
    if (!n || *n > max || *n > in_.size() - pos_) return std::nullopt;
    std::string s(in_.substr(pos_, *n));
    pos_ += *n;
    return s;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

absl::Status ReadScalar(Reader& r, uint32_t type, GgufValue* v) {
  v->type = type;
  bool ok = true;
  auto take = [&ok](auto got, auto* out) {
    if (got) {
      *out = *got;
    } else {
      ok = false;
    }
  };
  switch (type) {
    case 0:
      take(r.Get<uint8_t>(), &v->u);
      break;
    case 1:
      take(r.Get<int8_t>(), &v->i);
      break;
    case 2:
      take(r.Get<uint16_t>(), &v->u);
      break;
    case 3:
      take(r.Get<int16_t>(), &v->i);
      break;
    case 4:
      take(r.Get<uint32_t>(), &v->u);
      break;
    case 5:
      take(r.Get<int32_t>(), &v->i);
      break;
    case 6:
      take(r.Get<float>(), &v->f);
      break;
    case 7: {
      std::optional<uint8_t> b = r.Get<uint8_t>();
      if (b && *b > 1) return Bad("a bool that is neither 0 nor 1");
      take(b, &v->u);
      break;
    }
    case 10:
      take(r.Get<uint64_t>(), &v->u);
      break;
    case 11:
      take(r.Get<int64_t>(), &v->i);
      break;
    case 12:
      take(r.Get<double>(), &v->f);
      break;
    default:
      return Bad(absl::StrCat("unknown value type ", type));
  }
  return ok ? absl::OkStatus() : Bad("truncated in a value");
}

absl::Status ReadValue(Reader& r, uint32_t type, GgufValue* v,
                       uint64_t* items_left) {
  if (type == kTypeString) {
    v->type = type;
    std::optional<std::string> s = r.String(kMaxGgufStringBytes);
    if (!s) return Bad("a string too long, or truncated");
    v->s = std::move(*s);
    return absl::OkStatus();
  }
  if (type != kTypeArray) return ReadScalar(r, type, v);
  v->type = type;
  std::optional<uint32_t> item = r.Get<uint32_t>();
  std::optional<uint64_t> n = r.Get<uint64_t>();
  if (!item || !n) return Bad("truncated in an array");
  if (*item == kTypeArray) return Bad("an array of arrays");
  // The whole file's items are bounded, and each takes at least a byte.
  if (*n > *items_left) return Bad("too many array items");
  *items_left -= *n;
  v->item_type = *item;
  v->items.reserve(std::min<uint64_t>(*n, 1 << 16));
  for (uint64_t k = 0; k < *n; ++k) {
    GgufValue item_value;
    absl::Status s = ReadValue(r, *item, &item_value, items_left);
    if (!s.ok()) return s;
    v->items.push_back(std::move(item_value));
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t GgmlBytes(GgmlType type, uint64_t elements) {
  switch (type) {
    case GgmlType::kF32:
      return elements > (UINT64_MAX / 4) ? 0 : elements * 4;
    case GgmlType::kF16:
      return elements > (UINT64_MAX / 2) ? 0 : elements * 2;
    case GgmlType::kQ8_0:
      return elements % 32 != 0 ? 0 : elements / 32 * 34;
  }
  return 0;
}

uint64_t GgufTensor::elements() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

const GgufTensor* GgufFile::Tensor(std::string_view name) const {
  for (const GgufTensor& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<uint64_t> GgufFile::Uint(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) return Bad(absl::StrCat("no ", key));
  const uint32_t t = it->second.type;
  if (t == 0 || t == 2 || t == 4 || t == 10) return it->second.u;
  if ((t == 1 || t == 3 || t == 5 || t == 11) && it->second.i >= 0) {
    return static_cast<uint64_t>(it->second.i);
  }
  return Bad(absl::StrCat(key, " is not a non-negative integer"));
}

absl::StatusOr<double> GgufFile::Float(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) return Bad(absl::StrCat("no ", key));
  if (it->second.type == 6 || it->second.type == 12) return it->second.f;
  return Bad(absl::StrCat(key, " is not a float"));
}

absl::StatusOr<std::string> GgufFile::String(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end() || it->second.type != kTypeString) {
    return Bad(absl::StrCat(key, " is missing or not a string"));
  }
  return it->second.s;
}

absl::StatusOr<GgufFile> ParseGguf(std::string_view bytes) {
  Reader r(bytes);
  GgufFile f;
  std::optional<uint32_t> magic = r.Get<uint32_t>();
  if (!magic || *magic != kMagic) return Bad("not a GGUF file (bad magic)");
  std::optional<uint32_t> version = r.Get<uint32_t>();
  if (!version || *version != kVersion) {
    return Bad(absl::StrCat("version ", version.value_or(0),
                            " (this loader reads version 3)"));
  }
  f.version = *version;
  std::optional<uint64_t> n_tensors = r.Get<uint64_t>();
  std::optional<uint64_t> n_kv = r.Get<uint64_t>();
  if (!n_tensors || !n_kv) return Bad("truncated header");
  if (*n_tensors > kMaxGgufTensors || *n_kv > kMaxGgufKeys) {
    return Bad(absl::StrCat(*n_tensors, " tensors and ", *n_kv,
                            " keys: beyond this loader's bounds"));
  }
  uint64_t items_left = kMaxGgufArrayItems;
  for (uint64_t k = 0; k < *n_kv; ++k) {
    std::optional<std::string> key = r.String(64 << 10);
    std::optional<uint32_t> type = r.Get<uint32_t>();
    if (!key || !type) return Bad("truncated in the metadata");
    GgufValue v;
    absl::Status s = ReadValue(r, *type, &v, &items_left);
    if (!s.ok())
      return Bad(absl::StrCat(s.message().substr(6), " (", *key, ")"));
    if (!f.metadata.emplace(*key, std::move(v)).second) {
      return Bad(absl::StrCat("the key ", *key, " twice"));
    }
  }
  if (auto a = f.metadata.find("general.alignment"); a != f.metadata.end()) {
    const uint64_t align = a->second.u;
    if (a->second.type != 4 || align == 0 || (align & (align - 1)) != 0 ||
        align > kMaxGgufAlignment) {
      return Bad("general.alignment must be a power of two (uint32)");
    }
    f.alignment = align;
  }
  for (uint64_t k = 0; k < *n_tensors; ++k) {
    GgufTensor t;
    std::optional<std::string> name = r.String(64 << 10);
    std::optional<uint32_t> n_dims = r.Get<uint32_t>();
    if (!name || !n_dims) return Bad("truncated in the tensor infos");
    t.name = std::move(*name);
    if (*n_dims == 0 || *n_dims > kMaxGgufDims) {
      return Bad(absl::StrCat(t.name, ": ", *n_dims, " dimensions"));
    }
    uint64_t elements = 1;
    for (uint32_t d = 0; d < *n_dims; ++d) {
      std::optional<uint64_t> dim = r.Get<uint64_t>();
      if (!dim) return Bad("truncated in the tensor infos");
      if (*dim == 0 || *dim > (uint64_t{1} << 40) / elements) {
        return Bad(absl::StrCat(t.name, ": a dimension of ", *dim));
      }
      elements *= *dim;
      t.dims.push_back(*dim);
    }
    std::optional<uint32_t> type = r.Get<uint32_t>();
    std::optional<uint64_t> offset = r.Get<uint64_t>();
    if (!type || !offset) return Bad("truncated in the tensor infos");
    if (*type != 0 && *type != 1 && *type != 8) {
      return Bad(absl::StrCat(t.name, ": tensor type ", *type,
                              " (this runtime computes F32, F16, Q8_0)"));
    }
    t.type = static_cast<GgmlType>(*type);
    t.bytes = GgmlBytes(t.type, elements);
    if (t.bytes == 0) {
      return Bad(absl::StrCat(t.name, ": ", elements,
                              " elements do not fit its type's blocks"));
    }
    if (*offset % f.alignment != 0) {
      return Bad(absl::StrCat(t.name, ": offset ", *offset, " not aligned"));
    }
    t.offset = *offset;  // Relative until the data's start is known.
    if (f.Tensor(t.name) != nullptr) {
      return Bad(absl::StrCat("the tensor ", t.name, " twice"));
    }
    f.tensors.push_back(std::move(t));
  }
  const uint64_t end_of_infos = r.position();
  f.data_offset = (end_of_infos + f.alignment - 1) / f.alignment * f.alignment;
  // Each tensor within the file, none overlapping another.
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (GgufTensor& t : f.tensors) {
    if (t.offset > bytes.size() || f.data_offset > bytes.size() - t.offset ||
        t.bytes > bytes.size() - f.data_offset - t.offset) {
      return Bad(absl::StrCat(t.name, ": its data runs past the end of the ",
                              bytes.size(), "-byte file (truncated?)"));
    }
    t.offset += f.data_offset;
    spans.emplace_back(t.offset, t.offset + t.bytes);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t k = 1; k < spans.size(); ++k) {
    if (spans[k].first < spans[k - 1].second) return Bad("tensors overlap");
  }
  return f;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path,
                                          uint64_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path));
  }
  std::string bytes;
  char buf[1 << 16];
  size_t n = 0;
  while (bytes.size() <= max_bytes &&
         (n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    bytes.append(buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  }
  if (bytes.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is over ", max_bytes, " bytes"));
  }
  return bytes;
}

}  // namespace raftsql::ai
