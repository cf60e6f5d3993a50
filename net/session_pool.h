// SessionPool: the client sessions one Client's writes go out in. The
// server applies a session's writes in sequence order and answers one
// older than the session's last as stale, so a session carries one call at
// a time: concurrent calls each take an idle session, or a new one (writers
// sharing one session raced each other's sequence numbers, and a write
// overtaken by the next failed as "stale request").
//
// Thread-safe.
#ifndef RAFTSQL_NET_SESSION_POOL_H_
#define RAFTSQL_NET_SESSION_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <random>
#include <vector>

namespace raftsql::net {

class SessionPool {
 public:
  // Idle sessions kept for reuse; beyond them a session is let go (the
  // server forgets unused sessions on its own).
  static constexpr size_t kMaxIdleSessions = 64;

  // `fixed` != 0: that one session only, which concurrent calls take in
  // turn. `seed` draws the ids of new sessions.
  SessionPool(uint64_t fixed, uint64_t seed);

  // One session, held by one call.
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : pool_(other.pool_), id_(other.id_), sequence_(other.sequence_) {
      other.pool_ = nullptr;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    uint64_t id() const { return id_; }
    // The sequence number of the session's next write.
    uint64_t NextSequence() { return ++sequence_; }

   private:
    friend class SessionPool;
    Lease(SessionPool* pool, uint64_t id, uint64_t sequence)
        : pool_(pool), id_(id), sequence_(sequence) {}
    SessionPool* pool_;
    uint64_t id_;
    uint64_t sequence_;
  };

  Lease Acquire();
  // Sessions made so far (tests).
  size_t made() const;

 private:
  struct Session {
    uint64_t id = 0;
    uint64_t sequence = 0;  // The last one used.
  };
  void Release(Session s);

  const bool fixed_;
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;  // The fixed session came back.
  std::vector<Session> idle_;
  std::mt19937_64 rng_;
  size_t made_ = 0;
};

}  // namespace raftsql::net

#endif  // RAFTSQL_NET_SESSION_POOL_H_
