package flagdata_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/rerank-go/rerank/flagdata"
)

// Read FlagEmbedding training lines and draw training groups from them as
// FlagEmbedding's dataset does: each group is the query's positive then
// GroupSize-1 negatives, each batch BatchSize queries.
func Example() {
	data := `{"query": "what is a wing", "pos": ["A wing generates lift."], "neg": ["Rivers flow.", "Aspirin is a drug.", "Snow is cold."]}
{"query": "what lowers heart attack risk", "pos": ["Aspirin lowers the risk."], "neg": ["A wing generates lift.", "Rivers flow."]}
`
	examples, err := flagdata.Parse(strings.NewReader(data), "train.jsonl", flagdata.Options{})
	if err != nil {
		log.Fatal(err)
	}
	s, err := flagdata.NewSampler(examples, flagdata.SamplerConfig{GroupSize: 3, BatchSize: 2, Seed: 1, NoShuffle: true})
	if err != nil {
		log.Fatal(err)
	}
	b := s.Next()
	for _, g := range b.Groups {
		fmt.Printf("%s: %d passages, the positive first: %q\n", g.Query, len(g.Passages), g.Passages[0])
	}
	fmt.Println("steps per epoch:", s.StepsPerEpoch())
	// Output:
	// what is a wing: 3 passages, the positive first: "A wing generates lift."
	// what lowers heart attack risk: 3 passages, the positive first: "Aspirin lowers the risk."
	// steps per epoch: 1
}
