package depcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var exampleFunc = regexp.MustCompile(`(?m)^func Example\w*\(\) \{`)

// TestEveryPackageHasExample: each library package (not internal/, not
// cmd/) has a runnable Example in its tests, showing the embedding use;
// go test runs it (cuda's under its build tag, in the GPU check).
func TestEveryPackageHasExample(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-f",
		`{{.ImportPath}}|{{.Name}}|{{.Dir}}|{{join .TestGoFiles ","}},{{join .XTestGoFiles ","}},{{join .IgnoredGoFiles ","}}`, module+"...").CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		require.Len(t, f, 4, line)
		path, name, dir, tests := strings.TrimPrefix(f[0], module), f[1], f[2], f[3]
		if name == "main" || strings.HasPrefix(path, "internal/") || strings.Contains(path, "/internal/") ||
			strings.HasPrefix(path, "cmd/") {
			continue
		}
		n++
		found := false
		for _, file := range strings.Split(tests, ",") {
			if !strings.HasSuffix(file, "_test.go") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, file))
			require.NoError(t, err)
			if exampleFunc.Match(b) {
				found = true
				break
			}
		}
		assert.True(t, found, "package %s has no runnable Example (func Example in an example_test.go)", path)
	}
	assert.Greater(t, n, 20, "the library packages were listed")
}
