#include "core/codec.h"

#include <array>
#include <bit>
#include <cstring>
#include <string>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace raftsql::core {
namespace {

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82f63b78u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

// Bound on one record's payload: a torn length field must not make recovery
// allocate or skip gigabytes.
constexpr uint32_t kMaxRecordBytes = 1u << 30;

}  // namespace

static uint32_t Crc32cExtendByTable(uint32_t crc, std::string_view data) {
  uint32_t c = crc ^ 0xffffffffu;
  for (unsigned char b : data) c = kCrcTable[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t Crc32cByTable(std::string_view data) {
  return Crc32cExtendByTable(0, data);
}

#if defined(__x86_64__)
namespace {

// SSE 4.2's crc32 instruction computes CRC-32C (Castagnoli), 8 bytes at a
// time: about 20x the table's speed, which showed in every captured row
// and log record.
__attribute__((target("sse4.2"))) uint64_t Crc32cWords(uint64_t c,
                                                       const char* p,
                                                       size_t words) {
  for (size_t i = 0; i < words; ++i) {
    uint64_t word;
    std::memcpy(&word, p + 8 * i, 8);
    c = _mm_crc32_u64(c, word);
  }
  return c;
}

// One crc32 instruction waits for the one before (3 cycles), yet the
// processor starts one a cycle: three streams over three stretches of
// kStretchBytes each, then joined, run about three times as fast (images
// are checksummed as they are served and as they are stored: 4% of all
// samples of a join on the leader's loop alone).
constexpr size_t kStretchBytes = 4096;

// The CRC register after kStretchBytes zero bytes from `c`, which is
// linear in `c`: four tables, one per byte of it.
struct StretchShift {
  uint32_t table[4][256];
  __attribute__((target("sse4.2"))) StretchShift() {
    const std::string zeros(kStretchBytes, '\0');
    uint32_t basis[32];
    for (int bit = 0; bit < 32; ++bit) {
      basis[bit] = static_cast<uint32_t>(
          Crc32cWords(uint64_t{1} << bit, zeros.data(), kStretchBytes / 8));
    }
    for (int k = 0; k < 4; ++k) {
      for (uint32_t b = 0; b < 256; ++b) {
        uint32_t out = 0;
        for (int bit = 0; bit < 8; ++bit) {
          if ((b >> bit) & 1) out ^= basis[8 * k + bit];
        }
        table[k][b] = out;
      }
    }
  }
  uint32_t operator()(uint32_t c) const {
    return table[0][c & 0xff] ^ table[1][(c >> 8) & 0xff] ^
           table[2][(c >> 16) & 0xff] ^ table[3][c >> 24];
  }
};

__attribute__((target("sse4.2"))) uint32_t Crc32cExtendBySse42(
    uint32_t crc, std::string_view data) {
  static const StretchShift shift;
  uint64_t c = crc ^ 0xffffffffu;
  const char* p = data.data();
  size_t n = data.size();
  constexpr size_t kWords = kStretchBytes / 8;
  for (; n >= 3 * kStretchBytes;
       p += 3 * kStretchBytes, n -= 3 * kStretchBytes) {
    uint64_t c1 = 0;
    uint64_t c2 = 0;
    for (size_t i = 0; i < kWords; ++i) {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p + 8 * i, 8);
      std::memcpy(&w1, p + kStretchBytes + 8 * i, 8);
      std::memcpy(&w2, p + 2 * kStretchBytes + 8 * i, 8);
      c = _mm_crc32_u64(c, w0);
      c1 = _mm_crc32_u64(c1, w1);
      c2 = _mm_crc32_u64(c2, w2);
    }
    c = shift(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1);
    c = shift(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c2);
  }
  c = Crc32cWords(c, p, n / 8);
  p += n / 8 * 8;
  n %= 8;
  auto c32 = static_cast<uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, static_cast<uint8_t>(*p));
  return c32 ^ 0xffffffffu;
}

const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");

}  // namespace
#endif

uint32_t Crc32cExtend(uint32_t crc, std::string_view data) {
#if defined(__x86_64__)
  if (kHaveSse42) return Crc32cExtendBySse42(crc, data);
#endif
  return Crc32cExtendByTable(crc, data);
}

uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data); }

namespace {

// The CRC register is a vector over GF(2); feeding it zero bits is a
// linear map, held as the images of its 32 basis vectors.
using Gf2Matrix = std::array<uint32_t, 32>;

uint32_t Times(const Gf2Matrix& m, uint32_t v) {
  uint32_t out = 0;
  for (int bit = 0; v != 0; ++bit, v >>= 1) {
    if (v & 1) out ^= m[bit];
  }
  return out;
}

Gf2Matrix Squared(const Gf2Matrix& m) {
  Gf2Matrix out;
  for (int bit = 0; bit < 32; ++bit) out[bit] = Times(m, m[bit]);
  return out;
}

// The operators for 2^k zero bytes, k = 0..63: built once, not at every
// combine (the leader's loop combines one per chunk it serves).
using ZeroOperators = std::array<Gf2Matrix, 64>;

ZeroOperators MakeZeroOperators() {
  constexpr uint32_t kReflectedPolynomial = 0x82f63b78u;
  Gf2Matrix step;  // One zero bit.
  step[0] = kReflectedPolynomial;
  for (int bit = 1; bit < 32; ++bit) step[bit] = uint32_t{1} << (bit - 1);
  for (int i = 0; i < 3; ++i) step = Squared(step);  // One zero byte.
  ZeroOperators out;
  for (Gf2Matrix& m : out) {
    m = step;
    step = Squared(step);
  }
  return out;
}

}  // namespace

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b) {
  // Crc32c(a + b) is the register of Crc32c(a) run over size_b zero bytes
  // (the pre- and post-inversions cancel), XOR Crc32c(b).
  static const ZeroOperators zeros = MakeZeroOperators();
  uint32_t c = crc_a;
  for (int k = 0; size_b != 0; ++k, size_b >>= 1) {
    if (size_b & 1) c = Times(zeros[k], c);
  }
  return c ^ crc_b;
}

