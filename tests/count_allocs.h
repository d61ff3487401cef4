/* A counting allocator for tests that check a loop allocates nothing:
 * glibc lets the executable interpose malloc and friends. Set `counting`
 * around the code under test and read `allocs`. ASan and TSan bring their
 * own allocators, which cannot be interposed; there the sanitizer's
 * allocation hooks count instead, so the tests assert under every build
 * (CT_COUNT_ALLOCS stays 1). Include once, in the test's .c file. */
#ifndef CT_COUNT_ALLOCS_H
#define CT_COUNT_ALLOCS_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CT_COUNT_WITH_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CT_COUNT_WITH_HOOKS 1
#endif
#endif
#define CT_COUNT_ALLOCS 1
/* The hooks see every allocation, also libgomp's memalign of a team of one
 * for each parallel region whose if() clause is false (the interposer
 * above does not cover memalign); a test of code with such regions says
 * SKIPPED under a sanitizer rather than count them. */
#ifdef CT_COUNT_WITH_HOOKS
#define CT_COUNT_SEES_OMP_TEAMS 1
#else
#define CT_COUNT_SEES_OMP_TEAMS 0
#endif

static volatile int counting;
static volatile long allocs;

#ifdef CT_COUNT_WITH_HOOKS
/* sanitizer_common's interface (<sanitizer/allocator_interface.h>, which
 * GCC does not install): called on every malloc/calloc/realloc/free. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static void ct_count_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (counting) __atomic_add_fetch(&allocs, 1, __ATOMIC_RELAXED);
}
static void ct_count_free_hook(const volatile void *p) { (void)p; }
__attribute__((constructor)) static void ct_count_install_hooks(void)
{
    __sanitizer_install_malloc_and_free_hooks(ct_count_malloc_hook, ct_count_free_hook);
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
void *malloc(size_t n)
{
    if (counting) __atomic_add_fetch(&allocs, 1, __ATOMIC_RELAXED);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    if (counting) __atomic_add_fetch(&allocs, 1, __ATOMIC_RELAXED);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    if (counting) __atomic_add_fetch(&allocs, 1, __ATOMIC_RELAXED);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t al, size_t n)
{
    if (counting) __atomic_add_fetch(&allocs, 1, __ATOMIC_RELAXED);
    return __libc_memalign(al, n);
}
int posix_memalign(void **p, size_t al, size_t n)
{
    if (counting) __atomic_add_fetch(&allocs, 1, __ATOMIC_RELAXED);
    *p = __libc_memalign(al, n);
    return *p ? 0 : 12;
}
void free(void *p) { __libc_free(p); }
#endif

#endif
