package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchServe runs the load benchmark at a toy size: every row comes
// out, each serve row measured against the offline one of its round.
func TestBenchServe(t *testing.T) {
	model := tinyModel(t)
	out, _, err := runTrainCLI(t, "bench-serve", "--model", model, "--max-len", "64", "--beir", filepath.Join("..", "..", "examples", "scifact-sample"),
		"--docs", "4", "--pairs", "16", "--clients", "1,3", "--rounds", "1")
	require.NoError(t, err)
	assert.Contains(t, out, "| 1 | offline score | - |")
	assert.Contains(t, out, "| 1 | serve | 1 |")
	assert.Contains(t, out, "| 1 | serve | 3 |")
	assert.Equal(t, 4, strings.Count(out, "\n| "), out) // the header and three rows
}
