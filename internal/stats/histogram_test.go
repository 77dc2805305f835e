package stats

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBounds(t *testing.T) {
	b := Bounds()
	if len(b) != NumBuckets || b[0] != 25*time.Microsecond || b[len(b)-1] != 10*time.Second {
		t.Fatalf("Bounds() = %v", b)
	}
	if !slices.IsSorted(b) || len(slices.Compact(slices.Clone(b))) != len(b) {
		t.Errorf("bounds not strictly increasing: %v", b)
	}
	b[0] = 0
	if Bounds()[0] != 25*time.Microsecond {
		t.Error("Bounds() shares its array")
	}
}

func TestHistogramObserve(t *testing.T) {
	us, ms := time.Microsecond, time.Millisecond
	tests := []struct {
		d      time.Duration
		bucket int
	}{
		{0, 0},
		{-5 * us, 0}, // a clock stepped back counts as 0
		{1, 0},
		{25 * us, 0}, // bounds are inclusive, as Prometheus's le
		{25*us + 1, 1},
		{50 * us, 1},
		{99 * us, 2},
		{100 * us, 2},
		{101 * us, 3},
		{999 * us, 5},
		{ms, 5},
		{2 * ms, 6},
		{2500 * us, 6},
		{3 * ms, 7},
		{100 * ms, 11},
		{time.Second, 14},
		{10 * time.Second, 17},
		{10*time.Second + 1, NumBuckets},
		{time.Hour, NumBuckets},
	}
	for _, tc := range tests {
		var h Histogram
		h.Observe(tc.d)
		s := h.Snapshot()
		for i, c := range s.Counts {
			want := uint64(0)
			if i == tc.bucket {
				want = 1
			}
			if c != want {
				t.Errorf("Observe(%v): bucket %d has %d, want %d", tc.d, i, c, want)
			}
		}
		if want := max(tc.d, 0); s.Sum != want || s.Count() != 1 {
			t.Errorf("Observe(%v): sum %v count %d", tc.d, s.Sum, s.Count())
		}
	}
}

func TestHistogramConcurrentAndMerge(t *testing.T) {
	const goroutines, each = 4, 1000
	var h Histogram
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h.Observe(time.Duration(g*each+i) * time.Microsecond)
				if i%100 == 0 {
					_ = h.Snapshot() // reading while writing is allowed
				}
			}
		}()
	}
	wg.Wait()
	s := h.Snapshot()
	n := uint64(goroutines * each)
	if s.Count() != n {
		t.Fatalf("count %d, want %d", s.Count(), n)
	}
	// 0 µs … 3999 µs, each once.
	if want := time.Duration(n*(n-1)/2) * time.Microsecond; s.Sum != want {
		t.Errorf("sum %v, want %v", s.Sum, want)
	}
	if s.Counts[0] != 26 || s.Counts[5] != 500 || s.Counts[6] != 1500 || s.Counts[7] != 1499 {
		t.Errorf("counts %v", s.Counts)
	}

	var total Histogram
	total.Merge(&h)
	total.Merge(&h)
	m := total.Snapshot()
	if m.Count() != 2*n || m.Sum != 2*s.Sum || m.Counts[6] != 3000 {
		t.Errorf("merged: count %d sum %v counts %v", m.Count(), m.Sum, m.Counts)
	}
}

func TestHistogramObserveAllocs(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Observe(300 * time.Microsecond) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	for _, d := range []time.Duration{30 * time.Microsecond, 400 * time.Microsecond, 20 * time.Second} {
		b.Run(d.String(), func(b *testing.B) {
			var h Histogram
			b.ReportAllocs()
			for b.Loop() {
				h.Observe(d)
			}
		})
	}
}

// BenchmarkHistogramObserveParallel shows what one Histogram shared by
// every core costs (see the Histogram comment).
func BenchmarkHistogramObserveParallel(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(400 * time.Microsecond)
		}
	})
}

func BenchmarkHistogramSnapshot(b *testing.B) {
	var h Histogram
	h.Observe(time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Snapshot()
	}
}
