package main

import (
	"bytes"
	"testing"

	"github.com/urfave/cli/v2"
)

// runCommands runs `rerank args...` on an app made of cmds and returns what
// it wrote to stdout and stderr. Every command test goes through it.
func runCommands(t *testing.T, cmds []*cli.Command, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &cli.App{Name: "rerank", Commands: cmds, Writer: &out, ErrWriter: &errb}
	err := app.Run(append([]string{"rerank"}, args...))
	return out.String(), errb.String(), err
}
