package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChooseConfig(t *testing.T) {
	dir := t.TempDir()
	flagFile, envFile, defFile := filepath.Join(dir, "flag.yaml"), filepath.Join(dir, "env.yaml"), filepath.Join(dir, "default.yaml")
	missing := filepath.Join(dir, "missing.yaml")
	for _, f := range []string{flagFile, envFile, defFile} {
		write(t, f, "")
	}
	tests := []struct {
		name, flag, env, def string
		want                 string
		wantErr              []string // all in the error
	}{
		{"flag over env and default", flagFile, envFile, defFile, flagFile, nil},
		{"missing flag file is rules.Load's to report", missing, envFile, defFile, missing, nil},
		{"env over default", "", envFile, defFile, envFile, nil},
		{"default", "", "", defFile, defFile, nil},
		{"env names a missing file", "", missing, defFile, "", []string{
			"configuration " + missing + " (from $SCOPEWATCH_CONFIG, --config not given) does not exist",
			"set SCOPEWATCH_CONFIG to an existing file or give --config FILE"}},
		{"no default", "", "", missing, "", []string{
			"no configuration: --config not given, $SCOPEWATCH_CONFIG not set, and the default " + missing + " does not exist",
			"give --config FILE or set SCOPEWATCH_CONFIG=FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseConfig(tt.flag, tt.env, tt.def, fileExists)
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if got != tt.want || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr != nil)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}

	// A default that cannot be looked at is not taken for a missing one.
	_, err := chooseConfig("", "", defFile, func(string) (bool, error) { return false, os.ErrPermission })
	if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), defFile+" (the default)") {
		t.Errorf("unreadable default: %v", err)
	}
}

// TestConfigFromEnvironment runs commands without --config: they read
// $SCOPEWATCH_CONFIG, and without it the packaged default.
func TestConfigFromEnvironment(t *testing.T) {
	cfg := findingsFixture(t)
	t.Setenv(configEnv, cfg)
	code, out, errOut := runCmd(t, "findings", "--format", "json")
	if code != exitOK || !strings.Contains(out, "mychart-app") {
		t.Errorf("findings with $%s: exit %d, stdout %q, stderr %q", configEnv, code, out, errOut)
	}
	other := filepath.Join(t.TempDir(), "elsewhere.yaml")
	code, _, errOut = runCmd(t, "findings", "--config", other)
	if code != exitConfig || !strings.Contains(errOut, other) {
		t.Errorf("--config over $%s: exit %d, stderr %q; want exit 2 naming %s", configEnv, code, errOut, other)
	}

	t.Setenv(configEnv, other)
	code, _, errOut = runCmd(t, "clients")
	if code != exitConfig || !strings.Contains(errOut, "configuration "+other+" (from $SCOPEWATCH_CONFIG") {
		t.Errorf("$%s naming a missing file: exit %d, stderr %q", configEnv, code, errOut)
	}

	t.Setenv(configEnv, "")
	if ok, _ := fileExists(defaultConfig); ok {
		t.Skipf("%s exists on this machine", defaultConfig)
	}
	code, _, errOut = runCmd(t, "report", "unused")
	if code != exitConfig || !strings.Contains(errOut, "no configuration: --config not given, $SCOPEWATCH_CONFIG not set, and the default "+defaultConfig+" does not exist") {
		t.Errorf("no configuration anywhere: exit %d, stderr %q", code, errOut)
	}
}
