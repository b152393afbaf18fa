// Telling SQL text from a JSON query in one request body (POST /v1/query,
// pxctl query): JSON queries are objects, so they start with "{".

/** True when `text` is SQL (not a JSON object). */
export const looksLikeSql = (text: string): boolean => !text.trimStart().startsWith("{");
