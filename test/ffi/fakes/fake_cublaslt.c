/* A fake libcublasLt.so.13 that really computes fp32 column-major D = alpha*op(A)*op(B) (+bias per row of D)
 * (ReLU) on host memory, checking layout consistency like cuBLASLt does. Quantized matmuls as cuBLASLt documents
 * them: int8 A/B (compute 32I) in the TN form only, with an int32 D (int32 scale) or, when
 * fake_cublaslt_int8_float_out(1) was called, an fp32 D with a per-row alpha vector (pointer mode 3); fp8 E4M3
 * A/B (TN only, compute 32F, scale 32F) with device scale pointers (scalars, or outer vectors over D's rows and
 * columns) and an fp32, fp16 or bf16 D whose C has D's type, a bias of D's type (bf16 for an fp32 D, as
 * cublasLt.h's BIAS_DATA_TYPE notes), operands 16-byte aligned.
 * What the real library does beyond the heuristic, modelled because an H100 showed it: the heuristic reads the
 * bias and scale pointers' values for the alignment it may assume (cublasLt.h says so of BIAS_POINTER); a
 * pointer NULL or 16-byte aligned then gets an algorithm that needs 16 bytes, so a scale pointer set after the
 * heuristic 4 bytes into a buffer makes cublasLtMatmul answer NOT_SUPPORTED, as the H100 did. fp8 algorithms
 * ask for 4 KiB of workspace where the preference allows it (cublasLtMatmul: INVALID_VALUE when given less).
 * fp8 cublasLtMatmul also refuses a C that is NULL or D (PyTorch's scaled_gemm: "cublasLtMatmul requires a C
 * pointer that is not result_ptr or nullptr"; C = D was what the H100 refused). The heuristic returns two algorithms; fake_cublaslt_refuse_first_algo(1) makes cublasLtMatmul refuse the
 * first (NOT_SUPPORTED). Other data types are NOT_SUPPORTED. */
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
static int refuse_first_algo = 0;
void fake_cublaslt_refuse_first_algo(int on) { refuse_first_algo = on; }
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
  if (a->type == 28) { /* fp8 E4M3: TN, compute and scale 32F, D fp32/fp16/bf16; the bias type follows D */
    if (d->compute != 68 || d->scale != 0 || !tn || d->pointer_mode != 0) return 15;
    if (c->type != 0 && c->type != 2 && c->type != 14) return 15;
    int has_bias = d->epilogue == 4 || d->epilogue == 6;
    if (has_bias && d->bias_type != (c->type == 0 ? 14 : c->type)) return 15;
    if (a->ld % 16 || b->ld % 16) return 15;
    return 0;
  }
  return 15;
}

static double e4m3(unsigned char b) {
  int e = (b >> 3) & 15, m = b & 7;
  double v = e == 0 ? m / 512.0 : (1 + m / 8.0) * (double)(1 << e) / 128.0;
  return b & 0x80 ? -v : v;
}
static uint16_t to_half(float f) { /* round to nearest even, saturating to inf */
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, m = x & 0x7fffff;
  int e = (int)((x >> 23) & 0xff) - 127 + 15;
  if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (m ? 0x200 : 0));
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    m |= 0x800000;
    int shift = 14 - e;
    uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (hm & 1))) hm++;
    return (uint16_t)(sign | hm);
  }
  uint32_t h = sign | ((uint32_t)e << 10) | (m >> 13), rem = m & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
  return (uint16_t)h;
}
static float from_half(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  float v = e == 0 ? m / 16777216.0f : e == 31 ? (m ? 0.0f / 0.0f : 1.0f / 0.0f) : (1 + m / 1024.0f) * (float)(1 << e) / 32768.0f;
  return h & 0x8000 ? -v : v;
}
static uint16_t to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}
static float from_bf16(uint16_t b) {
  uint32_t x = (uint32_t)b << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}
