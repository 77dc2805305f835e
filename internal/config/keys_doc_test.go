package config

import (
	"os"
	"strings"
	"testing"
)

// TestEveryKeyDocumented keeps docs/configuration.md in step with the key table.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(doc), "| `"+k.Name+"` |") {
			t.Errorf("docs/configuration.md has no row for %q", k.Name)
		}
	}
}
