package stats

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestSlowLogRing(t *testing.T) {
	tests := []struct {
		capacity, adds int
		wantIDs        []uint64 // newest first
	}{
		{3, 0, nil},
		{3, 1, []uint64{1}},
		{3, 3, []uint64{3, 2, 1}},
		{3, 4, []uint64{4, 3, 2}},
		{3, 7, []uint64{7, 6, 5}},
		{1, 5, []uint64{5}},
		{0, 2, []uint64{2, 1}}, // capacity 0 means the default
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("cap%d_adds%d", tc.capacity, tc.adds), func(t *testing.T) {
			l := NewSlowLog(tc.capacity)
			for i := range tc.adds {
				l.Add(SlowEntry{Command: fmt.Sprint("cmd", i+1), Latency: time.Duration(i+1) * time.Millisecond})
			}
			got := l.Entries()
			if len(got) != len(tc.wantIDs) {
				t.Fatalf("%d entries, want %d", len(got), len(tc.wantIDs))
			}
			for i, e := range got {
				if e.ID != tc.wantIDs[i] || e.Command != fmt.Sprint("cmd", e.ID) || e.Latency != time.Duration(e.ID)*time.Millisecond {
					t.Errorf("entry %d = %+v, want id %d", i, e, tc.wantIDs[i])
				}
			}
			if l.Added() != uint64(tc.adds) {
				t.Errorf("Added() = %d", l.Added())
			}
		})
	}
	if c := NewSlowLog(-1).Capacity(); c != 128 {
		t.Errorf("default capacity %d", c)
	}
}

func TestSlowLogKey(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"", ""},
		{"user:1", "user:1"},
		{strings.Repeat("k", 128), strings.Repeat("k", 128)},
		{strings.Repeat("k", 129), strings.Repeat("k", 128) + "... (1 more bytes)"},
		{strings.Repeat("k", 1000), strings.Repeat("k", 128) + "... (872 more bytes)"},
	}
	for _, tc := range tests {
		l := NewSlowLog(1)
		l.Add(SlowEntry{Key: tc.key})
		if got := l.Entries()[0].Key; got != tc.want {
			t.Errorf("key of %d bytes kept as %q, want %q", len(tc.key), got, tc.want)
		}
	}
}

// TestSlowLogCopies checks that Add keeps no reference to the caller's
// memory: the proxy may pass strings that alias its reusable buffers.
func TestSlowLogCopies(t *testing.T) {
	buf := []byte("alphas1getkey")
	alias := func(i, j int) string { return unsafe.String(&buf[i], j-i) }
	l := NewSlowLog(2)
	l.Add(SlowEntry{Pool: alias(0, 5), Server: alias(5, 7), Command: alias(7, 10), Key: alias(10, 13)})
	copy(buf, "XXXXXXXXXXXXX")
	e := l.Entries()[0]
	if e.Pool != "alpha" || e.Server != "s1" || e.Command != "get" || e.Key != "key" {
		t.Errorf("entry changed with the caller's buffer: %+v", e)
	}
}

func TestSlowLogJSON(t *testing.T) {
	l := NewSlowLog(2)
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	l.Add(SlowEntry{Time: at, Pool: "p", Server: "s", Command: "get", Key: "a", Latency: 1500 * time.Microsecond})
	l.Add(SlowEntry{Time: at, Pool: "p", Server: `we"ird`, Command: "mget", Key: "b\n", Latency: 2 * time.Second})
	l.Add(SlowEntry{Time: at, Pool: "p", Server: "s", Command: "set", Key: "c", Latency: 3 * time.Millisecond})
	got, err := l.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"capacity":2,"added":3,"entries":[` +
		`{"id":3,"time":"2026-01-02T02:04:05.123456789Z","pool":"p","server":"s","command":"set","key":"c","latency_us":3000},` +
		`{"id":2,"time":"2026-01-02T02:04:05.123456789Z","pool":"p","server":"we\"ird","command":"mget","key":"b\n","latency_us":2000000}]}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var nilLog *SlowLog
	if got, _ := nilLog.MarshalJSON(); string(got) != `{"capacity":0,"added":0,"entries":[]}` {
		t.Errorf("nil log: %s", got)
	}
	if !json.Valid(got) {
		t.Error("invalid JSON")
	}
}

func TestSlowLogConcurrent(t *testing.T) {
	l := NewSlowLog(16)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				l.Add(SlowEntry{Pool: fmt.Sprint(g), Latency: time.Duration(i)})
				if i%50 == 0 {
					_ = l.Entries()
					_, _ = l.MarshalJSON()
				}
			}
		}()
	}
	wg.Wait()
	es := l.Entries()
	if len(es) != 16 || l.Added() != 800 || es[0].ID != 800 || es[15].ID != 785 {
		t.Errorf("%d entries, added %d, ids %d…%d", len(es), l.Added(), es[0].ID, es[len(es)-1].ID)
	}
}

func BenchmarkSlowLogAdd(b *testing.B) {
	l := NewSlowLog(0)
	e := SlowEntry{Time: time.Now(), Pool: "alpha", Server: "127.0.0.1:6379", Command: "get", Key: "user:1000", Latency: 20 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		l.Add(e)
	}
}
