// Package forks runs one piece of work per item, a bounded number at a
// time: the hosts of up, bench and grade (--forks), and the lab's hosts.
package forks

import (
	"context"
	"sync"
)

// Each calls work(i) for every i from 0 to n-1, each in its own goroutine,
// at most limit at once (at least 1), started in order, and waits for them
// all. Once ctx is done no more work starts: skipped(i), when not nil, is
// called instead for each item not started.
func Each(ctx context.Context, n, limit int, work, skipped func(i int)) {
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			if skipped != nil {
				for j := i; j < n; j++ {
					skipped(j)
				}
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			work(i)
		}()
	}
	wg.Wait()
}
