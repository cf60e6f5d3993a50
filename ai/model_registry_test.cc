// The model registry: a model is used only if its file hashes to what the
// table agreed on; staging and activating go through the table; a failed
// load is remembered for a while, not retried at every evaluation.
#include "ai/model_registry.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "ai/llama_testing.h"
#include "gtest/gtest.h"
#include "sm/test_util.h"

namespace raftsql::ai {
namespace {

class ModelRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sm_ = sm::OpenMemory();
    dir_ = std::string(std::getenv("TEST_TMPDIR")) + "/models";
    std::system(("rm -rf " + dir_ + " && mkdir -p " + dir_).c_str());
    Put("m1", model1_);
  }
  void Put(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ + "/" + name + ".gguf", std::ios::binary) << bytes;
  }
  void Apply(const sm::Command& c) {
    sm::CommandResult r = sm::ApplyOk(*sm_, c);
    for (const sm::StatementResult& s : r.statements) {
      ASSERT_TRUE(s.status.ok()) << s.status;
    }
  }
  QueryFn Query() {
    return [this](const sm::Statement& s) { return sm_->Query(s); };
  }
  const std::string model1_ = RandomLlamaWithVocabulary(270, 1);
  const std::string model2_ = RandomLlamaWithVocabulary(270, 2);
  std::unique_ptr<sm::SqliteStateMachine> sm_;
  std::string dir_;
};

TEST_F(ModelRegistryTest, TheActiveModelIsLoadedOnlyIfItsHashAgrees) {
  ModelRegistry registry(dir_);
  EXPECT_EQ(registry.Active(Query(), 0).status().code(),
            absl::StatusCode::kNotFound);  // No table yet.
  Apply(*StageModelCommand("m1", Sha256Hex(model1_), 1));
  EXPECT_EQ(registry.Active(Query(), 0).status().code(),
            absl::StatusCode::kNotFound);  // Staged, not active.
  Apply(ActivateModelCommand("m1", 2));
  absl::StatusOr<LoadedModel*> m = registry.Active(Query(), 0);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->name, "m1");
  EXPECT_EQ((*m)->model->config().vocab, 270u);
  const std::vector<std::string> actions = {"none", "cool"};
  EXPECT_TRUE((*m)->scorer->Decide("pump-1 hot", actions, true).ok());
  // Held while the table says the same.
  EXPECT_EQ(*registry.Active(Query(), 0), *m);

  // m2 staged with the hash of another file: refused, and m1 retired.
  Put("m2", model2_);
  Apply(*StageModelCommand("m2", Sha256Hex(model1_), 3));
  Apply(ActivateModelCommand("m2", 4));
  absl::StatusOr<LoadedModel*> bad = registry.Active(Query(), 0);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(bad.status().message().find("not the " + Sha256Hex(model1_)),
            std::string::npos)
      << bad.status();
  absl::StatusOr<sm::QueryResult> rows = sm_->Query(ModelsQuery());
  ASSERT_EQ(rows->rows.size(), 2u);
  EXPECT_EQ(rows->rows[0][2].bytes, "retired");
  EXPECT_EQ(rows->rows[1][2].bytes, "active");

  // The failure is remembered for kRetryMs, then the load is tried again.
  Apply(*StageModelCommand("m2", Sha256Hex(model2_), 5));
  Apply(ActivateModelCommand("m2", 6));
  EXPECT_TRUE(registry.Active(Query(), 1000).ok());  // Another hash: anew.
  Put("m2", model1_);  // The file changed under a loaded model: kept.
  EXPECT_TRUE(registry.Active(Query(), 2000).ok());
}

TEST_F(ModelRegistryTest, AFailedLoadIsTriedAgainOnlyAfterItsDelay) {
  ModelRegistry registry(dir_);
  Apply(*StageModelCommand("m3", Sha256Hex(model2_), 1));
  Apply(ActivateModelCommand("m3", 2));
  absl::StatusOr<LoadedModel*> missing = registry.Active(Query(), 0);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("no file"), std::string::npos);
  Put("m3", model2_);
  EXPECT_FALSE(registry.Active(Query(), ModelRegistry::kRetryMs - 1).ok());
  EXPECT_TRUE(registry.Active(Query(), ModelRegistry::kRetryMs).ok());
}

TEST_F(ModelRegistryTest, BadNamesHashesAndFilesAreRefused) {
  const std::string sha = Sha256Hex(model1_);
  EXPECT_FALSE(StageModelCommand("", sha, 0).ok());
  EXPECT_FALSE(StageModelCommand("../etc/passwd", sha, 0).ok());
  EXPECT_FALSE(StageModelCommand(".hidden", sha, 0).ok());
  EXPECT_FALSE(StageModelCommand(std::string(65, 'a'), sha, 0).ok());
  EXPECT_FALSE(StageModelCommand("m", sha.substr(1), 0).ok());
  EXPECT_FALSE(StageModelCommand("m", std::string(64, 'g'), 0).ok());
  EXPECT_TRUE(StageModelCommand("m-1.v2_x", sha, 0).ok());
  // A file that is no model: its hash agrees, the load says why.
  Put("junk", "GGUF but no model");
  absl::StatusOr<std::unique_ptr<LoadedModel>> junk =
      LoadModel(dir_, "junk", Sha256Hex("GGUF but no model"));
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace raftsql::ai
