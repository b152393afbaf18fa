// A small SQL lexer: just enough to find the time-series clauses the SQL
// parser does not know (LATEST ON, SAMPLE BY, ASOF/WINDOW JOIN, OVER frames)
// without being fooled by string literals, quoted names or comments.
import { refuse } from "./refuse.js";

export type TokenKind = "ws" | "comment" | "str" | "qid" | "num" | "word" | "punct";

export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  /** Offset in the SQL text (error messages point at it). */
  readonly at: number;
}

const PATTERNS: readonly [TokenKind, RegExp][] = [
  ["ws", /\s+/y],
  ["comment", /--[^\n]*|\/\*[\s\S]*?\*\//y],
  ["str", /'(?:[^']|'')*'/y],
  ["qid", /"(?:[^"]|"")*"/y],
  // A number may carry a unit suffix (1m, 500ms): QuestDB writes durations that way.
  ["num", /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Zµ]*/y],
  ["word", /[A-Za-z_][A-Za-z0-9_$]*/y],
  ["punct", /::|<=|>=|<>|!=|\|\||[(),.;*=<>+\-/%:[\]]/y],
];

export function lex(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    let matched = false;
    for (const [kind, re] of PATTERNS) {
      re.lastIndex = i;
      const m = re.exec(sql);
      if (m !== null && m[0].length > 0) {
        out.push({ kind, text: m[0], at: i });
        i += m[0].length;
        matched = true;
        break;
      }
    }
    if (!matched) {
      if (sql[i] === "'") throw refuse(`the string literal at offset ${i} is not closed`, `close it with '`);
      throw refuse(`the character ${JSON.stringify(sql[i])} at offset ${i}`, "remove it; SQL here is a SELECT over one table (see the SQL docs)");
    }
  }
  return out;
}

/** The value of a string literal token ('it''s' -> it's). */
export const unquote = (t: Token): string => t.text.slice(1, -1).replace(/''/g, "'");

/** True when `t` is the keyword `kw` (case-insensitive). */
export const isWord = (t: Token | undefined, kw: string): boolean => t !== undefined && t.kind === "word" && t.text.toUpperCase() === kw;
