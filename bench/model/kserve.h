/*
 * kserve.h: the wire protocols of infergate-model, without any I/O.
 *
 * Parses KServe V1 ({"instances": [[f,f,f,f], ...]}) and Open Inference
 * Protocol V2 (one [N,4] tensor) request bodies into a row-major feature
 * matrix, renders the answers from iris predictions, and classifies request
 * paths. Errors are written as one sentence naming the offending member
 * ("instances[3]: expected an array of 4 numbers"), ready for a 400 body.
 * Knows nothing of sockets, queues or timers: bench/model/app.c does that.
 */
#ifndef INFERGATE_MODEL_KSERVE_H
#define INFERGATE_MODEL_KSERVE_H

#include <stddef.h>

#include "infergate/base/slice.h"
#include "iris.h"

/* Output tensors a V2 request may ask for. */
typedef enum {
    IG_KSERVE_OUT_LABEL = 0,
    IG_KSERVE_OUT_PROBS = 1,
} ig_kserve_output_t;

typedef struct {
    size_t rows;
    double *x; /* owned: rows * IG_IRIS_FEATURES values, row-major */
    char *id;  /* owned: the V2 request "id", NULL if absent */
    /* V2 outputs to answer, in the order asked for (both when unasked). */
    ig_kserve_output_t outputs[2];
    size_t noutputs;
} ig_kserve_input_t;

/* Parses a V1 predict body. On success fills `in` (release with
 * ig_kserve_input_dispose) and returns 0. Otherwise `in` owns nothing, `err`
 * holds the message, and the return is IG_EPARSE (not JSON) or IG_EINVAL
 * (JSON of the wrong shape). */
int ig_kserve_v1_parse(const char *body, size_t len, ig_kserve_input_t *in, char *err,
                       size_t errlen);

/* Parses a V2 infer body: exactly one input tensor, datatype FP32, FP64 or an
 * integer type, shape [N,4] with N >= 1, data flat or nested [N][4]. FP32
 * values are rounded to float precision; integer values must be integral and
 * in range. Same contract as ig_kserve_v1_parse. */
int ig_kserve_v2_parse(const char *body, size_t len, ig_kserve_input_t *in, char *err,
                       size_t errlen);

/* Frees what `in` owns; `in` is empty afterwards. Safe on a zeroed struct. */
void ig_kserve_input_dispose(ig_kserve_input_t *in);

/* {"predictions":[label, ...]}. Returns a NUL-terminated string to free with
 * cJSON_free, its length in *len. Never NULL (aborts when out of memory). */
char *ig_kserve_v1_render(const ig_iris_pred_t *pred, size_t rows, size_t *len);

/* The V2 response: "model_name", "model_version" (when `version` is not
 * NULL), "id" (when the request had one) and the outputs in->outputs asks
 * for: "label" INT64 [N] and "probabilities" FP32 [N,3], data flat. Same
 * ownership as ig_kserve_v1_render. */
char *ig_kserve_v2_render(const ig_kserve_input_t *in, const ig_iris_pred_t *pred,
                          const char *model, const char *version, size_t *len);

typedef enum {
    IG_KSERVE_PATH_NONE = 0,
    IG_KSERVE_PATH_V1_PREDICT,     /* /v1/models/{m}:predict */
    IG_KSERVE_PATH_V1_MODEL,       /* /v1/models/{m} */
    IG_KSERVE_PATH_V2_SERVER,      /* /v2 */
    IG_KSERVE_PATH_V2_LIVE,        /* /v2/health/live */
    IG_KSERVE_PATH_V2_READY,       /* /v2/health/ready */
    IG_KSERVE_PATH_V2_MODEL,       /* /v2/models/{m}[/versions/{v}] */
    IG_KSERVE_PATH_V2_MODEL_READY, /* /v2/models/{m}[/versions/{v}]/ready */
    IG_KSERVE_PATH_V2_INFER,       /* /v2/models/{m}[/versions/{v}]/infer */
} ig_kserve_path_kind_t;

typedef struct {
    ig_kserve_path_kind_t kind;
    ig_slice_t model;   /* into the path; empty for server-level paths */
    ig_slice_t version; /* into the path; base NULL when the path has none */
} ig_kserve_path_t;

/* Classifies a request path (no query). Returns out->kind. Model and
 * version segments are never empty for the kinds that carry them. */
ig_kserve_path_kind_t ig_kserve_match(ig_slice_t path, ig_kserve_path_t *out);

#endif
