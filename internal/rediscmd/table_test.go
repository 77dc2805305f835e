package rediscmd

import (
	"strings"
	"testing"
)

// mayHaveSeveralKeys reports whether a request of c can name more than one
// key.
func mayHaveSeveralKeys(c *Command) bool {
	k := c.Keys
	return k.FirstKey > 0 && k.LastKey != k.FirstKey || k.NumKeysAt > 0 || k.Extra != nil
}

func hasKeys(c *Command) bool {
	return c.Keys.FirstKey > 0 || c.Keys.NumKeysAt > 0 || c.Keys.Extra != nil
}

// TestTableRows checks the invariants every row must keep.
func TestTableRows(t *testing.T) {
	seen := make(map[string]bool)
	for _, c := range All() {
		name := c.Name
		if seen[name] {
			t.Errorf("%s: listed twice", name)
		}
		seen[name] = true
		if name != strings.ToLower(name) || name == "" {
			t.Errorf("%q: names are lower case and not empty", name)
		}
		container, sub, isSub := strings.Cut(name, "|")
		if len(sub) > maxNameLen || len(container) > maxNameLen {
			t.Errorf("%s: longer than maxNameLen %d", name, maxNameLen)
		}
		if isSub {
			p := Lookup([]byte(container))
			if p == nil || p.Sub([]byte(sub)) != c {
				t.Errorf("%s: not found as a subcommand of %q", name, container)
			}
			if c.HasSubcommands() {
				t.Errorf("%s: subcommands do not nest", name)
			}
		} else if Lookup([]byte(name)) != c {
			t.Errorf("%s: Lookup does not find it", name)
		}
		if c.Arity == 0 {
			t.Errorf("%s: arity 0", name)
		}
		if c.MaxArgs != 0 && (c.Arity > 0 || c.MaxArgs < -c.Arity) {
			t.Errorf("%s: MaxArgs %d contradicts arity %d", name, c.MaxArgs, c.Arity)
		}
		if c.Kind > PubSub {
			t.Errorf("%s: kind %v", name, c.Kind)
		}
		switch {
		case c.Kind == Unsupported && c.Reason == NoReason && !c.HasSubcommands():
			t.Errorf("%s: unsupported without a reason", name)
		case c.Kind != Unsupported && c.Reason != NoReason:
			t.Errorf("%s: %v with a reason", name, c.Kind)
		case c.Kind == Unsupported && c.Reason != NoReason && c.Err() == nil:
			t.Errorf("%s: no error reply", name)
		case c.Kind != Unsupported && c.Err() != nil:
			t.Errorf("%s: %v with an error reply", name, c.Kind)
		}
		if (c.Kind == MultiKey || c.Kind == Broadcast) != (c.Merge != MergeNone) {
			t.Errorf("%s: kind %v with merge %v", name, c.Kind, c.Merge)
		}
		if (c.Kind == SingleKey || c.Kind == MultiKey || c.Kind == Block) && !hasKeys(c) {
			t.Errorf("%s: %v without keys", name, c.Kind)
		}
		// WATCH is answered by the proxy, which routes it by its keys.
		if (c.Kind == Local && c.Name != "watch" || c.Kind == Keyless || c.Kind == Broadcast) && hasKeys(c) {
			t.Errorf("%s: %v with keys", name, c.Kind)
		}
		// BLMOVE and BRPOPLPUSH block on one server; BLPOP and the other
		// pops may block on several (CrossServer).
		if want := (c.Kind == SingleKey || c.Kind == Block && !c.CrossServer()) && mayHaveSeveralKeys(c); c.Flags.Has(AllKeysOneServer) != want {
			t.Errorf("%s: AllKeysOneServer should be %v", name, want)
		}
		if (c.Kind == Block) != (c.Flags.Has(Blocking) && c.Kind != SingleKey) {
			t.Errorf("%s: kind %v with flags %v", name, c.Kind, c.Flags)
		}
		if c.Flags.Has(Interrupt) && (c.Kind != Broadcast || c.Merge != MergeAnyOK) {
			t.Errorf("%s: Interrupt is for broadcast kills, not %v with merge %v", name, c.Kind, c.Merge)
		}
		if c.Script == ScriptBody && c.Kind != SingleKey && c.Kind != Broadcast ||
			(c.Script == ScriptSHA || c.Script == ScriptFunction) && c.Kind != SingleKey {
			t.Errorf("%s: script argument %d on a %v command", name, c.Script, c.Kind)
		}
		if (c.Keys.NumKeysAt > 0) != (c.Keys.NumKeys != NumKeysNone) {
			t.Errorf("%s: NumKeysAt %d with rule %d", name, c.Keys.NumKeysAt, c.Keys.NumKeys)
		}
		if c.Keys.FirstKey > 0 && c.Keys.KeyStep < 1 || c.Keys.FirstKey == 0 && (c.Keys.LastKey != 0 || c.Keys.KeyStep != 0) {
			t.Errorf("%s: key range %+v", name, c.Keys)
		}
		if c.Twemproxy && c.Kind == Unsupported {
			t.Errorf("%s: served by twemproxy but unsupported here", name)
		}
		if c.HasSubcommands() && c.Kind != Unsupported && c.Arity != -1 {
			t.Errorf("%s: a container can only be served alone when its arity allows it", name)
		}
		if c.HasSubcommands() && c.Kind == Unsupported && c.Arity == -1 && c.Err() == nil {
			t.Errorf("%s: a container that may be called alone needs a reason to refuse it", name)
		}
	}
}

