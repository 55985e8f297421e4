//go:build !unix

package hub

// lockFile is a no-op where flock is unavailable: downloads still reach
// the cache only by rename.
func lockFile(string) (func(), error) { return func() {}, nil }
