// Coalesced reads for checks that must see state read after a given moment
// (a WAL reader checks the stream's floor after each batch arrived): each
// caller gets a read that started after its call, and callers that come while
// a read runs share the next one. At most one read runs and one waits, however
// many callers there are: a reader of a busy shard no longer sends two
// JetStream requests per batch.
const ignore = (): void => {};

export function freshReads<T>(read: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  let waiting: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const p = read();
    running = p;
    const clear = (): void => {
      if (running === p) running = undefined;
    };
    p.then(clear, clear);
    return p;
  };
  return () => {
    if (running === undefined) return start();
    if (waiting === undefined) {
      waiting = running.then(ignore, ignore).then(() => {
        waiting = undefined;
        return start();
      });
    }
    return waiting;
  };
}
