/* A fake libcudnn.so.9 that records every backend attribute set ("<descType>.<attr>=<values>" lines, read
 * with fake_cudnn_log), insists that descriptors are finalized before being referenced, rejects engine config 0
 * at plan finalization (so callers must try the next one), and checks variant packs at execution. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct desc { int type, finalized, index; int has[1100]; int64_t count_ids, count_ptrs; } desc_t;
static char logbuf[1 << 16];
static char last_error[256] = "";
static int executions = 0;
static int refuse_plans = 0;

const char *fake_cudnn_log(void) { return logbuf; }
int fake_cudnn_executions(void) { return executions; }
/* While on, every execution plan is refused (CUDNN_STATUS_NOT_SUPPORTED_SHAPE), as a real cuDNN does for a
 * graph no engine supports: callers must report cuDNN's status and message. */
void fake_cudnn_refuse_plans(int on) { refuse_plans = on; }
size_t cudnnGetVersion(void) { return 91900; }
const char *cudnnGetErrorString(int s) { return s == 0 ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_FAKE_ERROR"; }
void cudnnGetLastErrorString(char *msg, size_t n) { snprintf(msg, n, "%s", last_error); }
int cudnnCreate(void **h) { *h = malloc(8); return 0; }
int cudnnDestroy(void *h) { free(h); return 0; }
int cudnnSetStream(void *h, void *s) { (void)h; (void)s; return 0; }
int cudnnBackendCreateDescriptor(int type, void **d) {
  desc_t *x = calloc(1, sizeof *x);
  x->type = type;
  x->index = -1;
  *d = x;
  return 0;
}
int cudnnBackendDestroyDescriptor(void *d) { free(d); return 0; }

static void append(const char *s) { strncat(logbuf, s, sizeof logbuf - strlen(logbuf) - 1); }

int cudnnBackendSetAttribute(void *d, int name, int type, int64_t count, const void *values) {
  desc_t *x = d;
  char line[512];
  int at = snprintf(line, sizeof line, "%d.%d=", x->type, name);
  for (int64_t i = 0; i < count && at < 480; i++) {
    const char *sep = i ? "," : "";
    switch (type) {
      case 3: at += snprintf(line + at, sizeof line - at, "%s%lld", sep, (long long)((const int64_t *)values)[i]); break;
      case 2: at += snprintf(line + at, sizeof line - at, "%s%s", sep, ((const uint8_t *)values)[i] ? "true" : "false"); break;
      case 4: at += snprintf(line + at, sizeof line - at, "%s%g", sep, ((const float *)values)[i]); break;
      case 15: {
        desc_t *ref = (desc_t *)(uintptr_t)((const uint64_t *)values)[i];
        if (!ref->finalized) { snprintf(last_error, sizeof last_error, "attribute %d references an unfinalized descriptor", name); return 2004; }
        if (x->type == 5 && name == 401) x->index = ref->index;
        at += snprintf(line + at, sizeof line - at, "%sdesc%d", sep, ref->type);
        break;
      }
      case 0: case 6: at += snprintf(line + at, sizeof line - at, "%s%s", sep, ((const uint64_t *)values)[i] ? "ptr" : "null"); break;
      default: at += snprintf(line + at, sizeof line - at, "%s%d", sep, ((const int32_t *)values)[i]); break;
    }
  }
  strcat(line, "\n");
  append(line);
  if (name >= 0 && name < 1100) x->has[name] = 1;
  if (name == 1000) x->count_ids = count;
  if (name == 1001) x->count_ptrs = count;
  return 0;
}

int cudnnBackendFinalize(void *d) {
  desc_t *x = d;
  if (x->type == 17 && !(x->has[901] && x->has[902] && x->has[903] && x->has[906])) {
    snprintf(last_error, sizeof last_error, "tensor is missing a required attribute");
    return 2000;
  }
  if (x->type == 5) {
    if (!x->has[400] || !x->has[401]) return 2000;
    if (x->index == 0) { snprintf(last_error, sizeof last_error, "engine 0 does not support this graph"); return 3000; }
    if (refuse_plans) { snprintf(last_error, sizeof last_error, "fake: no engine supports this shape"); return 3002; }
  }
  x->finalized = 1;
  return 0;
}

int cudnnBackendGetAttribute(void *d, int name, int type, int64_t req, int64_t *count, void *values) {
  desc_t *x = d;
  if (x->type == 4 && name == 202 && type == 15) {
    *count = req == 0 ? 3 : (req < 3 ? req : 3);
    for (int64_t i = 0; i < *count && values; i++) {
      desc_t *cfg = (desc_t *)(uintptr_t)((uint64_t *)values)[i];
      cfg->index = (int)i;
      cfg->finalized = 1;
    }
    return 0;
  }
  if (x->type == 5 && name == 402 && type == 3) { *count = 1; *(int64_t *)values = 1024; return 0; }
  if (x->type == 3 && name == 300 && type == 15) {
    desc_t *eng = (desc_t *)(uintptr_t)((uint64_t *)values)[0];
    eng->index = x->index;
    *count = 1;
    return 0;
  }
  if (x->type == 2 && name == 1301 && type == 3) { *count = 1; *(int64_t *)values = 40 + x->index; return 0; }
  return 2000;
}

int cudnnBackendExecute(void *h, void *plan, void *vp) {
  (void)h;
  desc_t *p = plan, *v = vp;
  if (!p->finalized || !v->finalized) return 2004;
  if (v->count_ids != v->count_ptrs || v->count_ids < 3) return 2000;
  executions++;
  return 0;
}
