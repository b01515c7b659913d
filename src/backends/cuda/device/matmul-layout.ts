/**
 * The row-major → column-major recipe for cuBLASLt. cuBLASLt is column-major and its bias epilogues do not
 * accept ROW order layouts (the heuristic answers NOT_SUPPORTED), so a row-major product
 * Y[M,N] = op(A)·op(B) is computed as the column-major Yᵀ[N,M] = op(B)ᵀ·op(A)ᵀ: every row-major matrix is
 * read as its column-major transpose, cuBLASLt's "A" is the user's B and its "B" the user's A, and a bias over
 * Y's columns is a bias over the rows of D, as the BIAS epilogues expect.
 */

export interface RowMajorMatmul {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** A is stored [K,M] (row-major) and used transposed; otherwise A is [M,K]. */
  readonly transA: boolean;
  /** B is stored [N,K] (row-major) and used transposed (nn.Linear's weight); otherwise B is [K,N]. */
  readonly transB: boolean;
}

/** A column-major cuBLASLt matrix layout. */
export interface LtLayout {
  readonly rows: number;
  readonly cols: number;
  readonly ld: number;
}

export interface LtRecipe {
  /** CUBLASLT_MATMUL_DESC_TRANSA / TRANSB values (0 = N, 1 = T). */
  readonly transa: 0 | 1;
  readonly transb: 0 | 1;
  /** Layout of cuBLASLt's A, which is the user's B. */
  readonly a: LtLayout;
  /** Layout of cuBLASLt's B, which is the user's A. */
  readonly b: LtLayout;
  /** Layout of C and D (the output Y, read as Yᵀ[N,M]). */
  readonly d: LtLayout;
}

export function ltRecipe({ m, n, k, transA, transB }: RowMajorMatmul): LtRecipe {
  return {
    transa: transB ? 1 : 0,
    transb: transA ? 1 : 0,
    a: transB ? { rows: k, cols: n, ld: k } : { rows: n, cols: k, ld: n },
    b: transA ? { rows: m, cols: k, ld: m } : { rows: k, cols: m, ld: k },
    d: { rows: n, cols: m, ld: n },
  };
}
