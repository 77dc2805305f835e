package config

import (
	"os"
	"strings"
	"testing"
)

// TestEveryKeyDocumented keeps the README's key table in step with the key table.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(doc), "| `"+k.Name+"` |") {
			t.Errorf("README.md has no row for %q", k.Name)
		}
	}
}
