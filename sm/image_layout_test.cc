#include "sm/image_layout.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace raftsql::sm {
namespace {

constexpr uint64_t kB = ImageLayout::kBlockBytes;

// Sizes around the block: smaller than one, one, whole numbers of blocks,
// and a last (lowest) block shorter than the others.
const std::vector<uint64_t> kSizes = {
    4096, kB, kB + 4096, 2 * kB, 5 * kB, 5 * kB + 8192, 7 * kB - 512};

TEST(ImageLayout, EveryFileByteComesOnceAndRunsAreStretchesOfTheFile) {
  for (const uint64_t size : kSizes) {
    for (const ImageLayout layout :
         {ImageLayout::EndFirst(size), ImageLayout::FileOrder(size)}) {
      std::vector<int> seen(size / 512, 0);
      for (uint64_t at = 0; at < size;) {
        const uint64_t run = layout.RunBytes(at);
        ASSERT_GT(run, 0u);
        ASSERT_LE(at + run, size);
        const uint64_t file = layout.FileOffset(at);
        // Within a run the file's bytes follow each other.
        EXPECT_EQ(layout.FileOffset(at + run - 1), file + run - 1) << size;
        for (uint64_t b = file; b < file + run; b += 512) ++seen[b / 512];
        at += run;
      }
      for (const int n : seen) ASSERT_EQ(n, 1) << size;
    }
  }
}

TEST(ImageLayout, TheFirstBlockComesFirstThenTheFileFromItsEnd) {
  const ImageLayout layout = ImageLayout::EndFirst(5 * kB + 8192);
  EXPECT_EQ(layout.FileOffset(0), 0u);
  EXPECT_EQ(layout.FileOffset(kB - 1), kB - 1);
  EXPECT_EQ(layout.FileOffset(kB), 4 * kB + 8192);  // The last block.
  EXPECT_EQ(layout.FileOffset(2 * kB), 3 * kB + 8192);
  // The lowest tail block is the short one, and comes last.
  EXPECT_EQ(layout.FileOffset(5 * kB), kB);
  EXPECT_EQ(layout.RunBytes(5 * kB), 8192u);
  EXPECT_EQ(ImageLayout::FileOrder(5 * kB).FileOffset(3 * kB + 7), 3 * kB + 7);
}

TEST(ImageLayout, TheStreamNeededForAFileRangeCoversItsLastByteToCome) {
  for (const uint64_t size : kSizes) {
    const ImageLayout layout = ImageLayout::EndFirst(size);
    // Where each 512 bytes of the file come in the stream.
    std::vector<uint64_t> arrives(size / 512);
    for (uint64_t at = 0; at < size; at += 512) {
      arrives[layout.FileOffset(at) / 512] = at + 512;
    }
    for (uint64_t file = 0; file < size; file += 4096) {
      for (const uint64_t bytes : {uint64_t{512}, uint64_t{4096}, kB, 3 * kB}) {
        if (file + bytes > size) continue;
        uint64_t needed = 0;
        for (uint64_t b = file; b < file + bytes; b += 512) {
          needed = std::max(needed, arrives[b / 512]);
        }
        ASSERT_EQ(layout.StreamNeededFor(file, bytes), needed)
            << size << " " << file << " " << bytes;
      }
    }
  }
}

TEST(ImageLayout, FileBytesUndoStreamBytes) {
  for (const uint64_t size : kSizes) {
    std::string file(size, '\0');
    for (uint64_t i = 0; i < size; ++i)
      file[i] = static_cast<char>(i * 131 ^ i >> 12 ^ i >> 20);
    const ImageLayout layout = ImageLayout::EndFirst(size);
    // Read in uneven chunks, as a follower's transfer may be.
    std::string stream;
    for (uint64_t at = 0; at < size;) {
      const uint64_t n = std::min<uint64_t>(size - at, 300 * 1024 + 17);
      stream += layout.StreamBytes(file, at, n);
      at += n;
    }
    if (size > 2 * kB) {
      EXPECT_TRUE(stream != file) << size;  // Never print images.
    }
    EXPECT_TRUE(layout.FileBytes(stream) == file) << size;
  }
}

}  // namespace
}  // namespace raftsql::sm
