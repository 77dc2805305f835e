package proxy

import (
	"fmt"
	"testing"
)

func TestChannelKey(t *testing.T) {
	for _, tc := range []struct{ ch, key string }{
		{"news", "news"},
		{"__keyspace@0__:user:1", "user:1"},
		{"__keyspace@12__:{tag}x", "{tag}x"},
		{"__keyspace@0__:", ""},
		{"__keyspace@0_:k", "__keyspace@0_:k"}, // not a keyspace channel
		{"__keyevent@0__:set", "__keyevent@0__:set"},
		{"", ""},
	} {
		if got := string(channelKey([]byte(tc.ch))); got != tc.key {
			t.Errorf("channelKey(%q) = %q, want %q", tc.ch, got, tc.key)
		}
	}
	if !everywhere("__keyevent@0__:expired") || everywhere("__keyspace@0__:k") || everywhere("news") {
		t.Error("everywhere: only keyevent channels are on every server")
	}
}

func TestPushKind(t *testing.T) {
	for _, tc := range []struct {
		verb          string
		kind          subKind
		confirm, okay bool
	}{
		{"message", subChannel, false, true},
		{"pmessage", subPattern, false, true},
		{"smessage", subShard, false, true},
		{"subscribe", subChannel, true, true},
		{"psubscribe", subPattern, true, true},
		{"ssubscribe", subShard, true, true},
		{"unsubscribe", subNone, true, true},
		{"sunsubscribe", subNone, true, true},
		{"pong", subNone, true, true},
		{"Message", 0, false, false},
		{"", 0, false, false},
	} {
		kind, confirm, ok := pushKind([]byte(tc.verb))
		if ok != tc.okay || ok && (kind != tc.kind || confirm != tc.confirm) {
			t.Errorf("pushKind(%q) = %v %v %v, want %v %v %v", tc.verb, kind, confirm, ok, tc.kind, tc.confirm, tc.okay)
		}
	}
}

func TestSubStateCounts(t *testing.T) {
	st := &subState{}
	add := func(kind subKind, name string) {
		if st.set[kind] == nil {
			st.set[kind] = make(map[string]uint64)
		}
		st.seq++
		st.set[kind][name] = st.seq
	}
	add(subChannel, "b")
	add(subChannel, "a")
	add(subPattern, "p*")
	add(subShard, "s")
	// As Redis counts: channels and patterns together, shard channels apart.
	if st.count(subChannel) != 3 || st.count(subPattern) != 3 || st.count(subShard) != 1 || st.total() != 4 {
		t.Errorf("counts %d %d %d total %d", st.count(subChannel), st.count(subPattern), st.count(subShard), st.total())
	}
	if got := fmt.Sprint(st.sorted(subChannel)); got != "[b a]" {
		t.Errorf("sorted = %s, want subscription order [b a]", got)
	}
}

// fragReplies makes a parent request whose fragments answered replies.
func fragReplies(replies ...string) *request {
	p := &request{}
	for _, r := range replies {
		p.frags = append(p.frags, &request{reply: []byte(r)})
	}
	return p
}

func TestPubSubMerges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		merge mergeFunc
		p     *request
		want  string
	}{
		{"union", mergeUnion, fragReplies("*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*0\r\n", "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"),
			"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"},
		{"union error", mergeUnion, fragReplies("*0\r\n", "-ERR wrong number of arguments for 'pubsub|channels' command\r\n"),
			"-ERR wrong number of arguments for 'pubsub|channels' command\r\n"},
		{"max", mergeMaxInt, fragReplies(":1\r\n", ":3\r\n", ":0\r\n"), ":3\r\n"},
		{"max not integer", mergeMaxInt, fragReplies(":1\r\n", "+OK\r\n"), string(errBadFragmentReply)},
	} {
		if got := string(tc.merge(tc.p, nil)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// NUMSUB a b e: a's count from server 1, b's from server 0, e (a
	// keyevent channel) summed.
	p := fragReplies("*6\r\n$1\r\na\r\n:5\r\n$1\r\nb\r\n:2\r\n$1\r\ne\r\n:1\r\n",
		"*6\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:7\r\n$1\r\ne\r\n:1\r\n")
	p.keyFrag = []int32{1, 0, -1}
	if got, want := string(mergeNumsub(p, nil)), "*6\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:2\r\n$1\r\ne\r\n:2\r\n"; got != want {
		t.Errorf("numsub: %q, want %q", got, want)
	}
	p = fragReplies("*2\r\n$1\r\na\r\n:5\r\n", "*0\r\n")
	p.keyFrag = []int32{0}
	if got := string(mergeNumsub(p, nil)); got != string(errBadFragmentReply) {
		t.Errorf("numsub with a short reply: %q", got)
	}
}
