// Package testdir writes small file trees for tests.
package testdir

import (
	"os"
	"path/filepath"
	"testing"
)

// Write creates each file of files (path relative to a new temporary
// directory, slash-separated, parents created) with its content, and
// returns the directory. It fails the test on any error.
func Write(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("testdir: %v", err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatalf("testdir: %v", err)
		}
	}
	return dir
}
