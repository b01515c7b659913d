/* A fake libnvrtc.so.13: "compiles" by prefixing the source with FAKECUBIN / FAKEPTX, fails on "#error",
 * reports the options it got in the log, and lowers a name expression to "_lowered_<expr>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *src; char log[4096]; char *names[16]; char *lowered[16]; int n; int compiled; } prog_t;
static int compile_count = 0;
int fake_nvrtc_compile_count(void) { return compile_count; }

int nvrtcVersion(int *major, int *minor) { *major = 13; *minor = 0; return 0; }
int nvrtcGetNumSupportedArchs(int *n) { *n = 2; return 0; }
int nvrtcGetSupportedArchs(int *a) { a[0] = 89; a[1] = 90; return 0; }
const char *nvrtcGetErrorString(int r) { return r == 6 ? "NVRTC_ERROR_COMPILATION" : "NVRTC_ERROR_FAKE"; }
int nvrtcCreateProgram(void **p, const char *src, const char *name, int nh, const char **h, const char **hn) {
  (void)name; (void)h; (void)hn;
  if (!src || nh != 0) return 3;
  prog_t *pr = calloc(1, sizeof *pr);
  pr->src = strdup(src);
  *p = pr;
  return 0;
}
int nvrtcAddNameExpression(void *p, const char *e) {
  prog_t *pr = p;
  if (pr->n == 16) return 1;
  pr->names[pr->n] = strdup(e);
  pr->lowered[pr->n] = malloc(strlen(e) + 16);
  sprintf(pr->lowered[pr->n], "_lowered_%s", e);
  pr->n++;
  return 0;
}
int nvrtcCompileProgram(void *p, int n, const char **opts) {
  prog_t *pr = p;
  compile_count++;
  strcpy(pr->log, "options:");
  for (int i = 0; i < n; i++) { strncat(pr->log, " ", 4000 - strlen(pr->log)); strncat(pr->log, opts[i], 4000 - strlen(pr->log)); }
  if (strstr(pr->src, "#error")) { strncat(pr->log, "\nerror: #error directive", 4000 - strlen(pr->log)); return 6; }
  pr->compiled = 1;
  return 0;
}
int nvrtcGetProgramLogSize(void *p, size_t *n) { *n = strlen(((prog_t *)p)->log) + 1; return 0; }
int nvrtcGetProgramLog(void *p, char *log) { strcpy(log, ((prog_t *)p)->log); return 0; }
int nvrtcGetCUBINSize(void *p, size_t *n) { *n = strlen(((prog_t *)p)->src) + 10; return 0; }
int nvrtcGetCUBIN(void *p, char *out) { memcpy(out, "FAKECUBIN\n", 10); memcpy(out + 10, ((prog_t *)p)->src, strlen(((prog_t *)p)->src)); return 0; }
int nvrtcGetPTXSize(void *p, size_t *n) { *n = strlen(((prog_t *)p)->src) + 9; return 0; }
int nvrtcGetPTX(void *p, char *out) { sprintf(out, "FAKEPTX\n%s", ((prog_t *)p)->src); return 0; }
int nvrtcGetLoweredName(void *p, const char *e, const char **out) {
  prog_t *pr = p;
  if (!pr->compiled) return 9;
  for (int i = 0; i < pr->n; i++) if (!strcmp(pr->names[i], e)) { *out = pr->lowered[i]; return 0; }
  return 10;
}
int nvrtcDestroyProgram(void **p) {
  prog_t *pr = *p;
  if (!pr) return 4;
  for (int i = 0; i < pr->n; i++) { free(pr->names[i]); free(pr->lowered[i]); }
  free(pr->src); free(pr);
  *p = 0;
  return 0;
}
