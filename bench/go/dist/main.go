// Command dist measures etcd's Go client (clientv3/concurrency: Session, Mutex,
// Election) with the same cases and the same method as the "dist" family of
// gosync-bench, against the etcd server whose endpoint it is given.
//
// It is built in GOPATH mode against Debian's packaged etcd client
// (golang-etcd-server-dev, import path go.etcd.io/etcd/clientv3):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build .
//
// One invocation runs one measurement and prints one line of space-separated
// key=value pairs:
//
//	case=lock_uncontended sessions=1 ops=812 secs=0.4001 rate=2029.5
//	case=campaign sessions=1 ops=590 secs=0.4002 rate=1474.3
//	case=handoff sessions=4 ops=41 secs=1.0001 rate=41.0 min_share=0.98 max_share=1.07 handoffs=37 p50_ms=98.1 p90_ms=99.6 p99_ms=100.2
//
// Cases:
//
//	lock_uncontended  one session: Lock, Unlock in a loop for -dur (ops/s)
//	campaign          one session: Campaign, Resign in a loop for -dur (ops/s)
//	handoff           -sessions sessions, each looping Lock, a tiny critical
//	                  section, Unlock for -dur: hand-offs/s, the per-session
//	                  shares of the acquisitions, and the hand-off latency
//	                  percentiles (from the holder's Unlock call to the next
//	                  owner's Lock returning, counted only for owners that were
//	                  already waiting when that Unlock was called)
//
// The share of a session is its acquisition count divided by the mean count per
// session. The critical section checks mutual exclusion and that the revision of
// each acquisition is above the previous owner's; a violation is reported on
// stderr as "VIOLATION: ..." with exit status 3. Other failures exit with status 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

var (
	endpoint = flag.String("endpoint", "", "etcd client URL(s), comma-separated (required)")
	caseName = flag.String("case", "", "case to run: lock_uncontended, campaign, handoff")
	sessions = flag.Int("sessions", 4, "number of sessions in the handoff case")
	dur      = flag.Duration("dur", 400*time.Millisecond, "duration of the measurement")
	prefix   = flag.String("prefix", "", "key prefix for this measurement (default: one of its own)")
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "dist: "+format+"\n", args...)
	os.Exit(1)
}

func violation(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "VIOLATION: "+format+"\n", args...)
	os.Exit(3)
}

func newSession(cli *clientv3.Client) *concurrency.Session {
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(60))
	if err != nil {
		fail("new session: %v", err)
	}
	return s
}

func lockUncontended(cli *clientv3.Client, pfx string, d time.Duration) {
	s := newSession(cli)
	defer s.Close()
	m := concurrency.NewMutex(s, pfx)
	ctx := context.Background()
	// Warm-up: the first round trips of a session are not measured.
	if err := m.Lock(ctx); err != nil {
		fail("lock: %v", err)
	}
	if err := m.Unlock(ctx); err != nil {
		fail("unlock: %v", err)
	}
	var ops uint64
	var last int64
	t0 := time.Now()
	for time.Since(t0) < d {
		if err := m.Lock(ctx); err != nil {
			fail("lock: %v", err)
		}
		rev := m.Header().Revision
		if rev <= last {
			violation("acquisition revision %d not above the previous one %d", rev, last)
		}
		last = rev
		if err := m.Unlock(ctx); err != nil {
			fail("unlock: %v", err)
		}
		ops++
	}
	secs := time.Since(t0).Seconds()
	fmt.Printf("case=lock_uncontended sessions=1 ops=%d secs=%.4f rate=%.2f\n", ops, secs, float64(ops)/secs)
}

func campaign(cli *clientv3.Client, pfx string, d time.Duration) {
	s := newSession(cli)
	defer s.Close()
	e := concurrency.NewElection(s, pfx)
	ctx := context.Background()
	if err := e.Campaign(ctx, "v"); err != nil {
		fail("campaign: %v", err)
	}
	if err := e.Resign(ctx); err != nil {
		fail("resign: %v", err)
	}
	var ops uint64
	t0 := time.Now()
	for time.Since(t0) < d {
		if err := e.Campaign(ctx, "v"); err != nil {
			fail("campaign: %v", err)
		}
		if err := e.Resign(ctx); err != nil {
			fail("resign: %v", err)
		}
		ops++
	}
	secs := time.Since(t0).Seconds()
	fmt.Printf("case=campaign sessions=1 ops=%d secs=%.4f rate=%.2f\n", ops, secs, float64(ops)/secs)
}

