package stats

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultSlowLogCapacity is the number of entries a SlowLog keeps when
	// NewSlowLog is given no capacity: Redis's slowlog-max-len.
	DefaultSlowLogCapacity = 128
	// SlowKeyMax is how many bytes of a key a SlowEntry keeps: Redis's
	// SLOWLOG_ENTRY_MAX_STRING.
	SlowKeyMax = 128
)

// SlowEntry is one request that took longer than its pool's
// slowlog_slower_than.
type SlowEntry struct {
	ID      uint64 // set by Add: 1 for the first entry ever added, then 2, …
	Time    time.Time
	Pool    string
	Server  string // the server's ring name
	Command string
	// Key is the request's (first) key. Add cuts a longer one to
	// SlowKeyMax bytes followed by "... (N more bytes)", as Redis's
	// SLOWLOG does with long arguments.
	Key     string
	Latency time.Duration
}

// SlowLog keeps the latest slow requests in a ring of fixed capacity. Add
// is meant for the rare slow request, so a mutex guards it. The methods
// are safe for concurrent use.
type SlowLog struct {
	mu      sync.Mutex
	entries []SlowEntry // guarded by mu; the ring, len == capacity
	next    int         // guarded by mu; where the next entry goes
	added   uint64      // guarded by mu; entries ever added
}

// NewSlowLog returns a SlowLog that keeps the latest capacity entries, or
// DefaultSlowLogCapacity if capacity is not positive.
func NewSlowLog(capacity int) *SlowLog {
	if capacity <= 0 {
		capacity = DefaultSlowLogCapacity
	}
	return &SlowLog{entries: make([]SlowEntry, capacity)}
}

// Add records e, replacing the oldest entry once the log is full. The
// strings are copied, so the caller may pass strings that alias its
// buffers (built with unsafe.String, say).
func (l *SlowLog) Add(e SlowEntry) {
	e.Pool = strings.Clone(e.Pool)
	e.Server = strings.Clone(e.Server)
	e.Command = strings.Clone(e.Command)
	if n := len(e.Key) - SlowKeyMax; n > 0 {
		e.Key = e.Key[:SlowKeyMax] + "... (" + strconv.Itoa(n) + " more bytes)"
	} else {
		e.Key = strings.Clone(e.Key)
	}
	l.mu.Lock()
	l.added++
	e.ID = l.added
	l.entries[l.next] = e
	l.next = (l.next + 1) % len(l.entries)
	l.mu.Unlock()
}

// Entries returns the entries kept, newest first.
func (l *SlowLog) Entries() []SlowEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entriesLocked()
}

func (l *SlowLog) entriesLocked() []SlowEntry {
	n := min(l.added, uint64(len(l.entries)))
	out := make([]SlowEntry, n)
	for i := range out {
		j := (l.next - 1 - i + 2*len(l.entries)) % len(l.entries)
		out[i] = l.entries[j]
	}
	return out
}

// Added returns the number of entries ever added, including those the ring
// has since dropped.
func (l *SlowLog) Added() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.added
}

// Capacity returns the number of entries the log keeps.
func (l *SlowLog) Capacity() int { return len(l.entries) }

// slowEntryJSON is the HTTP form of a SlowEntry. Latency is in
// microseconds, the unit of Redis's SLOWLOG GET and of
// slowlog_slower_than.
type slowEntryJSON struct {
	ID        uint64 `json:"id"`
	Time      string `json:"time"` // RFC 3339 with nanoseconds, UTC
	Pool      string `json:"pool"`
	Server    string `json:"server"`
	Command   string `json:"command"`
	Key       string `json:"key"`
	LatencyUS int64  `json:"latency_us"`
}

// slowLogJSON is the document served at /slowlog.
type slowLogJSON struct {
	Capacity int             `json:"capacity"`
	Added    uint64          `json:"added"`
	Entries  []slowEntryJSON `json:"entries"` // newest first
}

// MarshalJSON encodes the log as served at /slowlog:
//
//	{"capacity":128,"added":3,"entries":[{"id":3,"time":"2026-01-02T03:04:05.123456789Z",
//	 "pool":"alpha","server":"127.0.0.1:6379","command":"get","key":"k","latency_us":12345}, …]}
//
// with the entries newest first. A nil log encodes as an empty one of
// capacity 0.
func (l *SlowLog) MarshalJSON() ([]byte, error) {
	doc := slowLogJSON{Entries: []slowEntryJSON{}}
	if l != nil {
		l.mu.Lock()
		doc.Capacity, doc.Added = len(l.entries), l.added
		entries := l.entriesLocked()
		l.mu.Unlock()
		for _, e := range entries {
			doc.Entries = append(doc.Entries, slowEntryJSON{
				ID:        e.ID,
				Time:      e.Time.UTC().Format(time.RFC3339Nano),
				Pool:      e.Pool,
				Server:    e.Server,
				Command:   e.Command,
				Key:       e.Key,
				LatencyUS: e.Latency.Microseconds(),
			})
		}
	}
	return json.Marshal(doc)
}
