package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/scopewatch/scopewatch/rules"
)

// commandHelp is what `scopewatch NAME --help` says of one command: its
// arguments and its purpose. Commands of a group (report, silence, alert)
// are named with the group ("report unused").
type commandHelp struct {
	name, args, purpose string
}

// commandHelps is the table of commands, in the order the usage lists
// them.
func commandHelps() []commandHelp {
	return []commandHelp{
		{"run", "[--config FILE] [--log-json]", "Run the daemon: tail every configured source, commit what they show to the store and serve HTTP. SIGTERM stops it after committing everything read; SIGHUP reloads the configuration, the rules and the GeoIP databases."},
		{"scan", "[--config FILE] [--source NAME] [--no-detect] FILE...", "Read existing logs once (also rotated or .gz ones) through the same parsers, detectors and store; resumable, and a file already read counts nothing twice."},
		{"report unused", "[--config FILE] [--client ID] [--format table|json|csv|markdown] [--at TIME]", "The scopes each client was granted and did not use within the window, with the narrower set it needs."},
		{"report scope", "NAME [--config FILE] [--format table|json|csv|markdown]", "Every client that holds scope NAME, how it used it, and whether removing NAME would break any of them."},
		{"clients", "[--config FILE] [--client ID] [--format table|json]", "Per client and scope: requested, granted and used counts with the last times."},
		{"findings", "[--config FILE] [--state open|silenced|resolved|all] [--kind KIND] [--client ID] [--format table|json]", "The findings, by default the open ones."},
		{"silence add", "[--config FILE] [--client PATTERN] [--kind KIND] [--subject PATTERN] (--for 30d | --until DATE) --reason TEXT [--author NAME]", "Mute the findings a silence matches until it expires; prints its id."},
		{"silence list", "[--config FILE] [--all] [--format table|json]", "The silences in force (with --all, the expired ones too)."},
		{"silence expire", "ID [--config FILE]", "End an added silence now."},
		{"alert test", "[--config FILE] [--channel CHANNEL]", "Check the Slack token and post a test message, saying why when Slack cannot be reached."},
		{"backup", "[--config FILE] --output FILE", "Write a consistent copy of the store, through the running daemon or from the file."},
		{"compact", "[--config FILE]", "Rewrite the store without its free pages (while no daemon holds it)."},
		{"check", "[--config FILE]", "Check the store file (bbolt's consistency check and a decode of every record) and list every problem found; exit 1 when it is damaged."},
		{"validate", "[--config FILE] [--sample LOG [--source NAME]]", "Check the configuration and the rules and print what would be tailed; with --sample, show which lines of LOG the source's format reads, ignores or fails on, and why."},
		{"version", "", "Print the version, the Go version and the VCS revision."},
	}
}

// helpFor returns the help of the command name ("report unused").
func helpFor(name string) (commandHelp, bool) {
	for _, c := range commandHelps() {
		if c.name == name {
			return c, true
		}
	}
	return commandHelp{}, false
}

// errHelp reports that help was asked for and printed: the command
// exits 0.
var errHelp = errors.New("help printed")

// newFlags returns the flag set of a command. Nothing is printed by the
// flag package: parseFlags prints the help or returns the error.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs. -h or --help prints the command's help
// to stdout and returns errHelp; a bad flag is a usage error that points
// to the help.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, fs)
		return errHelp
	case err != nil:
		return usageError{fmt.Errorf("%w (see scopewatch %s --help)", err, fs.Name())}
	}
	return nil
}

// printHelp writes the usage, purpose and flags of fs's command.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	h, _ := helpFor(fs.Name())
	fmt.Fprintf(w, "usage: scopewatch %s %s\n\n%s\n", fs.Name(), h.args, h.purpose)
	var flags strings.Builder
	fs.SetOutput(&flags)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	if flags.Len() > 0 {
		fmt.Fprintf(w, "\nflags:\n%s", flags.String())
	}
}

// groupAction picks the action of a command group (report, silence,
// alert) from args. -h, --help or help prints the group's actions and
// returns errHelp; no action, or an unknown one, is a usage error (naming
// the nearest action).
func groupAction(group string, args []string, stdout io.Writer) (string, error) {
	var actions []commandHelp
	for _, c := range commandHelps() {
		if a, ok := strings.CutPrefix(c.name, group+" "); ok {
			c.name = a
			actions = append(actions, c)
		}
	}
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = a.name
	}
	if len(args) == 0 {
		return "", usageError{fmt.Errorf("%s needs an action: %s (see scopewatch %s --help)", group, strings.Join(names, ", "), group)}
	}
	switch a := args[0]; a {
	case "-h", "-help", "--help", "help":
	default:
		for _, n := range names {
			if n == a {
				return a, nil
			}
		}
		return "", usageError{fmt.Errorf("%s (see scopewatch %s --help)", rules.Unknown(group+" action", a, names), group)}
	}
	fmt.Fprintf(stdout, "usage: scopewatch %s ACTION ...\n\nactions:\n", group)
	for _, a := range actions {
		fmt.Fprintf(stdout, "  %-8s %s\n", a.name, a.purpose)
	}
	fmt.Fprintf(stdout, "\nscopewatch %s ACTION --help describes one.\n", group)
	return "", errHelp
}

// commandNames are the commands dispatch knows, for "did you mean".
func commandNames() []string {
	var names []string
	for _, c := range commandHelps() {
		g, _, _ := strings.Cut(c.name, " ")
		if len(names) == 0 || names[len(names)-1] != g {
			names = append(names, g)
		}
	}
	return append(names, "help")
}
