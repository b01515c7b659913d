/**
 * The convolution problems of torchvision ResNet-50 (stride on the 3×3, without its 3-channel stem) and timm
 * EfficientNet-B0's 1×1 convolutions at batch CONV_PRECISION_BATCH (default 128), with how often each occurs: what
 * the convolution sweeps (conv-precision-sweep, igemm-sweep) time layer by layer and weigh into a model's total.
 */
import type { Int8ConvProblem } from "../../src/runtime/calibration-speed.js";

export interface Shape {
  readonly name: string;
  readonly model: "resnet50" | "efficientnet_b0";
  /** How many convolutions of the model have this problem. */
  readonly count: number;
  readonly p: Int8ConvProblem;
}

export const N = Number(process.env.CONV_PRECISION_BATCH ?? 128);

export function conv(c: number, hw: number, k: number, r: number, stride = 1): Int8ConvProblem {
  const pad = (r - 1) >> 1;
  return {
    n: N,
    c,
    h: hw,
    w: hw,
    k,
    r,
    s: r,
    stride: [stride, stride],
    padding: [pad, pad],
    dilation: [1, 1],
    groups: 1,
    bias: true,
    relu: true,
  };
}

/** torchvision ResNet-50 (stride on the 3×3) without its 3-channel stem, and timm EfficientNet-B0's 1×1 convolutions. */
export const SHAPES: readonly Shape[] = [
  ...(
    [
      ["l1 1×1 64→64", 1, conv(64, 56, 64, 1)],
      ["l1 3×3 64→64", 3, conv(64, 56, 64, 3)],
      ["l1 1×1 64→256", 4, conv(64, 56, 256, 1)],
      ["l1 1×1 256→64", 2, conv(256, 56, 64, 1)],
      ["l2 1×1 256→128", 1, conv(256, 56, 128, 1)],
      ["l2 3×3 128 s2", 1, conv(128, 56, 128, 3, 2)],
      ["l2 ds 1×1 256→512 s2", 1, conv(256, 56, 512, 1, 2)],
      ["l2 3×3 128→128", 3, conv(128, 28, 128, 3)],
      ["l2 1×1 128→512", 4, conv(128, 28, 512, 1)],
      ["l2 1×1 512→128", 3, conv(512, 28, 128, 1)],
      ["l3 1×1 512→256", 1, conv(512, 28, 256, 1)],
      ["l3 3×3 256 s2", 1, conv(256, 28, 256, 3, 2)],
      ["l3 ds 1×1 512→1024 s2", 1, conv(512, 28, 1024, 1, 2)],
      ["l3 3×3 256→256", 5, conv(256, 14, 256, 3)],
      ["l3 1×1 256→1024", 6, conv(256, 14, 1024, 1)],
      ["l3 1×1 1024→256", 5, conv(1024, 14, 256, 1)],
      ["l4 1×1 1024→512", 1, conv(1024, 14, 512, 1)],
      ["l4 3×3 512 s2", 1, conv(512, 14, 512, 3, 2)],
      ["l4 ds 1×1 1024→2048 s2", 1, conv(1024, 14, 2048, 1, 2)],
      ["l4 3×3 512→512", 2, conv(512, 7, 512, 3)],
      ["l4 1×1 512→2048", 3, conv(512, 7, 2048, 1)],
      ["l4 1×1 2048→512", 2, conv(2048, 7, 512, 1)],
    ] as const
  ).map(([name, count, p]) => ({ name, model: "resnet50" as const, count, p })),
  ...(
    [
      ["expand 1×1 16→96 112²", 1, conv(16, 112, 96, 1)],
      ["project 1×1 96→24 56²", 1, conv(96, 56, 24, 1)],
      ["expand 1×1 24→144 56²", 2, conv(24, 56, 144, 1)],
      ["project 1×1 144→24 56²", 1, conv(144, 56, 24, 1)],
      ["project 1×1 144→40 28²", 1, conv(144, 28, 40, 1)],
      ["expand 1×1 40→240 28²", 2, conv(40, 28, 240, 1)],
      ["project 1×1 240→40 28²", 1, conv(240, 28, 40, 1)],
      ["project 1×1 240→80 14²", 1, conv(240, 14, 80, 1)],
      ["expand 1×1 80→480 14²", 3, conv(80, 14, 480, 1)],
      ["project 1×1 480→80 14²", 2, conv(480, 14, 80, 1)],
      ["project 1×1 480→112 14²", 1, conv(480, 14, 112, 1)],
      ["expand 1×1 112→672 14²", 3, conv(112, 14, 672, 1)],
      ["project 1×1 672→112 14²", 2, conv(672, 14, 112, 1)],
      ["project 1×1 672→192 7²", 1, conv(672, 7, 192, 1)],
      ["expand 1×1 192→1152 7²", 4, conv(192, 7, 1152, 1)],
      ["project 1×1 1152→192 7²", 3, conv(1152, 7, 192, 1)],
      ["project 1×1 1152→320 7²", 1, conv(1152, 7, 320, 1)],
      ["head 1×1 320→1280 7²", 1, conv(320, 7, 1280, 1)],
    ] as const
  ).map(([name, count, p]) => ({ name, model: "efficientnet_b0" as const, count, p })),
];

