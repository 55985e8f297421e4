package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tree reads every file of dir (one level) into a map.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range entries(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		out[name] = string(b)
	}
	return out
}

func TestReplaceDir(t *testing.T) {
	boom := errors.New("disk full")
	write := func(files map[string]string, err error) func(string) error {
		return func(tmp string) error {
			for name, data := range files {
				if e := os.WriteFile(filepath.Join(tmp, name), []byte(data), 0o644); e != nil {
					return e
				}
			}
			return err
		}
	}
	old := map[string]string{"index.html": "old", "a.png": "old plot"}
	onlyReports := func(name string) bool { return name == "index.html" || strings.HasSuffix(name, ".png") }
	for _, tc := range []struct {
		name   string
		before map[string]string // nil: dir does not exist
		owned  func(string) bool
		fill   func(string) error
		want   map[string]string // dir afterwards
		err    string
	}{
		{"creates", nil, onlyReports, write(map[string]string{"index.html": "new"}, nil), map[string]string{"index.html": "new"}, ""},
		{"replaces whole, stale files go", old, onlyReports, write(map[string]string{"index.html": "new", "b.png": "new plot"}, nil),
			map[string]string{"index.html": "new", "b.png": "new plot"}, ""},
		{"error in the middle keeps the old", old, onlyReports, write(map[string]string{"index.html": "half"}, boom), old, "disk full"},
		{"refuses foreign files", map[string]string{"index.html": "old", "thesis.tex": "mine"}, onlyReports,
			write(map[string]string{"index.html": "new"}, nil), map[string]string{"index.html": "old", "thesis.tex": "mine"}, "thesis.tex"},
		{"nil owned owns everything", map[string]string{"x": "1"}, nil, write(map[string]string{"y": "2"}, nil), map[string]string{"y": "2"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "sub", "report")
			if tc.before != nil {
				require.NoError(t, os.MkdirAll(dir, 0o755))
				for name, data := range tc.before {
					require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
				}
			}
			err := ReplaceDir(dir, tc.owned, tc.fill)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
			} else {
				require.NoError(t, err)
				st, err := os.Stat(dir)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
			}
			assert.Equal(t, tc.want, tree(t, dir))
			assert.Equal(t, []string{"report"}, entries(t, filepath.Dir(dir)), "no temporary directory is left beside it")
		})
	}
	t.Run("a file in the way", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f")
		require.NoError(t, os.WriteFile(path, nil, 0o644))
		assert.ErrorContains(t, ReplaceDir(path, nil, write(nil, nil)), "not a directory")
	})
	t.Run("without an atomic exchange", func(t *testing.T) {
		parent := t.TempDir()
		dir, tmp := filepath.Join(parent, "d"), filepath.Join(parent, ".d.tmp-1")
		for path, data := range map[string]string{dir: "old", tmp: "new"} {
			require.NoError(t, os.Mkdir(path, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(path, "f"), []byte(data), 0o644))
		}
		require.NoError(t, swapIn(tmp, dir, true, func(a, b string) error { return errors.ErrUnsupported }))
		assert.Equal(t, map[string]string{"f": "new"}, tree(t, dir))
		assert.Equal(t, map[string]string{"f": "old"}, tree(t, tmp), "the old contents wait at tmp for removal")
	})
}
