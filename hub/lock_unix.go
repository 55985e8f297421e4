//go:build unix

package hub

import (
	"os"
	"syscall"
)

// lockFile takes the exclusive lock huggingface_hub's filelock takes on
// .locks/models--org--name/<etag>.lock (flock), so that Python and rerank
// never download the same blob at once.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
