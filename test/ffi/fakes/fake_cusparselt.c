/* A fake libcusparseLt.so.0 that really computes the fp16 2:4 sparse linear of the PyTorch recipe on host
 * memory: A structured row-major [N,K], B dense row-major [M,K] read with op T, C = D column-major [N,M],
 * D = act(A·Bᵀ + bias). It keeps the handle and descriptors inside the caller's opaque structs, checks what
 * cuSPARSELt documents for a matrix descriptor (order is cusparse.h's CUSPARSE_ORDER_COL = 1 or
 * CUSPARSE_ORDER_ROW = 2, anything else is refused as the real library refuses parameter 8; ld at least rows
 * for column-major and at least cols for row-major; alignment in bytes, a multiple of 16; fp16 only here;
 * rows/cols/ld multiples of 16; 2:4 along K), and compresses to its own format (kept values + 2-bit
 * positions), so the matmul reads only the compressed weight. As cusparseLt.h (0.8.1) and the library do, it
 * wants the opaque structs 16-byte aligned (alignas(16)) and no larger than their 512 bytes, every operand
 * address (d_A, d_B, d_C, d_D, the weight to compress) a multiple of 16 bytes, a stream array when numStreams
 * > 0, and refuses the GELU epilogue for fp16/bf16 (the library fuses GELU only for int8/fp8 inputs).
 * fake_cusparselt_calls() counts matmuls and searches; fake_cusparselt_last_refusal() names the parameter the
 * last refused call broke. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAGIC 0x5350524CU
#define ORDER_COL 1 /* cusparse.h cusparseOrder_t */
#define ORDER_ROW 2
typedef struct { uint32_t magic; } handle_t;
typedef struct { uint32_t magic; int structured; int64_t rows, cols, ld; uint32_t align; int type, order; } mat_t;
typedef struct {
  uint32_t magic; int opA, opB, compute; mat_t a, b, c, d;
  int relu, gelu; uint64_t bias, sparse;
} matmul_t;
typedef struct { uint32_t magic; int config, max_config, iterations, split_k, split_k_mode, split_k_buffers; } alg_t;
typedef struct { uint32_t magic; matmul_t mm; alg_t *alg; } plan_t;
/* cusparseLt.h: typedef struct { alignas(16) uint8_t data[512]; } for all five opaque types */
#define OPAQUE_BYTES 512
_Static_assert(sizeof(handle_t) <= OPAQUE_BYTES, "handle fits cusparseLtHandle_t");
_Static_assert(sizeof(mat_t) <= OPAQUE_BYTES, "matrix fits cusparseLtMatDescriptor_t");
_Static_assert(sizeof(matmul_t) <= OPAQUE_BYTES, "matmul fits cusparseLtMatmulDescriptor_t");
_Static_assert(sizeof(alg_t) <= OPAQUE_BYTES, "selection fits cusparseLtMatmulAlgSelection_t");
_Static_assert(sizeof(plan_t) <= OPAQUE_BYTES, "plan fits cusparseLtMatmulPlan_t");
static int aligned16(const void *p) { return p && ((uintptr_t)p & 15) == 0; }

static int matmuls = 0, searches = 0;
int fake_cusparselt_calls(int which) { return which == 0 ? matmuls : searches; }

const char *cusparseLtGetErrorName(int s) { return s == 3 ? "CUSPARSE_STATUS_INVALID_VALUE" : "CUSPARSE_STATUS_FAKE"; }
const char *cusparseLtGetErrorString(int s) { return s == 3 ? "fake: an invalid value was passed" : s == 10 ? "fake: not supported" : "fake status"; }

static const char *refusal = "";
const char *fake_cusparselt_last_refusal(void) { return refusal; }
static int refuse(const char *why) { refusal = why; return 3; }
static int unsupported(const char *why) { refusal = why; return 10; }

int cusparseLtInit(handle_t *h) { if (!aligned16(h)) return refuse("handle alignment"); h->magic = MAGIC; return 0; }
int cusparseLtDestroy(handle_t *h) { if (h->magic != MAGIC) return 1; h->magic = 0; return 0; }
int cusparseLtGetVersion(const handle_t *h, int *v) { if (h->magic != MAGIC) return 1; *v = 801; return 0; }

