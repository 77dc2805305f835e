package rediscmd

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// These tests compare the table with a real redis-server 7.0: its COMMAND
// reply (arity, key positions, flags), COMMAND GETKEYS (which arguments are
// keys) and the error replies the proxy repeats.

// commandInfo is one entry of Redis's COMMAND reply.
type commandInfo struct {
	name              string
	arity             int
	flags             map[string]bool
	first, last, step int
	subs              []string
}

// redisCommands returns every command and subcommand of the server's
// COMMAND reply by name ("object|encoding" for a subcommand).
func redisCommands(t *testing.T, c *respClient) map[string]commandInfo {
	t.Helper()
	reply, err := c.doString("COMMAND")
	if err != nil {
		t.Fatal(err)
	}
	all := make(map[string]commandInfo)
	var add func(entry any)
	add = func(entry any) {
		e, ok := entry.([]any)
		if !ok || len(e) < 10 {
			t.Fatalf("COMMAND entry %v", entry)
		}
		info := commandInfo{
			name:  e[0].(string),
			arity: int(e[1].(int64)),
			flags: make(map[string]bool),
			first: int(e[3].(int64)),
			last:  int(e[4].(int64)),
			step:  int(e[5].(int64)),
		}
		for _, f := range e[2].([]any) {
			info.flags[f.(string)] = true
		}
		for _, s := range e[9].([]any) {
			info.subs = append(info.subs, s.([]any)[0].(string))
			add(s)
		}
		all[info.name] = info
	}
	entries, ok := reply.([]any)
	if !ok {
		t.Fatalf("COMMAND replied %v", reply)
	}
	for _, e := range entries {
		add(e)
	}
	return all
}

// deliberateDifferences lists, by "command field", where the table
// differs from redis-server 7.0's COMMAND reply on purpose, with the
// reason. Arities, key ranges and the write and blocking flags all match;
// what the proxy adds lives in fields COMMAND does not have (MaxArgs,
// NumKeysAt, Extra).
var deliberateDifferences = map[string]string{
	"sort_ro movablekeys": "Redis finds SORT_RO's key with a function (sortROGetKeys), " +
		"but it is always argv[1], which the fixed range names",
	"migrate movablekeys": "MIGRATE's KEYS option names many keys; the proxy refuses MIGRATE, " +
		"so the table keeps only the single-key range",
}

// newerThan70 lists the rows of commands that redis-server 7.0 does not
// know, with the Redis version that added them: client libraries send them
// to any server, and the proxy answers them itself.
var newerThan70 = map[string]string{
	"client|setinfo":  "7.2: go-redis, redis-py and Jedis send it when they connect",
	"client|no-touch": "7.2",
}

func TestTableMatchesCommandInfo(t *testing.T) {
	srv := testutil.StartRedis(t)
	infos := redisCommands(t, dialResp(t, srv.Addr))
	if len(infos) < 300 {
		t.Fatalf("COMMAND listed only %d commands", len(infos))
	}

	// Every command Redis knows is in the table, and so is every
	// subcommand of the containers the table descends into.
	for name, info := range infos {
		container, sub, isSub := strings.Cut(name, "|")
		switch {
		case !isSub && Lookup([]byte(name)) == nil:
			t.Errorf("%s: known to Redis 7.0 but not in the table", name)
		case isSub && Lookup([]byte(container)).HasSubcommands() && Lookup([]byte(container)).Sub([]byte(sub)) == nil:
			t.Errorf("%s: a subcommand of %s that the table lacks", name, container)
		}
		_ = info
	}

	seen := make(map[string]bool)
	differ := func(name, field string, ours, redis any) {
		key := name + " " + field
		if _, ok := deliberateDifferences[key]; ok {
			seen[key] = true
			return
		}
		t.Errorf("%s: %s is %v in the table, %v in Redis 7.0", name, field, ours, redis)
	}
	for _, c := range All() {
		info, ok := infos[c.Name]
		_, newer := newerThan70[c.Name]
		switch {
		case ok && newer:
			t.Errorf("newerThan70[%q]: known to this redis-server; remove it", c.Name)
		case !ok && !newer:
			t.Errorf("%s: not known to Redis 7.0", c.Name)
		}
		if !ok {
			continue
		}
		if c.Arity != info.arity {
			differ(c.Name, "arity", c.Arity, info.arity)
		}
		k := c.Keys
		if k.FirstKey != info.first || k.LastKey != info.last || k.KeyStep != info.step {
			differ(c.Name, "keys", [3]int{k.FirstKey, k.LastKey, k.KeyStep}, [3]int{info.first, info.last, info.step})
		}
		if c.Flags.Has(Write) != info.flags["write"] {
			differ(c.Name, "write", c.Flags.Has(Write), info.flags["write"])
		}
		if c.Flags.Has(Blocking) != info.flags["blocking"] {
			differ(c.Name, "blocking", c.Flags.Has(Blocking), info.flags["blocking"])
		}
		// Redis flags the commands whose keys need parsing as movablekeys.
		movable := k.NumKeysAt > 0 || k.Extra != nil
		if movable != info.flags["movablekeys"] {
			differ(c.Name, "movablekeys", movable, info.flags["movablekeys"])
		}
	}
	for key := range deliberateDifferences {
		if !seen[key] {
			t.Errorf("deliberateDifferences[%q]: no longer differs; remove it", key)
		}
	}
}

