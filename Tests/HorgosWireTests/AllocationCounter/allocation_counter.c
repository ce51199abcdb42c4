// See include/horgos_allocation_counter.h.
#include "horgos_allocation_counter.h"

#include <errno.h>
#include <stddef.h>

// Under AddressSanitizer or ThreadSanitizer the sanitizer owns malloc: defining it here would take
// allocations away from it. There the counter uses the sanitizers' allocation hook instead.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HORGOS_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HORGOS_SANITIZED 1
#endif

#if defined(HORGOS_SANITIZED)
static _Thread_local int counting = 0;
static _Thread_local int64_t allocations = 0;
static int hooked = 0;

extern int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                                     void (*free_hook)(const volatile void *));

static void on_malloc(const volatile void *pointer, size_t size) {
    (void)pointer;
    (void)size;
    if (counting) allocations++;
}

static void on_free(const volatile void *pointer) { (void)pointer; }

// The sanitizer runtime installs nothing unless both hooks are given.
static void install_hook(void) {
    if (!hooked) hooked = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free) != 0;
}

int horgos_allocation_counter_is_interposed(void) {
    install_hook();
    return hooked;
}
#elif defined(__linux__) && defined(__GLIBC__)
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static _Thread_local int counting = 0;
static _Thread_local int64_t allocations = 0;
static volatile int interposed = 0;

static inline void count(void) {
    interposed = 1;
    if (counting) allocations++;
}

void *malloc(size_t size) {
    count();
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    count();
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    count();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    count();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL && size != 0) return ENOMEM;
    *out = pointer;
    return 0;
}

int horgos_allocation_counter_is_interposed(void) { return interposed; }
#else
static _Thread_local int counting = 0;
static _Thread_local int64_t allocations = 0;
int horgos_allocation_counter_is_interposed(void) { return 0; }
#endif

void horgos_allocation_counter_start(void) {
#if defined(HORGOS_SANITIZED)
    install_hook();
#endif
    allocations = 0;
    counting = 1;
}

int64_t horgos_allocation_counter_stop(void) {
    counting = 0;
    return allocations;
}
