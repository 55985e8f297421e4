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
	"sort"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
