/* A fake libcuda.so.1 for tests without a GPU: "device" memory is host memory, two kernels run on the CPU
 * (fill_f32(float *p, float v, int n) and add_i32(int *p, int delta, int n)), stream capture records launches
 * and event records into graphs that replay them (a captured cuEventRecord records the event, a tick of the
 * event clock, at each replay, as the driver's event-record node does). It checks what a real driver would reject
 * (unknown or out-of-range pointers, capture on the NULL stream), so runtime bugs show up as error statuses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long dptr_t;
#define MAX_ALLOCS 4096
static struct { dptr_t base; size_t size; } allocs[MAX_ALLOCS];
static int initialized = 0;
static void *current_ctx = 0;
static int event_clock = 0;

typedef struct { char name[128]; } fn_t;
/* A node with fn NULL is a captured event record: args[0] is the event. */
typedef struct { fn_t *fn; unsigned grid, block; uint64_t args[3]; } node_t;
/* Kernels the fake can run: fill_f32(float *p, float v, int n), add_i32(int *p, int d, int n),
 * add_one(float *p, int n); kernels named *empty* do nothing. */
typedef struct { int count, cap; node_t *nodes; } graph_t;
typedef struct { int capturing; graph_t *graph; } stream_t;
typedef struct { int time; } event_t;

int fake_live_allocations(void) {
  int n = 0;
  for (int i = 0; i < MAX_ALLOCS; i++) n += allocs[i].base != 0;
  return n;
}

static int valid_range(dptr_t p, size_t n) {
  for (int i = 0; i < MAX_ALLOCS; i++)
    if (allocs[i].base && p >= allocs[i].base && p + n <= allocs[i].base + allocs[i].size) return 1;
  return 0;
}

int cuInit(unsigned flags) { initialized = 1; return flags == 0 ? 0 : 1; }
int cuDriverGetVersion(int *v) { *v = 13000; return 0; }
int cuGetErrorString(int e, const char **s) {
  static char buf[64];
  snprintf(buf, sizeof buf, "fake driver error %d", e);
  *s = buf;
  return 0;
}
int cuGetErrorName(int e, const char **s) { return cuGetErrorString(e, s); }
int cuDeviceGetCount(int *n) { if (!initialized) return 3; *n = 1; return 0; }
int cuDeviceGet(int *d, int ordinal) { if (!initialized) return 3; if (ordinal != 0) return 101; *d = 0; return 0; }
int cuDeviceGetName(char *name, int len, int dev) { snprintf(name, len, "Fake GPU %d", dev); return 0; }
int cuDeviceGetAttribute(int *v, int attr, int dev) {
  (void)dev;
  *v = attr == 75 ? 9 : attr == 76 ? 0 : attr == 16 ? 132 : attr == 97 ? 232448 : 1;
  return 0;
}
int cuDeviceTotalMem_v2(size_t *b, int dev) { (void)dev; *b = 80ULL << 30; return 0; }
int cuDevicePrimaryCtxRetain(void **ctx, int dev) { (void)dev; *ctx = (void *)0x1000; return 0; }
int cuDevicePrimaryCtxRelease_v2(int dev) { (void)dev; return 0; }
int cuCtxSetCurrent(void *ctx) { current_ctx = ctx; return 0; }
int cuCtxGetCurrent(void **ctx) { *ctx = current_ctx; return 0; }
int cuCtxSynchronize(void) { return current_ctx ? 0 : 201; }
int cuMemGetInfo_v2(size_t *f, size_t *t) { *f = 79ULL << 30; *t = 80ULL << 30; return 0; }

