package rules

import (
	"fmt"
	"path/filepath"
)

// SourceFor returns the configured source a file of logs belongs to: the
// one named name, else the one whose path or rotated-file glob matches the
// file, else the only source. An error says what to name instead.
func (c *Config) SourceFor(name, file string) (Source, error) {
	if name != "" {
		for _, s := range c.Sources {
			if s.Name == name {
				return s, nil
			}
		}
		return Source{}, fmt.Errorf("no source named %q in %s", name, c.File)
	}
	abs, _ := filepath.Abs(file)
	for _, s := range c.Sources {
		if abs == s.Path {
			return s, nil
		}
		if ok, _ := filepath.Match(s.Glob, abs); ok {
			return s, nil
		}
	}
	if len(c.Sources) == 1 {
		return c.Sources[0], nil
	}
	return Source{}, fmt.Errorf("%s matches no source's path or glob in %s; name one with --source", file, c.File)
}