// Little-endian on the wire. memcpy of the whole word (one load or store)
// instead of a byte loop, which the codec's callers showed in profiles.
void PutFixed32(std::string& out, uint32_t v) {
  if constexpr (std::endian::native == std::endian::big) {
    v = __builtin_bswap32(v);
  }
  char buf[4];
  std::memcpy(buf, &v, 4);
  out.append(buf, 4);
}

std::optional<uint32_t> GetFixed32(std::string_view& in) {
  if (in.size() < 4) return std::nullopt;
  uint32_t v;
  std::memcpy(&v, in.data(), 4);
  if constexpr (std::endian::native == std::endian::big) {
    v = __builtin_bswap32(v);
  }
  in.remove_prefix(4);
  return v;
}

void EncodeEntry(std::string& out, const Entry& e) {
  PutFixed64(out, e.term);
  PutFixed64(out, e.index);
  out.push_back(static_cast<char>(e.type));
  PutBytes(out, e.data);
}

std::optional<Entry> DecodeEntry(std::string_view& in) {
  Entry e;
  auto term = GetFixed64(in);
  auto index = GetFixed64(in);
  if (!term || !index || in.empty()) return std::nullopt;
  const auto type = static_cast<uint8_t>(in[0]);
  if (type > static_cast<uint8_t>(EntryType::kConfChange)) return std::nullopt;
  in.remove_prefix(1);
  auto data = GetBytes(in);
  if (!data) return std::nullopt;
  e.term = *term;
  e.index = *index;
  e.type = static_cast<EntryType>(type);
  e.data = std::string(*data);
  return e;
}

void EncodeHardState(std::string& out, const HardState& hs) {
  PutFixed64(out, hs.term);
  PutFixed64(out, hs.vote);
  PutFixed64(out, hs.commit);
}

std::optional<HardState> DecodeHardState(std::string_view& in) {
  auto term = GetFixed64(in);
  auto vote = GetFixed64(in);
  auto commit = GetFixed64(in);
  if (!term || !vote || !commit) return std::nullopt;
  return HardState{*term, *vote, *commit};
}

void EncodeConfState(std::string& out, const ConfState& cs) {
  PutFixed64(out, cs.voters.size());
  for (uint64_t id : cs.voters) PutFixed64(out, id);
  PutFixed64(out, cs.learners.size());
  for (uint64_t id : cs.learners) PutFixed64(out, id);
}

std::optional<ConfState> DecodeConfState(std::string_view& in) {
  ConfState cs;
  for (std::vector<uint64_t>* ids : {&cs.voters, &cs.learners}) {
    auto n = GetFixed64(in);
    if (!n || *n > in.size() / 8) return std::nullopt;
    for (uint64_t i = 0; i < *n; ++i) ids->push_back(*GetFixed64(in));
  }
  return cs;
}

void EncodeSnapshot(std::string& out, const Snapshot& s) {
  PutFixed64(out, s.metadata.index);
  PutFixed64(out, s.metadata.term);
  EncodeConfState(out, s.metadata.conf_state);
  PutBytes(out, s.data);
}

std::optional<Snapshot> DecodeSnapshot(std::string_view& in) {
  Snapshot s;
  auto index = GetFixed64(in);
  auto term = GetFixed64(in);
  if (!index || !term) return std::nullopt;
  auto cs = DecodeConfState(in);
  if (!cs) return std::nullopt;
  auto data = GetBytes(in);
  if (!data) return std::nullopt;
  s.metadata = SnapshotMetadata{*index, *term, std::move(*cs)};
  s.data = std::string(*data);
  return s;
}

void AppendRecord(std::string& out, uint8_t type, std::string_view payload) {
  // In place: the header, then the body, whose checksum goes back into
  // the header (no copy of the payload on the way).
  const size_t at = out.size();
  out.resize(at + 8);
  out.push_back(static_cast<char>(type));
  out.append(payload);
  std::string header;
  PutFixed32(header, Crc32c(std::string_view(out).substr(at + 8)));
  PutFixed32(header, static_cast<uint32_t>(payload.size()));
  out.replace(at, 8, header);
}

std::optional<Record> ReadRecord(std::string_view& in) {
  std::string_view rest = in;
  auto crc = GetFixed32(rest);
  auto length = GetFixed32(rest);
  if (!crc || !length || *length > kMaxRecordBytes) return std::nullopt;
  if (rest.size() < static_cast<size_t>(*length) + 1) return std::nullopt;
  std::string_view body = rest.substr(0, *length + 1);
  if (Crc32c(body) != *crc) return std::nullopt;
  in = rest.substr(*length + 1);
  return Record{static_cast<uint8_t>(body[0]), body.substr(1)};
}

}  // namespace raftsql::core
