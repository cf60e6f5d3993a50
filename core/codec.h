// Binary encoding of the core's durable types (entries, HardState,
// snapshots) with CRC-32C framing, shared by the simulated and the RocksDB
// log stores. Little-endian fixed-width integers and length-prefixed bytes.
#ifndef RAFTSQL_CORE_CODEC_H_
#define RAFTSQL_CORE_CODEC_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "core/types.h"

namespace raftsql::core {

uint32_t Crc32c(std::string_view data);
// The CRC-32C of a value's bytes followed by `data`, given `crc`, the
// value's CRC-32C (Crc32c(a + b) == Crc32cExtend(Crc32c(a), b); 0 for none).
uint32_t Crc32cExtend(uint32_t crc, std::string_view data);
// The CRC-32C of a value `a` followed by a value `b` of `size_b` bytes,
// given each one's CRC-32C: Crc32cCombine(Crc32c(a), Crc32c(b), b.size())
// == Crc32c(a + b). O(log size_b), so that pieces checksummed apart (on
// the threads that read them) join into one CRC without a second pass.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t size_b);
// The portable table-driven CRC-32C (Crc32c uses SSE 4.2 where the CPU has
// it; both give the same value).
uint32_t Crc32cByTable(std::string_view data);

// Little-endian on the wire; inline, as the command codec calls them for
// every field of every entry it applies.
// Writes 8 bytes at `dst`; returns the end.
inline char* EncodeFixed64(char* dst, uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) {
    v = __builtin_bswap64(v);
  }
  std::memcpy(dst, &v, 8);
  return dst + 8;
}
// Reads 8 bytes at `src`.
inline uint64_t DecodeFixed64(const char* src) {
  uint64_t v;
  std::memcpy(&v, src, 8);
  if constexpr (std::endian::native == std::endian::big) {
    v = __builtin_bswap64(v);
  }
  return v;
}
inline void PutFixed64(std::string& out, uint64_t v) {
  char buf[8];
  EncodeFixed64(buf, v);
  out.append(buf, 8);
}
void PutFixed32(std::string& out, uint32_t v);
inline void PutBytes(std::string& out, std::string_view bytes) {
  PutFixed64(out, bytes.size());
  out.append(bytes);
}

// Reads from the front of `in`, consuming what it reads. nullopt (and `in`
// unspecified) if `in` is too short.
inline std::optional<uint64_t> GetFixed64(std::string_view& in) {
  if (in.size() < 8) return std::nullopt;
  const uint64_t v = DecodeFixed64(in.data());
  in.remove_prefix(8);
  return v;
}
std::optional<uint32_t> GetFixed32(std::string_view& in);
inline std::optional<std::string_view> GetBytes(std::string_view& in) {
  std::optional<uint64_t> n = GetFixed64(in);
  if (!n.has_value() || *n > in.size()) return std::nullopt;
  std::string_view out = in.substr(0, *n);
  in.remove_prefix(*n);
  return out;
}

void EncodeEntry(std::string& out, const Entry& e);
std::optional<Entry> DecodeEntry(std::string_view& in);
void EncodeHardState(std::string& out, const HardState& hs);
std::optional<HardState> DecodeHardState(std::string_view& in);
void EncodeConfState(std::string& out, const ConfState& cs);
std::optional<ConfState> DecodeConfState(std::string_view& in);
void EncodeSnapshot(std::string& out, const Snapshot& s);
std::optional<Snapshot> DecodeSnapshot(std::string_view& in);

// A record: [crc32c of type+payload][length][type][payload].
void AppendRecord(std::string& out, uint8_t type, std::string_view payload);
struct Record {
  uint8_t type = 0;
  std::string_view payload;
};
// Reads the next record from `in`. nullopt if `in` holds no complete record
// with a valid checksum (a torn or corrupted tail).
std::optional<Record> ReadRecord(std::string_view& in);

}  // namespace raftsql::core

#endif  // RAFTSQL_CORE_CODEC_H_
