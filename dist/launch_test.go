package dist

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		env  func(string) string
		want Launch
		err  string
	}{
		{"alone", env(), Launch{Size: 1}, ""},
		{"mpirun", env("OMPI_COMM_WORLD_RANK", "3", "OMPI_COMM_WORLD_SIZE", "4", "OMPI_COMM_WORLD_LOCAL_RANK", "1"),
			Launch{Launcher: "mpirun", Rank: 3, Size: 4, LocalRank: 1}, ""},
		{"torchrun", env("RANK", "1", "WORLD_SIZE", "2", "LOCAL_RANK", "1", "MASTER_ADDR", "10.0.0.1", "MASTER_PORT", "29500", "TORCHELASTIC_USE_AGENT_STORE", "True"),
			Launch{Launcher: "torchrun", Rank: 1, Size: 2, LocalRank: 1, MasterAddr: "10.0.0.1", MasterPort: 29500, AgentStore: true}, ""},
		{"nccl comm id", env("RANK", "0", "WORLD_SIZE", "2", "NCCL_COMM_ID", "h:1234"),
			Launch{Launcher: "torchrun", Size: 2, NCCLCommID: "h:1234"}, ""},
		{"mpirun wins over torch variables", env("OMPI_COMM_WORLD_RANK", "0", "OMPI_COMM_WORLD_SIZE", "2", "RANK", "5", "WORLD_SIZE", "8"),
			Launch{Launcher: "mpirun", Size: 2}, ""},
		{"bad size", env("WORLD_SIZE", "two", "RANK", "0"), Launch{}, `WORLD_SIZE="two"`},
		{"no rank", env("WORLD_SIZE", "2"), Launch{}, "RANK is not"},
		{"rank beyond size", env("OMPI_COMM_WORLD_RANK", "2", "OMPI_COMM_WORLD_SIZE", "2"), Launch{}, "rank 2 of a world of 2"},
		{"negative local rank", env("RANK", "0", "WORLD_SIZE", "2", "LOCAL_RANK", "-1"), Launch{}, "LOCAL_RANK"},
		{"bad port", env("RANK", "0", "WORLD_SIZE", "2", "MASTER_PORT", "70000"), Launch{}, "MASTER_PORT=70000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Detect(tc.env)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestOpen(t *testing.T) {
	one := &Launch{Size: 1}
	two := &Launch{Launcher: "torchrun", Rank: 0, Size: 2}
	tests := []struct {
		name string
		opts Options
		want string // Name of the comm, or
		err  string // the error
	}{
		{"one process", Options{Launch: one}, None, ""},
		{"explicit none", Options{Backend: "none", Launch: one}, None, ""},
		{"none with two", Options{Backend: "none", Launch: two}, "", "--ddp-backend none with a world of 2"},
		{"unknown", Options{Backend: "gloo", Launch: one}, "", `--ddp-backend "gloo"`},
		{"cpu under torchrun", Options{Device: "cpu", Launch: two}, "", "mpirun -np 2"},
		{"mpi without mpirun", Options{Backend: "mpi", Launch: two}, "", "needs processes started by mpirun"},
		{"nccl on the cpu", Options{Backend: "nccl", Launch: two, Device: "cpu"}, "", "NCCL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(tc.opts)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Name())
			assert.Equal(t, 0, c.Rank())
			assert.Equal(t, 1, c.Size())
			buf := []float32{1, 2}
			require.NoError(t, c.AllReduce(buf, Mean))
			assert.Equal(t, []float32{1, 2}, buf)
			require.NoError(t, c.Close())
		})
	}
}

func TestRankErrorSaysWhatToDo(t *testing.T) {
	e := &RankError{Op: "all-reduce", Rank: 1, Timeout: DefaultTimeout}
	assert.Contains(t, e.Error(), "rank 1 within 30m0s (--ddp-timeout)")
	assert.Contains(t, e.Error(), "--resume latest")
}
