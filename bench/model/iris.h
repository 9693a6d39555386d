/*
 * iris.h: the model that infergate-model serves, a softmax classifier of iris
 * flowers (setosa, versicolor, virginica) from four measurements in cm.
 *
 * The weights are compiled in from iris_weights.h, which train_iris.py
 * generates from iris.csv; there is no file to load at run time. This module is
 * pure math: no I/O, no allocation, no protocol.
 */
#ifndef INFERGATE_MODEL_IRIS_H
#define INFERGATE_MODEL_IRIS_H

#include <stddef.h>
#include <stdint.h>

#define IG_IRIS_FEATURES 4
#define IG_IRIS_CLASSES 3

typedef struct {
    int64_t label;                /* argmax of probs: 0 setosa, 1 versicolor, 2 virginica */
    float probs[IG_IRIS_CLASSES]; /* softmax output, sums to 1 */
} ig_iris_pred_t;

/* Classifies one row of features (sepal length, sepal width, petal length,
 * petal width). Inputs must be finite. */
void ig_iris_predict(const double x[IG_IRIS_FEATURES], ig_iris_pred_t *out);

/* Classifies `rows` rows stored row-major in x (rows * IG_IRIS_FEATURES values)
 * into out[0..rows). */
void ig_iris_predict_rows(const double *x, size_t rows, ig_iris_pred_t *out);

/* The training accuracy recorded by train_iris.py in iris_weights.h. */
double ig_iris_train_accuracy(void);

/* Class name for a label ("setosa"), or "unknown". */
const char *ig_iris_class_name(int64_t label);

#endif
