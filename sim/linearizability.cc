#include "sim/linearizability.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/check.h"

namespace raftsql::sim {
namespace {

// Event list node: a call or return of op `op`.
struct Node {
  uint64_t time;
  size_t op;
  bool is_call;
  size_t match;  // For a call: the node of its return.
  size_t prev;
  size_t next;
};

constexpr size_t kNil = std::numeric_limits<size_t>::max();

struct CacheKey {
  std::vector<uint64_t> linearized;
  int64_t state;
  bool operator==(const CacheKey&) const = default;
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const {
    uint64_t h = static_cast<uint64_t>(k.state) * 0x9e3779b97f4a7c15ull;
    for (uint64_t w : k.linearized) h = (h ^ w) * 0x100000001b3ull + 0x7f4a7c15;
    return h;
  }
};

class Search {
 public:
  explicit Search(const std::vector<RegisterOp>& ops) : ops_(ops) {
    // Head sentinel at index 0; events follow, sorted by time with calls
    // before returns at equal times (ops that touch are concurrent).
    nodes_.push_back(Node{0, 0, false, kNil, kNil, kNil});
    std::vector<Node> events;
    for (size_t i = 0; i < ops.size(); ++i) {
      CHECK_LE(ops[i].call, ops[i].ret);
      events.push_back(Node{ops[i].call, i, true, kNil, kNil, kNil});
      events.push_back(Node{ops[i].ret, i, false, kNil, kNil, kNil});
    }
    std::stable_sort(events.begin(), events.end(),
                     [](const Node& a, const Node& b) {
                       if (a.time != b.time) return a.time < b.time;
                       return a.is_call && !b.is_call;
                     });
    std::vector<size_t> call_of(ops.size(), kNil);
    for (Node& e : events) {
      const size_t id = nodes_.size();
      e.prev = id - 1;
      nodes_[id - 1].next = id;
      nodes_.push_back(e);
      if (e.is_call) {
        call_of[e.op] = id;
      } else {
        nodes_[call_of[e.op]].match = id;
      }
    }
  }

  CheckResult Run(uint64_t max_steps) {
    std::vector<uint64_t> linearized((ops_.size() + 63) / 64, 0);
    std::unordered_set<CacheKey, CacheKeyHash> cache;
    CacheKey probe;  // Reused to avoid an allocation per step.
    std::vector<std::pair<size_t, int64_t>> stack;  // (call node, old state)
    int64_t state = 0;
    size_t entry = nodes_[0].next;
    uint64_t steps = 0;
    while (nodes_[0].next != kNil) {
      if (++steps > max_steps) return CheckResult::kUnknown;
      CHECK(entry != kNil);
      const Node& n = nodes_[entry];
      if (n.is_call) {
        const RegisterOp& op = ops_[n.op];
        // The register model: a write always succeeds and sets the value; a
        // read succeeds only if it saw the current value.
        const bool legal = op.is_write || op.value == state;
        if (legal) {
          const int64_t next_state = op.is_write ? op.value : state;
          const uint64_t bit = uint64_t{1} << (n.op % 64);
          probe.linearized = linearized;
          probe.linearized[n.op / 64] |= bit;
          probe.state = next_state;
          if (cache.insert(probe).second) {
            stack.emplace_back(entry, state);
            state = next_state;
            linearized[n.op / 64] |= bit;
            Lift(entry);
            entry = nodes_[0].next;
            continue;
          }
        }
        entry = n.next;
      } else {
        // A return reached before its op could be linearized: backtrack.
        if (stack.empty()) return CheckResult::kIllegal;
        auto [call, old_state] = stack.back();
        stack.pop_back();
        state = old_state;
        linearized[nodes_[call].op / 64] &=
            ~(uint64_t{1} << (nodes_[call].op % 64));
        Unlift(call);
        entry = nodes_[call].next;
      }
    }
    return CheckResult::kOk;
  }

 private:
  // Removes a call and its return from the list; their own links are kept so
  // that Unlift (in LIFO order) can put them back.
  void Lift(size_t call) {
    Unlink(call);
    Unlink(nodes_[call].match);
  }
  void Unlift(size_t call) {
    Relink(nodes_[call].match);
    Relink(call);
  }
  void Unlink(size_t i) {
    Node& n = nodes_[i];
    nodes_[n.prev].next = n.next;
    if (n.next != kNil) nodes_[n.next].prev = n.prev;
  }
  void Relink(size_t i) {
    Node& n = nodes_[i];
    nodes_[n.prev].next = i;
    if (n.next != kNil) nodes_[n.next].prev = i;
  }

  const std::vector<RegisterOp>& ops_;
  std::vector<Node> nodes_;
};

}  // namespace

const char* CheckResultName(CheckResult r) {
  switch (r) {
    case CheckResult::kOk:
      return "ok";
    case CheckResult::kIllegal:
      return "ILLEGAL";
    case CheckResult::kUnknown:
      return "unknown (search bound hit)";
  }
  return "?";
}

std::vector<RegisterOp> Prune(const std::vector<RegisterOp>& ops) {
  // When a value is first seen returned by a read (writes write distinct
  // values).
  std::unordered_map<int64_t, uint64_t> first_seen;
  for (const RegisterOp& op : ops) {
    if (op.is_write || op.ret == kNeverReturned) continue;
    auto [it, fresh] = first_seen.emplace(op.value, op.ret);
    if (!fresh) it->second = std::min(it->second, op.ret);
  }
  std::vector<RegisterOp> kept;
  kept.reserve(ops.size());
  for (RegisterOp op : ops) {
    if (op.ret == kNeverReturned) {
      // A read with no answer constrains nothing.
      if (!op.is_write) continue;
      auto it = first_seen.find(op.value);
      // Nobody saw the value: "never took effect" is always a valid
      // linearization of the write, so leave it out.
      if (it == first_seen.end()) continue;
      // Somebody did: it took effect before the first read that saw it
      // returned.
      op.ret = std::max(op.call, it->second);
    }
    kept.push_back(op);
  }
  return kept;
}

CheckResult CheckRegister(const std::vector<RegisterOp>& ops,
                          uint64_t max_steps) {
  const std::vector<RegisterOp> pruned = Prune(ops);
  if (pruned.empty()) return CheckResult::kOk;
  Search search(pruned);
  return search.Run(max_steps);
}

HistoryReport CheckHistory(
    const std::map<uint64_t, std::vector<RegisterOp>>& by_key,
    uint64_t max_steps_per_key) {
  HistoryReport report;
  for (const auto& [key, ops] : by_key) {
    report.operations += ops.size();
    const CheckResult r = CheckRegister(ops, max_steps_per_key);
    if (r == CheckResult::kOk) continue;
    // An illegal key outranks one we could not decide.
    if (report.result == CheckResult::kOk ||
        (r == CheckResult::kIllegal &&
         report.result != CheckResult::kIllegal)) {
      report.result = r;
      report.key = key;
    }
  }
  return report;
}

}  // namespace raftsql::sim
