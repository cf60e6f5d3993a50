// What the SQL conformance tests share: a cluster of real raftsql_server
// processes on 127.0.0.1 (1 or 3 nodes, the test's parameter) beside an
// in-memory sqlite3 reference, and values shown alike from either side.
#ifndef RAFTSQL_TESTS_CONFORMANCE_H_
#define RAFTSQL_TESTS_CONFORMANCE_H_

#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "net/client.h"
#include "tools/local_cluster.h"

namespace raftsql::conformance {

// A value as "type:bytes", for either side.
std::string Show(const v1::Value& v);
std::string Show(sqlite3_stmt* stmt, int c);
// Rows as "v|v|...|" lines.
std::vector<std::string> Lines(
    const google::protobuf::RepeatedPtrField<v1::Row>& rows);
// What the reference answers to `sql` (which must prepare).
std::vector<std::string> Reference(sqlite3* db, const std::string& sql);

class Cluster : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Where linearizable reads go: a follower of the 3-node cluster, the
  // node of the other.
  net::Client Reader();
  int ReadNode();
  // A client of node `id` alone.
  net::Client Node(int id);
  // The statement, written through the cluster, and through the reference;
  // both must succeed.
  v1::ExecuteResponse Write(const std::string& sql);
  v1::QueryResponse Read(net::Client& reader, const std::string& sql,
                         v1::Consistency consistency = v1::LINEARIZABLE);
  uint64_t LastIndex();

  std::string dir_;
  std::unique_ptr<tools::LocalCluster> cluster_;
  sqlite3* reference_ = nullptr;
};

// "1_nodes", "3_nodes".
std::string NodesName(const ::testing::TestParamInfo<int>& info);

}  // namespace raftsql::conformance

#endif  // RAFTSQL_TESTS_CONFORMANCE_H_
