package hfmodel

import (
	"fmt"
	"slices"

	"github.com/rerank-go/rerank/nn"
)

// checkWeights compares the parameters config.json implies with the
// tensors the weights files' headers (or torch pickle) list, before anything is allocated:
// a config that does not belong to its weights (a hidden_size of 10⁹, a
// million layers) is an error naming the first mismatch, not an
// allocation of its size.
func checkWeights(dir string, cfg *Config, set weights) error {
	pre := cfg.Arch.Prefix() + "."
	var missing []string
	for _, p := range nn.Layout(cfg.Config) {
		name, ok := findTensor(set, p.Name, pre)
		if !ok {
			if !isHead(p.Name, pre) {
				missing = append(missing, p.Name)
			}
			continue
		}
		shape, err := set.Shape(name)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		if !slices.Equal(shape, p.Shape) {
			return fmt.Errorf("%s: tensor %q has shape %v, but config.json implies %v for %s: the config and the weights do not belong together",
				dir, name, shape, p.Shape, p.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: the checkpoint lacks %d tensors the model needs, first %q: is this a %s checkpoint, and does config.json (num_hidden_layers %d) describe it?",
			dir, len(missing), missing[0], cfg.Arch, cfg.Layers)
	}
	return nil
}
