/**
 * Splits the names of one batch into those a pool's cap admits and those it refuses, first come first
 * served: `inUse` is the pool's VMs, existing and requested (the sum of its MIGs' `targetSize`).
 */
export function admitWithinCap(
  names: readonly string[],
  inUse: number,
  maxRunners: number,
): { admitted: string[]; refused: string[] } {
  const room = Math.max(0, maxRunners - inUse);
  return { admitted: names.slice(0, room), refused: names.slice(room) };
}
