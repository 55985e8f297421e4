package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// ReplaceDir puts a new directory in the place of dir as a whole. fill
// writes the new contents into a temporary directory beside dir
// (".NAME.tmp-*"); when it succeeds, that directory takes dir's place (in
// one atomic exchange where the system offers one, Linux's renameat2, else
// by two renames) and the old contents are removed. Readers see the old
// directory or the new one, never a mix; an error from fill, or a full
// disk, leaves dir as it was.
//
// owned, when dir exists, is asked about each of its entries: ReplaceDir
// refuses, changing nothing, when dir holds an entry that is not the
// caller's to remove (a directory the user pointed at by mistake). A nil
// owned owns everything.
func ReplaceDir(dir string, owned func(name string) bool, fill func(tmp string) error) error {
	dir = filepath.Clean(dir)
	parent, base := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	exists := false
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("write %s: it exists and is not a directory", dir)
		}
		exists = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("write %s: %w", dir, err)
		}
		for _, e := range entries {
			if owned != nil && !owned(e.Name()) {
				return fmt.Errorf("write %s: it holds %s, which this writer did not make; remove it or choose another directory", dir, e.Name())
			}
		}
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("write %s: %w", dir, err)
	} else if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // after the swap it holds the old contents
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	if err := fill(tmp); err != nil {
		return err
	}
	syncDir(tmp)
	if err := swapIn(tmp, dir, exists, exchange); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	syncDir(parent)
	return nil
}

// swapIn puts the directory tmp at dir; an existing dir ends up at tmp.
// exch swaps two entries atomically, or fails when it cannot; then the old
// directory steps aside, the new one takes its name, and the old one comes
// back if that fails.
func swapIn(tmp, dir string, exists bool, exch func(a, b string) error) error {
	if !exists {
		return os.Rename(tmp, dir)
	}
	if exch(tmp, dir) == nil {
		return nil
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return err
	}
	return os.Rename(old, tmp)
}

// syncDir makes renames in dir durable (best effort).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
