// Verified P: before a sink trusts a watermark (on start, on takeover) and
// before a shard evicts against one it did not see its own sink write, P is
// checked against ClickHouse: the highest `_lsn` of the shard landed up to P
// must be the shard's last WAL record up to P with rows, and that record must
// have all its rows there (a row count). A watermark claiming more than
// ClickHouse holds is refused; the verified P is what ClickHouse provably
// holds, and the sink re-persists the gap from there. Pure over `VerifyIo`.

export interface VerifyIo {
  /** Highest `_lsn` of the shard in ClickHouse with `_lsn <= upTo` (0: none). */
  maxLandedUpTo(upTo: number): Promise<number>;
  /** Rows of the shard in ClickHouse with `_lsn = lsn`. */
  landedRows(lsn: number): Promise<number>;
  /** The shard's first WAL record with LSN > `after`, with its rows (undefined: none). */
  nextRecord(after: number): Promise<{ readonly lsn: number; readonly rows: number } | undefined>;
  /** Rows of the shard's WAL record at `lsn`. */
  recordRows(lsn: number): Promise<number>;
}

export interface VerifiedP {
  /** P ClickHouse provably holds (<= the claim). */
  readonly persistedLsn: number;
  /** The claim was more than ClickHouse holds: why. */
  readonly refused: string | undefined;
}

/** Records without rows never reach ClickHouse: skipped while looking for the first missing one (bounded). */
const MAX_EMPTY_SKIPS = 1_000;

export async function verifyPersisted(io: VerifyIo, claimed: number): Promise<VerifiedP> {
  if (claimed <= 0) return { persistedLsn: 0, refused: undefined };
  const landed = await io.maxLandedUpTo(claimed);
  // The newest landed record must be whole, or P stops before it.
  let verified = landed;
  if (landed > 0) {
    const [have, want] = await Promise.all([io.landedRows(landed), io.recordRows(landed)]);
    if (have < want) verified = landed - 1;
  }
  // Every record with rows between the landed one and the claim is missing.
  let after = landed;
  for (let i = 0; i < MAX_EMPTY_SKIPS; i++) {
    const next = await io.nextRecord(after);
    if (next === undefined || next.lsn > claimed) break;
    if (next.rows > 0) {
      return {
        persistedLsn: verified < landed ? verified : next.lsn - 1,
        refused:
          `watermark P ${claimed} claims more than ClickHouse holds: the shard's WAL record ${next.lsn} (${next.rows} rows) is not there ` +
          `(highest landed _lsn up to P is ${landed}${verified < landed ? `, and it is incomplete` : ""})`,
      };
    }
    after = next.lsn;
  }
  if (verified < landed) {
    return { persistedLsn: verified, refused: `watermark P ${claimed}: WAL record ${landed} is only partly in ClickHouse` };
  }
  return { persistedLsn: claimed, refused: undefined };
}
