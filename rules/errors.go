package rules

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ConfigError is one problem in a configuration or rules file. Load and
// LoadRules return every problem they find, joined with errors.Join; use
// errors.As to get at the first, or Problems to list them all.
type ConfigError struct {
	File  string // the file as it was named to Load or LoadRules
	Line  int    // 1-based line of the offending key or value
	Field string // dotted path, e.g. sources[1].format or clients.lab-app.role
	Msg   string
}

// Error formats the problem as file:line: field: msg.
func (e *ConfigError) Error() string {
	if e.Field == "" {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Field + ": " + e.Msg
}

// Problems returns the ConfigErrors inside err, which may be a single
// ConfigError or a join of them, in the order they are reported.
func Problems(err error) []*ConfigError {
	var out []*ConfigError
	var walk func(error)
	walk = func(err error) {
		if ce, ok := err.(*ConfigError); ok {
			out = append(out, ce)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// problems collects ConfigErrors for one file.
type problems struct {
	file string
	list []*ConfigError
}

func (p *problems) add(line int, field, format string, args ...any) {
	p.list = append(p.list, &ConfigError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addSyntax records a YAML syntax error, keeping the line yaml.v3 names
// in it ("yaml: line 3: mapping values are not allowed in this context").
func (p *problems) addSyntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				p.add(line, "", "%s", text)
				return
			}
		}
	}
	p.add(1, "", "%s", msg)
}

// joinProblems returns all problems, sorted by file and line, as one
// error, or nil when there are none.
func joinProblems(lists ...[]*ConfigError) error {
	var all []*ConfigError
	for _, l := range lists {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortStableFunc(all, func(a, b *ConfigError) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	errs := make([]error, len(all))
	for i, e := range all {
		errs[i] = e
	}
	return errors.Join(errs...)
}
