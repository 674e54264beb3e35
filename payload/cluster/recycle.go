// Recycling: replacing a worker past its requests, age or memory limit.

package cluster

import (
	"fmt"
	"time"
)

// recycleLocked queues the replacement of every ready worker past one of
// its limits (MaxRequests, MaxAge, MaxMemory). The caller holds m.mu.
func (m *Master) recycleLocked() {
	for _, s := range m.slots {
		w := s.cur
		if w == nil || w.state.Load() != stReady || s.replacing || s.recycleQueued {
			continue
		}
		reason := ""
		switch served := w.c.served().Load(); {
		case m.cfg.MaxRequests > 0 && served >= m.cfg.MaxRequests:
			reason = fmt.Sprintf("recycle: served %d requests (max %d)", served, m.cfg.MaxRequests)
		case m.cfg.MaxAge > 0 && time.Since(w.readyAt) >= m.cfg.MaxAge:
			reason = fmt.Sprintf("recycle: up %s (max %s)", time.Since(w.readyAt).Round(time.Second), m.cfg.MaxAge)
		case m.cfg.MaxMemory > 0:
			if r, err := rss(w.pid); err == nil && r >= m.cfg.MaxMemory {
				reason = fmt.Sprintf("recycle: rss %d bytes (max %d)", r, m.cfg.MaxMemory)
			}
		}
		if reason != "" {
			select {
			case m.replaceCh <- replaceReq{slot: s, reason: reason}:
				s.recycleQueued = true
			default:
			}
		}
	}
}
