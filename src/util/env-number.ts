/** A numeric tuning switch from the environment (`TORCHC_…`), or `fallback` when unset or not a number ≥ `min`. */
export function envNumber(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  const v = raw === undefined || raw.trim() === "" ? Number.NaN : Number(raw);
  return Number.isFinite(v) && v >= min ? v : fallback;
}
