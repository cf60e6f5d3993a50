// The tokenizer on a vocabulary made by hand: merges by score, the
// leftmost among equals, byte fallback, decoding back to the text, and
// each bad vocabulary or text refused with its reason.
#include "ai/tokenizer.h"

#include "absl/strings/str_format.h"
#include "ai/gguf_writer.h"
#include "gtest/gtest.h"

namespace raftsql::ai {
namespace {

struct Vocab {
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  void Add(const std::string& piece, float score, int32_t type = 1) {
    pieces.push_back(piece);
    scores.push_back(score);
    types.push_back(type);
  }
  GgufWriter Writer() const {
    GgufWriter w;
    w.String("tokenizer.ggml.model", "llama")
        .Strings("tokenizer.ggml.tokens", pieces)
        .Floats("tokenizer.ggml.scores", scores)
        .Int32s("tokenizer.ggml.token_type", types)
        .Uint32("tokenizer.ggml.bos_token_id", 1)
        .Uint32("tokenizer.ggml.eos_token_id", 2)
        .Uint32("tokenizer.ggml.unknown_token_id", 0);
    return w;
  }
};

const char kSp[] = "\xe2\x96\x81";

Vocab Hello() {
  Vocab v;
  for (int b = 0; b < 256; ++b) v.Add(absl::StrFormat("<0x%02X>", b), 0, 6);
  for (const char* c : {"h", "e", "l", "o", "w", "r", "d"}) v.Add(c, -10);
  v.Add(kSp, -10);
  v.Add("ll", -1);
  v.Add("he", -2);
  v.Add("llo", -3);
  v.Add("hello", -4);
  v.Add(std::string(kSp) + "hello", -5);
  v.Add("wo", -6);
  v.Add("or", -6);  // As likely as "wo": the leftmost pair merges.
  return v;
}

Tokenizer Make(const Vocab& v) {
  absl::StatusOr<GgufFile> f = ParseGguf(v.Writer().Finish());
  EXPECT_TRUE(f.ok()) << f.status();
  absl::StatusOr<Tokenizer> t = Tokenizer::FromGguf(*f);
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

std::vector<std::string> Pieces(const Tokenizer& t, const std::string& text) {
  std::vector<std::string> out;
  const std::vector<int32_t> ids = *t.Encode(text, false);
  for (int32_t id : ids) out.push_back(t.piece(id));
  return out;
}

TEST(Tokenizer, MergesTheBestScoredPairFirstAndTheLeftmostAmongEquals) {
  const Tokenizer t = Make(Hello());
  const std::string sp = kSp;
  EXPECT_EQ(Pieces(t, "hello"), std::vector<std::string>({sp + "hello"}));
  EXPECT_EQ(Pieces(t, "hello hello"),
            std::vector<std::string>({sp + "hello", sp + "hello"}));
  // "wor": "wo" and "or" score the same; "wo" is left of "or".
  EXPECT_EQ(Pieces(t, "wor"), std::vector<std::string>({sp, "wo", "r"}));
  // "hell": "ll" first (-1), then "he" (-2): he + ll.
  EXPECT_EQ(Pieces(t, "hell"), std::vector<std::string>({sp, "he", "ll"}));
  EXPECT_EQ(*t.Encode("hello", true),
            std::vector<int32_t>({1, *t.Find(sp + "hello")}));
  EXPECT_TRUE(t.Encode("", false)->empty());
}

TEST(Tokenizer, CharactersThatAreNoPieceFallBackToTheirBytes) {
  const Tokenizer t = Make(Hello());
  EXPECT_EQ(Pieces(t, "h\xc3\xa9\n"),
            std::vector<std::string>({kSp, "h", "<0xC3>", "<0xA9>", "<0x0A>"}));
  // Without byte pieces: one unknown per character.
  Vocab v;
  v.Add(kSp, -1);
  v.Add("a", -1);
  const Tokenizer no_bytes = Make(v);
  EXPECT_EQ(*no_bytes.Encode("a\xc3\xa9"
                             "a",
                             false),
            std::vector<int32_t>({3, 4, 0, 4}));
}

TEST(Tokenizer, DecodingGivesTheTextBack) {
  const Tokenizer t = Make(Hello());
  for (std::string text :
       {"hello", "hello world", "  two leading", "trailing  ",
        "\xc3\xa9t\xc3\xa9", "tab\there\nnew line",
        "\xf0\x9f\x8c\xa1 27.5 \xc2\xb0"
        "C"}) {
    absl::StatusOr<std::vector<int32_t>> ids = t.Encode(text, true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(*t.Decode(*ids), text);
  }
  const std::vector<int32_t> bad = {1, 100000};
  EXPECT_FALSE(t.Decode(bad).ok());
}

TEST(Tokenizer, LongTextAndBadVocabulariesAreRefused) {
  const Tokenizer t = Make(Hello());
  EXPECT_TRUE(t.Encode(std::string(kMaxTokenizeBytes, 'h'), false).ok());
  EXPECT_EQ(
      t.Encode(std::string(kMaxTokenizeBytes + 1, 'h'), false).status().code(),
      absl::StatusCode::kInvalidArgument);
  auto refusal = [](const std::string& bytes) {
    absl::StatusOr<GgufFile> f = ParseGguf(bytes);
    if (!f.ok()) return std::string(f.status().message());
    absl::StatusOr<Tokenizer> t = Tokenizer::FromGguf(*f);
    return t.ok() ? std::string("accepted") : std::string(t.status().message());
  };
  Vocab v = Hello();
  v.scores.pop_back();
  EXPECT_NE(refusal(v.Writer().Finish()).find("scores for"), std::string::npos);
  v = Hello();
  v.Add("<0xZZ>", 0, 6);
  EXPECT_NE(refusal(v.Writer().Finish()).find("not <0xXX>"), std::string::npos);
  EXPECT_NE(refusal(GgufWriter()
                        .String("tokenizer.ggml.model", "llama")
                        .Strings("tokenizer.ggml.tokens", {"a"})
                        .Floats("tokenizer.ggml.token_type", {1})
                        .Finish())
                .find("not an array of type 5"),
            std::string::npos);
  EXPECT_NE(refusal(GgufWriter()
                        .String("tokenizer.ggml.model", "gpt2")
                        .Strings("tokenizer.ggml.tokens", {"a"})
                        .Finish())
                .find("not llama"),
            std::string::npos);
  EXPECT_NE(refusal(GgufWriter()
                        .String("tokenizer.ggml.model", "llama")
                        .Strings("tokenizer.ggml.tokens", {"a"})
                        .Uint32("tokenizer.ggml.bos_token_id", 1)
                        .Finish())
                .find("outside the vocabulary"),
            std::string::npos);
}

}  // namespace
}  // namespace raftsql::ai
