//go:build !mpi || !cgo

package dist

func openMPI(Launch, Options) (Comm, error) { return nil, ErrNoMPI }

// MPIVersion is "" in a build without MPI.
func MPIVersion() string { return "" }
