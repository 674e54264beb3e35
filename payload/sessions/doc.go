// Package sessions is the stateful-cluster exercise of the cluster-mode
// lesson (issue 17): a login/me/logout API whose tokens are kept per worker,
// shared through the master, or not kept at all.
//
//	POST /login   {"name":"ana"}            → 200 {"token":"…"}
//	GET  /me      Authorization: Bearer tok → 200 {"name":"ana"} or 401
//	POST /logout  Authorization: Bearer tok → 204 (401 for a bad token)
//
// Modes:
//
//   - memory: each worker keeps the tokens it issued in its own memory (the
//     naive stateful server): with W workers a follow-up request lands on
//     another worker about (W-1)/W of the time and gets 401.
//   - master: each worker reports the tokens it issues and revokes to the
//     master, which broadcasts them to every other worker (Hub); a worker
//     forked later (respawn, recycling, reload) gets the whole current set
//     from the master before it serves.
//   - stateless: the token carries the name and an expiry, signed with
//     HMAC-SHA256 under a key read from a file; no server memory. A logout
//     cannot revoke such a token before it expires (that would need state):
//     /logout answers 204 and the token stays valid until its expiry.
//
// The state is bounded: at most Cap tokens (DefaultCap) per worker and in
// the master; past it the oldest token is evicted (its user must log in
// again). Tokens expire after TTL (DefaultTTL) in every mode. Bodies are
// limited to MaxBody bytes, names to MaxName bytes; anything else gets 400,
// a missing, malformed, unknown, revoked or expired token 401, never a
// crash.
//
// GET /sessions/stats answers this worker's counters as JSON (pid, mode,
// tokens held, the last propagation delays, the last hand-over): what the
// bench reads to measure propagation. It holds no token. With a bearer it
// answers only whether this worker holds that token ({"pid","mode","has"};
// no "has" in stateless mode): what the tests and loadgen's WaitHeld poll
// to know a login or a logout reached every worker.
package sessions
