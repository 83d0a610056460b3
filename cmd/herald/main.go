// Command herald is Herald's command-line client. Its commands, flags and
// output are a contract for scripts; see the README.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/heraldim/herald"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// cli is one invocation's settings and streams.
type cli struct {
	server    string
	serverSet bool
	home      string
	json      bool
	ansi      bool // stdout is a terminal: message formatting shows as styles
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	getenv    func(string) string
}

// usageError is a mistake in the command line itself.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, ansi: wantANSI(stdout, getenv)}
	c.server = getenv("HERALD_SERVER")
	c.serverSet = c.server != ""
	if c.server == "" {
		c.server = "http://127.0.0.1:8080"
	}
	c.home = getenv("HERALD_HOME")
	if c.home == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			dir = "."
		}
		c.home = filepath.Join(dir, "herald")
	}
	// Global flags may come anywhere on the line.
	var rest []string
	help := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		switch name {
		case "json":
			c.json = true
		case "server", "home":
			if !hasVal {
				if i+1 >= len(args) {
					return c.fail(usageError{"--" + name + " needs a value"})
				}
				i++
				val = args[i]
			}
			if name == "server" {
				c.server, c.serverSet = val, true
			} else {
				c.home = val
			}
		case "h", "help":
			help = true
		default:
			rest = append(rest, a)
		}
	}
	if help {
		// herald --help, or herald send --help for one command's lines.
		if err := cmdHelp(c, rest[:min(len(rest), 1)]); err != nil {
			return c.fail(err)
		}
		return 0
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		return c.fail(usageError{fmt.Sprintf("unknown command %q (herald --help lists them)", rest[0])})
	}
	if err := cmd(ctx, c, rest[1:]); err != nil {
		return c.fail(err)
	}
	return 0
}

// fail prints err as the contract says: one line naming the kind and the
// cause, or with --json one JSON object, on stderr.
func (c *cli) fail(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		if c.json {
			json.NewEncoder(c.stderr).Encode(map[string]string{"error": "USAGE: " + ue.msg, "kind": "USAGE", "message": ue.msg})
		} else {
			fmt.Fprintf(c.stderr, "herald: %s\n", ue.msg)
		}
		return 2
	}
	kind := herald.ErrorKind(err)
	msg := herald.ErrorMessage(err)
	var he *herald.Error
	if errors.As(err, &he) && he.Msg != "" {
		msg = he.Msg
	} else if !errors.As(err, &he) {
		msg = err.Error() // a local failure (file, terminal): say what it was
	}
	if c.json {
		out := map[string]any{"error": string(kind) + ": " + msg, "kind": string(kind), "message": msg}
		if he != nil && he.RetryAfter > 0 {
			out["retry_after_ms"] = he.RetryAfter.Milliseconds()
		}
		json.NewEncoder(c.stderr).Encode(out)
	} else {
		fmt.Fprintf(c.stderr, "herald: %s: %s\n", kind, msg)
	}
	return 1
}