static int init_mat(const handle_t *h, mat_t *m, int64_t rows, int64_t cols, int64_t ld, uint32_t align, int type,
                    int order, int structured) {
  if (h->magic != MAGIC) return 1;
  if (!aligned16(m)) return refuse("matDescr alignment");
  if (order != ORDER_COL && order != ORDER_ROW) return refuse("order");
  if (align == 0 || align % 16 != 0) return refuse("alignment");
  if (rows <= 0 || cols <= 0) return refuse("rows/cols");
  if (ld < (order == ORDER_ROW ? cols : rows)) return refuse("ld");
  if (type != 2) return 10;
  if (rows % 16 || cols % 16 || ld % 16) return refuse("multiple of 16");
  m->magic = MAGIC; m->structured = structured; m->rows = rows; m->cols = cols; m->ld = ld;
  m->align = align; m->type = type; m->order = order;
  return 0;
}
int cusparseLtDenseDescriptorInit(const handle_t *h, mat_t *m, int64_t r, int64_t c, int64_t ld, uint32_t al,
                                  int t, int o) { return init_mat(h, m, r, c, ld, al, t, o, 0); }
int cusparseLtStructuredDescriptorInit(const handle_t *h, mat_t *m, int64_t r, int64_t c, int64_t ld, uint32_t al,
                                       int t, int o, int sparsity) {
  if (sparsity != 0) return 3;
  return init_mat(h, m, r, c, ld, al, t, o, 1);
}
int cusparseLtMatDescriptorDestroy(mat_t *m) { if (m->magic != MAGIC) return 3; m->magic = 0; return 0; }

int cusparseLtMatmulDescriptorInit(const handle_t *h, matmul_t *mm, int opA, int opB, const mat_t *a, const mat_t *b,
                                   const mat_t *c, const mat_t *d, int compute) {
  if (h->magic != MAGIC) return 1;
  if (!aligned16(mm)) return refuse("matmulDescr alignment");
  if (a->magic != MAGIC || b->magic != MAGIC || c->magic != MAGIC || d->magic != MAGIC) return 3;
  if (compute != 2) return 10;
  /* only the recipe torchc uses: A row-major op N, B row-major op T, C = D column-major */
  if (!a->structured || a->order != ORDER_ROW || opA != 0 || b->order != ORDER_ROW || opB != 1 ||
      d->order != ORDER_COL || c->order != d->order)
    return 10;
  if (a->cols != b->cols || d->rows != a->rows || d->cols != b->rows) return 3;
  memset(mm, 0, sizeof *mm);
  mm->magic = MAGIC; mm->opA = opA; mm->opB = opB; mm->compute = compute;
  mm->a = *a; mm->b = *b; mm->c = *c; mm->d = *d;
  return 0;
}
int cusparseLtMatmulDescSetAttribute(const handle_t *h, matmul_t *mm, int attr, const void *v, size_t n) {
  if (h->magic != MAGIC || mm->magic != MAGIC) return 3;
  switch (attr) {
    case 0: if (n != 4) return 3; mm->relu = *(const int *)v; return 0;
    case 3:
      if (n != 4) return 3;
      if (*(const int *)v && (mm->a.type == 2 || mm->a.type == 14)) return unsupported("GELU with fp16/bf16");
      mm->gelu = *(const int *)v; return 0;
    case 8: if (n != 8) return 3; memcpy(&mm->bias, v, 8); return 0;
    case 9: if (n != 8) return 3; memcpy(&mm->sparse, v, 8); return 0;
    default: return 10;
  }
}
int cusparseLtMatmulAlgSelectionInit(const handle_t *h, alg_t *alg, const matmul_t *mm, int which) {
  if (h->magic != MAGIC || mm->magic != MAGIC || which != 0) return 3;
  if (!aligned16(alg)) return refuse("algSelection alignment");
  memset(alg, 0, sizeof *alg);
  alg->magic = MAGIC; alg->max_config = 4; alg->iterations = 5; alg->split_k = 1;
  return 0;
}
int cusparseLtMatmulAlgSelectionDestroy(alg_t *alg) { if (alg->magic != MAGIC) return 3; alg->magic = 0; return 0; }
static int *alg_field(alg_t *a, int attr) {
  switch (attr) {
    case 0: return &a->config; case 1: return &a->max_config; case 2: return &a->iterations;
    case 3: return &a->split_k; case 4: return &a->split_k_mode; case 5: return &a->split_k_buffers;
    default: return 0;
  }
}
int cusparseLtMatmulAlgSetAttribute(const handle_t *h, alg_t *a, int attr, const void *v, size_t n) {
  int *f = alg_field(a, attr);
  if (h->magic != MAGIC || a->magic != MAGIC || !f || n != 4 || attr == 1) return 3;
  *f = *(const int *)v;
  return 0;
}
int cusparseLtMatmulAlgGetAttribute(const handle_t *h, alg_t *a, int attr, void *v, size_t n) {
  int *f = alg_field(a, attr);
  if (h->magic != MAGIC || a->magic != MAGIC || !f || n != 4) return 3;
  *(int *)v = *f;
  return 0;
}
int cusparseLtMatmulPlanInit(const handle_t *h, plan_t *p, const matmul_t *mm, alg_t *alg) {
  if (h->magic != MAGIC || mm->magic != MAGIC || alg->magic != MAGIC) return 3;
  if (!aligned16(p)) return refuse("plan alignment");
  p->magic = MAGIC; p->mm = *mm; p->alg = alg;
  return 0;
}
int cusparseLtMatmulPlanDestroy(plan_t *p) { if (p->magic != MAGIC) return 3; p->magic = 0; return 0; }
/* the search "picks" split-K 2, which needs a workspace of 4 bytes per output element */
int cusparseLtMatmulGetWorkspace(const handle_t *h, const plan_t *p, size_t *n) {
  if (h->magic != MAGIC || p->magic != MAGIC) return 3;
  *n = p->alg->split_k > 1 ? (size_t)(p->mm.d.rows * p->mm.d.cols * 4) : 0;
  return 0;
}

