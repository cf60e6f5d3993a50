#include "server/responses.h"

namespace raftsql::server {

void ToProto(const Member& m, v1::Member* out) {
  out->set_id(m.id);
  out->set_address(m.address);
  out->set_voter(m.voter);
  out->set_client_address(m.client_address);
}

void ToProto(const std::vector<Member>& members, v1::AdminResponse* out) {
  for (const Member& m : members) ToProto(m, out->add_members());
}

void ToProto(const NodeState& s, v1::StatusResponse* response) {
  response->set_id(s.id);
  response->set_role(s.role);
  response->set_term(s.term);
  response->set_leader(s.leader);
  response->set_leader_address(s.leader_address);
  response->set_commit_index(s.commit);
  response->set_applied_index(s.applied);
  response->set_last_index(s.last_index);
  response->set_snapshot_index(s.snapshot_index);
  response->set_divergence_hash(s.divergence_hash);
  response->set_divergence(s.divergence);
  response->set_longest_loop_us(static_cast<uint64_t>(s.longest_loop_us));
  response->set_longest_loop_in_snapshots_us(
      static_cast<uint64_t>(s.longest_loop_in_snapshots_us));
  response->set_vacuuming(s.vacuuming);
  response->set_vacuums_done(s.vacuums_done);
  response->set_change_log_first(s.change_log_first);
  response->set_change_log_bytes(s.change_log_bytes);
  response->set_decisions_evaluated_index(s.decisions_evaluated_index);
  response->set_decision_evaluations(s.decision_evaluations);
  response->set_decision_model(s.decision_model);
  response->set_decision_model_error(s.decision_model_error);
  response->set_http_address(s.http_address);
  for (const core::SnapshotTransfer& t : s.snapshot_transfers) {
    v1::SnapshotTransfer* out = response->add_snapshot_transfers();
    out->set_peer(t.peer);
    out->set_index(t.index);
    out->set_bytes_done(t.bytes_done);
    out->set_bytes_total(t.bytes_total);
    out->set_sending(t.sending);
  }
  for (const Member& m : s.members) {
    if (m.voter) {
      response->add_voters(m.id);
    } else {
      response->add_learners(m.id);
    }
    ToProto(m, response->add_members());
  }
}

void ToProto(const sm::WriteSettings& limits, v1::SettingsResponse* response) {
  auto& out = *response->mutable_settings();
  for (const auto& [name, value] : sm::SettingValues(limits)) {
    out[std::string(name)] = value;
  }
}

void ToProto(const std::vector<sm::User>& users, v1::UsersResponse* response) {
  for (const sm::User& u : users) {
    v1::UserInfo* out = response->add_users();
    out->set_name(u.name);
    for (const std::string& p : sm::PermissionNames(u.permissions)) {
      out->add_permissions(p);
    }
    out->set_has_password(!u.password_hash.empty());
  }
}

}  // namespace raftsql::server
