// A small element builder: h("div.card", {onclick}, child, "text").
type Child = Node | string | number | null | undefined | false;
type Props = Partial<Record<string, unknown>>;

/** The tag of "tag.class#id" at the type level, so h("input#x") is an HTMLInputElement. */
type TagOf<S extends string> = S extends `${infer T}.${string}` ? TagOf<T> : S extends `${infer T}#${string}` ? T : S;
type ElementOf<S extends string> = TagOf<S> extends keyof HTMLElementTagNameMap ? HTMLElementTagNameMap[TagOf<S>] : HTMLElement;

export function h<S extends string>(spec: S, props: Props = {}, ...children: Child[]): ElementOf<S> {
  const id = /#([\w-]+)/.exec(spec)?.[1];
  const [tag, ...classes] = spec.replace(/#[\w-]+/, "").split(".");
  const el = document.createElement(tag!) as ElementOf<S>;
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v as EventListener);
    else if (k === "style" && typeof v === "string") el.style.cssText = v;
    else if (k in el && k !== "list") (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === "number" ? String(c) : c);
  return el;
}

/** Replaces the children of `el`. */
export const fill = (el: Element, ...children: (Node | string)[]): void => el.replaceChildren(...children);

export const fmtNumber = (x: number): string => (Number.isInteger(x) ? x.toLocaleString("en-US") : x.toLocaleString("en-US", { maximumFractionDigits: 6 }));

/** 2024-01-02 14:30:00.123456 (UTC) from microseconds. */
export function fmtMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const d = new Date(ms).toISOString().replace("T", " ").replace("Z", "");
  return `${d}${String(Math.round(us - ms * 1000)).padStart(3, "0")}`;
}

export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
