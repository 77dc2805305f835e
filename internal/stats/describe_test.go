package stats

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// TestDescribeMatchesNutcracker checks that -D prints nutcracker's lines
// unchanged and first in each section, and shardproxy's additions after
// them in the same format, then a section of its own.
func TestDescribeMatchesNutcracker(t *testing.T) {
	bin := testutil.Binary(t, "nutcracker")
	var out bytes.Buffer
	cmd := exec.Command(bin, "-D")
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("nutcracker -D: %v\n%s", err, out.String())
	}
	theirs := out.String()
	i := strings.Index(theirs, "pool stats:\n")
	if i < 0 {
		t.Fatalf("nutcracker -D printed:\n%s", theirs)
	}
	theirs = theirs[i:]

	var b strings.Builder
	Describe(&b)
	ours := b.String()
	var additions []string
	for _, d := range PoolAdditions() {
		additions = append(additions, "  "+pad(d.Name)+`"`+d.Desc+`"`+"\n")
	}
	poolAdds := strings.Join(additions, "")
	additions = nil
	for _, d := range ServerAdditions() {
		additions = append(additions, "  "+pad(d.Name)+`"`+d.Desc+`"`+"\n")
	}
	serverAdds := strings.Join(additions, "")
	additions = nil
	for _, d := range ProxyAdditions() {
		additions = append(additions, "  "+pad(d.Name)+`"`+d.Desc+`"`+"\n")
	}
	proxyAdds := strings.Join(additions, "")

	// nutcracker's text with the additions at the end of each section,
	// and a section of shardproxy's own process-wide counters.
	want := strings.Replace(theirs, "\n\nserver stats:", "\n"+poolAdds+"\nserver stats:", 1)
	want = strings.TrimSuffix(want, "\n") + "\n" + serverAdds + "\nproxy stats:\n" + proxyAdds
	if ours != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", ours, want)
	}
	if !strings.Contains(ours, `  noreply_errors      "# noreply requests that failed unseen by the client"`) ||
		!strings.Contains(ours, `  server_failover     "# times the server's address was switched by Sentinel"`) {
		t.Errorf("additions missing:\n%s", ours)
	}
}

func pad(s string) string { return s + strings.Repeat(" ", max(20-len(s), 0)) }
