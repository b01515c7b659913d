/* A fake libcublasLt.so.13 that really computes fp32 column-major D = alpha*op(A)*op(B) (+bias per row of D)
 * (ReLU) on host memory, checking layout consistency like cuBLASLt does. Quantized matmuls as cuBLASLt documents
 * them: int8 A/B (compute 32I) in the TN form only, with an int32 D (int32 scale) or, when
 * fake_cublaslt_int8_float_out(1) was called, an fp32 D with a per-row alpha vector (pointer mode 3); fp8 E4M3
 * A/B (TN only) with device scale pointers (scalars, or outer vectors over D's rows and columns) and an fp32 D.
 * Other data types (fp16 D included) are NOT_SUPPORTED. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int compute, scale, transa, transb, pointer_mode, bias_type, a_scale_mode, b_scale_mode;
  unsigned epilogue;
  uint64_t bias, a_scale, b_scale;
  signed char fast_accum;
} desc_t;
static int int8_float_out = 0;
static int refuse_outer_vec = 0;
void fake_cublaslt_refuse_outer_vec(int on) { refuse_outer_vec = on; }
static int matmuls = 0;
void fake_cublaslt_int8_float_out(int on) { int8_float_out = on; }
int fake_cublaslt_matmuls(void) { return matmuls; }
typedef struct { int type; uint64_t rows, cols; int64_t ld; } layout_t;

int cublasLtCreate(void **h) { *h = malloc(8); return 0; }
int cublasLtDestroy(void *h) { free(h); return 0; }
size_t cublasLtGetVersion(void) { return 130100; }
const char *cublasLtGetStatusName(int s) { return s == 15 ? "CUBLAS_STATUS_NOT_SUPPORTED" : "CUBLAS_STATUS_FAKE"; }
const char *cublasLtGetStatusString(int s) { return s == 15 ? "the functionality requested is not supported" : "fake status"; }
int cublasLtMatmulDescCreate(void **d, int compute, int scale) {
  desc_t *x = calloc(1, sizeof *x);
  x->compute = compute; x->scale = scale; x->epilogue = 1;
  *d = x;
  return 0;
}
int cublasLtMatmulDescDestroy(void *d) { free(d); return 0; }
int cublasLtMatmulDescSetAttribute(void *d, int attr, const void *buf, size_t n) {
  desc_t *x = d;
  switch (attr) {
    case 3: if (n != 4) return 7; memcpy(&x->transa, buf, 4); return 0;
    case 4: if (n != 4) return 7; memcpy(&x->transb, buf, 4); return 0;
    case 7: if (n != 4) return 7; memcpy(&x->epilogue, buf, 4); return 0;
    case 8: if (n != 8) return 7; memcpy(&x->bias, buf, 8); return 0;
    case 2: if (n != 4) return 7; memcpy(&x->pointer_mode, buf, 4); return 0;
    case 17: if (n != 8) return 7; memcpy(&x->a_scale, buf, 8); return 0;
    case 18: if (n != 8) return 7; memcpy(&x->b_scale, buf, 8); return 0;
    case 25: if (n != 1) return 7; memcpy(&x->fast_accum, buf, 1); return 0;
    case 26: if (n != 4) return 7; memcpy(&x->bias_type, buf, 4); return 0;
    case 31: if (n != 4) return 7; memcpy(&x->a_scale_mode, buf, 4); return 0;
    case 32: if (n != 4) return 7; memcpy(&x->b_scale_mode, buf, 4); return 0;
    default: return 7;
  }
}
int cublasLtMatrixLayoutCreate(void **l, int type, uint64_t rows, uint64_t cols, int64_t ld) {
  if (ld < (int64_t)rows) return 7;
  layout_t *x = malloc(sizeof *x);
  x->type = type; x->rows = rows; x->cols = cols; x->ld = ld;
  *l = x;
  return 0;
}
int cublasLtMatrixLayoutDestroy(void *l) { free(l); return 0; }
int cublasLtMatrixLayoutSetAttribute(void *l, int a, const void *b, size_t n) { (void)l; (void)a; (void)b; (void)n; return 0; }
int cublasLtMatmulPreferenceCreate(void **p) { *p = calloc(1, 8); return 0; }
int cublasLtMatmulPreferenceDestroy(void *p) { free(p); return 0; }
int cublasLtMatmulPreferenceSetAttribute(void *p, int a, const void *b, size_t n) {
  if (a != 1 || n != 8) return 7;
  memcpy(p, b, 8);
  return 0;
}

static int shapes(desc_t *d, layout_t *a, layout_t *b, layout_t *c, uint64_t *m, uint64_t *n, uint64_t *k) {
  *m = d->transa ? a->cols : a->rows;
  *k = d->transa ? a->rows : a->cols;
  uint64_t kb = d->transb ? b->cols : b->rows;
  *n = d->transb ? b->rows : b->cols;
  if (kb != *k || c->rows != *m || c->cols != *n) return 7;
  if (a->type != b->type) return 15;
  if (d->a_scale_mode != d->b_scale_mode || (d->a_scale_mode != 0 && (a->type != 28 || d->a_scale_mode != 3)))
    return 15; /* outer-vector scales (3) on fp8 only, both operands alike */
  if (d->a_scale_mode == 3 && refuse_outer_vec) return 15;
  int tn = d->transa == 1 && d->transb == 0;
  if (a->type == 0) return (d->compute == 68 || d->compute == 77) && d->scale == 0 && c->type == 0 && d->pointer_mode == 0 ? 0 : 15;
  if (a->type == 3) { /* int8: TN, int32 out, or fp32 out with an alpha vector when enabled */
    if (d->compute != 72 || !tn || d->epilogue != 1) return 15;
    if (d->scale == 10 && c->type == 10 && d->pointer_mode == 0) return 0;
    return int8_float_out && d->scale == 0 && c->type == 0 && d->pointer_mode == 3 ? 0 : 15;
  }
  if (a->type == 28) /* fp8 E4M3: TN, fp32 out */
    return d->compute == 68 && d->scale == 0 && tn && c->type == 0 && d->pointer_mode == 0 ? 0 : 15;
  return 15;
}

