/**
 * Small measurement helpers: percentiles, and a process' CPU time and RSS from /proc.
 * @module
 */

/** Summary of a sample set (milliseconds, counts, whatever the samples are). */
export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of `values` (not modified). */
export function percentiles(values: number[]): Summary {
  if (values.length === 0) {
    return { count: 0, min: NaN, mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN };
  }
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted[0],
    mean: sum / sorted.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted[sorted.length - 1],
  };
}

/** The median of a few numbers. */
export function median(values: number[]): number {
  return percentiles(values).p50;
}

/** User + system CPU time of a process in clock ticks (1/100 s on Linux), or NaN. */
export function cpuTicks(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After "pid (comm) ", field 3 (state) is index 0; utime is field 14, stime 15.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

/** Resident set size of a process in KiB (VmRSS), or NaN. */
export function rssKiB(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** CPU ticks every process on the machine spent busy so far (/proc/stat, all cores), or NaN. */
export function systemBusyTicks(): number {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.split(/\s+/).slice(1)
      .map(Number);
    return user + nice + system + irq + softirq + steal;
  } catch {
    return NaN;
  }
}

/**
 * Measures how much CPU processes other than `pids` used between `start()` and `stop()`, in
 * cores: other work on the machine that disturbs a measurement.
 */
export function otherLoad(pids: number[]): { stop(): number } {
  const own = () => pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
  const busy0 = systemBusyTicks();
  const own0 = own();
  const t0 = performance.now();
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000;
      const others = (systemBusyTicks() - busy0) - (own() - own0);
      return Math.max(0, Math.round(others / 100 / seconds * 100) / 100);
    },
  };
}
