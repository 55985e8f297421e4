// Package sharedtest locates the ground-truth folder ../shared (golden
// tensors, retrieval collections, tokenizers) for tests.
//
// A test that needs it calls Dir, Golden, Data or Models. When the folder
// is absent (a user's fresh clone) the test is skipped with a message that
// says how to provide it; under CI=true a missing folder fails the test
// instead, so that CI can never pass by skipping.
package sharedtest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// root returns the repository root, found from this source file.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Dir returns the shared folder: $RERANK_SHARED, or ../shared next to the
// repository root.
func Dir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("RERANK_SHARED")
	if d == "" {
		d = filepath.Join(root(), "..", "shared")
	}
	return require(t, d, "RERANK_SHARED")
}

// Golden returns the golden-vector folder: $RERANK_GOLDEN, or
// ../shared/golden.
func Golden(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("RERANK_GOLDEN"); d != "" {
		return require(t, d, "RERANK_GOLDEN")
	}
	return require(t, filepath.Join(Dir(t), "golden"), "RERANK_GOLDEN")
}

// Data returns the retrieval-collection folder ../shared/data.
func Data(t testing.TB) string {
	t.Helper()
	return require(t, filepath.Join(Dir(t), "data"), "RERANK_SHARED")
}

// Models returns the tokenizer folder ../shared/models.
func Models(t testing.TB) string {
	t.Helper()
	return require(t, filepath.Join(Dir(t), "models"), "RERANK_SHARED")
}

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

func require(t testing.TB, d, env string) string {
	t.Helper()
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	msg := "ground-truth folder " + d + " not found: clone the shared folder next to the repository or set " + env
	if InCI() {
		t.Fatal(msg + " (CI=true: this must not be skipped)")
	}
	t.Skip(msg)
	return ""
}