static double e4m3(unsigned char b) {
  int e = (b >> 3) & 15, m = b & 7;
  double v = e == 0 ? m / 512.0 : (1 + m / 8.0) * (double)(1 << e) / 128.0;
  return b & 0x80 ? -v : v;
}
static double element(int type, const void *p, uint64_t i) {
  if (type == 3) return ((const signed char *)p)[i];
  if (type == 28) return e4m3(((const unsigned char *)p)[i]);
  return ((const float *)p)[i];
}

int cublasLtMatmulAlgoGetHeuristic(void *h, void *desc, void *a, void *b, void *c, void *dd, void *pref, int req,
                                   void *results, int *returned) {
  (void)h; (void)dd; (void)pref;
  uint64_t m, n, k;
  int rc = shapes(desc, a, b, c, &m, &n, &k);
  if (rc) return rc;
  if (req < 1) return 7;
  unsigned char *r = results;
  memset(r, 0, 96);
  memset(r, 0xAB, 64);
  *returned = 1;
  return 0;
}

int cublasLtMatmul(void *h, void *desc, const void *alpha, const void *A, void *la, const void *B, void *lb,
                   const void *beta, const void *C, void *lc, void *D, void *ld, const void *algo, void *ws,
                   size_t wsSize, void *stream) {
  (void)h; (void)C; (void)lc; (void)ws; (void)wsSize; (void)stream;
  desc_t *d = desc;
  layout_t *a = la, *b = lb, *o = ld;
  uint64_t m, n, k;
  int rc = shapes(d, a, b, o, &m, &n, &k);
  if (rc) return rc;
  if (!algo || ((const unsigned char *)algo)[0] != 0xAB) return 7;
  matmuls++;
  int vector = d->pointer_mode == 3, int_out = o->type == 10;
  if (!vector && (int_out ? *(const int *)beta != 0 : *(const float *)beta != 0.0f)) return 15;
  float al = vector || int_out ? 1.0f : *(const float *)alpha;
  const float *sa = (const float *)(uintptr_t)d->a_scale, *sb = (const float *)(uintptr_t)d->b_scale;
  int outer = d->a_scale_mode == 3;
  if (a->type == 28) {
    if (!sa || !sb) return 7;
    if (!outer) al *= sa[0] * sb[0];
  }
  const float *bias = (const float *)(uintptr_t)d->bias;
  float *Dm = D;
  int has_bias = d->epilogue == 4 || d->epilogue == 6;
  int relu = d->epilogue == 2 || d->epilogue == 6;
  if (has_bias && !bias) return 7;
  for (uint64_t j = 0; j < n; j++)
    for (uint64_t i = 0; i < m; i++) {
      double acc = 0;
      for (uint64_t p = 0; p < k; p++) {
        double x = element(a->type, A, d->transa ? p + i * a->ld : i + p * a->ld);
        double y = element(b->type, B, d->transb ? j + p * b->ld : p + j * b->ld);
        acc += x * y;
      }
      if (int_out) { ((int *)D)[i + j * o->ld] = (int)acc * *(const int *)alpha; continue; }
      float scale = vector ? ((const float *)alpha)[i] : outer ? al * sa[i] * sb[j] : al;
      float v = scale * (float)acc + (has_bias ? bias[i] : 0.0f);
      if (relu && v < 0) v = 0;
      Dm[i + j * o->ld] = v;
    }
  return 0;
}
