// The base of every typed error: `class X extends TaggedError("X")` sets `_tag`
// (what code and clients switch on) and `name` (what logs and stack traces
// show) from the one tag, and passes `cause` on. Subclasses add fields only.

/** The constructor `TaggedError(tag)` returns: an Error subclass whose `_tag` and `name` are `tag`. */
export interface TaggedErrorClass<Tag extends string> {
  new (message?: string, options?: { cause?: unknown }): Error & { readonly _tag: Tag; readonly name: Tag };
}

export function TaggedError<Tag extends string>(tag: Tag): TaggedErrorClass<Tag> {
  return class extends Error {
    readonly _tag: Tag = tag;
    override readonly name: Tag = tag;
  };
}

