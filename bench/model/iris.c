/*
 * iris.c: forward pass of the iris softmax classifier.
 *
 * Features are standardized with the training mean and standard deviation,
 * multiplied by the weight matrix, and turned into probabilities with a
 * numerically stable softmax (the largest logit is subtracted before exp).
 * The weights come from the generated iris_weights.h.
 */
#include "iris.h"

#include <math.h>

#include "iris_weights.h"

_Static_assert(IRIS_NUM_FEATURES == IG_IRIS_FEATURES, "iris_weights.h feature count");
_Static_assert(IRIS_NUM_CLASSES == IG_IRIS_CLASSES, "iris_weights.h class count");

void ig_iris_predict(const double x[IG_IRIS_FEATURES], ig_iris_pred_t *out)
{
    double z[IG_IRIS_FEATURES];
    double logit[IG_IRIS_CLASSES];
    double max;
    double sum = 0.0;
    int best = 0;

    for (int j = 0; j < IG_IRIS_FEATURES; j++)
        z[j] = (x[j] - IRIS_MEAN[j]) / IRIS_STD[j];
    for (int k = 0; k < IG_IRIS_CLASSES; k++) {
        logit[k] = IRIS_B[k];
        for (int j = 0; j < IG_IRIS_FEATURES; j++)
            logit[k] += IRIS_W[k][j] * z[j];
    }
    max = logit[0];
    for (int k = 1; k < IG_IRIS_CLASSES; k++) {
        if (logit[k] > max) {
            max = logit[k];
            best = k;
        }
    }
    for (int k = 0; k < IG_IRIS_CLASSES; k++) {
        logit[k] = exp(logit[k] - max);
        sum += logit[k];
    }
    for (int k = 0; k < IG_IRIS_CLASSES; k++)
        out->probs[k] = (float)(logit[k] / sum);
    out->label = best;
}

void ig_iris_predict_rows(const double *x, size_t rows, ig_iris_pred_t *out)
{
    for (size_t i = 0; i < rows; i++)
        ig_iris_predict(x + i * IG_IRIS_FEATURES, &out[i]);
}

double ig_iris_train_accuracy(void)
{
    return IRIS_TRAIN_ACCURACY;
}

const char *ig_iris_class_name(int64_t label)
{
    static const char *const names[IG_IRIS_CLASSES] = {"setosa", "versicolor", "virginica"};
    if (label < 0 || label >= IG_IRIS_CLASSES)
        return "unknown";
    return names[label];
}
