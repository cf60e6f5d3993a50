#include "tools/shell_data.h"

#include <gtest/gtest.h>

#include <sstream>

namespace raftsql::tools {
namespace {

TEST(ReadCsvRecord, QuotedFieldsHoldCommasQuotesAndLineBreaks) {
  std::istringstream in(
      "id,name\r\n1,\"Smith, J\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n"
      "4,\n");
  std::vector<std::string> f;
  ASSERT_TRUE(ReadCsvRecord(in, &f));
  EXPECT_EQ(f, (std::vector<std::string>{"id", "name"}));
  ASSERT_TRUE(ReadCsvRecord(in, &f));
  EXPECT_EQ(f, (std::vector<std::string>{"1", "Smith, J"}));
  ASSERT_TRUE(ReadCsvRecord(in, &f));
  EXPECT_EQ(f, (std::vector<std::string>{"2", "say \"hi\""}));
  ASSERT_TRUE(ReadCsvRecord(in, &f));
  EXPECT_EQ(f, (std::vector<std::string>{"3", "two\nlines"}));
  ASSERT_TRUE(ReadCsvRecord(in, &f));
  EXPECT_EQ(f, (std::vector<std::string>{"4", ""}));
  EXPECT_FALSE(ReadCsvRecord(in, &f));
}

TEST(SqlLiteral, EveryTypeReadsBackAsItself) {
  v1::Value v;
  EXPECT_EQ(SqlLiteral(v), "NULL");
  v.set_integer(-12);
  EXPECT_EQ(SqlLiteral(v), "-12");
  v.set_real(2);
  EXPECT_EQ(SqlLiteral(v), "2.0");
  v.set_real(0.1);
  EXPECT_EQ(SqlLiteral(v), "0.10000000000000001");
  v.set_text("it's");
  EXPECT_EQ(SqlLiteral(v), "'it''s'");
  v.set_blob(std::string("\x00\xff", 2));
  EXPECT_EQ(SqlLiteral(v), "X'00ff'");
  v.set_text_bytes("\xff");
  EXPECT_EQ(SqlLiteral(v), "CAST(X'ff' AS TEXT)");
}

}  // namespace
}  // namespace raftsql::tools
