// Package mpitest runs a test function as the ranks of an mpirun job: the
// test re-executes its own binary under `mpirun -np N --oversubscribe`,
// where Worker tells it that it is a rank.
package mpitest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// WorkerEnv is set in the ranks' environment.
const WorkerEnv = "RERANK_MPITEST_WORKER"

// Worker reports whether this process is a rank started by Run.
func Worker() bool { return os.Getenv(WorkerEnv) != "" }

// Run starts np copies of the test binary running only the test named
// name under mpirun, with env added, and returns their combined output
// and mpirun's error. It skips the test when mpirun is missing (fails
// under CI=true) and kills the job after timeout. Running as root sets
// Open MPI's run-as-root variables.
func Run(t testing.TB, np int, name string, timeout time.Duration, env ...string) (string, error) {
	t.Helper()
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mpirun not found: CI must install openmpi-bin (scripts/setup-debian.sh)")
		}
		t.Skip("mpirun not found (apt-get install openmpi-bin libopenmpi-dev)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"-np", itoa(np), "--oversubscribe", "--bind-to", "none",
		"--mca", "btl", "self,vader,tcp", "--mca", "btl_tcp_if_include", "lo",
		"--mca", "oob_tcp_if_include", "lo",
		"-x", WorkerEnv + "=1"}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		args = append(args, "-x", k)
	}
	args = append(args, os.Args[0], "-test.run", "^"+name+"$", "-test.count=1", "-test.v")
	cmd := exec.CommandContext(ctx, mpirun, args...)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1", "OMPI_MCA_rmaps_base_oversubscribe=1")
	if os.Geteuid() == 0 {
		cmd.Env = append(cmd.Env, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("mpirun -np %d %s: still running after %v (a hang):\n%s", np, name, timeout, out.String())
	}
	return out.String(), err
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}
