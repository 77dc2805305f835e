package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// syntaxError records a YAML syntax error with the line that breaks and, when
// it can tell, what to fix. yaml.v3's own line numbers are not reliable
// enough for that: for parser errors (as opposed to scanner errors) it
// prints a 0-based line, and often the line where the enclosing block
// starts rather than the line that breaks it. The classic case is a config
// copied from a web page with one line indented differently: yaml.v3 says
// "line 2: did not find expected key" when line 3 is the culprit.
func (d *decoder) syntaxError(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if n, ok := parseNumber(rest[:i]); ok {
				line, msg = n, rest[i+2:]
			}
		}
	}
	parserError := isParserProblem(msg)
	switch {
	case parserError:
		line++ // 0-based, and yaml.v3 omits "line 0"
	case isReaderProblem(msg):
		line = badCharLine(data)
	case strings.HasPrefix(msg, "unknown anchor '"):
		line = lineContaining(data, "*"+strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced"))
	}

	var notes []string
	if l, note := indentProblem(data); l > 0 && (parserError || line == 0 || l <= line) {
		line = l
		notes = append(notes, note)
	}
	if line > 0 && unquotedBracket(lineText(data, line)) {
		notes = append(notes, `quote values that start with "[", like listen: "[::1]:22121"`)
	}
	if len(notes) > 0 {
		msg += " (" + strings.Join(notes, "; ") + ")"
	}
	d.add(line, "", "", "YAML syntax error: %s", msg)
}

// isParserProblem reports whether msg is one of libyaml's parser errors,
// which yaml.v3 numbers from 0 (it adds 1 only for scanner errors).
func isParserProblem(msg string) bool {
	switch msg {
	case "did not find expected key",
		"did not find expected node content",
		"did not find expected '-' indicator",
		"did not find expected ',' or ']'",
		"did not find expected ',' or '}'",
		"did not find expected <document start>",
		"did not find expected <stream-start>",
		"found duplicate %YAML directive",
		"found duplicate %TAG directive",
		"found incompatible YAML document",
		"found undefined tag handle":
		return true
	}
	return false
}

// isReaderProblem reports whether msg is about bytes that are not YAML text;
// yaml.v3 gives no line for those.
func isReaderProblem(msg string) bool {
	return msg == "control characters are not allowed" ||
		strings.Contains(msg, "UTF-8") || strings.Contains(msg, "UTF-16") ||
		msg == "invalid Unicode character"
}

// badCharLine returns the line of the first byte that is not valid UTF-8 or
// is a control character YAML forbids, or 0.
func badCharLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line
		case r == '\n':
			line++
		case r < 0x20 && r != '\t' && r != '\r', r == 0x7f:
			return line
		}
		i += size
	}
	return 0
}

