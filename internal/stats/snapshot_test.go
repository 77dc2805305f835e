package stats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// goldenSnapshot has a pool with shardproxy additions, one without servers
// and a name that needs escaping.
func goldenSnapshot() *Snapshot {
	return &Snapshot{
		Service: "nutcracker", Source: "host-1", Version: "0.5.0",
		Uptime: 42, Timestamp: 1700000000, TotalConnections: 7, CurrConnections: 3,
		Pools: []PoolSnapshot{
			{
				Name: "alpha", ClientEOF: 1, ClientErr: 2, ClientConnections: 3, ServerEjects: 4, ForwardError: 5, Fragments: 6,
				Extra: []Field{{"noreply_errors", 9}},
				Servers: []ServerSnapshot{
					{Name: "s1", ServerEOF: 1, ServerErr: 2, ServerTimedout: 3, ServerConnections: 4, ServerEjectedAt: 1700000000123456,
						Requests: 5, RequestBytes: 6, Responses: 7, ResponseBytes: 8, InQueue: 9, InQueueBytes: 10, OutQueue: 11, OutQueueBytes: 12},
					{Name: "127.0.0.1:6379", Requests: -1, Extra: []Field{{"server_failover", 2}}},
				},
			},
			{Name: `we"ird\`},
		},
	}
}

func TestAppendJSONGolden(t *testing.T) {
	want := `{"service":"nutcracker", "source":"host-1", "version":"0.5.0", "uptime":42, "timestamp":1700000000, "total_connections":7, "curr_connections":3, ` +
		`"alpha": {"client_eof":1, "client_err":2, "client_connections":3, "server_ejects":4, "forward_error":5, "fragments":6, "noreply_errors":9, ` +
		`"s1": {"server_eof":1, "server_err":2, "server_timedout":3, "server_connections":4, "server_ejected_at":1700000000123456, "requests":5, "request_bytes":6, "responses":7, "response_bytes":8, "in_queue":9, "in_queue_bytes":10, "out_queue":11, "out_queue_bytes":12},` +
		`"127.0.0.1:6379": {"server_eof":0, "server_err":0, "server_timedout":0, "server_connections":0, "server_ejected_at":0, "requests":-1, "request_bytes":0, "responses":0, "response_bytes":0, "in_queue":0, "in_queue_bytes":0, "out_queue":0, "out_queue_bytes":0, "server_failover":2}},` +
		`"we\"ird\\": {"client_eof":0, "client_err":0, "client_connections":0, "server_ejects":0, "forward_error":0, "fragments":0}}` + "\n"
	got := AppendJSON([]byte("prefix"), goldenSnapshot())
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("dst not kept: %q", got)
	}
	got = got[len("prefix"):]
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Error("not valid JSON")
	}
}

func TestAppendJSONEdges(t *testing.T) {
	tests := []struct {
		name string
		s    Snapshot
		want string
	}{
		{"no pools (nutcracker would print \",}\")", Snapshot{Service: "nutcracker"},
			`{"service":"nutcracker", "source":"", "version":"", "uptime":0, "timestamp":0, "total_connections":0, "curr_connections":0}` + "\n"},
		{"control characters and UTF-8 in names", Snapshot{Source: "h\tn\x01", Pools: []PoolSnapshot{{Name: "mé\n"}}},
			`{"service":"", "source":"h\tn\u0001", "version":"", "uptime":0, "timestamp":0, "total_connections":0, "curr_connections":0, ` +
				`"mé\n": {"client_eof":0, "client_err":0, "client_connections":0, "server_ejects":0, "forward_error":0, "fragments":0}}` + "\n"},
		{"two pools without servers", Snapshot{Pools: []PoolSnapshot{{Name: "a", Extra: []Field{{"x", 1}}}, {Name: "b"}}},
			`{"service":"", "source":"", "version":"", "uptime":0, "timestamp":0, "total_connections":0, "curr_connections":0, ` +
				`"a": {"client_eof":0, "client_err":0, "client_connections":0, "server_ejects":0, "forward_error":0, "fragments":0, "x":1},` +
				`"b": {"client_eof":0, "client_err":0, "client_connections":0, "server_ejects":0, "forward_error":0, "fragments":0}}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendJSON(nil, &tc.s)
			if string(got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Error("not valid JSON")
			}
		})
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	s := goldenSnapshot()
	buf := AppendJSON(nil, s)
	// Two: the key tables PoolStats and ServerStats, once per document.
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], s) }); n > 2 {
		t.Errorf("AppendJSON into a large enough buffer allocates %v times", n)
	}
}