/* 2:4 along K of A (row-major [N,K]): at most two non-zeros in each group of four. */
static int valid_24(const matmul_t *mm, const _Float16 *w) {
  for (int64_t r = 0; r < mm->a.rows; r++)
    for (int64_t g = 0; g < mm->a.cols; g += 4) {
      int nz = 0;
      for (int i = 0; i < 4; i++) nz += w[r * mm->a.ld + g + i] != 0;
      if (nz > 2) return 0;
    }
  return 1;
}
int cusparseLtSpMMAPruneCheck(const handle_t *h, const matmul_t *mm, const void *in, int *valid, void *stream) {
  (void)stream;
  if (h->magic != MAGIC || mm->magic != MAGIC || !in || !valid) return 3;
  *valid = valid_24(mm, in) ? 0 : 1;
  return 0;
}
int cusparseLtSpMMAPrune(const handle_t *h, const matmul_t *mm, const void *in, void *out, int alg, void *stream) {
  (void)h; (void)mm; (void)in; (void)out; (void)alg; (void)stream;
  return 10;
}

/* compressed: [N, K/2] kept values, then [N, K/4] bytes of two 2-bit positions */
int cusparseLtSpMMACompressedSize(const handle_t *h, const plan_t *p, size_t *size, size_t *buffer) {
  if (h->magic != MAGIC || p->magic != MAGIC) return 3;
  int64_t n = p->mm.a.rows, k = p->mm.a.cols;
  *size = (size_t)(n * k / 2 * 2 + n * k / 4);
  *buffer = 64;
  return 0;
}
int cusparseLtSpMMACompress(const handle_t *h, const plan_t *p, const void *dense, void *out, void *buffer,
                            void *stream) {
  (void)stream;
  if (h->magic != MAGIC || p->magic != MAGIC || !buffer) return 3;
  if (!aligned16(dense)) return refuse("d_dense alignment");
  if (!aligned16(out)) return refuse("d_compressed alignment");
  const matmul_t *mm = &p->mm;
  if (!valid_24(mm, dense)) return 3;
  int64_t n = mm->a.rows, k = mm->a.cols;
  const _Float16 *w = dense;
  _Float16 *vals = out;
  uint8_t *meta = (uint8_t *)out + n * k / 2 * 2;
  for (int64_t r = 0; r < n; r++)
    for (int64_t g = 0; g < k / 4; g++) {
      int pos[2] = {0, 1}, c = 0;
      for (int i = 0; i < 4 && c < 2; i++)
        if (w[r * mm->a.ld + g * 4 + i] != 0) pos[c++] = i;
      if (c == 1 && pos[0] == 1) pos[1] = 0; /* keep two distinct slots; the second holds a zero */
      if (c == 1 && pos[0] != 1) pos[1] = pos[0] == 0 ? 1 : 0;
      for (int j = 0; j < 2; j++) vals[r * (k / 2) + g * 2 + j] = w[r * mm->a.ld + g * 4 + pos[j]];
      meta[r * (k / 4) + g] = (uint8_t)(pos[0] | (pos[1] << 2));
    }
  return 0;
}

