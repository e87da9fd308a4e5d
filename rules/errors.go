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
	seen map[string]bool // fields with a problem
}

// add records a problem unless its field has one already: the first,
// found while decoding, is the one to fix, and a value that could not be
// decoded would only cause follow-on complaints ("want a list" and then
// "at least one source is required").
func (p *problems) add(line int, field, format string, args ...any) {
	if field != "" {
		if p.seen[field] {
			return
		}
		if p.seen == nil {
			p.seen = map[string]bool{}
		}
		p.seen[field] = true
	}
	p.list = append(p.list, &ConfigError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addSyntax records a YAML syntax error in data at the line it names
// ("yaml: line 3: mapping values are not allowed in this context"), or, for
// a parser problem, at the line that caused it (see problemLine).
func (p *problems) addSyntax(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				if parserProblem(text) {
					line = problemLine(data, line+1, text)
				}
				p.add(line, "", "%s", text)
				return
			}
		}
	}
	p.add(1, "", "%s", msg)
}

// joinProblems returns the problems of each list, sorted by line, list
// after list, as one error, or nil when there are none.
func joinProblems(lists ...[]*ConfigError) error {
	var errs []error
	for _, l := range lists {
		slices.SortStableFunc(l, func(a, b *ConfigError) int { return cmp.Compare(a.Line, b.Line) })
		for _, e := range l {
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// parserProblem reports whether msg is one of libyaml's parser (not
// scanner) problems. yaml.v3 reports the 0-based line of a parser
// problem's context, one less than the 1-based line people count
// (go.yaml.in/yaml/v3 decode.go, (*parser).fail, adds 1 for scanner errors
// only), so these lines need one added.
func parserProblem(msg string) bool {
	switch msg {
	case "did not find expected <stream-start>",
		"did not find expected <document start>",
		"did not find expected node content",
		"did not find expected '-' indicator",
		"did not find expected key",
		"did not find expected ',' or ']'",
		"did not find expected ',' or '}'",
		"found undefined tag handle",
		"found duplicate %YAML directive",
		"found incompatible YAML document",
		"found duplicate %TAG directive":
		return true
	}
	return false
}
