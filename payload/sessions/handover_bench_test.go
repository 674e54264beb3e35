package sessions

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkHandoverCPU: the CPU side of handing 10,000 tokens to a new
// worker, without the IPC: the hub marshals its chunks, the worker parses
// and applies them (the figure sumcluster's BenchmarkSessionsHandover
// measures across processes, scheduling included).
func BenchmarkHandoverCPU(b *testing.B) {
	h := NewHub(0)
	exp := time.Now().Add(time.Hour).Unix()
	for i := range 10_000 {
		h.store.Add(Entry{Token: NewToken(), Name: fmt.Sprintf("user%d", i), Exp: exp})
	}
	for b.Loop() {
		s, _ := New(Options{Mode: Master})
		s.SetSend(func(any) error { return nil })
		h.OnFork(func(v any) error {
			raw, err := json.Marshal(v)
			if err != nil {
				return err
			}
			s.OnMessage(raw)
			return nil
		})
		if st := s.Stats(); st.Tokens != 10_000 || st.HandoverTokens != 10_000 {
			b.Fatalf("handed %d tokens, holds %d", st.HandoverTokens, st.Tokens)
		}
	}
}
