package dist

import (
	"fmt"
	"strconv"
)

// Launch is what the launcher told this process.
type Launch struct {
	// Launcher is "mpirun" (OMPI_COMM_WORLD_* set), "torchrun" (RANK and
	// WORLD_SIZE set) or "" (a single process).
	Launcher              string
	Rank, Size, LocalRank int
	// MasterAddr and MasterPort are torchrun's MASTER_ADDR and
	// MASTER_PORT ("" and 0 under mpirun unless set).
	MasterAddr string
	MasterPort int
	// AgentStore tells that torchrun's agent already serves its TCP store
	// at MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True): NCCL's id
	// exchange then listens on MASTER_PORT+1.
	AgentStore bool
	// NCCLCommID is NCCL_COMM_ID ("host:port"): NCCL then exchanges its
	// unique id itself and no rendezvous is needed.
	NCCLCommID string
}

// Detect reads the launch environment through getenv (os.Getenv):
//
//   - mpirun (Open MPI): OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE,
//     OMPI_COMM_WORLD_LOCAL_RANK;
//   - torchrun or any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK,
//     MASTER_ADDR and MASTER_PORT;
//   - NCCL_COMM_ID, when set, for NCCL's own id exchange.
//
// Without either it is a single process. A malformed value is an error
// naming the variable.
func Detect(getenv func(string) string) (Launch, error) {
	l := Launch{Size: 1, NCCLCommID: getenv("NCCL_COMM_ID")}
	num := func(name string, dflt, lo int) (int, error) {
		s := getenv(name)
		if s == "" {
			return dflt, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo {
			return 0, fmt.Errorf("launch environment: %s=%q: want an integer of at least %d", name, s, lo)
		}
		return n, nil
	}
	var err error
	switch {
	case getenv("OMPI_COMM_WORLD_SIZE") != "":
		l.Launcher = "mpirun"
		if l.Size, err = num("OMPI_COMM_WORLD_SIZE", 1, 1); err != nil {
			return l, err
		}
		if l.Rank, err = num("OMPI_COMM_WORLD_RANK", -1, 0); err != nil {
			return l, err
		}
		if l.Rank < 0 {
			return l, fmt.Errorf("launch environment: OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK is not")
		}
		if l.LocalRank, err = num("OMPI_COMM_WORLD_LOCAL_RANK", 0, 0); err != nil {
			return l, err
		}
	case getenv("WORLD_SIZE") != "":
		l.Launcher = "torchrun"
		if l.Size, err = num("WORLD_SIZE", 1, 1); err != nil {
			return l, err
		}
		if l.Rank, err = num("RANK", -1, 0); err != nil {
			return l, err
		}
		if l.Rank < 0 {
			return l, fmt.Errorf("launch environment: WORLD_SIZE is set but RANK is not")
		}
		if l.LocalRank, err = num("LOCAL_RANK", 0, 0); err != nil {
			return l, err
		}
		l.AgentStore = getenv("TORCHELASTIC_USE_AGENT_STORE") == "True"
	default:
		return l, nil
	}
	if l.Rank >= l.Size {
		return l, fmt.Errorf("launch environment: rank %d of a world of %d", l.Rank, l.Size)
	}
	if l.LocalRank > l.Rank {
		return l, fmt.Errorf("launch environment: local rank %d above rank %d", l.LocalRank, l.Rank)
	}
	l.MasterAddr = getenv("MASTER_ADDR")
	if l.MasterPort, err = num("MASTER_PORT", 0, 1); err != nil {
		return l, err
	}
	if l.MasterPort > 65535 {
		return l, fmt.Errorf("launch environment: MASTER_PORT=%d: not a port", l.MasterPort)
	}
	return l, nil
}
