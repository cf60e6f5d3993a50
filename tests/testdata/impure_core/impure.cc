// A deliberately impure file: the purity check must reject it.
#include <chrono>
#include <thread>

int Now() {
  std::this_thread::yield();
  return static_cast<int>(std::chrono::steady_clock::now().time_since_epoch().count());
}
