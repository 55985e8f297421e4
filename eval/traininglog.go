package eval

import (
	"bytes"
	"io"
	"math"
	"sort"
	"strings"
)

// TrainingRecord is one line of a training metrics log (metrics.jsonl of
// `rerank train`): at least step and loss; learning_rate and
// pairs_per_second when logged; dev metrics such as "ndcg@10" when an
// evaluation ran at that step.
type TrainingRecord struct {
	Step           int
	Loss           float64 // NaN when the line has no loss
	LearningRate   float64 // NaN when absent
	PairsPerSecond float64 // NaN when absent
	// Dev holds every other numeric field whose name is a metric
	// ("ndcg@10", "dev_ndcg@10", ...), keyed as written.
	Dev map[string]float64
}

// ReadTrainingLog reads a training metrics JSONL file.
func ReadTrainingLog(path string) ([]TrainingRecord, error) {
	return readFile(path, ParseTrainingLog)
}

// ParseTrainingLog parses a training metrics log from r; name is used in
// error messages. Lines without "step" are rejected; unknown non-numeric
// fields are ignored. Records are returned sorted by step.
func ParseTrainingLog(r io.Reader, name string) ([]TrainingRecord, error) {
	var out []TrainingRecord
	err := eachLine(r, name, func(line []byte, n int) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
		var raw map[string]any
		if err := decodeLine(line, &raw); err != nil {
			return lineError(name, n, "%v (expected a JSON object with step and loss)", err)
		}
		num := func(k string) (float64, bool) {
			v, ok := raw[k].(float64)
			return v, ok
		}
		step, ok := num("step")
		if !ok || step != math.Trunc(step) {
			return lineError(name, n, "missing or non-integer \"step\"")
		}
		rec := TrainingRecord{Step: int(step), Loss: math.NaN(), LearningRate: math.NaN(), PairsPerSecond: math.NaN()}
		if v, ok := num("loss"); ok {
			rec.Loss = v
		}
		if v, ok := num("learning_rate"); ok {
			rec.LearningRate = v
		} else if v, ok := num("lr"); ok {
			rec.LearningRate = v
		}
		if v, ok := num("pairs_per_second"); ok {
			rec.PairsPerSecond = v
		}
		for k, v := range raw {
			f, ok := v.(float64)
			if ok && strings.Contains(k, "@") {
				if rec.Dev == nil {
					rec.Dev = map[string]float64{}
				}
				rec.Dev[k] = f
			}
		}
		out = append(out, rec)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Step < out[j].Step })
	return out, err
}
