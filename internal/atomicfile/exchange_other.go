//go:build !linux

package atomicfile

import "errors"

// exchange is not offered here: ReplaceDir renames twice.
func exchange(a, b string) error { return errors.ErrUnsupported }
