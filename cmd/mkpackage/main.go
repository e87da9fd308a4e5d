// Command mkpackage builds the scopewatch deb and rpm packages from a built
// binary and the files in cmd/scopewatch/dist, with nfpm as a library: it
// needs neither dpkg-deb nor rpmbuild, and downloads nothing.
//
//	cd cmd/mkpackage && go run . --version 1.2.3 --binary ../../scopewatch --out ../../dist --src ../..
//
// (a module of its own, so run it from its directory) writes
// dist/scopewatch_1.2.3_amd64.deb and dist/scopewatch-1.2.3-1.x86_64.rpm.
// The binary should be built with -ldflags "-X main.version=1.2.3" so that
// `scopewatch version` names the package's version; the Makefile does both.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

const (
	maintainer = "scopewatch maintainers <scopewatch@example.org>"
	// summary is the deb synopsis and the rpm Summary.
	summary     = "Audits OAuth scope usage from IdP and API gateway logs"
	description = `scopewatch tails identity provider logs (Keycloak, Okta, Auth0, Entra ID)
and API gateway access logs, keeps per client which scopes were requested,
granted and actually used, and reports the scopes each client holds but
does not use. Findings can go to Slack; /metrics serves Prometheus.

The service is installed but neither enabled nor started. Configure the
log sources in /etc/scopewatch/scopewatch.yaml and
/etc/scopewatch/rules.yaml, check them with
"scopewatch validate --config /etc/scopewatch/scopewatch.yaml",
then run "systemctl enable --now scopewatch".`
)

// versionPattern is what both dpkg and rpm accept as an upstream version:
// a leading digit, then letters, digits and . + ~. No "-": dpkg would take
// what follows for the Debian revision, and rpm refuses it. A pre-release
// is written 1.3.0~rc1, which sorts before 1.3.0 in both.
var versionPattern = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)

