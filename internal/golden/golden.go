// Package golden runs the parity checks against ../shared/golden: reference
// tensors produced by Hugging Face transformers and PEFT (see that folder's
// README for every file and tolerance). Every case directory found is run,
// whatever its shapes, on whatever backend the caller passes, so the CPU
// tests and the cuda-tagged tests share one harness.
package golden

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/safetensors"
)

// Expected is the part of a case's expected.json the checks use.
type Expected struct {
	Case   string    `json:"case"`
	Kind   string    `json:"kind"`
	B      int       `json:"B"`
	G      int       `json:"G"`
	Logits []float32 `json:"logits"`
	Loss   float32   `json:"loss"`

	LogitsBaseWithoutAdapter []float32 `json:"logits_base_model_without_adapter"`
	LogitsMerged             []float32 `json:"logits_merged_model"`

	AfterStep1 AfterStep `json:"after_step1"`
	AfterStep2 AfterStep `json:"after_step2"`
	AdamW      struct {
		LR            float32   `json:"lr"`
		Betas         []float32 `json:"betas"`
		Eps           float32   `json:"eps"`
		WeightDecay   float32   `json:"weight_decay"`
		DecayParams   []string  `json:"decay_params"`
		NoDecayParams []string  `json:"no_decay_params"`
	} `json:"adamw"`
	AnalyticallyZero []string `json:"analytically_zero_grad"`
	Lora             struct {
		WrappedModules  []string `json:"wrapped_modules"`
		TrainableParams []string `json:"trainable_params"`
	} `json:"lora"`
}

// AfterStep holds the values at the parameters after an AdamW step.
type AfterStep struct {
	Logits                []float32 `json:"logits"`
	Loss                  float32   `json:"loss"`
	HeadBias              float32   `json:"head_bias"`
	LogitsWithoutHeadBias []float32 `json:"logits_without_head_bias"`
}

// Inputs is a case's inputs.json.
type Inputs struct {
	B, G, N, S    int
	InputIDs      [][]int32 `json:"input_ids"`
	TokenTypeIDs  [][]int32 `json:"token_type_ids"`
	AttentionMask [][]int32 `json:"attention_mask"`
}

// Batch flattens the inputs into an nn.Batch.
func (in *Inputs) Batch() *nn.Batch {
	b := &nn.Batch{N: len(in.InputIDs), S: len(in.InputIDs[0])}
	for i := range in.InputIDs {
		b.InputIDs = append(b.InputIDs, in.InputIDs[i]...)
		b.TypeIDs = append(b.TypeIDs, in.TokenTypeIDs[i]...)
		b.Mask = append(b.Mask, in.AttentionMask[i]...)
	}
	return b
}

// Case is one golden case directory.
type Case struct {
	Name, Dir string
	Expected  *Expected
	Inputs    *Inputs
}

// Cases returns every case directory under root (a directory holding
// expected.json), sorted by name.
func Cases(t testing.TB, root string) []*Case {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("golden: %v", err)
	}
	var cs []*Case
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "expected.json")); err != nil {
			continue
		}
		c := &Case{Name: e.Name(), Dir: dir, Expected: &Expected{}, Inputs: &Inputs{}}
		if err := readJSON(filepath.Join(dir, "expected.json"), c.Expected); err != nil {
			t.Fatalf("golden: %v", err)
		}
		if err := readJSON(filepath.Join(dir, "inputs.json"), c.Inputs); err != nil {
			t.Fatalf("golden: %v", err)
		}
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	if len(cs) == 0 {
		t.Fatalf("golden: no case directory (with expected.json) under %s", root)
	}
	return cs
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Tensors reads every tensor of a safetensors file as float32.
func Tensors(t testing.TB, path string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatalf("golden: %v", err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, n := range f.Names() {
		v, _, err := f.Float32(n)
		if err != nil {
			t.Fatalf("golden: %v", err)
		}
		out[n] = v
	}
	return out
}