// TestCounts logs how many commands each Kind has, and keeps the numbers
// from changing unnoticed: update them with the table.
func TestCounts(t *testing.T) {
	byKind := make(map[Kind]int)
	twemproxy := 0
	for _, c := range All() {
		if c.HasSubcommands() && c.Kind == Unsupported {
			continue // counted through their subcommands (COMMAND is also served alone)
		}
		byKind[c.Kind]++
		if c.Twemproxy {
			twemproxy++
		}
	}
	for k := Unsupported; k <= PubSub; k++ {
		t.Logf("%-12v %3d", k, byKind[k])
	}
	t.Logf("%-12s %3d", "twemproxy", twemproxy)
	if twemproxy != 136 {
		t.Errorf("%d commands served by twemproxy, want 136", twemproxy)
	}
	want := map[Kind]int{Unsupported: 45, SingleKey: 171, MultiKey: 6, Local: 28, Keyless: 18, Broadcast: 9, Block: 8, PubSub: 9}
	for k, n := range want {
		if byKind[k] != n {
			t.Errorf("%v: %d commands, want %d", k, byKind[k], n)
		}
	}
}

func TestKindMergeReasonStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{SingleKey.String(), "single-key"},
		{Kind(9).String(), "kind(9)"},
		{MergeAllOK.String(), "all-ok"},
		{Broadcast.String(), "broadcast"},
		{MergeAnyOK.String(), "any-ok"},
		{Merge(7).String(), "merge(7)"},
		{ReasonKeyspace.String(), "it acts on the keys of every server, which the proxy does not gather yet"},
		{Reason(99).String(), "reason(99)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestFamilies(t *testing.T) {
	for name, want := range map[string]string{"get": "string", "zadd": "sorted-set", "hget": "hash",
		"object|encoding": "generic", "multi": "transactions", "pfadd": "hyperloglog", "xadd": "stream",
		"geoadd": "geo", "ping": "connection", "info": "server", "eval": "scripting", "lpush": "list",
		"sadd": "set", "publish": "pubsub", "del": "generic"} {
		var c *Command
		for _, x := range All() {
			if x.Name == name {
				c = x
			}
		}
		if c == nil || c.Family.String() != want {
			t.Errorf("family of %s: got %v, want %s", name, c, want)
		}
	}
}
