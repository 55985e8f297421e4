package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/internal/atomicfile"
	"github.com/rerank-go/rerank/optim"
	"github.com/rerank-go/rerank/safetensors"
)

// Checkpoint file names inside checkpoint-<step>/, besides the model
// directory's own files.
const (
	OptimizerFile = "optimizer.safetensors"
	StateFile     = "trainer_state.json"
	ArgsFile      = "training_args.json"
	MetricsFile   = "metrics.jsonl"
	checkpointPre = "checkpoint-"
)

// State is the loop's resumable state besides weights and moments.
type State struct {
	Step    int                   `json:"global_step"`
	Epoch   int                   `json:"epoch"`
	Total   int                   `json:"max_steps"`
	Sampler flagdata.SamplerState `json:"sampler"`
	// LogLossSum and LogCount are the losses accumulated since the last
	// logged step, so that a resumed run logs the same averages.
	LogLossSum float64 `json:"log_loss_sum"`
	LogCount   int     `json:"log_count"`
	// Seed is the run's seed; every dropout mask derives from it and
	// the step number.
	Seed uint64 `json:"seed"`
	// WorldSize is the number of data-parallel processes that wrote the
	// checkpoint (0 in checkpoints from before: one).
	WorldSize int `json:"world_size,omitempty"`
}

// CheckpointDir is the directory of the checkpoint of step under out.
func CheckpointDir(out string, step int) string {
	return filepath.Join(out, checkpointPre+strconv.Itoa(step))
}

// Checkpoints lists the complete checkpoints of out, oldest first.
func Checkpoints(out string) ([]string, error) {
	ents, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type ck struct {
		step int
		dir  string
	}
	var cks []ck
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), checkpointPre)
		if !ok || !e.IsDir() {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		dir := filepath.Join(out, e.Name())
		if _, err := os.Stat(filepath.Join(dir, StateFile)); err != nil {
			continue // not a complete checkpoint
		}
		cks = append(cks, ck{n, dir})
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].step < cks[j].step })
	out2 := make([]string, len(cks))
	for i, c := range cks {
		out2[i] = c.dir
	}
	return out2, nil
}

// LatestCheckpoint returns the newest complete checkpoint of out, or ""
// when there is none.
func LatestCheckpoint(out string) (string, error) {
	cks, err := Checkpoints(out)
	if err != nil || len(cks) == 0 {
		return "", err
	}
	return cks[len(cks)-1], nil
}

// saveCheckpoint writes checkpoint-<step> atomically: everything goes to
// a temporary directory beside it, which is renamed into place last.
func saveCheckpoint(out string, saveModel func(dir string) error, opt *optim.AdamW, st State, args Args) (string, error) {
	final := CheckpointDir(out, st.Step)
	tmp, err := os.MkdirTemp(out, "."+checkpointPre+strconv.Itoa(st.Step)+".tmp-")
	if err != nil {
		return "", fmt.Errorf("checkpoint %d: %w", st.Step, err)
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("checkpoint %d: %w", st.Step, err)
	}
	if err := saveModel(tmp); err != nil {
		return fail(err)
	}
	os_, err := opt.State()
	if err != nil {
		return fail(err)
	}
	var tensors []safetensors.Tensor
	shapes := map[string][]int{}
	for _, p := range opt.Params() {
		shapes[p.Name] = p.Shape
	}
	for name, v := range os_.M {
		tensors = append(tensors, safetensors.F32Tensor("exp_avg."+name, shapes[name], v))
	}
	for name, v := range os_.V {
		tensors = append(tensors, safetensors.F32Tensor("exp_avg_sq."+name, shapes[name], v))
	}
	sort.Slice(tensors, func(i, j int) bool { return tensors[i].Name < tensors[j].Name })
	if err := safetensors.Write(filepath.Join(tmp, OptimizerFile), tensors, map[string]string{"step": strconv.Itoa(os_.Step)}); err != nil {
		return fail(err)
	}
	js, _ := json.MarshalIndent(st, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(tmp, StateFile), append(js, '\n')); err != nil {
		return fail(err)
	}
	if err := writeArgs(filepath.Join(tmp, ArgsFile), args); err != nil {
		return fail(err)
	}
	if err := os.RemoveAll(final); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	return final, nil
}

func writeArgs(path string, a Args) error {
	js, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(js, '\n'))
}

// readState reads a checkpoint's trainer_state.json.
func readState(dir string) (State, error) {
	var st State
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return st, fmt.Errorf("resume: %w (is %s a checkpoint directory?)", err, dir)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("resume: %s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, nil
}

// loadOptimizer restores the AdamW moments of a checkpoint.
func loadOptimizer(dir string, opt *optim.AdamW, step int) error {
	path := filepath.Join(dir, OptimizerFile)
	f, err := safetensors.Open(path)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	defer f.Close()
	s := &optim.State{Step: step, M: map[string][]float32{}, V: map[string][]float32{}}
	for _, p := range opt.Params() {
		m, _, err := f.Float32("exp_avg." + p.Name)
		if err != nil {
			return fmt.Errorf("resume: %s: %w", path, err)
		}
		v, _, err := f.Float32("exp_avg_sq." + p.Name)
		if err != nil {
			return fmt.Errorf("resume: %s: %w", path, err)
		}
		s.M[p.Name], s.V[p.Name] = m, v
	}
	if err := opt.SetState(s); err != nil {
		return fmt.Errorf("resume: %s: %w", path, err)
	}
	return nil
}

// rotate deletes the oldest checkpoints beyond limit (0: keep all).
func rotate(out string, limit int) error {
	if limit <= 0 {
		return nil
	}
	cks, err := Checkpoints(out)
	if err != nil {
		return err
	}
	for len(cks) > limit {
		if err := os.RemoveAll(cks[0]); err != nil {
			return err
		}
		cks = cks[1:]
	}
	return nil
}
