// Leftovers of a crashed fault run (tmpfs mounts, network namespaces) carry
// the PID of the run that made them; they are removed only when that process
// is gone.

/** Whether process `pid` exists (EPERM: it exists but is not ours to signal). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};
