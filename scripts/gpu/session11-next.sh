#!/usr/bin/env bash
# What session 11 built after its last device command, for the next session's first calls (chain the two parts
# on one warm machine; a machine idles out 30 s after a call). Everything worth reading is printed; logs go to
# $OUT/s11n-<part>.tgz.
#   PART=1 bash scripts/gpu/session11-next.sh   (S_S=560) issue 13's whole benchmark in one run:
#     1. PyTorch peers for every benchmark model (the four transformers and the two CNNs, batch 1 and large);
#     2. torchc on all of them (the geometric mean over every benchmark model, issue 13's bar);
#     3. A/Bs against 2: the flash kernel skipping padding (TORCHC_FLASH_SKIP_PADDING=1) on ViT-B/16 and DeiT-tiny;
#        cuBLASLt algorithms chosen by timing (TORCHC_LT_TIMED=1) on ViT-B/16, DeiT-tiny and the encoder.
#   PART=2 bash scripts/gpu/session11-next.sh   (S_S=400) correctness and int8:
#     1. the attention and transformer-fusion GPU tests with the flash kernel skipping padding;
#     2. int8 ResNet-50 batch 128 with its per-kind profile (where the quantize/dequantize time goes).
BENCH_CAP_S=150; TAG=s11n; S_DEFAULT=560; source "$(dirname "${BASH_SOURCE[0]}")/session-lib.sh"

if [ "$PART" = 1 ]; then
  peers_then_all 150
  echo "== 3. flash kernel skipping padding; cuBLASLt algorithms by timing ($(el))"
  [ "$(left)" -gt 40 ] && torchc skip-padding TORCHC_FLASH_SKIP_PADDING=1 \
    TRANSFORMERS_ONLY=vit_base_patch16_224,deit_tiny_patch16_224
  [ "$(left)" -gt 40 ] && torchc lt-timed TORCHC_LT_TIMED=1 \
    TRANSFORMERS_ONLY=vit_base_patch16_224,deit_tiny_patch16_224,bert_encoder
  grep -hoE "[0-9]+ matmul problems timed \([^)]*\)" "$LOGS/lt-timed.log" | sort | uniq -c | head -8
  pack
fi

if [ "$PART" = 2 ]; then
  echo "== 1. attention + transformer-fusion with the flash kernel skipping padding ($(el))"
  for t in attention transformer-fusion; do
    OUT="$LOGS/$t" TORCHC_FLASH_SKIP_PADDING=1 TORCHC_GPU_TIMEOUT=120 bash "$ROOT/scripts/gpu.sh" test "$t" \
      >"$LOGS/$t.log" 2>&1
    echo "$t rc=$? $(grep -E "^ℹ (pass|fail) " "$LOGS/$t.log" | tr '\n' ' ')($(el))"
    grep -E "✖ .*ms\)$|AssertionError" "$LOGS/$t.log" | head -6
  done
  pack
  echo "== 2. int8 ResNet-50 b128 with its profile ($(el))"
  c=$(( $(left) - 10 )); [ "$c" -gt 240 ] && c=240
  if [ "$c" -gt 60 ]; then
    int8_resnet50 "$c"
  fi
  pack
fi
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== done ($(el))"
