#!/usr/bin/env bash
# Session 17's device runs. Logs go to $OUT/s17-<part>.tgz.
#   bash scripts/gpu/session17.sh   (S_S=590; STEPS="runtime serve int8" picks the steps and their order)
#     runtime: the runtime GPU test (every run answers its own input; now also inputs in host memory page-locked
#              in place and batches gathered from it), at most RUNTIME_S seconds (default 200);
#     serve:   serve-load (EfficientNet-B0 fp16 batch-1 requests, batching on and off) at concurrency
#              SERVE_CONCURRENCY (default 128), SERVE_POINT_S (default 8) per point, once per configuration in
#              SERVE_VARIANTS (';'-separated sets of ENV=VALUE; default: 8 ingest threads with request slots and
#              gathered batches, the same without the batch copied ahead, with 2 instances, and with slots off), at
#              most SERVE_S
#              seconds in all (default 330);
#     int8:    int8 ResNet-50 b128 with its profile (session 15's step 3), at most INT8_S seconds;
#     profile: serve-load at concurrency 128 under --cpu-prof, each thread's profile summarized (see below).
TAG=s17; S_DEFAULT=590; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

for n in ${STEPS:-runtime serve int8}; do "step_$n"; done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
