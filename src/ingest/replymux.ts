// Request/reply over one wildcard inbox subscription, for the ingest hot path.
// `nc.request()` costs a random token, a promise race, a timer and an Error
// object (stack capture) per call; here a request is a publish with a reply
// subject and a map entry, replies are matched by a counter, and one coarse
// timer sweeps deadlines. Used by TickPublisher (ingest requests) and the
// gateway's WAL appender (JetStream publishes, whose acks are replies too).
import { NoRespondersError, TimeoutError, createInbox } from "@nats-io/transport-node";
import type { Msg, MsgHdrs, NatsConnection, Subscription } from "@nats-io/transport-node";

interface Waiter {
  readonly resolve: (m: Msg) => void;
  readonly reject: (e: Error) => void;
  readonly deadline: number;
  readonly subject: string;
}

const SWEEP_MS = 50;

export class ReplyMux {
  private readonly prefix: string;
  private readonly sub: Subscription;
  private readonly waiting = new Map<number, Waiter>();
  private next = 1;
  private sweeper: NodeJS.Timeout | undefined;
  private closedError: Error | undefined;

  constructor(private readonly nc: NatsConnection) {
    // The connection's inbox prefix: tenant credentials may only receive under their own.
    this.prefix = `${createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => this.onReply(err, msg) });
    void this.sub.closed.then(
      () => this.failAll(new Error("the reply subscription closed (connection closed)")),
      (e: unknown) => this.failAll(e instanceof Error ? e : new Error(String(e))),
    );
  }

  get pending(): number {
    return this.waiting.size;
  }

  /** Publishes `data` to `subject` and resolves with the reply, or rejects (TimeoutError, NoRespondersError). */
  request(subject: string, data: Uint8Array, timeoutMs: number, headers?: MsgHdrs): Promise<Msg> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.next++;
    return new Promise<Msg>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, deadline: performance.now() + timeoutMs, subject });
      try {
        this.nc.publish(subject, data, headers ? { reply: this.prefix + id, headers } : { reply: this.prefix + id });
      } catch (e) {
        this.waiting.delete(id);
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    });
  }

  private onReply(err: Error | null, msg: Msg): void {
    if (err) return;
    const id = Number(msg.subject.slice(this.prefix.length));
    const w = this.waiting.get(id);
    if (!w) return; // late reply after a timeout
    this.waiting.delete(id);
    if (msg.data.length === 0 && msg.headers?.code === 503) w.reject(new NoRespondersError(w.subject));
    else w.resolve(msg);
    if (this.waiting.size === 0) this.stopSweeper();
  }

  private sweep(): void {
    const now = performance.now();
    for (const [id, w] of this.waiting) {
      if (w.deadline <= now) {
        this.waiting.delete(id);
        w.reject(new TimeoutError());
      }
    }
    if (this.waiting.size === 0) this.stopSweeper();
  }

  private stopSweeper(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private failAll(e: Error): void {
    this.closedError = e;
    muxes.delete(this.nc);
    this.stopSweeper();
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }
}

const muxes = new WeakMap<NatsConnection, ReplyMux>();

/** The connection's shared mux (one inbox subscription per connection). */
export function replyMux(nc: NatsConnection): ReplyMux {
  let m = muxes.get(nc);
  if (!m) muxes.set(nc, (m = new ReplyMux(nc)));
  return m;
}