func TestCountersMatchDescriptions(t *testing.T) {
	var p PoolSnapshot
	var s ServerSnapshot
	if len(p.counters()) != len(PoolStats()) || len(s.counters()) != len(ServerStats()) {
		t.Fatalf("counters %d/%d, descriptions %d/%d", len(p.counters()), len(s.counters()), len(PoolStats()), len(ServerStats()))
	}
	// Each pointer is a distinct field.
	for i, v := range s.counters() {
		*v = int64(i + 1)
	}
	seen := make(map[int64]bool)
	for _, v := range s.counters() {
		if seen[*v] {
			t.Errorf("counters() repeats a field")
		}
		seen[*v] = true
	}
}

func TestSort(t *testing.T) {
	s := Snapshot{Pools: []PoolSnapshot{
		{Name: "zeta", Servers: []ServerSnapshot{{Name: "127.0.0.1:26380"}, {Name: "127.0.0.1"}, {Name: "127.0.0.1:2637"}, {Name: "127.0.0.1:26379"}}},
		{Name: "ab", Servers: []ServerSnapshot{{Name: "bb"}, {Name: "aa"}, {Name: "c"}}},
		{Name: "abc"},
		{Name: "zz"},
	}}
	s.Sort()
	var got []string
	for _, p := range s.Pools {
		names := []string{}
		for _, sv := range p.Servers {
			names = append(names, sv.Name)
		}
		got = append(got, p.Name+fmt.Sprint(names))
	}
	// What nutcracker 0.5.0 prints for these names: shorter first, then
	// bytewise.
	want := []string{"ab[c aa bb]", "zz[]", "abc[]", "zeta[127.0.0.1 127.0.0.1:2637 127.0.0.1:26379 127.0.0.1:26380]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sorted %q, want %q", got, want)
	}
}

// member is one member of a JSON object, with its own members if it is an
// object, in document order.
type member struct {
	key     string
	value   any // json.Number, string, or nil for an object
	members []member
}

// parseOrdered parses a JSON object keeping the order of keys at every
// level, which encoding/json's maps lose.
func parseOrdered(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("want an object, got %v %v", tok, err)
	}
	ms, err := parseMembers(dec)
	if err != nil {
		return nil, err
	}
	if rest, _ := io.ReadAll(dec.Buffered()); strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("data after the object: %q", rest)
	}
	return ms, nil
}

func parseMembers(dec *json.Decoder) ([]member, error) {
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("key %v", tok)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, err
		}
		m := member{key: key}
		if tok == json.Delim('{') {
			if m.members, err = parseMembers(dec); err != nil {
				return nil, err
			}
		} else {
			m.value = tok
		}
		ms = append(ms, m)
	}
	_, err := dec.Token() // the closing '}'
	return ms, err
}

// keyPaths lists every key as a path ("pool/server/requests"), in order.
func keyPaths(ms []member, prefix string) []string {
	var out []string
	for _, m := range ms {
		out = append(out, prefix+m.key)
		out = append(out, keyPaths(m.members, prefix+m.key+"/")...)
	}
	return out
}

// snapshotFrom builds a Snapshot holding what nutcracker's parsed JSON
// holds, to write it again with AppendJSON.
func snapshotFrom(t *testing.T, ms []member) *Snapshot {
	t.Helper()
	num := func(m member) int64 {
		n, err := m.value.(json.Number).Int64()
		if err != nil {
			t.Fatalf("%s: %v", m.key, err)
		}
		return n
	}
	s := &Snapshot{}
	for _, m := range ms {
		switch m.key {
		case "service":
			s.Service = m.value.(string)
		case "source":
			s.Source = m.value.(string)
		case "version":
			s.Version = m.value.(string)
		case "uptime":
			s.Uptime = num(m)
		case "timestamp":
			s.Timestamp = num(m)
		case "total_connections":
			s.TotalConnections = num(m)
		case "curr_connections":
			s.CurrConnections = num(m)
		default:
			p := PoolSnapshot{Name: m.key}
			for i, pm := range m.members {
				if pm.members == nil {
					if i >= len(p.counters()) || PoolStats()[i].Name != pm.key {
						t.Fatalf("pool %s: key %d is %q", m.key, i, pm.key)
					}
					*p.counters()[i] = num(pm)
					continue
				}
				sv := ServerSnapshot{Name: pm.key}
				for j, sm := range pm.members {
					if j >= len(sv.counters()) || ServerStats()[j].Name != sm.key {
						t.Fatalf("server %s: key %d is %q", pm.key, j, sm.key)
					}
					*sv.counters()[j] = num(sm)
				}
				p.Servers = append(p.Servers, sv)
			}
			s.Pools = append(s.Pools, p)
		}
	}
	return s
}

// nutcrackerYAML configures pools and servers out of nutcracker's order,
// so that the comparison covers the order too. The pools share servers.
func nutcrackerYAML(t *testing.T, r1, r2 *testutil.Server) string {
	return fmt.Sprintf(`zeta:
  listen: 127.0.0.1:%d
  redis: true
  servers:
   - %s:1
   - %s:1 shard-b
   - %s:1 a
epsilon:
  listen: 127.0.0.1:%d
  servers:
   - %s:1 mc
   - %s:1
`, testutil.FreePort(t), r2.Addr, r1.Addr, r2.Addr, testutil.FreePort(t), r1.Addr, r2.Addr)
}

