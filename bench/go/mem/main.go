// Command mem measures Go's sync.Pool and sync.Map with the same cases,
// durations and worker counts as the "mem" family of gosync-bench, so that both
// can be read side by side. It leaves GOMAXPROCS at its default (the number of
// CPUs) and uses the standard library only.
//
// Each measurement prints one line of space-separated key=value pairs:
//
//	case=pool_uncontended ns_per_op=9.40 iters=20000000 secs=0.2500
//	case=pool_contended threads=4 ops=1234567 secs=0.4001 mops=3.086 min_share=0.91 max_share=1.08
//	case=sharded_map threads=4 get=900 ops=1234567 secs=0.4001 mops=3.086 min_share=0.91 max_share=1.08
//
// With -case all (the default) it runs every case for -rounds rounds; with a
// single case (as gosync-bench calls it) it runs that case once.
//
// Cases:
//
//	pool_uncontended  Get + Put of a *[]byte of capacity 4096 on one goroutine (ns/op);
//	                  the pool's New allocates one
//	pool_contended    -threads goroutines each looping Get + Put on one pool for -dur
//	                  (Mops/s, shares)
//	sharded_map       a sync.Map of uint64 keys 0..100000 prefilled with the even keys;
//	                  -threads goroutines each loop random operations for -dur, drawn
//	                  from a per-goroutine xorshift64: -get per mille Load, the rest
//	                  split equally between Store and Delete (Mops/s, shares)
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

const (
	bufCap = 4096
	keys   = 100000
)

var (
	caseName = flag.String("case", "all", "case to run: all, pool_uncontended, pool_contended, sharded_map")
	threads  = flag.Int("threads", 4, "number of goroutines of the contended cases")
	getShare = flag.Uint64("get", 900, "share of Load operations in sharded_map, per mille")
	dur      = flag.Duration("dur", 0, "duration of one contended measurement (default 400ms, 100ms with -quick)")
	opDur    = flag.Duration("opdur", 0, "minimum duration of one ns/op measurement (default 100ms, 30ms with -quick)")
	rounds   = flag.Int("rounds", 0, "rounds with -case all (default 5, 3 with -quick)")
	quick    = flag.Bool("quick", false, "shorter measurements and fewer rounds")
)

// sink keeps results alive so that the compiler cannot drop the work.
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

func printNs(label string, target time.Duration, body func(n int)) {
	ns, iters, elapsed := nsPerOp(target, body)
	fmt.Printf("%s ns_per_op=%.3f iters=%d secs=%.4f\n", label, ns, iters, elapsed.Seconds())
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

// newPool returns a pool of *[]byte: a pointer, so that Put does not allocate
// to box a slice header in an interface.
func newPool() *sync.Pool {
	return &sync.Pool{New: func() any {
		b := make([]byte, 0, bufCap)
		return &b
	}}
}

// cycle is one Get + Put, the buffer handed back empty.
func cycle(p *sync.Pool) {
	b := p.Get().(*[]byte)
	*b = (*b)[:0]
	p.Put(b)
}

func poolUncontended(target time.Duration) {
	p := newPool()
	printNs("case=pool_uncontended", target, func(n int) {
		for i := 0; i < n; i++ {
			cycle(p)
		}
	})
}

func poolContended(n int, d time.Duration) {
	p := newPool()
	contended(fmt.Sprintf("case=pool_contended threads=%d", n), n, d, func(id int, stop *atomic.Bool) uint64 {
		var ops uint64
		for !stop.Load() {
			cycle(p)
			ops++
		}
		return ops
	})
}

// xorshift64 is the generator of the Rust side, seeded the same way from the
// goroutine's id.
type xorshift64 uint64

func newXorshift(id int) xorshift64 {
	return xorshift64((uint64(id)+1)*0x9E3779B97F4A7C15 | 1)
}

func (x *xorshift64) next() uint64 {
	v := uint64(*x)
	v ^= v << 13
	v ^= v >> 7
	v ^= v << 17
	*x = xorshift64(v)
	return v
}

func shardedMap(n int, getPermille uint64, d time.Duration) {
	var m sync.Map
	for k := uint64(0); k < keys; k += 2 {
		m.Store(k, k)
	}
	storeBelow := getPermille + (1000-getPermille)/2
	var hits atomic.Uint64
	label := fmt.Sprintf("case=sharded_map threads=%d get=%d", n, getPermille)
	contended(label, n, d, func(id int, stop *atomic.Bool) uint64 {
		rng := newXorshift(id)
		var ops, hit uint64
		for !stop.Load() {
			r := rng.next()
			key := (r >> 32) % keys
			op := (r & 0xffffffff) % 1000
			switch {
			case op < getPermille:
				if _, ok := m.Load(key); ok {
					hit++
				}
			case op < storeBelow:
				m.Store(key, r)
			default:
				m.Delete(key)
			}
			ops++
		}
		hits.Add(hit)
		return ops
	})
	sink += hits.Load()
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
	if *getShare > 1000 {
		fmt.Fprintln(os.Stderr, "-get must be at most 1000")
		os.Exit(2)
	}

	switch *caseName {
	case "pool_uncontended":
		poolUncontended(od)
	case "pool_contended":
		poolContended(*threads, d)
	case "sharded_map":
		shardedMap(*threads, *getShare, d)
	case "all":
		for round := 1; round <= r; round++ {
			fmt.Fprintf(os.Stderr, "round %d/%d\n", round, r)
			poolUncontended(od)
			poolContended(4, d)
			for _, get := range []uint64{900, 990} {
				for _, n := range []int{1, 2, 4, 8} {
					shardedMap(n, get, d)
				}
			}
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown case %q\n", *caseName)
		os.Exit(2)
	}
}