// keySamples are requests of the commands whose keys depend on their
// arguments, for TestKeysMatchCommandGetKeys. Commands with fixed key
// positions get generated samples.
var keySamples = []string{
	"eval s 1 k1", "eval s 2 k1 k2 a1", "evalsha sha 1 k1 a1", "eval_ro s 2 k1 k2", "evalsha_ro sha 1 k1",
	"fcall f 1 k1 a1", "fcall_ro f 3 k1 k2 k3",
	"zunionstore d 2 k1 k2 WEIGHTS 1 2", "zinterstore d 1 k1", "zdiffstore d 3 k1 k2 k3",
	"zunion 2 k1 k2 WITHSCORES", "zinter 1 k1", "zdiff 3 k1 k2 k3", "zintercard 2 k1 k2 LIMIT 1",
	"sintercard 2 k1 k2", "sintercard 1 k1 LIMIT 3",
	"lmpop 2 k1 k2 LEFT", "lmpop 1 k1 RIGHT COUNT 2", "zmpop 2 k1 k2 MIN", "zmpop 1 k1 MAX COUNT 3",
	"blmpop 0 2 k1 k2 LEFT", "bzmpop 1 1 k1 MIN",
	"sort k1", "sort k1 STORE d", "sort k1 BY w_* GET # GET h->f STORE d", "sort k1 LIMIT 0 10 STORE d",
	"sort k1 BY store STORE d", "sort k1 STORE d STORE e", "sort k1 STORE", "sort k1 STORE limit 1 2",
	"sort k1 STORE get STORE d", "sort k1 ALPHA DESC", "sort_ro k1 BY w_* GET #",
	"georadius k1 0 0 1 km", "georadius k1 0 0 1 km STORE d", "georadius k1 0 0 1 km STOREDIST d",
	"georadius k1 0 0 1 km STORE d STOREDIST e", "georadius k1 0 0 1 km STORE",
	"georadiusbymember k1 m 1 km STORE d", "georadiusbymember k1 m 1 km WITHDIST",
	"georadius_ro k1 0 0 1 km WITHCOORD", "georadiusbymember_ro k1 m 1 km",
	"xread STREAMS k1 0", "xread COUNT 5 STREAMS k1 k2 0 0", "xread COUNT streams STREAMS k1 0",
	"xread BLOCK 0 STREAMS k1 0", "xread STREAMS k1 k2 0", "xread COUNT 1 k1 0",
	"xreadgroup GROUP g c STREAMS k1 >", "xreadgroup GROUP g c COUNT 1 NOACK STREAMS k1 k2 > >",
	"xreadgroup GROUP streams c STREAMS k1 >",
	"mset k1 v1 k2 v2", "mset k1 v1 k2", "msetnx k1 v1",
	"bitop AND d k1 k2", "lcs k1 k2", "copy k1 k2 REPLACE",
	"migrate h 6379 k1 0 1000", "memory usage k1 SAMPLES 0", "object encoding k1",
}

