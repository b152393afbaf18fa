// Failpoints for crash tests: when PX_FAILPOINTS (comma-separated names) names a
// point, the process kills itself with SIGKILL right there, as a power cut
// would. Off (one Set lookup) unless the variable is set.
const armed = new Set((process.env.PX_FAILPOINTS ?? "").split(",").filter(Boolean));

export function failpoint(name: string): void {
  if (armed.size > 0 && armed.has(name)) process.kill(process.pid, "SIGKILL");
}
