package main

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHelp: heraldd --help answers on stdout with exit 0, names every
// subcommand, and shows exactly the flags (and environment variables) of
// README's configuration table.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var out, errb bytes.Buffer
		if err := run(args, noEnv, &out, &errb); err != nil {
			t.Fatalf("heraldd %v: %v", args, err)
		}
		if strings.Contains(out.String()+errb.String(), "flag: help requested") {
			t.Errorf("heraldd %v says flag: help requested", args)
		}
		for _, sub := range []string{"invite", "admin", "migrate", "bench-users"} {
			if !strings.Contains(out.String(), "heraldd "+sub) {
				t.Errorf("heraldd %v does not list %s:\n%s", args, sub, out.String())
			}
		}
	}
	var out bytes.Buffer
	run([]string{"--help"}, noEnv, &out, &out)
	type flagEnv struct{ flag, env string }
	var help []flagEnv
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)[^\n]*\n((?:    [^\n]*\n)*)`).FindAllStringSubmatch(out.String(), -1) {
		env := regexp.MustCompile(`\((HERALD_[A-Z0-9_]+)`).FindStringSubmatch(m[0])
		if env == nil {
			t.Errorf("heraldd --help: -%s names no environment variable", m[1])
			continue
		}
		help = append(help, flagEnv{m[1], env[1]})
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var table []flagEnv
	for _, m := range regexp.MustCompile("(?m)^\\| `-([a-z-]+)` \\| `(HERALD_[A-Z0-9_]+)").FindAllStringSubmatch(string(readme), -1) {
		table = append(table, flagEnv{m[1], m[2]})
	}
	if len(help) < 10 || len(table) < 10 {
		t.Fatalf("found %d flags in --help and %d in README's table", len(help), len(table))
	}
	for _, f := range help {
		if !slices.Contains(table, f) {
			t.Errorf("heraldd -%s (%s) is not in README's configuration table", f.flag, f.env)
		}
	}
	for _, f := range table {
		if !slices.Contains(help, f) {
			t.Errorf("README's configuration table has -%s (%s), which heraldd --help does not", f.flag, f.env)
		}
	}
}
