// Command drydock is Drydock's one binary: the registry server, the local
// scanner, and the client and operator verbs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one verb of the drydock binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what every command gets from the process: its output streams and
// logger. Commands take no other process-wide state.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	getenv func(string) string
}

// commands lists the verbs. Each lives in its own cmd_*.go file.
func commands() []command {
	return []command{
		{"version", "print the version", runVersion},
		{"db", "update, inspect, import and export the vulnerability database", runDB},
		{"sbom", "list the packages of an image as CycloneDX, SPDX or a table", runSBOM},
		{"scan", "scan an image for known vulnerabilities with the local database", runScan},
		{"serve", "run the registry server", runServe},
		{"repo", "create, list and delete repositories", runRepo},
		{"gc", "remove abandoned uploads and unreferenced blobs (online)", runGC},
		{"login-password", "print a registry login password (like aws ecr get-login-password)", runLoginPassword},
		{"keys", "create, list, disable, enable and delete access keys", runKeys},
		{"events", "manage webhook targets, tail events, list failed deliveries", runEvents},
		{"usage", "count initial scans and re-scans per repository and UTC day", runUsage},
		{"findings", "the findings ledger: new, fixable and closed since a time; time to remediate", runFindings},
	}
}

// errUsage marks an error caused by how the command was invoked; main exits
// with status 2 for it.
var errUsage = errors.New("usage")

// exitError carries a specific exit status out of a command (policy exit
// codes of scan, for example).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(os.Getenv("DRYDOCK_LOG_LEVEL"))})),
		getenv: os.Getenv,
	}
	os.Exit(run(ctx, e, os.Args[1:]))
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ee exitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.code
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(e.stderr, "drydock %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(e.stderr, "drydock %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "drydock: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: drydock COMMAND [flags] [args]\n\ncommands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'drydock COMMAND -h' for a command's flags.")
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
