package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// defaultConfig is where the packages install the configuration.
const defaultConfig = "/etc/scopewatch/scopewatch.yaml"

// configEnv names the environment variable that points every command at
// another configuration when --config is not given.
const configEnv = "SCOPEWATCH_CONFIG"

// configUsage is the help text of every command's --config flag.
const configUsage = "configuration file (default: $" + configEnv + ", else " + defaultConfig + ")"

// loadConfig loads the configuration that the common --config flag names
// (flag may be empty): the flag, else $SCOPEWATCH_CONFIG, else
// /etc/scopewatch/scopewatch.yaml.
func loadConfig(flag string) (*rules.Config, error) {
	path, err := chooseConfig(flag, os.Getenv(configEnv), defaultConfig, fileExists)
	if err != nil {
		return nil, usageError{err}
	}
	cfg, err := rules.Load(path, ingest.Formats{})
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// chooseConfig chooses the configuration file: flag, else env, else def. A
// chosen file that does not exist is an error only when it was chosen
// by default or by env: the error then names every place tried and how to
// point elsewhere. The flag's file is left for rules.Load to open, whose
// error names it.
func chooseConfig(flag, env, def string, exists func(string) (bool, error)) (string, error) {
	switch {
	case flag != "":
		return flag, nil
	case env != "":
		ok, err := exists(env)
		if err != nil {
			return "", fmt.Errorf("configuration %s (from $%s): %w", env, configEnv, err)
		}
		if !ok {
			return "", fmt.Errorf("configuration %s (from $%s, --config not given) does not exist; "+
				"set %s to an existing file or give --config FILE", env, configEnv, configEnv)
		}
		return env, nil
	}
	ok, err := exists(def)
	if err != nil {
		return "", fmt.Errorf("configuration %s (the default): %w", def, err)
	}
	if !ok {
		return "", fmt.Errorf("no configuration: --config not given, $%s not set, and the default %s does not exist "+
			"(the package installs it); give --config FILE or set %s=FILE", configEnv, def, configEnv)
	}
	return def, nil
}

// fileExists reports whether path names an existing file. Another error
// (a directory it may not search, say) is returned for the caller to show.
func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}
