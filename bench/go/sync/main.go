// Command sync measures Go's sync package with the same cases, durations and
// thread counts as the "sync" family of gosync-bench, so that both can be read
// side by side. It uses only the standard library and leaves GOMAXPROCS at its
// default (the number of CPUs).
//
// Each measurement prints one line of space-separated key=value pairs:
//
//	case=mutex_uncontended ns_per_op=12.34 iters=20000000 secs=0.2500
//	case=mutex_contended threads=4 ops=1234567 secs=0.4001 mops=3.086 min_share=0.91 max_share=1.08
//
// With -case all (the default) it runs every case for -rounds rounds; with a
// single case (as gosync-bench calls it) it runs that case once.
//
// Cases:
//
//	mutex_uncontended  Lock, counter++, Unlock on one goroutine (ns/op)
//	mutex_contended    -threads goroutines doing Lock, counter++, Unlock for -dur (Mops/s, shares)
//	rwmutex            -threads goroutines, -reads percent RLock/RUnlock, the rest Lock/Unlock (Mops/s, shares)
//	waitgroup          Add(1), Done(), Wait() on one goroutine (ns/op)
//	once               Do(f) on a Once that is already done (ns/op)
//
// The share of a goroutine is its operation count divided by the mean count
// per goroutine; min_share and max_share are the smallest and largest shares.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

var (
	caseName = flag.String("case", "all", "case to run: all, mutex_uncontended, mutex_contended, rwmutex, waitgroup, once")
	threads  = flag.Int("threads", 4, "number of goroutines for the contended cases")
	reads    = flag.Int("reads", 90, "percentage of read locks in the rwmutex case (90 or 99, any value in 0..99 works)")
	dur      = flag.Duration("dur", 0, "duration of one contended measurement (default 400ms, 100ms with -quick)")
	opDur    = flag.Duration("opdur", 0, "minimum duration of one ns/op measurement (default 100ms, 30ms with -quick)")
	rounds   = flag.Int("rounds", 0, "rounds with -case all (default 5, 3 with -quick)")
	quick    = flag.Bool("quick", false, "shorter measurements and fewer rounds")
)

// sink keeps the compiler from discarding the work of a loop.
var sink uint64

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

func printNs(name string, target time.Duration, body func(n int)) {
	ns, iters, elapsed := nsPerOp(target, body)
	fmt.Printf("case=%s ns_per_op=%.3f iters=%d secs=%.4f\n", name, ns, iters, elapsed.Seconds())
}

// contended starts n goroutines, releases them together, lets them run for d,
// then stops them and prints the total throughput and the per-goroutine shares.
// worker(id, stop) must loop until stop is set and return its operation count.
func contended(label string, n int, d time.Duration, worker func(id int, stop *atomic.Bool) uint64) {
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
	fmt.Printf("%s ops=%d secs=%.4f mops=%.4f min_share=%.4f max_share=%.4f\n",
		label, total, elapsed.Seconds(), float64(total)/elapsed.Seconds()/1e6, minShare, maxShare)
}

func mutexUncontended(target time.Duration) {
	var mu sync.Mutex
	var counter uint64
	printNs("mutex_uncontended", target, func(n int) {
		for i := 0; i < n; i++ {
			mu.Lock()
			counter++
			mu.Unlock()
		}
	})
	sink += counter
}

func mutexContended(n int, d time.Duration) {
	var mu sync.Mutex
	var counter uint64
	contended(fmt.Sprintf("case=mutex_contended threads=%d", n), n, d, func(id int, stop *atomic.Bool) uint64 {
		var ops uint64
		for !stop.Load() {
			mu.Lock()
			counter++
			mu.Unlock()
			ops++
		}
		return ops
	})
	sink += counter
}

func rwMutex(n, readPct int, d time.Duration) {
	if readPct < 0 || readPct > 99 {
		fmt.Fprintln(os.Stderr, "-reads must be in 0..99")
		os.Exit(2)
	}
	// One write every period operations (a countdown, not a division per operation):
	// 90% reads -> every 10th, 99% -> every 100th.
	period := uint64(100 / (100 - readPct))
	var mu sync.RWMutex
	var counter uint64
	var sum atomic.Uint64
	contended(fmt.Sprintf("case=rwmutex threads=%d reads=%d", n, readPct), n, d, func(id int, stop *atomic.Bool) uint64 {
		var ops, local uint64
		left := period
		for !stop.Load() {
			left--
			if left == 0 {
				left = period
				mu.Lock()
				counter++
				mu.Unlock()
			} else {
				mu.RLock()
				local += counter
				mu.RUnlock()
			}
			ops++
		}
		sum.Add(local)
		return ops
	})
	sink += counter + sum.Load()
}

func waitGroup(target time.Duration) {
	var wg sync.WaitGroup
	printNs("waitgroup", target, func(n int) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			wg.Done()
			wg.Wait()
		}
	})
}

func once(target time.Duration) {
	var o sync.Once
	var calls uint64
	f := func() { calls++ }
	o.Do(f)
	printNs("once", target, func(n int) {
		for i := 0; i < n; i++ {
			o.Do(f)
		}
	})
	sink += calls
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

	switch *caseName {
	case "mutex_uncontended":
		mutexUncontended(od)
	case "mutex_contended":
		mutexContended(*threads, d)
	case "rwmutex":
		rwMutex(*threads, *reads, d)
	case "waitgroup":
		waitGroup(od)
	case "once":
		once(od)
	case "all":
		for round := 1; round <= r; round++ {
			fmt.Fprintf(os.Stderr, "round %d/%d\n", round, r)
			mutexUncontended(od)
			for _, n := range []int{1, 2, 4, 8} {
				mutexContended(n, d)
			}
			rwMutex(4, 90, d)
			rwMutex(4, 99, d)
			waitGroup(od)
			once(od)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown case %q\n", *caseName)
		os.Exit(2)
	}
	if sink == 42 {
		fmt.Fprintln(os.Stderr, "")
	}
}
