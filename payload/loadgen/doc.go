// Package loadgen is the load generator deploylab runs on the student's VM,
// next to the server it measures: a replacement for npm's loadtest that
// accepts loadtest's flags and prints loadtest's summary, but costs a tenth
// of loadtest's CPU per request, so that on a 2-core VM the server, not the
// client, decides what is measured.
//
// It speaks HTTP/1.1 over net.Conn directly (a pre-serialised request, one
// buffered reader per connection, status line and Content-Length or chunked
// bodies parsed in place) instead of net/http's client, which costs more and
// silently retries idempotent requests. Each failed request is counted once,
// by kind, and never retried. Latencies go into one HDR histogram per client
// (no lock on the hot path), merged when the run ends. With a target rate,
// latency is measured from each request's intended send time (coordinated
// omission corrected, as wrk2 does).
//
// Run returns a Result, which marshals to the versioned JSON document
// described in SCHEMA.md ("deploylab.loadgen/v1"); bench/loadtestfmt parses
// npm loadtest's text output into the same document.
package loadgen
