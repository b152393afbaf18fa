// A bounds-checked flatbuffer reader for untrusted Arrow IPC metadata. The
// flatbuffers runtime trusts its input: a flipped vector length makes it loop
// billions of times. Here every offset, table and vector is checked against
// the buffer before use, and a violation throws IpcError.
import { IpcError } from "./errors.js";

export class FbReader {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(detail: string): never {
    throw new IpcError(`${this.what}: corrupt Arrow IPC metadata (${detail}); send a valid Arrow IPC message`);
  }

  need(pos: number, len: number, what: string): void {
    if (!(Number.isSafeInteger(pos) && Number.isSafeInteger(len) && pos >= 0 && len >= 0 && pos + len <= this.bytes.length)) {
      this.fail(`${what} at ${pos} (+${len}) lies outside the ${this.bytes.length}-byte header`);
    }
  }

  u8(pos: number): number {
    this.need(pos, 1, "byte");
    return this.view.getUint8(pos);
  }

  i16(pos: number): number {
    this.need(pos, 2, "int16");
    return this.view.getInt16(pos, true);
  }

  u16(pos: number): number {
    this.need(pos, 2, "uint16");
    return this.view.getUint16(pos, true);
  }

  i32(pos: number): number {
    this.need(pos, 4, "int32");
    return this.view.getInt32(pos, true);
  }

  u32(pos: number): number {
    this.need(pos, 4, "uint32");
    return this.view.getUint32(pos, true);
  }

  /** int64 as a number; values beyond 2^53 are corrupt for every use here. */
  i64(pos: number, what: string): number {
    this.need(pos, 8, "int64");
    const v = this.view.getBigInt64(pos, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) this.fail(`${what} ${v} is out of range`);
    return Number(v);
  }

  root(): FbTable {
    return new FbTable(this, this.u32(0), "root table");
  }
}

export interface FbVector {
  readonly start: number;
  readonly length: number;
}

export class FbTable {
  private readonly vtable: number;
  private readonly vtableSize: number;
  private readonly tableSize: number;

  constructor(
    readonly r: FbReader,
    readonly pos: number,
    what: string,
  ) {
    this.vtable = pos - r.i32(pos);
    this.vtableSize = r.u16(this.vtable);
    this.tableSize = r.u16(this.vtable + 2);
    if (this.vtableSize < 4 || this.vtableSize % 2 !== 0) r.fail(`${what} has a vtable of ${this.vtableSize} bytes`);
    r.need(this.vtable, this.vtableSize, `${what} vtable`);
    if (this.tableSize < 4) r.fail(`${what} is ${this.tableSize} bytes long`);
    r.need(pos, this.tableSize, what);
  }

  /** Position of field `index` holding `size` bytes, or undefined when absent. */
  private field(index: number, size: number): number | undefined {
    const slot = 4 + 2 * index;
    if (slot + 2 > this.vtableSize) return undefined;
    const off = this.r.u16(this.vtable + slot);
    if (off === 0) return undefined;
    if (off + size > this.tableSize) this.r.fail(`field ${index} runs past the end of its table`);
    return this.pos + off;
  }

  has(index: number): boolean {
    return this.field(index, 1) !== undefined;
  }

  u8(index: number, dflt: number): number {
    const p = this.field(index, 1);
    return p === undefined ? dflt : this.r.u8(p);
  }

  i16(index: number, dflt: number): number {
    const p = this.field(index, 2);
    return p === undefined ? dflt : this.r.i16(p);
  }

  i64(index: number, dflt: number, what: string): number {
    const p = this.field(index, 8);
    return p === undefined ? dflt : this.r.i64(p, what);
  }

  private target(index: number): number | undefined {
    const p = this.field(index, 4);
    if (p === undefined) return undefined;
    const t = p + this.r.u32(p);
    this.r.need(t, 4, `object of field ${index}`);
    return t;
  }

  table(index: number, what: string): FbTable | undefined {
    const t = this.target(index);
    return t === undefined ? undefined : new FbTable(this.r, t, what);
  }

  /** A vector of `elemSize`-byte elements (structs, scalars or offsets), bounds-checked as a whole. */
  vector(index: number, elemSize: number, what: string): FbVector | undefined {
    const t = this.target(index);
    if (t === undefined) return undefined;
    const length = this.r.u32(t);
    this.r.need(t + 4, length * elemSize, `${what} (${length} elements)`);
    return { start: t + 4, length };
  }

  /** Element `k` of a vector of tables. */
  tableAt(v: FbVector, k: number, what: string): FbTable {
    const p = v.start + 4 * k;
    return new FbTable(this.r, p + this.r.u32(p), what);
  }

  string(index: number, what: string): string | undefined {
    const t = this.target(index);
    if (t === undefined) return undefined;
    const length = this.r.u32(t);
    this.r.need(t + 4, length, what);
    return new TextDecoder().decode(this.r.bytes.subarray(t + 4, t + 4 + length));
  }
}
