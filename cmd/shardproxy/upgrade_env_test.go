package main

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseListenFDs(t *testing.T) {
	tests := []struct {
		in   string
		want []fdKey
		err  string
	}{
		{"", nil, ""},
		{"4=tcp:127.0.0.1:22121", []fdKey{{4, "tcp:127.0.0.1:22121"}}, ""},
		{"4=tcp:[::1]:22121,5=unix:/tmp/x.sock,6=stats",
			[]fdKey{{4, "tcp:[::1]:22121"}, {5, "unix:/tmp/x.sock"}, {6, "stats"}}, ""},
		{"4=unix:/tmp/a%2Cb%25c=d.sock", []fdKey{{4, "unix:/tmp/a,b%c=d.sock"}}, ""},
		{"4=unix:/tmp/a%2cb", []fdKey{{4, "unix:/tmp/a,b"}}, ""},
		{"4", nil, `"4" is not fd=key`},
		{"3=stats", nil, "is not a number above 3"},
		{"-4=stats", nil, "is not a number above 3"},
		{"+4=stats", nil, "is not a number above 3"},
		{"x=stats", nil, "is not a number above 3"},
		{"4=stats,", nil, `"" is not fd=key`},
		{"4=udp:1.2.3.4:5", nil, `key "udp:1.2.3.4:5" is not`},
		{"4=unix:/a%2", nil, `bad escape "%2"`},
		{"4=unix:/a%41", nil, `bad escape "%41"`},
		{"4=stats,4=tcp:1.2.3.4:5", nil, "given twice"},
		{"4=stats,5=stats", nil, "given twice"},
	}
	for _, tt := range tests {
		got, err := parseListenFDs(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseListenFDs(%q) error %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseListenFDs(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatListenFDsRoundTrip(t *testing.T) {
	items := []fdKey{{4, "tcp:127.0.0.1:22121"}, {5, "unix:/tmp/100%,sure=yes.sock"}, {6, "stats"}}
	s := formatListenFDs(items)
	if want := "4=tcp:127.0.0.1:22121,5=unix:/tmp/100%25%2Csure=yes.sock,6=stats"; s != want {
		t.Errorf("formatListenFDs = %q, want %q", s, want)
	}
	got, err := parseListenFDs(s)
	if err != nil || !reflect.DeepEqual(got, items) {
		t.Errorf("parseListenFDs(formatListenFDs(x)) = %v, %v; want %v", got, err, items)
	}
}

// FuzzParseListenFDs: whatever parses formats back to itself, up to the
// spelling of escapes and of leading zeros.
func FuzzParseListenFDs(f *testing.F) {
	f.Add("4=tcp:127.0.0.1:22121,5=unix:/tmp/x%2C.sock,6=stats")
	f.Add("4=unix:%25%2c")
	f.Fuzz(func(t *testing.T, s string) {
		items, err := parseListenFDs(s)
		if err != nil {
			return
		}
		again, err := parseListenFDs(formatListenFDs(items))
		if err != nil || !reflect.DeepEqual(again, items) {
			t.Fatalf("%q: parsed %v; formatted and parsed again %v, %v", s, items, again, err)
		}
	})
}

func TestUpgradeTimeout(t *testing.T) {
	tests := []struct {
		env  string
		want time.Duration
		err  bool
	}{
		{"", defaultUpgradeTimeout, false},
		{"1500ms", 1500 * time.Millisecond, false},
		{"2m", 2 * time.Minute, false},
		{"0s", defaultUpgradeTimeout, true},
		{"-1s", defaultUpgradeTimeout, true},
		{"10", defaultUpgradeTimeout, true},
	}
	for _, tt := range tests {
		got, err := upgradeTimeout(tt.env)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("upgradeTimeout(%q) = %v, %v; want %v, error %v", tt.env, got, err, tt.want, tt.err)
		}
	}
}
