package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func entries(t *testing.T, dir string) []string {
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWrite(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		fill func(io.Writer) error
		want string // file content afterwards
		err  error
	}{
		{"writes", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, "new", nil},
		{"error keeps the old file", func(w io.Writer) error { io.WriteString(w, "half"); return boom }, "old", boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.txt")
			require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
			err := Write(path, tc.fill)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
			} else {
				require.NoError(t, err)
				st, err := os.Stat(path)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
			assert.Equal(t, []string{"f.txt"}, entries(t, dir), "no temporary file is left behind")
		})
	}
}

func TestCreateCommitAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	f, err := Create(path)
	require.NoError(t, err)
	_, err = f.Write([]byte("abc"))
	require.NoError(t, err)
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "nothing at the final path before Commit")
	require.NoError(t, f.Commit())
	f.Abort() // no-op after Commit
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "abc", string(got))
	assert.Error(t, f.Commit(), "a second Commit is an error")

	g, err := Create(path)
	require.NoError(t, err)
	g.Write([]byte("zzz"))
	g.Abort()
	got, _ = os.ReadFile(path)
	assert.Equal(t, "abc", string(got))
	assert.Equal(t, []string{"out.bin"}, entries(t, dir))

	_, err = Create(filepath.Join(dir, "missing", "x"))
	assert.ErrorContains(t, err, "missing")
	assert.NoError(t, WriteFile(filepath.Join(dir, "w"), []byte("w")))
}