// lineContaining returns the first line containing s, or 0.
func lineContaining(data []byte, s string) int {
	for i, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

// lineText returns line n (1-based) of data, or "".
func lineText(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}

// unquotedBracket reports whether a line's value is an unquoted
// "[ipv6]:port", which YAML reads as the start of a list.
func unquotedBracket(l string) bool {
	v := strings.TrimSpace(l)
	if i := strings.Index(v, ": "); i >= 0 {
		v = strings.TrimSpace(v[i+2:])
	}
	v = strings.TrimSpace(strings.TrimPrefix(v, "- "))
	return strings.HasPrefix(v, "[") && strings.Contains(v, "]:")
}

// level is one open block while scanning indentation.
type level struct {
	ind  int  // its indentation, in spaces
	line int  // the line that opened it
	seq  bool // a block of list items ("- ")
}

// indentProblem finds the first line whose indentation cannot be right: a
// line indented to a column no enclosing block uses, a list item among
// keys, a key among list items, or a tab. It returns 0 if it finds none.
//
// It is only consulted once yaml.v3 has rejected the file, so it can be a
// heuristic: it knows enough YAML for configuration files (block mappings,
// block lists, multi-line values, block scalars) and ignores the rest.
func indentProblem(data []byte) (int, string) {
	var stack []level
	opens := true   // the previous line ended in ":" or "-", so this one may be deeper
	scalarInd := -1 // inside a block scalar (| or >) whose key is at this indentation
	var prev level  // the previous line that is not blank or a comment
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		l := strings.TrimRight(raw, "\r")
		body := strings.TrimLeft(l, " ")
		ind := len(l) - len(body)
		if scalarInd >= 0 {
			if strings.TrimSpace(body) == "" || ind > scalarInd {
				continue
			}
			scalarInd = -1
		}
		if strings.HasPrefix(body, "\t") {
			return n, "tabs cannot indent YAML; use spaces"
		}
		if body == "" || body[0] == '#' {
			continue
		}
		if ind == 0 && (strings.HasPrefix(body, "---") || strings.HasPrefix(body, "...") || body[0] == '%') {
			stack, opens = nil, true
			continue
		}
		isItem := body == "-" || strings.HasPrefix(body, "- ")

		top := len(stack) - 1
		switch {
		case top < 0 || ind > stack[top].ind:
			if top >= 0 && !opens {
				if isKey(body) {
					// A key can't continue the value above it.
					return n, fmt.Sprintf("check the indentation of this line: %s here, %d on line %d above it", spaces(ind), prev.ind, prev.line)
				}
				continue // the rest of a multi-line value
			}
			stack = append(stack, level{ind, n, isItem})
		default:
			var popped level
			for top >= 0 && stack[top].ind > ind {
				popped, stack, top = stack[top], stack[:top], top-1
			}
			if top < 0 || stack[top].ind != ind {
				return n, fmt.Sprintf("check the indentation of this line: %s here, %d on line %d", spaces(ind), popped.ind, popped.line)
			}
			switch {
			case isItem && !stack[top].seq:
				if !opens {
					return n, "a list item where a key was expected: check the indentation of this line"
				}
				// A list may sit at the indentation of its key ("servers:\n- a").
				stack = append(stack, level{ind, n, true})
			case !isItem && stack[top].seq:
				if top > 0 && stack[top-1].ind == ind && !stack[top-1].seq {
					stack = stack[:top] // the end of such a list, back to the keys
				} else {
					return n, "a key where a list item was expected: check the indentation of this line"
				}
			}
		}

		rest := body
		if isItem {
			// "- key: value" opens a mapping at the column after "- ".
			rest = strings.TrimLeft(body[1:], " ")
			if rest != "" && isKey(rest) {
				stack = append(stack, level{len(l) - len(rest), n, false})
			}
		}
		rest = stripComment(rest)
		switch {
		case rest == "" || rest == "-" || strings.HasSuffix(rest, ":"):
			opens = true
		case isBlockScalar(rest):
			opens, scalarInd = false, len(l)-len(strings.TrimLeft(body, "- "))
		default:
			opens = false
		}
		prev = level{ind: ind, line: n}
	}
	return 0, ""
}

// isKey reports whether s starts with "key:" (a plain key).
func isKey(s string) bool {
	i := strings.Index(s, ":")
	return i > 0 && (i == len(s)-1 || s[i+1] == ' ') && !strings.ContainsAny(s[:1], `"'[{`)
}

// stripComment removes a trailing " # comment" and spaces.
func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, " \t")
}

// isBlockScalar reports whether s ends with a block scalar header (| or >,
// optionally with chomping and indentation indicators).
func isBlockScalar(s string) bool {
	i := strings.LastIndexAny(s, "|>")
	if i < 0 || (i > 0 && s[i-1] != ' ') {
		return false
	}
	return strings.Trim(s[i+1:], "+-0123456789") == ""
}

func spaces(n int) string {
	if n == 1 {
		return "1 space"
	}
	return fmt.Sprintf("%d spaces", n)
}
