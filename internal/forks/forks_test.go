package forks

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachLimit(t *testing.T) {
	for _, limit := range []int{0, 1, 3, 100} {
		var running, peak atomic.Int32
		var mu sync.Mutex
		var started, done []int
		Each(context.Background(), 20, limit, func(i int) {
			mu.Lock()
			started = append(started, i)
			mu.Unlock()
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			mu.Lock()
			done = append(done, i)
			mu.Unlock()
		}, func(i int) { t.Errorf("limit %d: item %d skipped without a cancel", limit, i) })
		want := int32(min(max(limit, 1), 20))
		if peak.Load() != want {
			t.Errorf("limit %d: %d at once at most, want %d", limit, peak.Load(), want)
		}
		if len(done) != 20 {
			t.Errorf("limit %d: %d items done, want 20 (Each returned early)", limit, len(done))
		}
		if limit == 1 && !slices.IsSorted(started) {
			t.Errorf("limit 1: started out of order: %v", started)
		}
	}
}

func TestEachCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var worked, skipped []int
	Each(ctx, 10, 2, func(i int) {
		mu.Lock()
		worked = append(worked, i)
		mu.Unlock()
		if i == 3 {
			cancel()
		}
		time.Sleep(10 * time.Millisecond)
	}, func(i int) {
		mu.Lock()
		skipped = append(skipped, i)
		mu.Unlock()
	})
	slices.Sort(worked)
	all := append(append([]int{}, worked...), skipped...)
	slices.Sort(all)
	if !slices.Equal(all, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("worked %v and skipped %v: want every item exactly once", worked, skipped)
	}
	if len(skipped) == 0 || slices.Contains(worked, 9) {
		t.Errorf("worked %v, skipped %v: want the items after the cancel skipped", worked, skipped)
	}
}
