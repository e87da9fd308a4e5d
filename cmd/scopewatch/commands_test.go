package main

import (
	"strings"
	"testing"
)

// TestCommandHelp checks that every command answers --help (and -h) on
// stdout with exit 0, with its arguments, its purpose and its flags.
func TestCommandHelp(t *testing.T) {
	for _, c := range commandHelps() {
		if c.name == "version" {
			continue // no flags
		}
		for _, flag := range []string{"--help", "-h"} {
			args := append(strings.Fields(c.name), flag)
			code, out, errOut := runCmd(t, args...)
			if code != exitOK || errOut != "" {
				t.Errorf("%s: exit %d, stderr %q; want 0 and nothing on stderr", strings.Join(args, " "), code, errOut)
				continue
			}
			for _, want := range []string{"usage: scopewatch " + c.name + " " + c.args, c.purpose, "flags:"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: help lacks %q:\n%s", strings.Join(args, " "), want, out)
				}
			}
		}
		if c.purpose == "" || !strings.HasSuffix(c.purpose, ".") {
			t.Errorf("%s: purpose %q, want a sentence", c.name, c.purpose)
		}
	}
}

// TestCommandGroups checks the groups' help, a missing action and an
// unknown one, which names the nearest.
func TestCommandGroups(t *testing.T) {
	for _, g := range []struct{ group, action, typo, near string }{
		{"report", "unused", "unsued", "unused"},
		{"silence", "expire", "exipre", "expire"},
		{"alert", "test", "tset", "test"},
	} {
		code, out, _ := runCmd(t, g.group, "--help")
		if code != exitOK || !strings.Contains(out, "actions:") || !strings.Contains(out, g.action) {
			t.Errorf("%s --help: exit %d\n%s", g.group, code, out)
		}
		code, _, errOut := runCmd(t, g.group)
		if code != exitConfig || !strings.Contains(errOut, "needs an action") || !strings.Contains(errOut, g.action) {
			t.Errorf("%s alone: exit %d, stderr %q", g.group, code, errOut)
		}
		code, _, errOut = runCmd(t, g.group, g.typo)
		if code != exitConfig || !strings.Contains(errOut, `did you mean "`+g.near+`"`) {
			t.Errorf("%s %s: exit %d, stderr %q; want did you mean %q", g.group, g.typo, code, errOut, g.near)
		}
	}
}

// TestCommandMistakes checks that an unknown command, a bad flag and an
// unknown finding kind say what would be right.
func TestCommandMistakes(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"fidnings"}, `unknown command "fidnings"; did you mean "findings"?`},
		{[]string{"validate", "--smaple", "x.log"}, "see scopewatch validate --help"},
		{[]string{"findings", "--kind", "unused_scop", "--config", "/nonexistent.yaml"}, `did you mean "unused_scope"?`},
	}
	for _, tt := range tests {
		code, _, errOut := runCmd(t, tt.args...)
		if code != exitConfig || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, errOut, exitConfig, tt.want)
		}
	}
}
