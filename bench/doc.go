// Package bench load-tests the practice's two servers (single and cluster)
// on the students' hosts, the way the practice does it — the load generator
// runs on the VM itself against localhost — and keeps every run.
//
// A Plan (YAML, strictly parsed; the practice's by default, embedded from
// plan.yaml) lists the servers and the scenarios: load runs (-n requests,
// -c clients) and the blocking experiment (one heavy request, a few light
// ones whose waits are measured). Run runs a plan on many hosts at once
// (up to Forks), the scenarios of one host one after the other, each
// against every server after a discarded warm-up. The generator is
// deploylab's loadgen (uploaded, checksum-skipped, to ~/.cache/deploylab/bin)
// or npm loadtest when installed (its text parsed by bench/loadtestfmt into
// the same result document). Around each run, one shell script samples the
// client's and the server's CPU time (the shell's times, the server unit's
// cgroup or its processes' /proc/<pid>/stat) and the cluster's per-worker
// counters (sumcluster stats).
//
// Each run is a Record (schema deploylab.bench/v1), saved atomically in a
// Store (one JSON file per run under <results-dir>/<host>/). WriteTable
// prints the comparison (rps, latency percentiles, errors, speedup, CPU,
// per-worker balance) and, where the single server wins, Diagnose says why
// from the figures. Store.Summaries hands the latest results to the grader.
package bench
