// Statement shapes: the parse of a statement reused for the same statement
// with other literals. Clients send a few shapes again and again with moving
// times and symbols (dashboards, pxctl --watch, applications); the PEG parse
// costs hundreds of µs, binding new literals into a parsed shape a few tens.
//
// The shape is the parser's text with each string literal and each plain
// integer replaced by a placeholder. The first statement of a shape is parsed
// with a unique sentinel in place of each literal, and the path of the AST node
// holding each sentinel is noted; a statement of that shape gets a copy of the
// AST with its own literals at those paths. A shape whose sentinels are not
// each found exactly once (the grammar folded or moved one) is not reused: its
// statements are parsed whole, as before. The unit test holds the bound AST to
// a direct parse for every statement the SQL tests compile.
import type { Node } from "./ast.js";
import { parseStatement } from "./ast.js";
import { lex } from "./lexer.js";

type Path = readonly (string | number)[];

interface Shape {
  /** The sentinel statement's AST as JSON: parsed again for each copy (faster than a structured clone). */
  readonly json: string;
  /** Per literal, in text order: where its node is, and whether the grammar folded a minus sign into it. */
  readonly slots: readonly { readonly path: Path; readonly negated: boolean }[];
}

const SHAPES_MAX = 256;
// null: a shape seen before whose sentinels did not map (parsed whole each time).
const shapes = new Map<string, Shape | null>();

const STRING_SENTINEL = (i: number): string => `__px_literal_${i}__`;
const INT_SENTINEL_BASE = 7_777_000_000_000;

interface Literal {
  readonly kind: "str" | "int";
  /** What the parser puts in the node: a string's text between the quotes as written, an integer's value. */
  readonly value: string | number;
}

/** Plain integers only: decimals keep their text in the parser's nodes ("1.50"), leading zeros are folded. */
const PLAIN_INT = /^(0|[1-9]\d{0,14})$/;

function shapeOf(sql: string): { key: string; literals: Literal[]; sentinelSql: string } {
  const keyParts: string[] = [];
  const sentinelParts: string[] = [];
  const literals: Literal[] = [];
  for (const t of lex(sql)) {
    if (t.kind === "ws" || t.kind === "comment") continue;
    // A backslash in a string: the grammar's escapes might read it otherwise than the lexer; keep it verbatim.
    if (t.kind === "str" && !t.text.includes("\\")) {
      keyParts.push("?s");
      sentinelParts.push(`'${STRING_SENTINEL(literals.length)}'`);
      literals.push({ kind: "str", value: t.text.slice(1, -1) });
    } else if (t.kind === "num" && PLAIN_INT.test(t.text)) {
      keyParts.push("?i");
      sentinelParts.push(String(INT_SENTINEL_BASE + literals.length));
      literals.push({ kind: "int", value: Number(t.text) });
    } else {
      keyParts.push(t.text);
      sentinelParts.push(t.text);
    }
  }
  return { key: keyParts.join(" "), literals, sentinelSql: sentinelParts.join(" ") };
}

/** Where each sentinel sits in `ast`, or null unless every one is found exactly once. */
function slotsOf(ast: Node, literals: readonly Literal[]): Shape["slots"] | null {
  const found: { path: Path; negated: boolean }[][] = literals.map(() => []);
  const byString = new Map(literals.map((l, i) => [STRING_SENTINEL(i), i]));
  const walk = (n: Node, path: (string | number)[]): void => {
    if (n === null || typeof n !== "object") return;
    if (n.type === "single_quote_string" && typeof n.value === "string") {
      const i = byString.get(n.value);
      if (i !== undefined && literals[i]!.kind === "str") found[i]!.push({ path: [...path], negated: false });
    } else if (n.type === "number" && typeof n.value === "number") {
      const i = Math.abs(n.value) - INT_SENTINEL_BASE;
      if (i >= 0 && i < literals.length && literals[i]!.kind === "int") found[i]!.push({ path: [...path], negated: n.value < 0 });
    }
    for (const k of Object.keys(n)) {
      path.push(Array.isArray(n) ? Number(k) : k);
      walk(n[k], path);
      path.pop();
    }
  };
  walk(ast, []);
  if (found.some((f) => f.length !== 1)) return null;
  return found.map((f) => f[0]!);
}

function bind(shape: Shape, literals: readonly Literal[]): Node {
  const ast = JSON.parse(shape.json) as Node;
  shape.slots.forEach((slot, i) => {
    let n = ast;
    for (const k of slot.path) n = n[k];
    const v = literals[i]!.value;
    n.value = slot.negated ? -(v as number) : v;
  });
  return ast;
}

/** The AST of `sql` (the parser's text of one statement), from its shape when one was parsed before. */
export function parseShaped(sql: string): Node {
  const { key, literals, sentinelSql } = shapeOf(sql);
  if (literals.length === 0) return parseStatement(sql);
  let shape = shapes.get(key);
  if (shape === undefined) {
    let sentinelAst: Node;
    try {
      sentinelAst = parseStatement(sentinelSql);
    } catch {
      // Let the statement itself give the error, in its own words.
      return parseStatement(sql);
    }
    const slots = slotsOf(sentinelAst, literals);
    shape = slots === null ? null : { json: JSON.stringify(sentinelAst), slots };
    shapes.set(key, shape);
    if (shapes.size > SHAPES_MAX) shapes.delete(shapes.keys().next().value!);
  }
  return shape === null ? parseStatement(sql) : bind(shape, literals);
}

/** Forgets every shape (tests compare cold and warm compiles). */
export function clearShapes(): void {
  shapes.clear();
}
