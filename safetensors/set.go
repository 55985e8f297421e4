package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File names of a Hugging Face model directory.
const (
	SingleFile     = "model.safetensors"
	IndexFile      = "model.safetensors.index.json"
	pytorchFile    = "pytorch_model.bin"
	pytorchIndex   = "pytorch_model.bin.index.json"
	maxIndexLength = 1 << 30
)

// Set is the weights of a model directory: model.safetensors, or
// model.safetensors.index.json and the shards it names. Reads may run
// concurrently, but not concurrently with Close.
type Set struct {
	Dir string
	// Metadata is the index's "metadata" (non-string values such as
	// total_size as their JSON text), or the single file's metadata.
	Metadata map[string]string

	files []*File          // every open file, for Close
	where map[string]*File // tensor name -> the file holding it
	names []string         // sorted
}

// OpenDir opens the weights of a model directory: model.safetensors if
// present, otherwise model.safetensors.index.json and its shards. Every
// header is read and validated, and every tensor the index names must be
// in its shard. A directory with only pytorch_model.bin weights gives an
// error that says how to convert them.
func OpenDir(dir string) (*Set, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("safetensors: model directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("safetensors: %s is not a directory (use Open for a single file)", dir)
	}
	single := filepath.Join(dir, SingleFile)
	if exists(single) {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		s := &Set{Dir: dir, Metadata: f.Metadata, files: []*File{f}, where: map[string]*File{}}
		for name := range f.Tensors {
			s.where[name] = f
		}
		s.names = f.Names()
		return s, nil
	}
	index := filepath.Join(dir, IndexFile)
	if exists(index) {
		return openIndex(dir, index)
	}
	for _, pt := range []string{pytorchFile, pytorchIndex} {
		if exists(filepath.Join(dir, pt)) {
			return nil, fmt.Errorf("safetensors: %s holds only PyTorch weights (%s): read them with package torchbin (hfmodel.Load does), or convert them to safetensors, e.g. in Python with transformers: "+
				"AutoModelForSequenceClassification.from_pretrained(%q).save_pretrained(%q, safe_serialization=True)", dir, pt, dir, dir)
		}
	}
	return nil, fmt.Errorf("safetensors: %s has no %s or %s: is it a Hugging Face model directory?", dir, SingleFile, IndexFile)
}

func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func openIndex(dir, index string) (s *Set, err error) {
	raw, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var idx struct {
		Metadata  map[string]json.RawMessage `json:"metadata"`
		WeightMap map[string]string          `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors: %s: no \"weight_map\" entries", index)
	}
	s = &Set{Dir: dir, where: make(map[string]*File, len(idx.WeightMap))}
	if idx.Metadata != nil {
		s.Metadata = make(map[string]string, len(idx.Metadata))
		for k, v := range idx.Metadata {
			var str string
			if json.Unmarshal(v, &str) == nil {
				s.Metadata[k] = str
			} else {
				s.Metadata[k] = string(bytes.TrimSpace(v))
			}
		}
	}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	shards := map[string]*File{}
	names := make([]string, 0, len(idx.WeightMap))
	for name := range idx.WeightMap {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		shard := idx.WeightMap[name]
		f, ok := shards[shard]
		if !ok {
			if shard == "" || shard != filepath.Base(shard) || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
				return s, fmt.Errorf("safetensors: %s: tensor %q maps to %q, which is not a file name in the directory", index, name, shard)
			}
			f, err = Open(filepath.Join(dir, shard))
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return s, fmt.Errorf("safetensors: %s: shard %s (of tensor %q) is missing: download it too", index, shard, name)
				}
				return s, err
			}
			shards[shard] = f
			s.files = append(s.files, f)
		}
		if _, ok := f.Tensors[name]; !ok {
			return s, fmt.Errorf("safetensors: %s: tensor %q is mapped to %s, which does not contain it", index, name, shard)
		}
		s.where[name] = f
	}
	s.names = names
	return s, nil
}

// Names returns the tensor names, sorted.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Has reports whether the set holds a tensor.
func (s *Set) Has(name string) bool { _, ok := s.where[name]; return ok }

// Info returns the description of a tensor; Begin and End are relative to
// the data of the file holding it (see File).
func (s *Set) Info(name string) (TensorInfo, error) {
	f, err := s.file(name)
	if err != nil {
		return TensorInfo{}, err
	}
	return f.Info(name)
}

// File returns the open file that holds a tensor.
func (s *Set) File(name string) (*File, error) { return s.file(name) }

// Float32 reads a tensor as float32 (see File.Float32).
func (s *Set) Float32(name string) ([]float32, []int, error) {
	f, err := s.file(name)
	if err != nil {
		return nil, nil, err
	}
	return f.Float32(name)
}

// Float32Chunks reads a tensor a chunk at a time (see File.Float32Chunks).
func (s *Set) Float32Chunks(name string, buf []float32, fn func(off int, v []float32) error) error {
	f, err := s.file(name)
	if err != nil {
		return err
	}
	return f.Float32Chunks(name, buf, fn)
}

// Raw returns a copy of a tensor's stored bytes (see File.Raw).
func (s *Set) Raw(name string) ([]byte, error) {
	f, err := s.file(name)
	if err != nil {
		return nil, err
	}
	return f.Raw(name)
}

func (s *Set) file(name string) (*File, error) {
	f, ok := s.where[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: model directory %s has no tensor %q (it has %d; see Names)", s.Dir, name, len(s.names))
	}
	return f, nil
}

// Close closes every file of the set and returns the first error.
func (s *Set) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