// TestJSONMatchesNutcracker compares AppendJSON with nutcracker 0.5.0's
// stats port: the same pools and servers give the same keys in the same
// order at every level, and nutcracker's values written again by
// AppendJSON give nutcracker's bytes exactly.
func TestJSONMatchesNutcracker(t *testing.T) {
	r1, r2 := testutil.StartRedis(t), testutil.StartRedis(t)
	yaml := nutcrackerYAML(t, r1, r2)
	nc := testutil.StartNutcracker(t, yaml, "-i", "100")

	// Some traffic, so that the counters are not all 0.
	c := nc.Dial(t)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 10 {
		fmt.Fprintf(c, "*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$1\r\nv\r\n", i)
	}
	buf := make([]byte, 0, 64)
	for len(buf) < 50 {
		n, err := c.Read(buf[len(buf):cap(buf)])
		if err != nil {
			t.Fatalf("reading replies: %v (after %q)", err, buf)
		}
		buf = buf[:len(buf)+n]
	}
	time.Sleep(250 * time.Millisecond) // two aggregation intervals

	theirs := testutil.ReadStats(t, nc.StatsAddr)
	ms, err := parseOrdered(theirs)
	if err != nil {
		t.Fatalf("nutcracker's JSON: %v\n%s", err, theirs)
	}

	// 1. The same names in configuration order, sorted, give nutcracker's
	// keys in nutcracker's order.
	ours := &Snapshot{Service: "nutcracker", Source: "h", Version: "0.5.0", Pools: []PoolSnapshot{
		{Name: "zeta", Servers: []ServerSnapshot{{Name: r2.Addr}, {Name: "shard-b"}, {Name: "a"}}},
		{Name: "epsilon", Servers: []ServerSnapshot{{Name: "mc"}, {Name: r2.Addr}}},
	}}
	ours.Sort()
	ourMembers, err := parseOrdered(AppendJSON(nil, ours))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keyPaths(ourMembers, ""), keyPaths(ms, ""); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("keys\n%q\nnutcracker's\n%q", got, want)
	}

	// 2. Byte for byte, values included: separators, spaces, the final
	// newline.
	s := snapshotFrom(t, ms)
	var requests int64
	for _, p := range s.Pools {
		for _, sv := range p.Servers {
			requests += sv.Requests
		}
	}
	if requests != 10 {
		t.Errorf("nutcracker counted %d requests, want 10:\n%s", requests, theirs)
	}
	if got := AppendJSON(nil, s); !bytes.Equal(got, theirs) {
		t.Errorf("AppendJSON\n%q\nnutcracker\n%q", got, theirs)
	}
	if !bytes.HasSuffix(theirs, []byte("}}}\n")) || !bytes.Contains(theirs, []byte(`"curr_connections":`)) {
		t.Errorf("unexpected shape: %q", theirs)
	}
	t.Logf("nutcracker: %s", theirs)
}

// TestJSONEscapingDiffersFromNutcracker pins the one deliberate difference
// in the layout: nutcracker writes a `"` or `\` in a name as is, which is
// not JSON; AppendJSON escapes it, and is otherwise identical.
func TestJSONEscapingDiffersFromNutcracker(t *testing.T) {
	r := testutil.StartRedis(t)
	name := `we"ird\x/mé`
	yaml := fmt.Sprintf("p\"q:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n   - %s:1 %s\n", testutil.FreePort(t), r.Addr, name)
	nc := testutil.StartNutcracker(t, yaml)
	theirs := testutil.ReadStats(t, nc.StatsAddr)
	if json.Valid(theirs) {
		t.Errorf("nutcracker's JSON is valid after all; the escaping difference may go: %s", theirs)
	}
	// The values are compared elsewhere: here every number is N.
	numbers := regexp.MustCompile(`[0-9]+`)
	source := regexp.MustCompile(`"source":"([^"]*)"`).FindSubmatch(theirs)
	if source == nil {
		t.Fatalf("no source: %s", theirs)
	}
	s := &Snapshot{Service: "nutcracker", Source: string(source[1]), Version: "0.5.0",
		Pools: []PoolSnapshot{{Name: `p"q`, Servers: []ServerSnapshot{{Name: name}}}}}
	ours := AppendJSON(nil, s)
	if !json.Valid(ours) {
		t.Errorf("AppendJSON is not valid JSON: %s", ours)
	}
	unescaped := strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(string(ours))
	if got, want := numbers.ReplaceAllString(unescaped, "N"), numbers.ReplaceAllString(string(theirs), "N"); got != want {
		t.Errorf("unescaped\n%q\nnutcracker\n%q", got, want)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	s := goldenSnapshot()
	buf := AppendJSON(nil, s)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], s)
	}
}
