//go:build !cuda || cudaemu

package dist

func openNCCL(Launch, Options) (Comm, error) { return nil, ErrNoNCCL }
