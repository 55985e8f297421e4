package dist_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/dist"
)

// Open the communicator of the launch this process belongs to and reduce
// gradients over its ranks. Started without a launcher (no mpirun or
// torchrun variables) it is the single-process communicator, whose
// collectives leave the data as it is; train.Options.Comm takes it.
func Example() {
	launch, err := dist.Detect(func(string) string { return "" }) // a plain start: no launcher
	if err != nil {
		log.Fatal(err)
	}
	c, err := dist.Open(dist.Options{Device: "cpu", Launch: &launch})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	grads := []float32{0.5, -1}
	if err := c.AllReduce(grads, dist.Sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Name(), "rank", c.Rank(), "of", c.Size(), grads)
	// Output:
	// none rank 0 of 1 [0.5 -1]
}

// A process started by torchrun (or any launcher that sets RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT) learns its place.
func Example_torchrun() {
	env := map[string]string{"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
	l, err := dist.Detect(func(k string) string { return env[k] })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Launcher, "rank", l.Rank, "of", l.Size, "local rank", l.LocalRank, "master", l.MasterAddr, l.MasterPort)
	// Output:
	// torchrun rank 1 of 2 local rank 1 master 10.0.0.1 29500
}
