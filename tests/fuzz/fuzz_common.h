/*
 * fuzz_common.h: small helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * FUZZ_CHECK turns a broken invariant into an abort with a sentence saying
 * which one, so libFuzzer records the input as a crash exactly as it does
 * for a sanitizer report. fuzz_hash derives the harness's choices (where to
 * split a write, how to answer a request) from the input itself, so that a
 * saved crash input replays the same way.
 */
#ifndef INFERGATE_FUZZ_COMMON_H
#define INFERGATE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "infergate/base/hash.h"

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* FNV-1a over the bytes, for deterministic choices derived from the input. */
static inline uint64_t fuzz_hash(const void *data, size_t len)
{
    return ig_hash_bytes(data, len);
}

#endif
