/**
 * The load benchmark's requests and answers on the wire (Open Inference Protocol, binary tensor data
 * extension): request bodies for one or more rows, the malformed bodies the soak mixes in, and the check of an
 * answer against PyTorch's output for the same rows. Pure functions, shared by the bench and its load workers.
 */

/** One batch-1 input row and PyTorch's output row for it (fp32). */
export interface Case {
  readonly input: Float32Array;
  readonly output: Float32Array;
}

/** What the server's metadata says about the model's one input and one output. */
export interface Wire {
  readonly model: string;
  readonly inputName: string;
  /** An input row's shape without the batch dimension. */
  readonly rowShape: readonly number[];
  readonly outputName: string;
}

export interface Body {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** A binary-extension request of `rows` stacked input rows, asking for binary outputs. */
export function requestBody(wire: Wire, rows: readonly Float32Array[]): Body {
  const bytes = Buffer.concat(rows.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength)));
  return binaryBody(
    {
      inputs: [
        {
          name: wire.inputName,
          shape: [rows.length, ...wire.rowShape],
          datatype: "FP32",
          parameters: { binary_data_size: bytes.byteLength },
        },
      ],
      parameters: { binary_data_output: true },
    },
    bytes,
  );
}

function binaryBody(header: unknown, bytes: Buffer): Body {
  const json = Buffer.from(JSON.stringify(header));
  return {
    headers: {
      "content-type": "application/octet-stream",
      "inference-header-content-length": String(json.byteLength),
    },
    body: Buffer.concat([json, bytes]),
  };
}

export const MALFORMED_KINDS = ["wrong shape", "bad dtype", "bad JSON"] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

/**
 * A request the server must refuse with 400 before it reaches the model: the last input dimension one short
 * (with a byte count that matches that shape), the right bytes declared FP16, or a JSON body cut off mid-way.
 */
export function malformedBody(wire: Wire, row: Float32Array, kind: MalformedKind): Body {
  const name = wire.inputName;
  const bin = (shape: number[], datatype: string, bytes: Buffer) =>
    binaryBody(
      { inputs: [{ name, shape, datatype, parameters: { binary_data_size: bytes.byteLength } }] },
      bytes,
    );
  const all = Buffer.from(row.buffer, row.byteOffset, row.byteLength);
  switch (kind) {
    case "wrong shape": {
      const shape = [1, ...wire.rowShape];
      shape[shape.length - 1] -= 1;
      const n = shape.reduce((a, b) => a * b, 1);
      return bin(shape, "FP32", all.subarray(0, 4 * n));
    }
    case "bad dtype":
      return bin([1, ...wire.rowShape], "FP16", all);
    case "bad JSON":
      return {
        headers: { "content-type": "application/json" },
        body: Buffer.from(`{"inputs":[{"name":${JSON.stringify(name)},"shape":[1`),
      };
  }
}

export interface Verdict {
  readonly ok: boolean;
  /** max |answer − PyTorch| / max |PyTorch| over the rows (Infinity when the answer is unreadable). */
  readonly relative: number;
  readonly why?: string;
}

/** Reads a binary-extension answer and compares its output rows with PyTorch's, row by row. */
export function checkAnswer(
  wire: Wire,
  headerLength: string | undefined,
  body: Uint8Array,
  want: readonly Float32Array[],
  tolerance: number,
): Verdict {
  const bad = (why: string): Verdict => ({ ok: false, relative: Number.POSITIVE_INFINITY, why });
  const n = Number(headerLength);
  if (!Number.isInteger(n) || n <= 0 || n > body.byteLength) return bad("no binary answer");
  let header: { outputs?: { name: string; shape: number[]; parameters?: { binary_data_size?: number } }[] };
  try {
    header = JSON.parse(Buffer.from(body.buffer, body.byteOffset, n).toString("utf8"));
  } catch {
    return bad("the answer's JSON header does not parse");
  }
  const out = header.outputs?.find((o) => o.name === wire.outputName);
  const perRow = want[0].length;
  if (!out || out.shape[0] !== want.length || out.parameters?.binary_data_size !== 4 * perRow * want.length)
    return bad(`output '${wire.outputName}' is missing or has shape ${JSON.stringify(out?.shape)}`);
  // Copied out: the body's offset need not be 4-aligned.
  const got = new Float32Array(body.slice(n, n + 4 * perRow * want.length).buffer);
  let worst = 0;
  for (let r = 0; r < want.length; r++) {
    let err = 0;
    let ref = 0;
    for (let i = 0; i < perRow; i++) {
      const w = want[r][i];
      const d = Math.abs(got[r * perRow + i] - w);
      err = d > err || Number.isNaN(d) ? d : err;
      ref = Math.max(ref, Math.abs(w));
    }
    worst = Math.max(worst, Number.isNaN(err) ? Number.POSITIVE_INFINITY : err / (ref || 1));
  }
  return worst <= tolerance
    ? { ok: true, relative: worst }
    : { ok: false, relative: worst, why: `max|err|/max|ref| ${worst.toExponential(2)} > ${tolerance}` };
}

/** The smallest max|a − b|/max|b| between two different cases' outputs: how far apart a row mix-up lands. */
export function closestCases(cases: readonly Case[]): number {
  let least = Number.POSITIVE_INFINITY;
  for (let a = 0; a < cases.length; a++)
    for (let b = 0; b < cases.length; b++) {
      if (a === b) continue;
      let err = 0;
      let ref = 0;
      for (let i = 0; i < cases[b].output.length; i++) {
        err = Math.max(err, Math.abs(cases[a].output[i] - cases[b].output[i]));
        ref = Math.max(ref, Math.abs(cases[b].output[i]));
      }
      least = Math.min(least, err / (ref || 1));
    }
  return least;
}
