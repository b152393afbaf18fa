// Symbol strings by their UTF-8 bytes, decoded once. Every WAL record carries
// its symbols as bytes; building a string per symbol per record (and hashing
// the new string again in each Map it meets) was most of a record's decode.
// Symbols repeat across records, so the bytes are looked up in an open-
// addressing table (FNV-1a over the bytes, compared byte by byte) and the same
// string object comes back, its hash already cached by V8.
//
// Bounded: past `maxEntries` symbols or `maxArenaBytes` of keys the table is
// emptied and fills again (a feed of ever new symbols costs a decode per use,
// as without the table, never unbounded memory).

/** Decodes u8[a..b) to a string, or undefined when the bytes are not a symbol (the caller's rule). */
export type SymbolDecoder = (u8: Uint8Array, a: number, b: number) => string | undefined;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes u8[a..b) as a string (short ASCII, the usual ticker, without TextDecoder); undefined when not valid UTF-8. */
export function utf8Symbol(u8: Uint8Array, a: number, b: number): string | undefined {
  if (b - a <= 16) {
    let s = "";
    let i = a;
    for (; i < b; i++) {
      const c = u8[i]!;
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === b) return s;
  }
  try {
    return utf8.decode(u8.subarray(a, b));
  } catch {
    return undefined;
  }
}

export class SymbolIntern {
  private slots: Int32Array;
  private mask: number;
  private hashes: Int32Array;
  private starts: Int32Array;
  private lengths: Int32Array;
  private strings: string[] = [];
  private arena: Uint8Array;
  private used = 0;

  constructor(
    private readonly decode: SymbolDecoder,
    private readonly maxEntries = 1 << 16,
    private readonly maxArenaBytes = 1 << 20,
  ) {
    const cap = 2 ** Math.ceil(Math.log2(maxEntries * 2));
    this.slots = new Int32Array(cap);
    this.mask = cap - 1;
    this.hashes = new Int32Array(maxEntries);
    this.starts = new Int32Array(maxEntries);
    this.lengths = new Int32Array(maxEntries);
    this.arena = new Uint8Array(Math.min(maxArenaBytes, 1 << 16));
  }

  /** Moves each time the table is emptied: an entry number found before then may now name another symbol. */
  generation = 0;

  /** Symbols held now. */
  get size(): number {
    return this.strings.length;
  }

  /** Entries are numbered 0 .. maxEntries - 1 (a caller may index its own arrays by them). */
  get capacity(): number {
    return this.maxEntries;
  }

  /** Keys longer than this are decoded each time, never held (a client's 2 MB "symbol" is refused after decoding, by its caller). */
  get maxKeyBytes(): number {
    return this.maxArenaBytes >> 4;
  }

  /** The string of u8[a..b) (the same object for the same bytes while held), or what the decoder says. */
  get(u8: Uint8Array, a: number, b: number): string | undefined {
    if (b - a > this.maxKeyBytes) return this.decode(u8, a, b);
    const e = this.find(u8, a, b);
    return e < 0 ? undefined : this.strings[e];
  }

  /** The string of entry `e` (from `find`, this generation). */
  stringAt(e: number): string {
    return this.strings[e]!;
  }

  /** The entry of u8[a..b) (decoded and added when new; the table may be emptied first), or -1 when the decoder refuses the bytes or they are longer than maxKeyBytes. */
  find(u8: Uint8Array, a: number, b: number): number {
    if (b - a > this.maxKeyBytes) return -1;
    let h = 0x811c9dc5 | 0;
    for (let i = a; i < b; i++) h = Math.imul(h ^ u8[i]!, 0x01000193);
    const n = b - a;
    const arena = this.arena;
    let s = h & this.mask;
    for (;;) {
      const e = this.slots[s]! - 1;
      if (e < 0) break;
      if (this.hashes[e] === h && this.lengths[e] === n) {
        const st = this.starts[e]!;
        let i = 0;
        while (i < n && arena[st + i] === u8[a + i]) i++;
        if (i === n) return e;
      }
      s = (s + 1) & this.mask;
    }
    const str = this.decode(u8, a, b);
    if (str === undefined) return -1;
    if (this.strings.length === this.maxEntries || this.used + n > this.maxArenaBytes) {
      this.clear();
      s = h & this.mask;
    }
    if (this.used + n > this.arena.length) this.growArena(this.used + n);
    const e = this.strings.length;
    this.arena.set(u8.subarray(a, b), this.used);
    this.starts[e] = this.used;
    this.lengths[e] = n;
    this.hashes[e] = h;
    this.strings.push(str);
    this.used += n;
    this.slots[s] = e + 1;
    return e;
  }

  clear(): void {
    this.slots.fill(0);
    this.strings = [];
    this.used = 0;
    this.generation++;
  }

  private growArena(need: number): void {
    const next = new Uint8Array(Math.min(this.maxArenaBytes, Math.max(need, this.arena.length * 2)));
    next.set(this.arena.subarray(0, this.used));
    this.arena = next;
  }
}

/**
 * One table per thread: every decoder of symbol bytes (WAL records, client
 * Arrow batches, snapshots) shares the strings of the symbols it has seen.
 */
export const symbols = new SymbolIntern(utf8Symbol);
