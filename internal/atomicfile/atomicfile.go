// Package atomicfile writes files so that a crash or an error never leaves
// a half-written one behind: the data goes to a temporary file in the
// target's directory, is flushed to disk, and is then renamed over the
// target. Readers see the old file or the new one, never a mix.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File is a temporary file that becomes path on Commit.
type File struct {
	*os.File
	path   string
	done   bool
	direct bool // path is not a regular file (a device, a FIFO): written in place
}

// Create starts writing path: it opens a temporary file next to it.
//
// A symbolic link is followed: the file it points to is replaced and the
// link stays. A path that exists and is not a regular file or a directory
// (/dev/null, /dev/stdout, a FIFO, a socket) cannot be replaced by a
// rename — as root that would put a regular file where the device was —
// so it is opened and written in place, and Commit only closes it.
func Create(path string) (*File, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		switch {
		case err == nil:
			path = target
		case errors.Is(err, fs.ErrNotExist):
			// A dangling link: write where it points, as the shell would.
			dest, rerr := os.Readlink(path)
			if rerr != nil {
				return nil, fmt.Errorf("write %s: %w", path, rerr)
			}
			if !filepath.IsAbs(dest) {
				dest = filepath.Join(filepath.Dir(path), dest)
			}
			path = dest
		default:
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		return &File{File: f, path: path, direct: true}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		// The temporary's name would puzzle: say what is missing.
		if dir := filepath.Dir(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("write %s: directory %s does not exist (create it first): %w", path, dir, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{File: f, path: path}, nil
}

// Path is the file's final name.
func (f *File) Path() string { return f.path }

// Commit syncs and closes the temporary file, makes it world-readable
// (0644, as os.WriteFile would) and renames it to the final path. On error
// the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", f.path)
	}
	f.done = true
	if f.direct {
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
		return nil
	}
	tmp := f.Name()
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if d, derr := os.Open(filepath.Dir(f.path)); derr == nil {
		d.Sync() // best effort: makes the rename itself durable
		d.Close()
	}
	return nil
}

// Abort closes and removes the temporary file, leaving any existing file
// at the final path untouched. It does nothing after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	if !f.direct {
		os.Remove(f.Name())
	}
}

// Write creates path from what fill writes through a buffered writer,
// atomically. An error from fill leaves path as it was.
func Write(path string, fill func(w io.Writer) error) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := fill(w); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
