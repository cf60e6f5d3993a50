#include "net/convert.h"

#include "absl/strings/str_cat.h"

namespace raftsql::net {

void ToProto(const core::Message& m, v1::RaftMessage* out) {
  ToProto(core::Message(m), out);
}

void ToProto(core::Message&& m, v1::RaftMessage* out) {
  out->set_type(static_cast<uint32_t>(m.type));
  out->set_to(m.to);
  out->set_from(m.from);
  out->set_term(m.term);
  out->set_log_term(m.log_term);
  out->set_index(m.index);
  out->set_commit(m.commit);
  for (core::Entry& e : m.entries) {
    v1::Entry* pe = out->add_entries();
    pe->set_term(e.term);
    pe->set_index(e.index);
    pe->set_type(static_cast<uint32_t>(e.type));
    pe->set_data(std::move(e.data));
  }
  out->set_reject(m.reject);
  out->set_reject_hint(m.reject_hint);
  out->set_context(std::move(m.context));
  if (m.snapshot.has_value()) {
    v1::SnapshotChunk* s = out->mutable_snapshot();
    s->set_index(m.snapshot->metadata.index);
    s->set_term(m.snapshot->metadata.term);
    for (uint64_t v : m.snapshot->metadata.conf_state.voters) {
      s->mutable_conf_state()->add_voters(v);
    }
    for (uint64_t l : m.snapshot->metadata.conf_state.learners) {
      s->mutable_conf_state()->add_learners(l);
    }
    s->set_data(std::move(m.snapshot->data));
  }
  out->set_snapshot_offset(m.snapshot_offset);
  out->set_snapshot_size(m.snapshot_size);
}

absl::StatusOr<core::Message> FromProto(const v1::RaftMessage& p) {
  return FromProto(v1::RaftMessage(p));
}

absl::StatusOr<core::Message> FromProto(v1::RaftMessage&& p) {
  if (p.type() > static_cast<uint32_t>(core::MessageType::kReadIndexResp)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown Raft message type ", p.type()));
  }
  core::Message m;
  m.type = static_cast<core::MessageType>(p.type());
  if (core::IsLocalMessage(m.type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "message type ", core::MessageTypeName(m.type), " never travels"));
  }
  m.to = p.to();
  m.from = p.from();
  m.term = p.term();
  m.log_term = p.log_term();
  m.index = p.index();
  m.commit = p.commit();
  m.entries.reserve(p.entries_size());
  for (v1::Entry& pe : *p.mutable_entries()) {
    if (pe.type() > static_cast<uint32_t>(core::EntryType::kConfChange)) {
      return absl::InvalidArgumentError("unknown entry type");
    }
    m.entries.push_back(core::Entry{pe.term(), pe.index(),
                                    static_cast<core::EntryType>(pe.type()),
                                    std::move(*pe.mutable_data())});
  }
  m.reject = p.reject();
  m.reject_hint = p.reject_hint();
  m.context = std::move(*p.mutable_context());
  if (p.has_snapshot()) {
    core::Snapshot s;
    s.metadata.index = p.snapshot().index();
    s.metadata.term = p.snapshot().term();
    s.metadata.conf_state.voters.assign(
        p.snapshot().conf_state().voters().begin(),
        p.snapshot().conf_state().voters().end());
    s.metadata.conf_state.learners.assign(
        p.snapshot().conf_state().learners().begin(),
        p.snapshot().conf_state().learners().end());
    s.data = std::move(*p.mutable_snapshot()->mutable_data());
    m.snapshot = std::move(s);
  }
  m.snapshot_offset = p.snapshot_offset();
  m.snapshot_size = p.snapshot_size();
  return m;
}

}  // namespace raftsql::net
