// Command rerank fine-tunes and evaluates cross-encoder rerankers.
//
// Each subcommand lives in its own file and registers itself with
// register, so that the command list grows without edits to this file.
// Commands only parse flags and wire packages together; anything another
// Go program could want lives in a package.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"sort"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build); a plain `go build` in a git checkout gets the commit Go records
// in the binary, and `go install ...@vX` the module version.
var version = "dev"

func init() { version = buildVersion(version, debug.ReadBuildInfo) }

// buildVersion is v when the linker set it, else what read's build info
// records: the commit of a build in a git checkout, as `git describe
// --always --dirty` writes it (make build's form), else the module version
// of `go install ...@version`.
func buildVersion(v string, read func() (*debug.BuildInfo, bool)) string {
	if v != "dev" {
		return v
	}
	info, ok := read()
	if !ok || info == nil {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev != "" {
		return rev[:min(len(rev), 7)] + dirty
	}
	if mv := info.Main.Version; mv != "" && mv != "(devel)" {
		return mv
	}
	return v
}

var commands []*cli.Command

// register adds a subcommand; called from init functions.
func register(c *cli.Command) { commands = append(commands, c) }

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	return &cli.App{
		Name:     "rerank",
		Usage:    "fine-tune and evaluate cross-encoder rerankers",
		Version:  version,
		Commands: commands,
	}
}

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "rerank:", err)
		os.Exit(1)
	}
}
