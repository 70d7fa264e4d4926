// The process-wide pool of worker threads for the training hot path (the network's matrix
// products and the optimizer's fused pass). Work is split into static contiguous ranges, so a
// given thread count always gives the same split and the same numbers. Between jobs the workers
// spin briefly, then sleep: they never compete with other work for the cores, which OpenBLAS's own
// busy-waiting threads did (the matrix products therefore run single-threaded BLAS per range).
#pragma once

#include <cstddef>
#include <functional>

namespace metaplast::util {

// Threads the hot path uses from now on (>= 1; values < 1 are taken as 1). Default 1.
void set_compute_threads(int threads);
int compute_threads();

// Splits [0, count) into min(threads, count) contiguous ranges and runs body(begin, end) on each,
// one range per thread (the calling thread takes the first); returns when all are done. threads
// <= 1 or count <= 1 runs body(0, count) inline. body must not throw (the program terminates).
// Not reentrant: body must not call parallel_ranges itself.
void parallel_ranges(std::size_t count, int threads,
                     const std::function<void(std::size_t begin, std::size_t end)>& body);

}  // namespace metaplast::util
