// Command chan measures Go's channels and select with the same cases, message
// counts and capacities as the "chan" family of gosync-bench, so that both can
// be read side by side. It uses only the standard library and leaves GOMAXPROCS
// at its default (the number of CPUs).
//
// Each measurement prints one line of space-separated key=value pairs:
//
//	case=spsc cap=0 msgs=1000000 secs=0.2345 secs_per_1m=0.2345
//	case=pingpong n=100000 median_ns=812 p99_ns=2301 mean_ns=901.2
//
// A measurement that takes longer than -limit prints "case=... hang=1" and
// the program exits (status 0), so the caller can report it.
//
// With -case all (the default) it runs every case at capacities 0, 1 and 1000
// (seq: 1 and 1000) for -rounds rounds; with a single case (as gosync-bench
// calls it) it runs that case once with -cap.
//
// Cases (N = -n messages; T = 4 goroutines per side):
//
//	seq          one goroutine sends cap messages, then receives them, until N went through
//	spsc         one goroutine sends N, another receives them
//	mpsc         T goroutines send N/T each, one receives all
//	mpmc         T goroutines send N/T each, T others receive N/T each
//	select_rx    T goroutines send N/T each on a channel of their own, one receives all by
//	             selecting over the T channels
//	select_both  T goroutines send N/T each by selecting over T channels, T others receive
//	             N/T each by selecting over them
//	pingpong     two goroutines bounce a message -n times over two unbuffered channels;
//	             every round trip is timed (median and 99th percentile, ns)
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"
)

const threads = 4

var (
	caseName = flag.String("case", "all", "case to run: all, seq, spsc, mpsc, mpmc, select_rx, select_both, pingpong")
	capacity = flag.Int("cap", 0, "channel capacity (seq: at least 1)")
	msgs     = flag.Int("n", 0, "messages per measurement, or round trips for pingpong (default 1000000 / 100000; 12000 / 5000 with -quick)")
	limit    = flag.Duration("limit", 0, "time limit of one measurement (default 50s, 2s with -quick)")
	rounds   = flag.Int("rounds", 0, "rounds with -case all (default 5, 3 with -quick)")
	quick    = flag.Bool("quick", false, "fewer messages and rounds")
)

// Message is what the channels carry (gosync-bench sends usize).
type Message = uintptr

// sink keeps the compiler from discarding received values.
var sink Message

// watch ends the program with a hang record if the measurement is not done
// within the limit; call the returned function when it is.
func watch(label string, d time.Duration) func() {
	t := time.AfterFunc(d, func() {
		fmt.Printf("%s hang=1\n", label)
		os.Exit(0)
	})
	return func() { t.Stop() }
}

// measure runs body (which moves n messages) once and prints the result.
func measure(name string, cap, n int, d time.Duration, body func(cap, n int)) {
	label := fmt.Sprintf("case=%s cap=%d", name, cap)
	stop := watch(label, d)
	t0 := time.Now()
	body(cap, n)
	elapsed := time.Since(t0)
	stop()
	secs := elapsed.Seconds()
	fmt.Printf("%s msgs=%d secs=%.6f secs_per_1m=%.6f\n", label, n, secs, secs*1e6/float64(n))
}

func seq(cap, n int) {
	if cap < 1 {
		fmt.Fprintln(os.Stderr, "seq needs -cap of at least 1")
		os.Exit(2)
	}
	c := make(chan Message, cap)
	for left := n; left > 0; {
		k := cap
		if left < k {
			k = left
		}
		for i := 0; i < k; i++ {
			c <- Message(i)
		}
		for i := 0; i < k; i++ {
			sink += <-c
		}
		left -= k
	}
}

func spsc(cap, n int) {
	c := make(chan Message, cap)
	go func() {
		for i := 0; i < n; i++ {
			c <- Message(i)
		}
	}()
	var s Message
	for i := 0; i < n; i++ {
		s += <-c
	}
	sink += s
}

func mpsc(cap, n int) {
	per := n / threads
	c := make(chan Message, cap)
	for t := 0; t < threads; t++ {
		go func() {
			for i := 0; i < per; i++ {
				c <- Message(i)
			}
		}()
	}
	var s Message
	for i := 0; i < per*threads; i++ {
		s += <-c
	}
	sink += s
}