// released records who released the lock last and when its Unlock call began.
type released struct {
	mu   sync.Mutex
	who  int
	at   time.Time
	some bool
}

func handoff(cli *clientv3.Client, pfx string, n int, d time.Duration) {
	ss := make([]*concurrency.Session, n)
	ms := make([]*concurrency.Mutex, n)
	for i := range ss {
		ss[i] = newSession(cli)
		ms[i] = concurrency.NewMutex(ss[i], pfx)
		if err := ms[i].Lock(context.Background()); err != nil {
			fail("lock: %v", err)
		}
		if err := ms[i].Unlock(context.Background()); err != nil {
			fail("unlock: %v", err)
		}
	}
	defer func() {
		for _, s := range ss {
			s.Close()
		}
	}()

	var (
		inside   atomic.Bool
		lastRev  atomic.Int64
		counter  uint64 // protected by the distributed lock only
		rel      released
		latMu    sync.Mutex
		lat      []time.Duration
		wg       sync.WaitGroup
		failures = make(chan error, n)
	)
	counts := make([]uint64, n)
	start := time.Now()
	end := start.Add(d)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(me int) {
			defer wg.Done()
			m := ms[me]
			for {
				called := time.Now()
				if !called.Before(end) {
					return
				}
				if err := m.Lock(ctx); err != nil {
					if ctx.Err() != nil {
						return
					}
					failures <- fmt.Errorf("lock: %v", err)
					return
				}
				got := time.Now()
				if inside.Swap(true) {
					violation("two sessions hold the lock at once")
				}
				rev := m.Header().Revision
				if prev := lastRev.Load(); rev <= prev {
					violation("acquisition revision %d not above the previous owner's %d", rev, prev)
				}
				lastRev.Store(rev)
				counted := got.Before(end)
				rel.mu.Lock()
				if counted && rel.some && rel.who != me && called.Before(rel.at) {
					latMu.Lock()
					lat = append(lat, got.Sub(rel.at))
					latMu.Unlock()
				}
				rel.some = false
				rel.mu.Unlock()
				if counted {
					counter++
					counts[me]++
				}
				rel.mu.Lock()
				rel.who, rel.at, rel.some = me, time.Now(), true
				rel.mu.Unlock()
				inside.Store(false)
				if err := m.Unlock(context.Background()); err != nil {
					failures <- fmt.Errorf("unlock: %v", err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	select {
	case err := <-failures:
		fail("%v", err)
	default:
	}
	var total, min, max uint64
	min = math.MaxUint64
	for _, c := range counts {
		total += c
		if c < min {
			min = c
		}
		if c > max {
			max = c
		}
	}
	if counter != total {
		violation("the fenced counter is %d, the sessions counted %d acquisitions", counter, total)
	}
	secs := d.Seconds()
	line := fmt.Sprintf("case=handoff sessions=%d ops=%d secs=%.4f rate=%.2f", n, total, secs, float64(total)/secs)
	if total > 0 {
		mean := float64(total) / float64(n)
		line += fmt.Sprintf(" min_share=%.4f max_share=%.4f", float64(min)/mean, float64(max)/mean)
	}
	line += fmt.Sprintf(" handoffs=%d", len(lat))
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		for _, p := range []int{50, 90, 99} {
			line += fmt.Sprintf(" p%d_ms=%.4f", p, float64(percentile(lat, p).Nanoseconds())/1e6)
		}
	}
	fmt.Println(line)
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := int(math.Ceil(float64(p) / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func main() {
	flag.Parse()
	if *endpoint == "" {
		fail("-endpoint is required (an etcd client URL such as http://127.0.0.1:2379)")
	}
	if *sessions < 1 {
		fail("-sessions must be at least 1")
	}
	pfx := *prefix
	if pfx == "" {
		pfx = fmt.Sprintf("/bench-go/%s/%d", *caseName, time.Now().UnixNano())
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(*endpoint, ","),
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		fail("connecting to %s: %v", *endpoint, err)
	}
	defer cli.Close()
	switch *caseName {
	case "lock_uncontended":
		lockUncontended(cli, pfx, *dur)
	case "campaign":
		campaign(cli, pfx, *dur)
	case "handoff":
		handoff(cli, pfx, *sessions, *dur)
	default:
		fail("unknown -case %q (lock_uncontended, campaign, handoff)", *caseName)
	}
}
