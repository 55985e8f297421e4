package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

// TestWriteNotRegular: a path that is a FIFO (standing in for /dev/null or
// /dev/stdout, which a test must not risk replacing) is written in place,
// and a symbolic link is followed, not replaced by a regular file.
func TestWriteNotRegular(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) (path string, read func() string)
		check func(t *testing.T, path string)
	}{
		{"fifo", func(t *testing.T, dir string) (string, func() string) {
			p := filepath.Join(dir, "pipe")
			require.NoError(t, syscall.Mkfifo(p, 0o600))
			got := make(chan string, 1)
			go func() {
				b, _ := os.ReadFile(p) // blocks until the writer opens and closes
				got <- string(b)
			}()
			return p, func() string {
				select {
				case s := <-got:
					return s
				case <-time.After(10 * time.Second):
					return "timeout"
				}
			}
		}, func(t *testing.T, path string) {
			st, err := os.Lstat(path)
			require.NoError(t, err)
			assert.NotZero(t, st.Mode()&os.ModeNamedPipe, "still a FIFO")
		}},
		{"symlink", func(t *testing.T, dir string) (string, func() string) {
			target := filepath.Join(dir, "real.txt")
			require.NoError(t, os.WriteFile(target, []byte("old"), 0o600))
			link := filepath.Join(dir, "link.txt")
			require.NoError(t, os.Symlink("real.txt", link))
			return link, func() string { b, _ := os.ReadFile(target); return string(b) }
		}, func(t *testing.T, path string) {
			st, err := os.Lstat(path)
			require.NoError(t, err)
			assert.NotZero(t, st.Mode()&os.ModeSymlink, "still a link")
		}},
		{"dangling symlink", func(t *testing.T, dir string) (string, func() string) {
			link := filepath.Join(dir, "link.txt")
			require.NoError(t, os.Symlink("new.txt", link))
			return link, func() string { b, _ := os.ReadFile(filepath.Join(dir, "new.txt")); return string(b) }
		}, func(t *testing.T, path string) {
			st, err := os.Lstat(path)
			require.NoError(t, err)
			assert.NotZero(t, st.Mode()&os.ModeSymlink, "still a link")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, read := tc.setup(t, dir)
			require.NoError(t, WriteFile(path, []byte("new")))
			assert.Equal(t, "new", read())
			tc.check(t, path)
			for _, e := range entries(t, dir) {
				assert.NotContains(t, e, ".tmp-", "no temporary file is left behind")
			}
		})
	}
}

// TestWriteMissingDirectory: a path in a directory that does not exist
// is an error naming that directory, not the temporary file's name.
func TestWriteMissingDirectory(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		name, path, dir string
	}{
		{"missing parent", filepath.Join(root, "nodir", "x.jsonl"), filepath.Join(root, "nodir")},
		{"missing grandparent", filepath.Join(root, "a", "b", "x.jsonl"), filepath.Join(root, "a", "b")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteFile(tc.path, []byte("x"))
			require.ErrorIs(t, err, fs.ErrNotExist)
			assert.Equal(t, "write "+tc.path+": directory "+tc.dir+" does not exist (create it first): "+fs.ErrNotExist.Error(), err.Error())
		})
	}
}
