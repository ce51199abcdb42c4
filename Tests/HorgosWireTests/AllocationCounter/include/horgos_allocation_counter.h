// Counts heap allocations made by the calling thread, without LD_PRELOAD.
//
// The test executable links this target statically, so its malloc/calloc/realloc/aligned
// allocators are the executable's own definitions, and the dynamic linker binds every library's
// calls (the Swift runtime's included) to them ahead of glibc's. They count, then forward to
// glibc's __libc_* functions. Counting is per thread, so tests running in parallel on other
// threads do not disturb a measurement. (Under ASan or TSan the sanitizer owns malloc; the counter
// then uses the sanitizer's allocation hook instead of replacing malloc.)
//
// Note: on Linux SwiftPM links all test targets of the package into one executable, so these
// replacements serve every test in it; they only add one thread-local check to each allocation.
#ifndef HORGOS_ALLOCATION_COUNTER_H
#define HORGOS_ALLOCATION_COUNTER_H

#include <stdint.h>

/// Starts counting this thread's allocations from zero.
void horgos_allocation_counter_start(void);

/// Stops counting and returns how many allocations this thread made since the start.
int64_t horgos_allocation_counter_stop(void);

/// 1 when this process's allocations go through the counter (the interposition took effect).
int horgos_allocation_counter_is_interposed(void);

#endif
