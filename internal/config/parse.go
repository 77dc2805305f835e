package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder turns a YAML document into a Config, collecting every problem
// instead of stopping at the first.
type decoder struct {
	file string
	errs Errors
}

func (d *decoder) add(line int, pool, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Pool: pool, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// poolState is what validation needs to know about a pool beyond the Pool.
type poolState struct {
	pool       *Pool
	keys       map[string]int // key → line, for each key present in the file
	groupLines []int          // line of each entry of pool.Groups
	dup        bool           // a second pool of the same name: skip cross-pool checks
	broken     bool           // not a mapping: already reported, skip validation
}

// decode parses data and returns the Config, or nil after recording
// problems in d.errs.
func (d *decoder) decode(data []byte) *Config {
	top := d.document(data)
	if top == nil {
		return nil
	}
	switch {
	case isNull(top) || (top.Kind == yaml.MappingNode && len(top.Content) == 0):
		d.add(0, "", "", "the file defines no pools")
		return nil
	case top.Kind != yaml.MappingNode:
		d.add(top.Line, "", "", "the top level must map pool names to pools (alpha:, then its keys indented below), not %s", kindName(top))
		return nil
	}

	table := make(map[string]key)
	for _, k := range keyTable() {
		table[k.Name] = k
	}
	cfg := &Config{Path: d.file}
	var states []*poolState
	seen := make(map[string]int) // pool name → line
	for i := 0; i+1 < len(top.Content); i += 2 {
		kn, vn := deref(top.Content[i]), deref(top.Content[i+1])
		line := top.Content[i].Line
		if kn == nil || kn.Kind != yaml.ScalarNode {
			d.add(line, "", "", "a pool name must be plain text, not %s", kindName(kn))
			continue
		}
		name := kn.Value
		if name == "" {
			d.add(line, "", "", "a pool has an empty name")
			continue
		}
		st := d.pool(name, line, vn, table)
		if first, ok := seen[name]; ok {
			d.add(line, name, "", "is defined twice (first on line %d); pool names must be unique", first)
			st.dup = true
		} else {
			seen[name] = line
			cfg.Pools = append(cfg.Pools, st.pool)
		}
		states = append(states, st)
	}
	d.validate(states)
	if len(d.errs) > 0 {
		return nil
	}
	return cfg
}

// document returns the top node of the file's one YAML document, or nil
// after recording why there is none.
func (d *decoder) document(data []byte) (top *yaml.Node) {
	// yaml.v3 reports bad input by returning errors; this recover is a
	// backstop so that a bug in it cannot crash the proxy at startup.
	defer func() {
		if r := recover(); r != nil {
			d.add(0, "", "", "the YAML parser failed: %v", r)
			top = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.add(0, "", "", "the file is empty; it must define at least one pool")
		} else {
			d.syntaxError(data, err)
		}
		return nil
	}
	// twemproxy reads exactly one document (conf_validate_document).
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.add(secondDocumentLine(data), "", "", "a second YAML document starts here; put every pool in one document")
	case !errors.Is(err, io.EOF):
		d.syntaxError(data, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		d.add(0, "", "", "the file is empty; it must define at least one pool")
		return nil
	}
	return deref(doc.Content[0])
}

// secondDocumentLine returns the line of the "---" that starts the second
// document: the first marker after some content. yaml.v3 does not give the
// line of a document node itself.
func secondDocumentLine(data []byte) int {
	content := false
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimRight(l, "\r")
		isMarker := strings.HasPrefix(l, "---") && (len(l) == 3 || l[3] == ' ' || l[3] == '\t')
		switch {
		case isMarker && content:
			return i + 1
		case isMarker, strings.TrimSpace(l) == "", strings.HasPrefix(strings.TrimSpace(l), "#"), strings.HasPrefix(l, "%"):
		default:
			content = true
		}
	}
	return 0
}

