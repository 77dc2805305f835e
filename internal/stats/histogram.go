package stats

import (
	"sync/atomic"
	"time"
)

// NumBuckets is the number of finite bucket bounds of a Histogram; a
// snapshot has one more count, for durations above the last bound.
const NumBuckets = 18

// bucketBounds are the inclusive upper bounds of the buckets: the 1-2.5-5
// series of Prometheus's DefBuckets (5 ms … 10 s), extended down to 25 µs,
// where a proxy's replies mostly fall. It is read only; Bounds returns a
// copy for callers.
var bucketBounds = [NumBuckets]time.Duration{
	25 * time.Microsecond,
	50 * time.Microsecond,
	100 * time.Microsecond,
	250 * time.Microsecond,
	500 * time.Microsecond,
	1 * time.Millisecond,
	2500 * time.Microsecond,
	5 * time.Millisecond,
	10 * time.Millisecond,
	25 * time.Millisecond,
	50 * time.Millisecond,
	100 * time.Millisecond,
	250 * time.Millisecond,
	500 * time.Millisecond,
	1 * time.Second,
	2500 * time.Millisecond,
	5 * time.Second,
	10 * time.Second,
}

// Bounds returns the inclusive upper bounds of a Histogram's buckets, in
// increasing order.
func Bounds() []time.Duration {
	b := bucketBounds
	return b[:]
}

// Histogram counts latencies in fixed buckets. Observe uses atomic adds
// only, so any number of goroutines may call it and Snapshot at once; the
// zero value is ready to use.
//
// Every Observe writes two words of the Histogram, so one Histogram written
// from every core makes their caches fight over it. On a hot path, give
// each writer (a backend connection's reader, say) a Histogram of its own,
// and Merge them when stats are collected.
type Histogram struct {
	counts [NumBuckets + 1]atomic.Uint64 // the last one counts durations above every bound
	sum    atomic.Int64                  // nanoseconds
}

// Observe counts one duration. A negative duration (a clock stepped
// backwards) counts as zero.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	// Linear from the smallest bound: most requests are fast, so the loop
	// usually ends within a few predictable comparisons.
	i := 0
	for i < NumBuckets && d > bucketBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Merge adds src's counts and sum to h, for a Source that keeps one
// Histogram per writer and reports their total.
func (h *Histogram) Merge(src *Histogram) {
	for i := range src.counts {
		if n := src.counts[i].Load(); n != 0 {
			h.counts[i].Add(n)
		}
	}
	h.sum.Add(src.sum.Load())
}

// Snapshot returns the current counts. Concurrent Observes may be counted
// in the buckets and not yet in the sum, or the other way round; the skew
// is at most the Observes in flight.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// HistogramSnapshot is a Histogram's counts at one moment.
type HistogramSnapshot struct {
	// Counts[i] counts durations d with Bounds()[i-1] < d <= Bounds()[i];
	// Counts[NumBuckets] those above the last bound. They are per bucket,
	// not cumulative.
	Counts [NumBuckets + 1]uint64
	Sum    time.Duration
}

// Count returns the number of durations observed.
func (s *HistogramSnapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}
