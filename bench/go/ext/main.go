// Command ext measures golang.org/x/sync (semaphore, singleflight, errgroup)
// with the same cases, durations and worker counts as the "ext" family of
// gosync-bench, so that both can be read side by side. It leaves GOMAXPROCS at
// its default (the number of CPUs) and is built in GOPATH mode against
// Debian's golang-golang-x-sync-dev.
//
// Each measurement prints one line of space-separated key=value pairs:
//
//	case=semaphore_uncontended ns_per_op=9.40 iters=20000000 secs=0.2500
//	case=semaphore_contended threads=4 ops=1234567 secs=0.4001 mops=3.086 min_share=0.91 max_share=1.08
//	case=singleflight_hit threads=4 ops=123456 secs=0.4001 mops=0.308 min_share=0.97 max_share=1.02 calls=164608 hit_pct=75.00
//	case=errgroup threads=4 ns_per_op=870.0 iters=2000000 secs=0.2500
//
// With -case all (the default) it runs every case for -rounds rounds; with a
// single case (as gosync-bench calls it) it runs that case once.
//
// Cases:
//
//	semaphore_uncontended  Acquire(ctx, 1), Release(1) on one goroutine (ns/op)
//	semaphore_contended    -threads goroutines on a Weighted of 2, each looping Acquire(ctx, 1),
//	                       ops++, Release(1) for -dur (Mops/s, shares)
//	singleflight_hit       -threads goroutines calling Do in lockstep rounds: in each round all
//	                       call Do(key, f); the first leads, and its f returns once all have
//	                       called, so the others join its flight. mops counts the calls that
//	                       joined (hits); hit_pct is hits / calls (ideal: (threads-1)/threads)
//	errgroup               a zero Group, -threads Go(func() error { return nil }), Wait()
//	                       (ns per round)
//
// The share of a goroutine is its operation count divided by the mean count
// per goroutine; min_share and max_share are the smallest and largest shares.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"
)

var (
	caseName = flag.String("case", "all", "case to run: all, semaphore_uncontended, semaphore_contended, singleflight_hit, errgroup")
	threads  = flag.Int("threads", 4, "number of goroutines of the contended cases, or Go calls per errgroup round")
	permits  = flag.Int64("permits", 2, "size of the semaphore in semaphore_contended")
	dur      = flag.Duration("dur", 0, "duration of one contended measurement (default 400ms, 100ms with -quick)")
	opDur    = flag.Duration("opdur", 0, "minimum duration of one ns/op measurement (default 100ms, 30ms with -quick)")
	rounds   = flag.Int("rounds", 0, "rounds with -case all (default 5, 3 with -quick)")
	quick    = flag.Bool("quick", false, "shorter measurements and fewer rounds")
)

// nsPerOp runs body(n) with growing n until at least target has passed in total
// and returns the mean time per iteration.
func nsPerOp(target time.Duration, body func(n int)) (float64, int, time.Duration) {
	n := 1000
	total := 0
	var elapsed time.Duration
	for elapsed < target {
		t0 := time.Now()
		body(n)
		elapsed += time.Since(t0)
		total += n
		if n < 1<<24 {
			n *= 2
		}
	}
	return float64(elapsed.Nanoseconds()) / float64(total), total, elapsed
}

func printNs(label string, target time.Duration, body func(n int)) {
	ns, iters, elapsed := nsPerOp(target, body)
	fmt.Printf("%s ns_per_op=%.3f iters=%d secs=%.4f\n", label, ns, iters, elapsed.Seconds())
}

// contended starts n goroutines, releases them together, lets them run for d,
// then stops them and prints the total throughput and the per-goroutine shares,
// followed by extra (key=value pairs or nothing) once the workers are done.
// worker(id, stop) must loop until stop is set and return its operation count.
func contended(label string, n int, d time.Duration, worker func(id int, stop *atomic.Bool) uint64, extra func() string) {
	var stop atomic.Bool
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	counts := make([]uint64, n)
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(id int) {
			defer done.Done()
			ready.Done()
			<-start
			counts[id] = worker(id, &stop)
		}(i)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	time.Sleep(d)
	stop.Store(true)
	elapsed := time.Since(t0)
	done.Wait()

	var total, min, max uint64
	min = ^uint64(0)
	for _, c := range counts {
		total += c
		if c < min {
			min = c
		}
		if c > max {
			max = c
		}
	}
	mean := float64(total) / float64(n)
	minShare, maxShare := 0.0, 0.0
	if mean > 0 {
		minShare = float64(min) / mean
		maxShare = float64(max) / mean
	}
	fmt.Printf("%s ops=%d secs=%.4f mops=%.4f min_share=%.4f max_share=%.4f%s\n",
		label, total, elapsed.Seconds(), float64(total)/elapsed.Seconds()/1e6, minShare, maxShare, extra())
}

