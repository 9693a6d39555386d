/*
 * dtype.h: the Open Inference Protocol (V2) tensor datatypes.
 *
 * One table serves the gateway's V2 codec and the example model, so the two
 * agree on which names exist and which JSON values each can hold.
 */
#ifndef INFERGATE_DTYPE_H
#define INFERGATE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    IG_DT_BOOL,  /* JSON true/false */
    IG_DT_INT,   /* integral JSON numbers in [min, max_excl) */
    IG_DT_FLOAT, /* JSON numbers that round to a finite value: |d| < max_excl */
    IG_DT_BYTES, /* JSON strings */
} ig_dt_kind_t;

typedef struct {
    const char *name; /* "FP32", "UINT8", ... */
    ig_dt_kind_t kind;
    double min, max_excl; /* numbers only */
    unsigned size;        /* bytes per element in binary tensor data; 0 for BYTES */
    /* Integers: the largest value and the magnitude of the smallest, as
     * decimal digits (min_digits NULL for unsigned types), so that range
     * checks run on the text. Floats: max_e10 is the decimal exponent of
     * the largest finite value (numbers below 10^max_e10 always fit). */
    const char *max_digits, *min_digits;
    int max_e10;
} ig_dtype_t;

/* Returns the datatype named exactly `name`, or NULL. */
const ig_dtype_t *ig_dtype_find(const char *name);

/* The same for a name given as bytes (not NUL-terminated). */
const ig_dtype_t *ig_dtype_find_n(const char *name, size_t len);

/* Whether the number `d` lies in a numeric datatype's range: integers in
 * [min, max_excl), floats when they round to a finite value of the type
 * (|d| below the largest finite value plus half an ulp). Integrality is
 * checked apart. */
bool ig_dtype_in_range(const ig_dtype_t *t, double d);

#endif