/* the library's own check: "unsupported alignment value for d_A (...), only multiples of 16 are supported" */
static int operands_aligned(const void *A, const void *B, const void *C, const void *D) {
  if (!aligned16(A)) return refuse("d_A alignment");
  if (!aligned16(B)) return refuse("d_B alignment");
  if (!aligned16(C)) return refuse("d_C alignment");
  if (!aligned16(D)) return refuse("d_D alignment");
  return 0;
}
/* D = act(A·B + beta·C + bias), beta 0 or 1 (C read only when beta is 1, with D's layout) */
static int run(const plan_t *p, const void *alpha, const void *A, const void *B, const void *beta,
               const void *C, void *D) {
  const matmul_t *mm = &p->mm;
  float b = *(const float *)beta;
  if (*(const float *)alpha != 1.0f || (b != 0.0f && b != 1.0f)) return 10;
  if (!A || !B || !D || (b != 0.0f && !C)) return 3;
  const _Float16 *c = C;
  int64_t n = mm->a.rows, k = mm->a.cols, m = mm->b.rows;
  const _Float16 *vals = A, *x = B, *bias = (const _Float16 *)(uintptr_t)mm->bias;
  const uint8_t *meta = (const uint8_t *)A + n * k / 2 * 2;
  _Float16 *y = D;
  for (int64_t j = 0; j < m; j++)
    for (int64_t r = 0; r < n; r++) {
      float acc = 0;
      for (int64_t g = 0; g < k / 4; g++) {
        uint8_t bits = meta[r * (k / 4) + g];
        for (int s = 0; s < 2; s++) {
          int pos = (bits >> (2 * s)) & 3;
          acc += (float)vals[r * (k / 2) + g * 2 + s] * (float)x[j * mm->b.ld + g * 4 + pos];
        }
      }
      if (bias) acc += (float)bias[r];
      if (b != 0.0f) acc += (float)c[j * mm->d.ld + r];
      if (mm->relu && acc < 0) acc = 0;
      if (mm->gelu) acc = 0.5f * acc * (1.0f + tanhf(0.7978845608f * (acc + 0.044715f * acc * acc * acc)));
      y[j * mm->d.ld + r] = (_Float16)acc;
    }
  return 0;
}
int cusparseLtMatmulSearch(const handle_t *h, plan_t *p, const void *alpha, const void *A, const void *B,
                           const void *beta, const void *C, void *D, void *ws, void **streams, int ns) {
  (void)ws;
  if (h->magic != MAGIC || p->magic != MAGIC || ns != 1 || !streams) return 3;
  int rc = operands_aligned(A, B, C, D);
  if (rc) return rc;
  searches++;
  p->alg->config = 2;
  p->alg->split_k = 2;
  return run(p, alpha, A, B, beta, C, D);
}
int cusparseLtMatmul(const handle_t *h, const plan_t *p, const void *alpha, const void *A, const void *B,
                     const void *beta, const void *C, void *D, void *ws, void **streams, int ns) {
  if (h->magic != MAGIC || p->magic != MAGIC || ns != 1 || !streams) return 3;
  int rc = operands_aligned(A, B, C, D);
  if (rc) return rc;
  if (p->alg->split_k > 1 && !ws) return 3;
  matmuls++;
  return run(p, alpha, A, B, beta, C, D);
}