func noExtra() string { return "" }

func semaphoreUncontended(target time.Duration) {
	sem := semaphore.NewWeighted(1)
	ctx := context.Background()
	printNs("case=semaphore_uncontended", target, func(n int) {
		for i := 0; i < n; i++ {
			if err := sem.Acquire(ctx, 1); err != nil {
				panic(err)
			}
			sem.Release(1)
		}
	})
}

func semaphoreContended(n int, size int64, d time.Duration) {
	sem := semaphore.NewWeighted(size)
	ctx := context.Background()
	label := fmt.Sprintf("case=semaphore_contended threads=%d permits=%d", n, size)
	contended(label, n, d, func(id int, stop *atomic.Bool) uint64 {
		var ops uint64
		for !stop.Load() {
			if err := sem.Acquire(ctx, 1); err != nil {
				panic(err)
			}
			ops++
			sem.Release(1)
		}
		return ops
	}, noExtra)
}

// singleflightHit runs n goroutines in lockstep rounds. In round r every goroutine
// counts itself in (entered), then calls Do; whoever gets there first leads, and
// its function returns once all n have entered round r, so the others find the
// call in flight and join it. Then each counts itself out (returned) and waits
// for all n to be out before the next round, so that no goroutine can join (or
// start) a flight of another round. A goroutine that counted itself in but came
// to Do after the flight had ended leads a flight of its own, which returns at
// once: a miss, visible in hit_pct. A call is a hit when the value it got is
// another goroutine's id (the leader's).
func singleflightHit(n int, d time.Duration) {
	var g singleflight.Group
	var entered, returned, calls, hits atomic.Uint64
	k := uint64(n)
	label := fmt.Sprintf("case=singleflight_hit threads=%d", n)
	contended(label, n, d, func(id int, stop *atomic.Bool) uint64 {
		var hit, made uint64
		for round := uint64(1); !stop.Load(); round++ {
			target := k * round
			entered.Add(1)
			v, _, _ := g.Do("key", func() (interface{}, error) {
				for entered.Load() < target && !stop.Load() {
					runtime.Gosched()
				}
				return id, nil
			})
			made++
			if v.(int) != id {
				hit++
			}
			returned.Add(1)
			for returned.Load() < target && !stop.Load() {
				runtime.Gosched()
			}
		}
		calls.Add(made)
		hits.Add(hit)
		return hit
	}, func() string {
		c := calls.Load()
		pct := 0.0
		if c > 0 {
			pct = 100 * float64(hits.Load()) / float64(c)
		}
		return fmt.Sprintf(" calls=%d hit_pct=%.2f", c, pct)
	})
}

func errGroup(n int, target time.Duration) {
	f := func() error { return nil }
	printNs(fmt.Sprintf("case=errgroup threads=%d", n), target, func(iters int) {
		for i := 0; i < iters; i++ {
			var g errgroup.Group
			for j := 0; j < n; j++ {
				g.Go(f)
			}
			if err := g.Wait(); err != nil {
				panic(err)
			}
		}
	})
}

func main() {
	flag.Parse()
	d, od, r := 400*time.Millisecond, 100*time.Millisecond, 5
	if *quick {
		d, od, r = 100*time.Millisecond, 30*time.Millisecond, 3
	}
	if *dur > 0 {
		d = *dur
	}
	if *opDur > 0 {
		od = *opDur
	}
	if *rounds > 0 {
		r = *rounds
	}
	if *threads < 1 {
		fmt.Fprintln(os.Stderr, "-threads must be at least 1")
		os.Exit(2)
	}
	if *permits < 1 {
		fmt.Fprintln(os.Stderr, "-permits must be at least 1")
		os.Exit(2)
	}

	switch *caseName {
	case "semaphore_uncontended":
		semaphoreUncontended(od)
	case "semaphore_contended":
		semaphoreContended(*threads, *permits, d)
	case "singleflight_hit":
		singleflightHit(*threads, d)
	case "errgroup":
		errGroup(*threads, od)
	case "all":
		for round := 1; round <= r; round++ {
			fmt.Fprintf(os.Stderr, "round %d/%d\n", round, r)
			semaphoreUncontended(od)
			for _, n := range []int{4, 8} {
				semaphoreContended(n, 2, d)
			}
			singleflightHit(4, d)
			errGroup(4, od)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown case %q\n", *caseName)
		os.Exit(2)
	}
}
