// CPU time (user + system) of processes, for a benchmark's CPU per
// operation across every process that serves it.
#ifndef RAFTSQL_BENCH_PROCESS_CPU_H_
#define RAFTSQL_BENCH_PROCESS_CPU_H_

#include <sys/types.h>

#include <vector>

namespace raftsql::bench {

// Seconds of CPU process `pid` used so far (all its threads), from
// /proc/PID/stat; negative if it cannot be read.
double ProcessCpuSeconds(pid_t pid);

// This process's, every thread's.
double SelfCpuSeconds();

// The sum over `pids` (those that cannot be read count 0).
double CpuSecondsOf(const std::vector<pid_t>& pids);

}  // namespace raftsql::bench

#endif  // RAFTSQL_BENCH_PROCESS_CPU_H_
