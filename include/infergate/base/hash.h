/*
 * hash.h: the one non-cryptographic hash of the code base.
 *
 * 64-bit FNV-1a: small, fast on the short keys we hash (batch keys, stack
 * names, fuzz inputs) and stable across runs and machines, which matters
 * where a hash picks a name or a deterministic choice. It is not keyed and
 * not collision resistant: never use it where an attacker choosing inputs
 * could hurt more than a slower bucket.
 */
#ifndef INFERGATE_HASH_H
#define INFERGATE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define IG_HASH_FNV_OFFSET 0xcbf29ce484222325ull
#define IG_HASH_FNV_PRIME 0x100000001b3ull

/* Returns the 64-bit FNV-1a hash of len bytes at data (data may be NULL
 * when len is 0). Pure; the same bytes give the same value everywhere. */
static inline uint64_t ig_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = IG_HASH_FNV_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= IG_HASH_FNV_PRIME;
    }
    return h;
}

#endif
