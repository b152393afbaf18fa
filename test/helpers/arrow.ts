// Builds Arrow IPC payloads the way an external publisher would.
import { tableFromArrays, tableToIPC, vectorFromArray, Table } from "apache-arrow";
import type { DataType, Vector } from "apache-arrow";

type Col = ArrayLike<unknown> | Vector | { values: readonly unknown[]; type: DataType };

export function ipcOf(columns: Record<string, Col>): Uint8Array {
  const plain: Record<string, unknown> = {};
  const typed: Record<string, Vector> = {};
  for (const [k, v] of Object.entries(columns)) {
    if (v && typeof v === "object" && "type" in v && "values" in v && Array.isArray((v as { values: unknown }).values)) {
      const t = v as unknown as { values: unknown[]; type: DataType };
      typed[k] = vectorFromArray(t.values, t.type);
    } else if (v && typeof v === "object" && "data" in v && "type" in v) {
      typed[k] = v as Vector;
    } else plain[k] = v;
  }
  const base = Object.keys(plain).length ? tableFromArrays(plain as never) : undefined;
  const vectors: Record<string, Vector> = {};
  for (const k of Object.keys(columns)) vectors[k] = typed[k] ?? base!.getChild(k)!;
  return tableToIPC(new Table(vectors), "stream");
}

export const micros = (iso: string): bigint => BigInt(Date.parse(iso)) * 1000n;
