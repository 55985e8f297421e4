package depcheck

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/rerank-go/rerank/"

// Import-path prefixes the library packages must not pull in.
var (
	cli      = "github.com/urfave/cli"
	plot     = "gonum.org/v1/plot"
	terminal = []string{"golang.org/x/term", "github.com/schollz/progressbar/v3", "github.com/mattn/go-isatty", "github.com/mattn/go-colorable"}
)

// deps lists the packages pkgs depend on, themselves included (go list
// -deps, for the build configuration of the test).
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	for i, p := range pkgs {
		pkgs[i] = module + p
	}
	out, err := exec.Command(goTool, append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
	require.NoError(t, err, "go list -deps: %s", out)
	return strings.Fields(string(out))
}

// matching returns the packages of list under any of prefixes.
func matching(list []string, prefixes ...string) []string {
	var out []string
	for _, p := range list {
		for _, pre := range prefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") || strings.HasPrefix(p, pre+".") {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// TestEmbeddingDeps: a tool embedding the library packages links none of
// the command line's, the report's or a progress bar's dependencies. The
// last rows check that the test sees such imports where they belong.
// (github.com/schollz/progressbar/v2 comes with github.com/sugarme/tokenizer,
// which never draws it on our paths; it reads no terminal.)
func TestEmbeddingDeps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pkgs    []string
		without []string
		with    []string
	}{
		{"library", []string{"nn", "nn/infer", "crossencoder", "input", "lora", "loss", "eval"}, append([]string{cli, plot}, terminal...), nil},
		{"train", []string{"train"}, append([]string{cli, plot}, terminal...), nil},
		{"report draws", []string{"eval/report"}, []string{cli}, []string{plot}},
		{"command line", []string{"cmd/rerank"}, nil, []string{cli, plot}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := deps(t, tc.pkgs...)
			assert.Empty(t, matching(list, tc.without...), "%v must not depend on these", tc.pkgs)
			for _, p := range tc.with {
				assert.NotEmpty(t, matching(list, p), "%v depends on %s", tc.pkgs, p)
			}
		})
	}
}
