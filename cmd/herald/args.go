package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flagSpec lists a command's flags: names that take a value, and names that
// are switches.
type flagSpec struct {
	values   []string
	switches []string
}

// parsed holds a command line split into flags and positional arguments.
// Flags may appear before, between or after positionals, as people type
// them; "--" ends flag parsing so a text can start with '-'.
type parsed struct {
	vals map[string]string
	on   map[string]bool
	args []string
}

func parseArgs(args []string, spec flagSpec) (parsed, error) {
	p := parsed{vals: map[string]string{}, on: map[string]bool{}}
	isVal := map[string]bool{}
	for _, v := range spec.values {
		isVal[v] = true
	}
	isSwitch := map[string]bool{}
	for _, s := range spec.switches {
		isSwitch[s] = true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			p.args = append(p.args, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" || isNumber(a) {
			p.args = append(p.args, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case isSwitch[name]:
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					return p, usageError{fmt.Sprintf("--%s takes no value", name)}
				}
				p.on[name] = b
			} else {
				p.on[name] = true
			}
		case isVal[name]:
			if !hasVal {
				if i+1 >= len(args) {
					return p, usageError{fmt.Sprintf("--%s needs a value", name)}
				}
				i++
				val = args[i]
			}
			p.vals[name] = val
		default:
			return p, unknownFlag(a, spec)
		}
	}
	return p, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func (p parsed) int(name string, def int) (int, error) {
	v, ok := p.vals[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, usageError{fmt.Sprintf("--%s needs a non-negative number, not %q", name, v)}
	}
	return n, nil
}

func (p parsed) duration(name string) (time.Duration, error) {
	v, ok := p.vals[name]
	if !ok {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, usageError{fmt.Sprintf("--%s needs a duration like 30s or 5m, not %q", name, v)}
	}
	return d, nil
}

func parseIDs(ss []string) ([]int64, error) {
	out := make([]int64, 0, len(ss))
	for _, s := range ss {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, usageError{fmt.Sprintf("%q is not a message id", s)}
		}
		out = append(out, id)
	}
	return out, nil
}

// unknownFlag names the flags the command does take, so a typo is one
// look away from its fix (and the help test can ask each command).
func unknownFlag(a string, spec flagSpec) error {
	names := append(append([]string{}, spec.values...), spec.switches...)
	if len(names) == 0 {
		return usageError{fmt.Sprintf("unknown flag %s (this command takes no flags)", a)}
	}
	for i, n := range names {
		names[i] = "--" + n
	}
	return usageError{fmt.Sprintf("unknown flag %s (this command takes %s)", a, strings.Join(names, ", "))}
}