int cuMemAlloc_v2(dptr_t *p, size_t n) {
  if (!current_ctx) return 201;
  if (n == 0) return 1;
  for (int i = 0; i < MAX_ALLOCS; i++)
    if (!allocs[i].base) {
      void *m = aligned_alloc(256, (n + 255) / 256 * 256);
      allocs[i].base = (dptr_t)(uintptr_t)m;
      allocs[i].size = n;
      *p = allocs[i].base;
      return 0;
    }
  return 2;
}
int cuMemFree_v2(dptr_t p) {
  for (int i = 0; i < MAX_ALLOCS; i++)
    if (allocs[i].base == p) { free((void *)(uintptr_t)p); allocs[i].base = 0; return 0; }
  return 1;
}
int cuMemAllocAsync(dptr_t *p, size_t n, void *s) { (void)s; return cuMemAlloc_v2(p, n); }
int cuMemFreeAsync(dptr_t p, void *s) { (void)s; return cuMemFree_v2(p); }
int cuMemAllocHost_v2(void **p, size_t n) { *p = calloc(1, n); return *p ? 0 : 2; }
int cuMemFreeHost(void *p) { free(p); return 0; }
/* Registration is checked, not performed: page-aligned, non-empty, one live registration per base address. */
static void *registered[16];
int cuMemHostRegister_v2(void *p, size_t n, unsigned flags) {
  if (!current_ctx) return 201;
  if (!p || n == 0 || ((uintptr_t)p % 4096) != 0 || (n % 4096) != 0 || flags > 7) return 1;
  for (int i = 0; i < 16; i++) if (registered[i] == p) return 712; /* CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED */
  for (int i = 0; i < 16; i++) if (!registered[i]) { registered[i] = p; return 0; }
  return 2;
}
int cuMemHostUnregister(void *p) {
  for (int i = 0; i < 16; i++) if (registered[i] == p) { registered[i] = 0; return 0; }
  return 713; /* CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED */
}
int cuMemcpyHtoD_v2(dptr_t d, const void *s, size_t n) {
  if (!valid_range(d, n)) return 1;
  memcpy((void *)(uintptr_t)d, s, n);
  return 0;
}
int cuMemcpyDtoH_v2(void *d, dptr_t s, size_t n) {
  if (!valid_range(s, n)) return 1;
  memcpy(d, (void *)(uintptr_t)s, n);
  return 0;
}
int cuMemcpyDtoD_v2(dptr_t d, dptr_t s, size_t n) {
  if (!valid_range(d, n) || !valid_range(s, n)) return 1;
  memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n);
  return 0;
}
int cuMemcpyHtoDAsync_v2(dptr_t d, const void *s, size_t n, void *st) { (void)st; return cuMemcpyHtoD_v2(d, s, n); }
int cuMemcpyDtoHAsync_v2(void *d, dptr_t s, size_t n, void *st) { (void)st; return cuMemcpyDtoH_v2(d, s, n); }
int cuMemcpyDtoDAsync_v2(dptr_t d, dptr_t s, size_t n, void *st) { (void)st; return cuMemcpyDtoD_v2(d, s, n); }
int cuMemsetD8_v2(dptr_t d, unsigned char v, size_t n) {
  if (!valid_range(d, n)) return 1;
  memset((void *)(uintptr_t)d, v, n);
  return 0;
}
int cuMemsetD8Async(dptr_t d, unsigned char v, size_t n, void *s) { (void)s; return cuMemsetD8_v2(d, v, n); }
int cuMemsetD32_v2(dptr_t d, unsigned v, size_t n) {
  if (!valid_range(d, n * 4)) return 1;
  for (size_t i = 0; i < n; i++) ((unsigned *)(uintptr_t)d)[i] = v;
  return 0;
}
int cuMemsetD32Async(dptr_t d, unsigned v, size_t n, void *s) { (void)s; return cuMemsetD32_v2(d, v, n); }

int cuModuleLoadData(void **m, const void *image) {
  if (memcmp(image, "FAKECUBIN", 9) != 0 && memcmp(image, "FAKEPTX", 7) != 0) return 200;
  *m = malloc(16);
  return 0;
}
int cuModuleUnload(void *m) { free(m); return 0; }
int cuModuleGetFunction(void **f, void *m, const char *name) {
  (void)m;
  if (strstr(name, "missing")) return 500;
  fn_t *fn = calloc(1, sizeof *fn);
  snprintf(fn->name, sizeof fn->name, "%s", name);
  *f = fn;
  return 0;
}
int cuFuncSetAttribute(void *f, int a, int v) { (void)f; (void)a; return v < 0 ? 1 : 0; }
int cuFuncGetAttribute(int *v, int a, void *f) { (void)f; *v = a == 4 ? 32 : 1024; return 0; }

static int run_node(const node_t *n) {
  if (!n->fn) { ((event_t *)(uintptr_t)n->args[0])->time = event_clock += 2; return 0; }
  unsigned count = n->grid * n->block;
  dptr_t p = n->args[0];
  int len = (int)(int32_t)n->args[2];
  if ((unsigned)len > count) return 701;
  if (!valid_range(p, (size_t)len * 4)) return 700;
  if (strstr(n->fn->name, "fill_f32")) {
    float v;
    uint32_t bits = (uint32_t)n->args[1];
    memcpy(&v, &bits, 4);
    for (int i = 0; i < len; i++) ((float *)(uintptr_t)p)[i] = v;
  } else if (strstr(n->fn->name, "add_one")) {
    for (int i = 0; i < len; i++) ((float *)(uintptr_t)p)[i] += 1.0f;
  } else if (strstr(n->fn->name, "add_i32")) {
    int32_t d = (int32_t)n->args[1];
    for (int i = 0; i < len; i++) ((int32_t *)(uintptr_t)p)[i] += d;
  } else {
    return 500;
  }
  return 0;
}

static int capture_node(graph_t *g, node_t n) {
  if (g->count == g->cap) { g->cap = g->cap ? g->cap * 2 : 8; g->nodes = realloc(g->nodes, g->cap * sizeof(node_t)); }
  g->nodes[g->count++] = n;
  return 0;
}

int cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shared, void *stream, void **params, void **extra) {
  (void)shared; (void)extra;
  if (!f) return 1;
  const char *name = ((fn_t *)f)->name;
  if (strstr(name, "empty")) return 0;
  if (!params) return 1;
  node_t n = {(fn_t *)f, gx * gy * gz, bx * by * bz, {0, 0, 0}};
  if (strstr(name, "add_one")) {
    n.args[0] = *(uint64_t *)params[0];
    n.args[2] = *(uint32_t *)params[1];
  } else if (strstr(name, "fill_f32") || strstr(name, "add_i32")) {
    n.args[0] = *(uint64_t *)params[0];
    n.args[1] = *(uint32_t *)params[1];
    n.args[2] = *(uint32_t *)params[2];
  } else {
    return 500;
  }
  stream_t *s = (stream_t *)stream;
  if (s && s->capturing) return capture_node(s->graph, n);
  return run_node(&n);
}

/* CUlaunchConfig and CUlaunchAttribute as cuda.h (CUDA 12+) lays them out, so a wrong offset in src/ffi shows here. */
typedef struct { unsigned id; char pad[4]; union { char raw[64]; int programmaticStreamSerializationAllowed; } value; } fake_launch_attr_t;
typedef struct {
  unsigned gx, gy, gz, bx, by, bz, shared;
  void *stream;
  fake_launch_attr_t *attrs;
  unsigned num_attrs;
} fake_launch_config_t;
static int last_programmatic = -1;
static int ex_launches = 0;
int fake_cuda_last_programmatic(void) { return last_programmatic; }
int fake_cuda_ex_launches(void) { return ex_launches; }

int cuLaunchKernelEx(const fake_launch_config_t *c, void *f, void **params, void **extra) {
  if (!c || (c->num_attrs && !c->attrs)) return 1;
  ex_launches++;
  last_programmatic = 0;
  for (unsigned i = 0; i < c->num_attrs; i++)
    if (c->attrs[i].id == 6) last_programmatic = c->attrs[i].value.programmaticStreamSerializationAllowed;
  return cuLaunchKernel(f, c->gx, c->gy, c->gz, c->bx, c->by, c->bz, c->shared, c->stream, params, extra);
}

int cuStreamCreate(void **s, unsigned flags) { (void)flags; *s = calloc(1, sizeof(stream_t)); return 0; }
int cuStreamSynchronize(void *s) { (void)s; return 0; }
int cuStreamQuery(void *s) { (void)s; return 0; }
int cuStreamWaitEvent(void *s, void *e, unsigned f) { (void)s; (void)e; return f ? 1 : 0; }
int cuStreamDestroy_v2(void *s) { free(s); return 0; }
int cuStreamBeginCapture_v2(void *s, int mode) {
  if (!s) return 900;
  if (mode < 0 || mode > 2) return 1;
  stream_t *st = s;
  st->capturing = 1;
  st->graph = calloc(1, sizeof(graph_t));
  return 0;
}
int cuStreamEndCapture(void *s, void **g) {
  stream_t *st = s;
  if (!st || !st->capturing) return 903;
  st->capturing = 0;
  *g = st->graph;
  st->graph = 0;
  return 0;
}
int cuStreamIsCapturing(void *s, int *status) { *status = s && ((stream_t *)s)->capturing ? 1 : 0; return 0; }
int cuEventCreate(void **e, unsigned flags) { (void)flags; *e = calloc(1, sizeof(event_t)); return 0; }
int cuEventRecord(void *e, void *s) {
  stream_t *st = s;
  if (st && st->capturing) return capture_node(st->graph, (node_t){0, 0, 0, {(uint64_t)(uintptr_t)e, 0, 0}});
  ((event_t *)e)->time = event_clock += 2;
  return 0;
}
int cuEventQuery(void *e) { (void)e; return 0; }
int cuEventSynchronize(void *e) { (void)e; return 0; }
int cuEventElapsedTime_v2(float *ms, void *a, void *b) { *ms = (float)(((event_t *)b)->time - ((event_t *)a)->time); return 0; }
int cuEventDestroy_v2(void *e) { free(e); return 0; }
int cuGraphInstantiateWithFlags(void **exec, void *g, unsigned long long flags) {
  (void)flags;
  graph_t *src = g, *copy = calloc(1, sizeof(graph_t));
  copy->count = copy->cap = src->count;
  copy->nodes = malloc((src->count ? src->count : 1) * sizeof(node_t));
  memcpy(copy->nodes, src->nodes, src->count * sizeof(node_t));
  *exec = copy;
  return 0;
}
int cuGraphUpload(void *e, void *s) { (void)e; (void)s; return 0; }
int cuGraphLaunch(void *e, void *s) {
  (void)s;
  graph_t *g = e;
  for (int i = 0; i < g->count; i++) { int rc = run_node(&g->nodes[i]); if (rc) return rc; }
  return 0;
}
int cuGraphExecDestroy(void *e) { graph_t *g = e; free(g->nodes); free(g); return 0; }
int cuGraphDestroy(void *e) { return cuGraphExecDestroy(e); }
int cuGraphGetNodes(void *g, void **nodes, size_t *count) { (void)nodes; *count = ((graph_t *)g)->count; return 0; }