// options are the command line.
type options struct {
	version string // package version, e.g. 1.2.3
	binary  string // the built scopewatch binary
	out     string // directory the packages are written to
	arch    string // Go architecture name: amd64, arm64, ...
	src     string // the repository checkout: cmd/scopewatch/dist and README.md
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "mkpackage: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("mkpackage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.version, "version", "", "package version, e.g. 1.2.3 (required)")
	fs.StringVar(&o.binary, "binary", "", "the scopewatch binary to package, built with CGO_ENABLED=0 (required)")
	fs.StringVar(&o.out, "out", "dist", "directory to write the packages to")
	fs.StringVar(&o.arch, "arch", defaultArch(), "Go architecture of the binary (default $GOARCH, else this machine's)")
	fs.StringVar(&o.src, "src", ".", "the repository checkout holding cmd/scopewatch/dist and README.md")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.version == "":
		return errors.New("--version is required")
	case !versionPattern.MatchString(o.version):
		return fmt.Errorf("--version %q: want digits, letters and . + ~ starting with a digit, e.g. 1.2.3 or 1.3.0~rc1", o.version)
	case o.binary == "":
		return errors.New("--binary is required")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	for _, p := range []struct {
		name     string
		packager nfpm.Packager
	}{
		{"deb", deb.Default},
		{"rpm", rpm.DefaultRPM},
	} {
		path, err := build(o, p.name, p.packager)
		if err != nil {
			return fmt.Errorf("build %s: %w", p.name, err)
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

// defaultArch is $GOARCH when set (a cross build), else the machine's.
func defaultArch() string {
	if a := os.Getenv("GOARCH"); a != "" {
		return a
	}
	return runtime.GOARCH
}

// build writes one package and returns its path.
func build(o options, format string, packager nfpm.Packager) (string, error) {
	info := nfpm.WithDefaults(newInfo(o, format))
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	path := filepath.Join(o.out, packager.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return path, f.Close()
}

// newInfo describes the package for one format. The maintainer scripts
// differ: a deb's get "configure", "remove", "purge"; an rpm's get a count
// of installed versions, and rpm has no purge.
func newInfo(o options, format string) *nfpm.Info {
	dist := filepath.Join(o.src, "cmd", "scopewatch", "dist")
	script := func(name string) string { return filepath.Join(dist, "package", name) }
	mode := func(m os.FileMode) *files.ContentFileInfo { return &files.ContentFileInfo{Mode: m} }

	// README.md is marked %doc in the rpm; dpkg has no such mark.
	docType := files.TypeFile
	if format == "rpm" {
		docType = files.TypeRPMDoc
	}
	contents := files.Contents{
		{Source: o.binary, Destination: "/usr/bin/scopewatch", FileInfo: mode(0o755)},
		// /usr/lib/systemd/system is where systemd looks for units that
		// packages install on every distribution; on Debian 12, /lib is
		// a symbolic link to /usr/lib, so /lib/systemd/system is the same
		// directory.
		{Source: filepath.Join(dist, "scopewatch.service"), Destination: "/usr/lib/systemd/system/scopewatch.service", FileInfo: mode(0o644)},
		// The configuration: dpkg conffiles, rpm %config(noreplace). An
		// upgrade never overwrites the operator's changes.
		{Destination: "/etc/scopewatch", Type: files.TypeDir, FileInfo: mode(0o755)},
		{Source: filepath.Join(dist, "scopewatch.yaml"), Destination: "/etc/scopewatch/scopewatch.yaml", Type: files.TypeConfigNoReplace, FileInfo: mode(0o644)},
		{Source: filepath.Join(dist, "rules.yaml"), Destination: "/etc/scopewatch/rules.yaml", Type: files.TypeConfigNoReplace, FileInfo: mode(0o644)},
		// The store's directory, the only one the unit lets the daemon
		// write. rpm's %pre creates the user before unpacking, so rpm gives
		// it its owner; dpkg unpacks it as root on a first install, and
		// postinst hands it over.
		{Destination: "/var/lib/scopewatch", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Owner: "scopewatch", Group: "scopewatch", Mode: 0o750}},
		{Source: filepath.Join(o.src, "README.md"), Destination: "/usr/share/doc/scopewatch/README.md", Type: docType, FileInfo: mode(0o644)},
		// For the monitoring side: the Grafana dashboard to import and the
		// Prometheus alerting rules with their promtool tests.
		{Source: filepath.Join(dist, "grafana", "scopewatch.json"), Destination: "/usr/share/scopewatch/grafana/scopewatch.json", FileInfo: mode(0o644)},
		{Source: filepath.Join(dist, "prometheus", "scopewatch-alerts.yml"), Destination: "/usr/share/scopewatch/prometheus/scopewatch-alerts.yml", FileInfo: mode(0o644)},
		{Source: filepath.Join(dist, "prometheus", "scopewatch-alerts_test.yml"), Destination: "/usr/share/scopewatch/prometheus/scopewatch-alerts_test.yml", FileInfo: mode(0o644)},
	}

	info := &nfpm.Info{
		Name:       "scopewatch",
		Arch:       o.arch,
		Platform:   "linux",
		Version:    o.version,
		Section:    "admin",
		Priority:   "optional",
		Maintainer: maintainer,
		// A deb's description starts with its synopsis; an rpm has both.
		Description: summary + "\n" + description,
		// No License: the repository states none. No Depends: the binary
		// is static (CGO_ENABLED=0) and the scripts use only what every
		// deb or rpm system has.
		DisableGlobbing: true,
	}
	info.Contents = contents
	switch format {
	case "deb":
		info.Scripts = nfpm.Scripts{
			PostInstall: script("postinst"),
			PreRemove:   script("prerm"),
			PostRemove:  script("postrm"),
		}
	case "rpm":
		info.RPM.Summary = summary
		info.Description = description
		info.Scripts = nfpm.Scripts{
			PreInstall:  script("rpm-pre"),
			PostInstall: script("rpm-post"),
			PreRemove:   script("rpm-preun"),
			PostRemove:  script("rpm-postun"),
		}
	}
	return info
}