func mpmc(cap, n int) {
	per := n / threads
	c := make(chan Message, cap)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(threads)
	for t := 0; t < threads; t++ {
		go func() {
			for i := 0; i < per; i++ {
				c <- Message(i)
			}
		}()
		go func() {
			defer wg.Done()
			var s Message
			for i := 0; i < per; i++ {
				s += <-c
			}
			mu.Lock()
			sink += s
			mu.Unlock()
		}()
	}
	wg.Wait()
}

func selectRx(cap, n int) {
	per := n / threads
	var cs [threads]chan Message
	for i := range cs {
		cs[i] = make(chan Message, cap)
		go func(c chan Message) {
			for i := 0; i < per; i++ {
				c <- Message(i)
			}
		}(cs[i])
	}
	var s Message
	for i := 0; i < per*threads; i++ {
		select {
		case v := <-cs[0]:
			s += v
		case v := <-cs[1]:
			s += v
		case v := <-cs[2]:
			s += v
		case v := <-cs[3]:
			s += v
		}
	}
	sink += s
}

func selectBoth(cap, n int) {
	per := n / threads
	var cs [threads]chan Message
	for i := range cs {
		cs[i] = make(chan Message, cap)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(threads)
	for t := 0; t < threads; t++ {
		go func() {
			for i := 0; i < per; i++ {
				m := Message(i)
				select {
				case cs[0] <- m:
				case cs[1] <- m:
				case cs[2] <- m:
				case cs[3] <- m:
				}
			}
		}()
		go func() {
			defer wg.Done()
			var s Message
			for i := 0; i < per; i++ {
				select {
				case v := <-cs[0]:
					s += v
				case v := <-cs[1]:
					s += v
				case v := <-cs[2]:
					s += v
				case v := <-cs[3]:
					s += v
				}
			}
			mu.Lock()
			sink += s
			mu.Unlock()
		}()
	}
	wg.Wait()
}

func pingpong(n int, d time.Duration) {
	stop := watch("case=pingpong", d)
	ab := make(chan Message)
	ba := make(chan Message)
	go func() {
		for i := 0; i < n; i++ {
			ba <- <-ab
		}
	}()
	lat := make([]int64, n)
	var v Message
	for i := 0; i < n; i++ {
		t := time.Now()
		ab <- v
		v = <-ba + 1
		lat[i] = int64(time.Since(t))
	}
	stop()
	sink += v
	var total int64
	for _, l := range lat {
		total += l
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	at := func(q int) int64 {
		i := n * q / 100
		if i > n-1 {
			i = n - 1
		}
		return lat[i]
	}
	fmt.Printf("case=pingpong n=%d median_ns=%d p99_ns=%d mean_ns=%.1f\n", n, at(50), at(99), float64(total)/float64(n))
}

var cases = map[string]func(cap, n int){
	"seq":         seq,
	"spsc":        spsc,
	"mpsc":        mpsc,
	"mpmc":        mpmc,
	"select_rx":   selectRx,
	"select_both": selectBoth,
}

func main() {
	flag.Parse()
	n, trips, d, r := 1000000, 100000, 50*time.Second, 5
	if *quick {
		n, trips, d, r = 12000, 5000, 2*time.Second, 3
	}
	if *msgs > 0 {
		n, trips = *msgs, *msgs
	}
	if *limit > 0 {
		d = *limit
	}
	if *rounds > 0 {
		r = *rounds
	}
	if *capacity < 0 {
		fmt.Fprintln(os.Stderr, "-cap must be at least 0")
		os.Exit(2)
	}

	switch *caseName {
	case "pingpong":
		pingpong(trips, d)
	case "all":
		order := []string{"seq", "spsc", "mpsc", "mpmc", "select_rx", "select_both"}
		for round := 1; round <= r; round++ {
			fmt.Fprintf(os.Stderr, "round %d/%d\n", round, r)
			for _, name := range order {
				for _, c := range []int{0, 1, 1000} {
					if name == "seq" && c == 0 {
						continue
					}
					measure(name, c, n, d, cases[name])
				}
			}
			pingpong(trips, d)
		}
	default:
		body, ok := cases[*caseName]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown case %q\n", *caseName)
			os.Exit(2)
		}
		measure(*caseName, *capacity, n, d, body)
	}
	if sink == 42 {
		fmt.Fprintln(os.Stderr, "")
	}
}
