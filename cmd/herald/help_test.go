package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/heraldim/herald"
)

// runCLI runs the CLI in-process with a home that never logged in and a
// server nobody listens on, so nothing reaches the network.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{"HERALD_HOME": t.TempDir(), "HERALD_SERVER": "http://127.0.0.1:1", "HERALD_PASSWORD": "probe-password"}
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

// readmeContract is the CLI block of the README.
func readmeContract(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "```\nherald [--server URL]")
	if i < 0 {
		t.Fatal("README has no CLI contract block starting with herald [--server URL]")
	}
	s = s[i+4:]
	return s[:strings.Index(s, "```\n")]
}

var flagRE = regexp.MustCompile(`(?:^|[\s\[|])(--?[a-z][a-z0-9-]*)`)

// commandLines maps each command of the contract ("send", "channel set",
// "bot token") to the flags its lines show. The key is the command word
// and the literal sub-command words after it.
func commandLines(text string) (keys []string, flags map[string][]string) {
	flags = map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "  --") {
			continue
		}
		if strings.HasPrefix(line, "   ") {
			continue // a description's continuation
		}
		// the synopsis ends where the description column starts
		line, _, _ = strings.Cut(strings.TrimSpace(line), "   ")
		words := strings.Fields(line)
		key := words[0]
		if len(words) > 1 && regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(words[1]) {
			key += " " + words[1]
		}
		if _, ok := flags[key]; !ok {
			keys = append(keys, key)
			flags[key] = nil
		}
		for _, m := range flagRE.FindAllStringSubmatch(line, -1) {
			f := strings.TrimLeft(m[1], "-")
			if !slices.Contains(flags[key], f) {
				flags[key] = append(flags[key], f)
			}
		}
	}
	return keys, flags
}

// TestHelpIsREADME: --help and the README's contract are one text, and
// `herald help` works.
func TestHelpIsREADME(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("herald --help exited %d", code)
	}
	if readme := readmeContract(t); out != readme {
		t.Errorf("README's CLI block differs from herald --help; paste herald --help into it.\n--- README\n%s\n--- --help\n%s", readme, out)
	}
	if code, out2, _ := runCLI(t, "help"); code != 0 || out2 != out {
		t.Errorf("herald help: exit %d, output differs from --help", code)
	}
	code, out, _ = runCLI(t, "help", "send")
	if code != 0 || !strings.Contains(out, "--reply-to") || strings.Contains(out, "history") {
		t.Errorf("herald help send: exit %d\n%s", code, out)
	}
	if code, out, _ = runCLI(t, "history", "--help"); code != 0 || !strings.Contains(out, "--before") {
		t.Errorf("herald history --help: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "help", "nosuch"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("herald help nosuch: exit %d, %q", code, errOut)
	}
}

// TestEveryDocumentedCommandExists checks both ways: every command in
// the help is one the CLI runs and every command it runs is in the help;
// every flag the help shows for a command is one that command takes, and
// every flag a command takes is in its help.
func TestEveryDocumentedCommandExists(t *testing.T) {
	keys, flags := commandLines(usage)
	top := map[string][]string{} // flags shown anywhere for a top-level command
	for _, k := range keys {
		w := strings.Fields(k)[0]
		top[w] = append(top[w], flags[k]...)
	}
	for name := range commands {
		if _, ok := top[name]; !ok && !strings.Contains(usage, "| "+name+" ") {
			t.Errorf("command %q runs but is not in herald --help", name)
		}
	}
	for _, k := range keys {
		words := strings.Fields(k)
		if _, ok := commands[words[0]]; !ok {
			t.Errorf("herald --help shows %q, which is not a command", k)
			continue
		}
		// A flag no command has makes parseArgs list the ones this one takes.
		code, _, errOut := runCLI(t, append(words, "--no-such-flag-probe")...)
		if code != 2 || !strings.Contains(errOut, "unknown flag --no-such-flag-probe") {
			if len(flags[k]) > 0 {
				t.Errorf("herald %s --no-such-flag-probe: exit %d, %q; want unknown flag", k, code, errOut)
			}
			continue
		}
		var takes []string
		if _, list, ok := strings.Cut(errOut, "this command takes "); ok && !strings.HasPrefix(list, "no flags") {
			for _, f := range strings.Split(strings.TrimSuffix(strings.TrimSpace(list), ")"), ", ") {
				takes = append(takes, strings.TrimLeft(f, "-"))
			}
		}
		for _, f := range flags[k] {
			if !slices.Contains(takes, f) {
				t.Errorf("herald --help shows %s --%s, but the command takes only %v", k, f, takes)
			}
		}
		for _, f := range takes {
			if !slices.Contains(top[words[0]], f) {
				t.Errorf("herald %s takes --%s, which herald --help does not show", k, f)
			}
		}
	}
	sort.Strings(keys)
	t.Logf("checked %d commands: %v", len(keys), keys)
}

// TestREADMEStatesPasswordRule: the README says what a password needs
// where it first asks for one, and says what the server enforces.
func TestREADMEStatesPasswordRule(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	first := strings.Index(s, "HERALD_PASSWORD")
	rule := fmt.Sprintf("at least %d characters", herald.MinPasswordBytes)
	if i := strings.Index(s, rule); first < 0 || i < 0 || i > first+800 {
		t.Errorf("README does not say %q near its first HERALD_PASSWORD (at %d; rule at %d)", rule, first, i)
	}
	if !strings.Contains(usage, rule) {
		t.Errorf("herald --help does not say %q", rule)
	}
}
