package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, cfg.Summary())
	fmt.Fprintln(stdout, "configuration is valid")
	return nil
}

// versionInfo describes the running binary.
type versionInfo struct {
	Version  string
	Go       string
	Revision string
}

func readVersion() versionInfo {
	v := versionInfo{Version: "devel", Go: runtime.Version(), Revision: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Revision = s.Value
			}
		}
	}
	return v
}

func cmdVersion(stdout io.Writer) error {
	v := readVersion()
	fmt.Fprintf(stdout, "scopewatch %s (%s, revision %s)\n", v.Version, v.Go, v.Revision)
	return nil
}
