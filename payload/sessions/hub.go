package sessions

import (
	"encoding/json"
	"sync"
	"time"
)

// Broadcaster is what the hub needs of the cluster master
// (cluster.Master.BroadcastExcept).
type Broadcaster interface {
	BroadcastExcept(except int, v any) error
}

// Hub is the master's side of master mode: it keeps the cluster's token set
// (bounded like a worker's) and relays each worker's news to the others.
// Its lock is held while it relays (one order for every worker) and while
// it copies the set for a new worker.
type Hub struct {
	mu    sync.Mutex
	store *Store
	bad   uint64
}

// NewHub returns a hub keeping at most cap tokens (DefaultCap if 0).
func NewHub(cap int) *Hub { return &Hub{store: NewStore(cap)} }

// OnMessage applies a worker's message and relays it to the other workers
// (cluster.Config.OnMessage). A malformed message is counted and dropped.
func (h *Hub) OnMessage(b Broadcaster, from int, raw json.RawMessage) {
	m, err := ParseMessage(raw)
	if err != nil || m.Op == "snap" {
		h.mu.Lock()
		h.bad++
		h.mu.Unlock()
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch m.Op {
	case "add":
		h.store.Add(Entry{Token: m.Tok, Name: m.Name, Exp: m.Exp})
	case "del":
		h.store.Revoke(m.Tok)
	}
	// The worker's own bytes, checked above, go on as they came: no
	// second encoding per message.
	_ = b.BroadcastExcept(from, raw)
}

// OnFork hands a new worker the whole current set, in chunks, before it
// serves (cluster.Config.OnFork). The set is copied under the hub's lock
// and sent without it, so relaying never waits for a worker that is still
// starting: a logout relayed before the snapshot reaches the new worker is
// remembered by that worker until the snapshot's last chunk (Server.OnMessage).
func (h *Hub) OnFork(send func(v any) error) {
	h.mu.Lock()
	es := h.store.Snapshot()
	h.mu.Unlock()
	t := time.Now().UnixNano()
	for i := 0; ; {
		j, size := i, 0
		for j < len(es) && j-i < snapChunk {
			// JSON escapes <, > and & as \u003c: at most 6 bytes a byte.
			sz := len(es[j].Token) + 6*len(es[j].Name) + 32
			if size+sz > snapBytes {
				break
			}
			size += sz
			j++
		}
		last := j >= len(es)
		if err := send(Message{Op: "snap", Snap: es[i:j], T: t, Last: last, Total: len(es)}.wire()); err != nil || last {
			return
		}
		i = j
	}
}

// Len is the number of tokens the hub holds.
func (h *Hub) Len() int { return h.store.Len() }

// Bad counts malformed messages from workers.
func (h *Hub) Bad() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bad
}
