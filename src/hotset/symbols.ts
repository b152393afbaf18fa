// Per-shard symbol dictionary: symbol string <-> dense id, ids handed out in
// first-seen order. Replaying the same WAL therefore yields the same ids; a
// snapshot persists `symbols()` and restores with `fromSymbols`.
import { HotSetError } from "./errors.js";

export class SymbolDictionary {
  private readonly ids = new Map<string, number>();
  private readonly list: string[] = [];

  /** Restores a dictionary from `symbols()` output (index = id). */
  static fromSymbols(symbols: readonly string[]): SymbolDictionary {
    const dict = new SymbolDictionary();
    for (const sym of symbols) {
      if (dict.ids.has(sym)) {
        throw new HotSetError(`symbol dictionary: "${sym}" appears twice in the persisted list; the snapshot is corrupt, rebuild it from the WAL`);
      }
      dict.idOf(sym);
    }
    return dict;
  }

  /** Number of symbols (= next id). */
  get size(): number {
    return this.list.length;
  }

  /** Id of `sym`, creating it (next id) when unseen. */
  idOf(sym: string): number {
    let id = this.ids.get(sym);
    if (id === undefined) {
      id = this.list.length;
      this.ids.set(sym, id);
      this.list.push(sym);
    }
    return id;
  }

  /** Id of `sym`, or undefined when unseen (never creates). */
  lookup(sym: string): number | undefined {
    return this.ids.get(sym);
  }

  /** Symbol of `id`; throws for an id this dictionary never handed out. */
  symbolAt(id: number): string {
    const sym = this.list[id];
    if (sym === undefined) {
      throw new HotSetError(`symbol dictionary: id ${id} is unknown (dictionary has ${this.list.length} symbols)`);
    }
    return sym;
  }

  /** All symbols, index = id (a copy, for persistence). */
  symbols(): string[] {
    return this.list.slice();
  }
}
