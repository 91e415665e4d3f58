package actors

import (
	"sync"
	"testing"
)

// TestBacklog: a reader at the bound waits until the Link takes a frame,
// and many frames through it by two goroutines leave it at zero.
func TestBacklog(t *testing.T) {
	b := newBacklog(2)
	stop := make(chan struct{})
	if !b.add(stop) || !b.add(stop) {
		t.Fatal("frames within the bound waited")
	}
	added := make(chan bool)
	go func() { added <- b.add(stop) }()
	select {
	case <-added:
		t.Fatal("a third frame passed a bound of 2")
	default:
	}
	b.taken()
	if !<-added {
		t.Fatal("the waiting reader was not let through once a frame was taken")
	}
	b.taken()
	b.taken()
	// Racing: a reader of 100,000 frames against a Link taking them.
	var wg sync.WaitGroup
	ch := make(chan struct{}, 100_000)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 100_000 {
			if !b.add(stop) {
				return
			}
			ch <- struct{}{}
		}
	}()
	go func() {
		defer wg.Done()
		for range 100_000 {
			<-ch
			b.taken()
		}
	}()
	wg.Wait()
	if n := b.n.Load(); n != 0 {
		t.Fatalf("%d frames counted after all were taken", n)
	}
	go func() { added <- b.add(stop) && b.add(stop) && b.add(stop) }()
	close(stop)
	if <-added {
		t.Fatal("a reader at the bound was not released by stop")
	}
}