// generatedKeySamples returns a request for every command with fixed key
// positions, with distinct arguments, at the smallest argument count and
// two more when the arity allows it.
func generatedKeySamples() [][]string {
	var out [][]string
	for _, c := range All() {
		if c.Keys.FirstKey == 0 || c.Keys.NumKeysAt > 0 || c.Keys.Extra != nil {
			continue
		}
		prefix := strings.Split(c.Name, "|")
		counts := []int{max(c.Arity, -c.Arity)}
		if c.Arity < 0 {
			counts = append(counts, -c.Arity+2)
		}
		for _, n := range counts {
			args := slices.Clone(prefix)
			for i := len(args); i < n; i++ {
				args = append(args, fmt.Sprintf("a%d", i))
			}
			out = append(out, args)
		}
	}
	return out
}

// getKeysDifferences lists the requests whose keys the proxy finds
// differently from COMMAND GETKEYS on purpose, with the reason. Redis 7.0's
// COMMAND GETKEYS prefers the key specs of COMMAND DOCS to the functions
// the commands themselves follow; where they disagree, the table follows
// the command.
var getKeysDifferences = map[string]string{
	"georadius k1 0 0 1 km STORE d STOREDIST e": "GEORADIUS stores into the last of STORE and STOREDIST " +
		"(georadiusGeneric, georadiusGetKeys); the key specs name both",
	"xread COUNT streams STREAMS k1 0": "the key spec takes the first word STREAMS, here COUNT's value; " +
		"XREAD skips it (and then rejects the count)",
	"pfmerge a1": "PFMERGE with only a destination is valid; GETKEYS finds no source range and gives up",
}

func TestKeysMatchCommandGetKeys(t *testing.T) {
	srv := testutil.StartRedis(t)
	rc := dialResp(t, srv.Addr)
	samples := generatedKeySamples()
	for _, s := range keySamples {
		samples = append(samples, strings.Fields(s))
	}
	seen := make(map[string]bool)
	for _, sample := range samples {
		text := strings.Join(sample, " ")
		if _, ok := getKeysDifferences[text]; ok {
			seen[text] = true
			continue
		}
		args := make([][]byte, len(sample))
		for i, a := range sample {
			args[i] = []byte(a)
		}
		c := Lookup(args[0])
		if c != nil && c.HasSubcommands() && len(args) > 1 {
			c = c.Sub(args[1])
		}
		if c == nil {
			t.Errorf("%q: not in the table", sample)
			continue
		}
		idx, err := c.KeyIndexes(args, nil)
		var ours []string
		for _, i := range idx {
			ours = append(ours, sample[i])
		}

		reply, rerr := rc.doString(append([]string{"COMMAND", "GETKEYS"}, sample...)...)
		if rerr != nil {
			t.Fatal(rerr)
		}
		var redis []string
		redisErr, isErr := reply.(replyError)
		if !isErr {
			for _, k := range reply.([]any) {
				redis = append(redis, k.(string))
			}
		}
		switch {
		case errors.Is(err, ErrUnsupported) && len(idx) == 0 && !isErr && len(redis) == 0:
			// EVAL … 0: Redis finds no key; the proxy refuses it.
		case errors.Is(err, ErrUnsupported) && strings.Contains(err.Error(), "BLOCK"):
			// XREAD BLOCK: refused before its keys matter.
		case err != nil && isErr:
			// Both reject the request.
		case isErr && c.Kind == PubSub:
			// Shard channels have key positions but are not keys.
		case err != nil:
			// COMMAND GETKEYS does not validate everything: the command
			// itself must reject the request with the proxy's words.
			reply, rerr := rc.do(args...)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if reply != replyError(err.Error()) {
				t.Errorf("%q: error %v; Redis: keys %q, and the request gets %v", sample, err, redis, reply)
			}
		case isErr:
			t.Errorf("%q: keys %q; Redis: %v", sample, ours, redisErr)
		case !slices.Equal(ours, redis):
			t.Errorf("%q: keys %q; Redis: %q", sample, ours, redis)
		}
	}
	for text := range getKeysDifferences {
		if !seen[text] {
			t.Errorf("getKeysDifferences[%q]: not a sample", text)
		}
	}
}

