package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found in a configuration file. It says where the
// problem is (file, line, pool, key) so that an operator can fix every
// problem in one edit instead of one restart per mistake.
type Error struct {
	File string // the path given to Load or Parse
	Line int    // 1-based; 0 when the problem has no line (missing or empty file)
	Pool string // the pool the problem is in; "" for file-level problems
	Key  string // the pool key the problem is about (e.g. "hash"); may be ""
	Msg  string // the problem, readable on its own after `pool "x": `
	Err  error  // the underlying cause (e.g. from os.ReadFile), if any
}

// Error renders the problem the way compilers do, so editors can jump to it:
//
//	conf/x.yml:7: pool "alpha": hash "fnv2" is not one of one_at_a_time, …
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Pool != "" {
		b.WriteString("pool ")
		b.WriteString(strconv.Quote(e.Pool))
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is(err, fs.ErrNotExist)
// works on the result of Load.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one file, in line order. Parse and Load
// return it (never an empty one) as their error.
type Errors []*Error

// Error renders one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortByLine orders problems as they appear in the file. The sort is stable
// so that several problems on one line keep the order they were found in.
func (es Errors) sortByLine() {
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
}