// pool decodes one pool's mapping of keys.
func (d *decoder) pool(name string, line int, v *yaml.Node, table map[string]key) *poolState {
	p := DefaultPool()
	p.Name, p.Line = name, line
	st := &poolState{pool: p, keys: make(map[string]int)}
	switch {
	case isNull(v):
		d.add(line, name, "", "has no keys (it needs at least listen: and servers:, indented below the pool name)")
		st.broken = true
		return st
	case v.Kind != yaml.MappingNode:
		d.add(line, name, "", "must be a mapping of keys like listen: and servers:, not %s", kindName(v))
		st.broken = true
		return st
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		kn := deref(v.Content[i])
		kline := v.Content[i].Line
		switch {
		case kn == nil || kn.Kind != yaml.ScalarNode:
			d.add(kline, name, "", "a key must be plain text, not %s", kindName(kn))
			continue
		case kn.Tag == "!!merge":
			d.add(kline, name, "", "YAML merge keys (<<) are not supported; write the keys out in each pool")
			continue
		}
		k := kn.Value
		if first, ok := st.keys[k]; ok {
			d.add(kline, name, k, "key %q appears twice (first on line %d)", k, first)
			continue
		}
		row, ok := table[k]
		if !ok {
			d.unknownKey(kline, name, k)
			continue
		}
		st.keys[k] = kline
		row.set(&field{d: d, state: st, pool: name, key: k, keyLine: kline, node: deref(v.Content[i+1])}, p)
	}
	return st
}

func (d *decoder) unknownKey(line int, pool, k string) {
	names := keyNames(keyTable())
	if s := suggest(k, names); s != "" {
		d.add(line, pool, k, "unknown key %q (did you mean %q?)", k, s)
		return
	}
	d.add(line, pool, k, "unknown key %q (the keys are %s)", k, strings.Join(names, ", "))
}

// field is one key's value being decoded; setters report through it so that
// each message carries the file, line, pool and key.
type field struct {
	d       *decoder
	state   *poolState
	pool    string
	key     string
	keyLine int
	node    *yaml.Node // the value with aliases resolved; nil if missing
}

func (f *field) errorf(line int, format string, args ...any) {
	f.d.add(line, f.pool, f.key, format, args...)
}

// line is the value's line, or the key's when the value has none.
func (f *field) line() int {
	if f.node != nil && f.node.Line > 0 {
		return f.node.Line
	}
	return f.keyLine
}

// scalar returns the value's text, as twemproxy uses it: the text as
// written, whatever YAML type it resolves to (so redis_auth: 123456 is the
// password "123456", and "400" in quotes is a number). want describes the
// expected value for messages.
func (f *field) scalar(want string) (string, bool) {
	n := f.node
	switch {
	case n == nil || (n.Kind == yaml.ScalarNode && n.Value == ""):
		f.errorf(f.line(), "%s has no value (want %s)", f.key, want)
	case n.Kind != yaml.ScalarNode:
		f.errorf(f.line(), "%s must be %s, not %s%s", f.key, want, kindName(n), f.quoteHint())
	default:
		return n.Value, true
	}
	return "", false
}

// quoteHint helps with values YAML took for a collection: an unquoted
// hash_tag: {} is an empty mapping, listen: [::1]:22121 a syntax error.
func (f *field) quoteHint() string {
	if f.node.Style&yaml.FlowStyle == 0 {
		return ""
	}
	if f.key == "hash_tag" && len(f.node.Content) == 0 {
		open, closing := "{", "}"
		if f.node.Kind == yaml.SequenceNode {
			open, closing = "[", "]"
		}
		return fmt.Sprintf(` (quote it: hash_tag: "%s%s")`, open, closing)
	}
	return " (quote the value if it is meant as text)"
}

// item is one entry of a list value.
type item struct {
	value string
	line  int
}

// list returns the entries of a list value, each a non-empty scalar.
func (f *field) list(want string) []item {
	n := f.node
	switch {
	case isNull(n):
		f.errorf(f.line(), "%s has no entries (want a list of %s, one per line starting with \"- \")", f.key, want)
		return nil
	case n.Kind != yaml.SequenceNode:
		f.errorf(f.line(), "%s must be a list of %s, one per line starting with \"- \", not %s", f.key, want, kindName(n))
		return nil
	case len(n.Content) == 0:
		f.errorf(f.line(), "%s has no entries (want a list of %s)", f.key, want)
		return nil
	}
	var out []item
	for _, c := range n.Content {
		line := c.Line
		c = deref(c)
		switch {
		case c == nil || (c.Kind == yaml.ScalarNode && c.Value == ""):
			f.errorf(line, "%s has an empty entry", f.key)
		case c.Kind != yaml.ScalarNode:
			f.errorf(line, "each entry of %s must be %s, not %s", f.key, want, kindName(c))
		default:
			out = append(out, item{c.Value, line})
		}
	}
	return out
}

// deref resolves YAML aliases (*name) to the anchored node. yaml.v3 rejects
// unknown and self-referencing anchors, so the loop bound is only a guard.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// isNull reports whether n is missing or YAML null (an empty value, ~, null).
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// kindName names a node's kind for messages.
func kindName(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "empty"
	default:
		return "text"
	}
}
