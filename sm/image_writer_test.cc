#include "sm/image_writer.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>

#include "core/codec.h"
#include "gtest/gtest.h"
#include "sm/temp_dir.h"

namespace raftsql::sm {
namespace {

// A file on the platform's VFS, closed at the end.
class VfsFile {
 public:
  VfsFile(const std::string& path, int flags) {
    sqlite3_vfs* vfs = sqlite3_vfs_find(nullptr);
    file_ = static_cast<sqlite3_file*>(std::calloc(1, vfs->szOsFile));
    int out = 0;
    rc_ =
        vfs->xOpen(vfs, path.c_str(), file_, flags | SQLITE_OPEN_MAIN_DB, &out);
  }
  ~VfsFile() {
    if (file_->pMethods != nullptr) file_->pMethods->xClose(file_);
    std::free(file_);
  }
  sqlite3_file* get() { return file_; }
  int rc() const { return rc_; }

 private:
  sqlite3_file* file_;
  int rc_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// `n` bytes that differ from offset to offset.
std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1103515245 + 12345;
    s[i] = static_cast<char>(seed >> 16);
  }
  return s;
}

// What the file must hold: the bytes taken, 18 and 19 set to 1.
std::string AsStored(std::string bytes) {
  for (size_t at = 18; at <= 19 && at < bytes.size(); ++at) bytes[at] = 1;
  return bytes;
}

constexpr int kCreate = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
constexpr uint64_t kMiB = 1 << 20;

TEST(ImageWriterTest, StoresWhatItTookWithItsVersionBytesSetAndItsCrc) {
  TempDir dir;
  VfsFile file(dir.File("image"), kCreate);
  ASSERT_EQ(file.rc(), SQLITE_OK);
  ImageWriter writer(
      file.get(), /*threaded=*/false, [] {}, [](uint64_t) {});
  const std::string a = Bytes(3 * kMiB + 5, 1);
  const std::string b = Bytes(7, 2);
  ASSERT_TRUE(writer.Take(a).ok());
  ASSERT_TRUE(writer.Take(b).ok());
  EXPECT_EQ(writer.taken(), a.size() + b.size());
  EXPECT_EQ(writer.stored(), 0u);
  writer.StoreTaken();
  EXPECT_EQ(writer.stored(), a.size() + b.size());
  EXPECT_EQ(writer.crc(), core::Crc32c(a + b));
  EXPECT_EQ(ReadFile(dir.File("image")), AsStored(a + b));
}

// The VFS's handle is read-only here: a piece stored at all went through
// the O_DIRECT descriptor, and one off a page boundary (which must go
// through the VFS) fails.
TEST(ImageWriterTest, AlignedPiecesGoThroughODirectAndTheRestThroughTheVfs) {
  TempDir dir;
  { VfsFile create(dir.File("image"), kCreate); }
  VfsFile file(dir.File("image"), SQLITE_OPEN_READONLY);
  ASSERT_EQ(file.rc(), SQLITE_OK);
  const int direct =
      open(dir.File("image").c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (direct < 0) GTEST_SKIP() << "no O_DIRECT on this file system";
  ImageWriter writer(
      file.get(), /*threaded=*/false, [] {}, [](uint64_t) {}, direct);
  const std::string aligned = Bytes(2 * kMiB, 9);
  ASSERT_TRUE(writer.Take(aligned).ok());
  writer.StoreTaken();
  EXPECT_TRUE(writer.error().ok()) << writer.error();
  EXPECT_EQ(writer.stored(), aligned.size());
  EXPECT_EQ(ReadFile(dir.File("image")), AsStored(aligned));
  ASSERT_TRUE(writer.Take(Bytes(5000, 10)).ok());
  writer.StoreTaken();
  EXPECT_FALSE(writer.error().ok());
  EXPECT_EQ(writer.stored(), aligned.size());
  close(direct);
}

TEST(ImageWriterTest, WithADirectDescriptorMixedPiecesStoreWhatWasTaken) {
  TempDir dir;
  VfsFile file(dir.File("image"), kCreate);
  const int direct =
      open(dir.File("image").c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (direct < 0) GTEST_SKIP() << "no O_DIRECT on this file system";
  ImageWriter writer(
      file.get(), /*threaded=*/false, [] {}, [](uint64_t) {}, direct);
  // Whole MiBs, then a piece that ends off a page boundary, then one that
  // starts off it.
  const std::string a = Bytes(2 * kMiB, 6);
  const std::string b = Bytes(5000, 7);
  const std::string c = Bytes(kMiB, 8);
  std::string all;
  for (const std::string* s : {&a, &b, &c}) {
    ASSERT_TRUE(writer.Take(*s).ok());
    writer.StoreTaken();
    all += *s;
  }
  close(direct);
  EXPECT_TRUE(writer.error().ok());
  EXPECT_EQ(writer.crc(), core::Crc32c(all));
  EXPECT_EQ(ReadFile(dir.File("image")), AsStored(all));
}

TEST(ImageWriterTest, BytesOverItsBoundAreNotTakenUntilStored) {
  TempDir dir;
  VfsFile file(dir.File("image"), kCreate);
  ImageWriter writer(
      file.get(), /*threaded=*/false, [] {}, [](uint64_t) {});
  const std::string chunk = Bytes(kMiB, 3);
  std::string all;
  for (uint64_t i = 0; i < ImageWriter::kMaxUnstoredBytes / kMiB; ++i) {
    ASSERT_TRUE(writer.Take(chunk).ok());
    all += chunk;
  }
  EXPECT_TRUE(absl::IsResourceExhausted(writer.Take("x")));
  EXPECT_EQ(writer.taken(), all.size());
  writer.StoreTaken();
  // The ring wraps: what follows lands where the first bytes were.
  const std::string next = Bytes(kMiB + 3, 4);
  ASSERT_TRUE(writer.Take(next).ok());
  writer.StoreTaken();
  all += next;
  EXPECT_EQ(writer.crc(), core::Crc32c(all));
  EXPECT_EQ(ReadFile(dir.File("image")), AsStored(all));
}

TEST(ImageWriterTest, OnItsThreadItStoresAndSaysSoAfterEachPiece) {
  TempDir dir;
  VfsFile file(dir.File("image"), kCreate);
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  ImageWriter writer(
      file.get(), /*threaded=*/true,
      [&] {
        std::lock_guard<std::mutex> l(mu);
        ++calls;
        cv.notify_all();
      },
      [](uint64_t) {});
  std::string all;
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (uint32_t i = 0; i < 80; ++i) {
    const std::string chunk = Bytes(kMiB - i, i);
    absl::Status s;
    while (absl::IsResourceExhausted(s = writer.Take(chunk))) {
      std::unique_lock<std::mutex> l(mu);
      cv.wait_until(
          l, std::chrono::steady_clock::now() + std::chrono::milliseconds(10));
      ASSERT_LT(std::chrono::steady_clock::now(), until);
    }
    ASSERT_TRUE(s.ok()) << s;
    all += chunk;
  }
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(
        cv.wait_until(l, until, [&] { return writer.stored() == all.size(); }));
    EXPECT_GE(calls, 80);
  }
  EXPECT_EQ(writer.crc(), core::Crc32c(all));
  EXPECT_EQ(ReadFile(dir.File("image")), AsStored(all));
}

TEST(ImageWriterTest, AFailedStoreIsTheErrorOfTheNextTake) {
  TempDir dir;
  { VfsFile create(dir.File("image"), kCreate); }
  VfsFile file(dir.File("image"), SQLITE_OPEN_READONLY);
  ASSERT_EQ(file.rc(), SQLITE_OK);
  ImageWriter writer(
      file.get(), /*threaded=*/false, [] {}, [](uint64_t) {});
  ASSERT_TRUE(writer.Take(Bytes(100, 5)).ok());
  writer.StoreTaken();
  EXPECT_FALSE(writer.error().ok());
  EXPECT_EQ(writer.stored(), 0u);
  const absl::Status next = writer.Take("more");
  EXPECT_FALSE(next.ok());
  EXPECT_FALSE(absl::IsResourceExhausted(next));
}

}  // namespace
}  // namespace raftsql::sm