// TestErrorsMatchRedis sends requests the proxy must refuse with Redis's
// own words to a real server and compares the replies.
func TestErrorsMatchRedis(t *testing.T) {
	srv := testutil.StartRedis(t)
	rc := dialResp(t, srv.Addr)
	// EVALSHA and FCALL look their script up before they read numkeys.
	if r, err := rc.doString("FUNCTION", "LOAD",
		"#!lua name=lib\nredis.register_function('f', function(keys, args) return #keys end)"); err != nil || r != "lib" {
		t.Fatalf("FUNCTION LOAD: %v, %v", r, err)
	}
	sha, err := rc.doString("SCRIPT", "LOAD", "return 1")
	if _, ok := sha.(string); err != nil || !ok {
		t.Fatalf("SCRIPT LOAD: %v, %v", sha, err)
	}
	long := strings.Repeat("x", 300)
	requests := [][]string{
		{"foo"}, {"foo", "a", "b"}, {"FOO", "Bar"}, {long, long, long},
		{"f\r\noo", "a\nb", "c\rd"}, {"foo\x00bar", "a\x00b"},
		{"object", "foo", "k"}, {"OBJECT", "Foo"}, {"xinfo", "nope"}, {"Xgroup", long},
		{"get"}, {"get", "a", "b"}, {"ping", "a", "b"}, {"object"}, {"object", "encoding"},
		{"object", "encoding", "a", "b"}, {"memory", "usage"}, {"command", "count", "x"},
		{"mset", "a"}, {"mset", "a", "1", "b"}, {"msetnx", "a", "1", "b"},
		{"eval", "return 1", "x", "a"}, {"eval", "return 1", "01", "a"}, {"eval", "return 1", "-1", "a"},
		{"eval", "return 1", "2", "a"}, {"eval", "return 1", "99999999999999999999", "a"},
		{"evalsha", sha.(string), "+1", "a"}, {"eval_ro", "return 1", "5", "a"},
		{"fcall", "f", "x", "a"}, {"fcall", "f", "-1", "a"}, {"fcall", "f", "3", "a"},
		{"zunionstore", "d", "0", "a"}, {"zunionstore", "d", "2", "a"}, {"zunionstore", "d", "x", "a"},
		{"zinterstore", "d", "-1", "a"}, {"zdiffstore", "d", "5", "a"},
		{"zunion", "0", "a"}, {"zdiff", "2", "a"}, {"zinter", "x", "a"},
		{"zintercard", "0", "a"}, {"zintercard", "3", "a", "b"},
		{"sintercard", "0", "a"}, {"sintercard", "x", "a"}, {"sintercard", "2", "a"},
		{"lmpop", "0", "a", "left"}, {"lmpop", "x", "a", "left"}, {"lmpop", "2", "a", "left"},
		{"zmpop", "-1", "a", "min"}, {"zmpop", "9223372036854775808", "a", "min"}, {"zmpop", "2", "a", "min"},
		{"xread", "STREAMS", "a", "b", "0"}, {"xread", "COUNT", "1", "a", "0"}, {"xread", "COUNT", "1", "STREAMS"},
		{"xreadgroup", "GROUP", "g", "c", "STREAMS", "a", "b", ">"},
	}
	for _, r := range requests {
		args := make([][]byte, len(r))
		for i, a := range r {
			args[i] = []byte(a)
		}
		c, err := Resolve(args)
		if err == nil {
			_, err = c.KeyIndexes(args, nil)
		}
		reply, rerr := rc.do(args...)
		if rerr != nil {
			t.Fatal(rerr)
		}
		want, ok := reply.(replyError)
		if !ok {
			t.Errorf("%q: Redis replied %v, not an error", r, reply)
			continue
		}
		if err == nil || err.Error() != string(want) {
			t.Errorf("%q:\n got %v\nwant %s", r, err, want)
		}
	}
}
