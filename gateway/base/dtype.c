/*
 * dtype.c: the V2 datatype table (see dtype.h).
 */
#include "infergate/base/dtype.h"

#include <math.h>
#include <string.h>

static const ig_dtype_t dtypes[] = {
    {"BOOL", IG_DT_BOOL, 0, 0, 1, NULL, NULL, 0},
    {"UINT8", IG_DT_INT, 0.0, 256.0, 1, "255", NULL, 0},
    {"UINT16", IG_DT_INT, 0.0, 65536.0, 2, "65535", NULL, 0},
    {"UINT32", IG_DT_INT, 0.0, 4294967296.0, 4, "4294967295", NULL, 0},
    {"UINT64", IG_DT_INT, 0.0, 18446744073709551616.0, 8, "18446744073709551615", NULL, 0},
    {"INT8", IG_DT_INT, -128.0, 128.0, 1, "127", "128", 0},
    {"INT16", IG_DT_INT, -32768.0, 32768.0, 2, "32767", "32768", 0},
    {"INT32", IG_DT_INT, -2147483648.0, 2147483648.0, 4, "2147483647", "2147483648", 0},
    {"INT64", IG_DT_INT, -9223372036854775808.0, 9223372036854775808.0, 8, "9223372036854775807",
     "9223372036854775808", 0},
    /* Floats: a value fits when it rounds to a finite value of the type,
     * i.e. its magnitude is below the largest finite value plus half an
     * ulp (ties there round to even, which is infinity). */
    {"FP16", IG_DT_FLOAT, -65520.0, 65520.0, 2, NULL, NULL, 4},
    {"FP32", IG_DT_FLOAT, -3.4028235677973366e38, 3.4028235677973366e38, 4, NULL, NULL, 38},
    {"FP64", IG_DT_FLOAT, -INFINITY, INFINITY, 8, NULL, NULL, 308},
    {"BF16", IG_DT_FLOAT, -3.3961775292304611e38, 3.3961775292304611e38, 2, NULL, NULL, 38},
    {"BYTES", IG_DT_BYTES, 0, 0, 0, NULL, NULL, 0},
};

const ig_dtype_t *ig_dtype_find_n(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0)
            return &dtypes[i];
    return NULL;
}

const ig_dtype_t *ig_dtype_find(const char *name)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return &dtypes[i];
    return NULL;
}

bool ig_dtype_in_range(const ig_dtype_t *t, double d)
{
    if (t->kind == IG_DT_FLOAT)
        return fabs(d) < t->max_excl;
    return d >= t->min && d < t->max_excl;
}