static float bias_at(int type, const void *p, uint64_t i) {
  if (type == 2) return from_half(((const uint16_t *)p)[i]);
  if (type == 14) return from_bf16(((const uint16_t *)p)[i]);
  return ((const float *)p)[i];
}
static void store(int type, void *p, uint64_t i, float v) {
  if (type == 2) ((uint16_t *)p)[i] = to_half(v);
  else if (type == 14) ((uint16_t *)p)[i] = to_bf16(v);
  else ((float *)p)[i] = v;
}

static double element(int type, const void *p, uint64_t i) {
  if (type == 3) return ((const signed char *)p)[i];
  if (type == 28) return e4m3(((const unsigned char *)p)[i]);
  return ((const float *)p)[i];
}

/* log2 of the alignment an algorithm may assume for a pointer the heuristic saw (NULL: 16 bytes, at most 16) */
static unsigned char assumed(uint64_t p) {
  unsigned char l = 0;
  if (!p) return 4;
  while (l < 4 && !(p & (1ull << l))) l++;
  return l;
}
static int aligned_to(uint64_t p, unsigned char log2) { return !p || (p & ((1ull << log2) - 1)) == 0; }

int cublasLtMatmulAlgoGetHeuristic(void *h, void *desc, void *a, void *b, void *c, void *dd, void *pref, int req,
                                   void *results, int *returned) {
  (void)h;
  uint64_t m, n, k;
  desc_t *d = desc;
  if (((layout_t *)c)->type != ((layout_t *)dd)->type) return 15;
  int rc = shapes(desc, a, b, c, &m, &n, &k);
  if (rc) return rc;
  if (req < 1) return 7;
  uint64_t max_ws;
  memcpy(&max_ws, pref, 8);
  int count = req < 2 ? req : 2;
  unsigned char *r = results;
  for (int i = 0; i < count; i++, r += 96) {
    memset(r, 0, 96);
    memset(r, 0xAB, 64);
    r[1] = (unsigned char)i;
    r[2] = assumed(d->bias);
    r[3] = assumed(d->a_scale);
    r[4] = assumed(d->b_scale);
    uint64_t ws = ((layout_t *)a)->type == 28 && max_ws >= 4096 ? 4096 : 0;
    memcpy(r + 64, &ws, 8);
    r[5] = ws ? 1 : 0;
  }
  *returned = count;
  return 0;
}

int cublasLtMatmul(void *h, void *desc, const void *alpha, const void *A, void *la, const void *B, void *lb,
                   const void *beta, const void *C, void *lc, void *D, void *ld, const void *algo, void *ws,
                   size_t wsSize, void *stream) {
  (void)h; (void)C; (void)lc; (void)stream;
  desc_t *d = desc;
  layout_t *a = la, *b = lb, *o = ld;
  uint64_t m, n, k;
  int rc = shapes(d, a, b, o, &m, &n, &k);
  if (rc) return rc;
  const unsigned char *al_ = algo;
  if (!al_ || al_[0] != 0xAB) return 7;
  if (a->type == 3 || a->type == 28) {
    if (refuse_first_algo && al_[1] == 0) return 15;
    if (!aligned_to(d->bias, al_[2]) || !aligned_to(d->a_scale, al_[3]) || !aligned_to(d->b_scale, al_[4]))
      return 15;
  }
  if (a->type == 28) {
    if (!C || C == D) return 15; /* as PyTorch's scaled_gemm notes for cuBLASLt 13: C must be neither D nor NULL */
    if (al_[5] && (wsSize < 4096 || !ws)) return 7;
    if (!aligned_to((uint64_t)(uintptr_t)A, 4) || !aligned_to((uint64_t)(uintptr_t)B, 4) ||
        !aligned_to((uint64_t)(uintptr_t)D, 4))
      return 15;
  }
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
  const void *bias = (const void *)(uintptr_t)d->bias;
  int bias_type = a->type == 28 ? (o->type == 0 ? 14 : o->type) : 0;
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
      float v = scale * (float)acc + (has_bias ? bias_at(bias_type, bias, i) : 0.0f);
      if (relu && v < 0) v = 0;
      store(o->type, D, i + j * o->ld, v);
    }
  return 0;
}
