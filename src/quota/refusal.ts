// The words of a quota refusal, in one place: every one names the tenant, the
// quota and its value, what was asked, and how to raise it (the spec key and
// `pxctl apply`), so the API surfaces (NATS reply, gRPC, Flight, HTTP) say the same.
import type { QuotaName } from "../../protocols/tablespec.js";

/** "…; raise quotas.<name> in tenant <t>'s spec and apply it (pxctl apply -f spec.yaml)". */
export const raiseHint = (tenant: string, quota: QuotaName): string => `raise quotas.${quota} in tenant ${tenant}'s spec and apply it (pxctl apply -f spec.yaml)`;

/** One refusal sentence: `tenant t: quota <name> = <value> <what>; <then>, or raise it`. */
export function quotaMessage(tenant: string, quota: QuotaName, value: number, what: string, then: string): string {
  return `tenant ${tenant}: quota ${quota} = ${value} ${what}; ${then}, or ${raiseHint(tenant, quota)}`;
}
