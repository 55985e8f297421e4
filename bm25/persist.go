package bm25

import (
	"bufio"
	"encoding/gob"
	"fmt"
	"io"
	"os"

	"github.com/rerank-go/rerank/internal/atomicfile"
)

const (
	fileMagic   = "rerank-bm25-index"
	fileVersion = 1
)

// onDisk is the saved form of an Index (encoding/gob).
type onDisk struct {
	Magic   string
	Version int
	K1, B   float64
	IDs     []string
	Lens    []int32
	AvgDL   float64
	Terms   []string // by term id
	Docs    [][]int32
	TFs     [][]int32
}

// Save writes the index to path atomically (a temporary file in the same
// directory, renamed into place).
func (ix *Index) Save(path string) error {
	if err := atomicfile.Write(path, ix.Encode); err != nil {
		return fmt.Errorf("bm25: save: %w", err)
	}
	return nil
}

// Encode writes the index to w (encoding/gob; see Save).
func (ix *Index) Encode(w io.Writer) error {
	d := onDisk{
		Magic: fileMagic, Version: fileVersion,
		K1: ix.params.K1, B: ix.params.B,
		IDs: ix.ids, Lens: ix.lens, AvgDL: ix.avgdl,
		Terms: make([]string, len(ix.post)),
		Docs:  make([][]int32, len(ix.post)),
		TFs:   make([][]int32, len(ix.post)),
	}
	for t, id := range ix.terms {
		d.Terms[id] = t
	}
	for i, p := range ix.post {
		d.Docs[i], d.TFs[i] = p.docs, p.tfs
	}
	return gob.NewEncoder(w).Encode(&d)
}

// Load reads an index written by Save.
func Load(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bm25: load index: %w", err)
	}
	defer f.Close()
	ix, err := Read(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("bm25: load index %s: %w", path, err)
	}
	return ix, nil
}

// Read decodes an index written by Encode, checking it for consistency.
func Read(r io.Reader) (*Index, error) {
	var d onDisk
	if err := gob.NewDecoder(r).Decode(&d); err != nil {
		return nil, fmt.Errorf("not a BM25 index file (rebuild it with `rerank retrieve --save-index`): %w", err)
	}
	if d.Magic != fileMagic {
		return nil, fmt.Errorf("not a BM25 index file (magic %q)", d.Magic)
	}
	if d.Version != fileVersion {
		return nil, fmt.Errorf("index format version %d, this build reads %d: rebuild the index", d.Version, fileVersion)
	}
	n := len(d.IDs)
	if len(d.Lens) != n || len(d.Docs) != len(d.Terms) || len(d.TFs) != len(d.Terms) {
		return nil, fmt.Errorf("corrupt index: %d ids, %d lengths, %d terms, %d/%d posting lists",
			n, len(d.Lens), len(d.Terms), len(d.Docs), len(d.TFs))
	}
	ix := &Index{
		params: Params{K1: d.K1, B: d.B},
		ids:    d.IDs, lens: d.Lens, avgdl: d.AvgDL,
		terms: make(map[string]int32, len(d.Terms)),
		post:  make([]postings, len(d.Terms)),
	}
	if err := ix.params.validate(); err != nil {
		return nil, err
	}
	for i, t := range d.Terms {
		if _, dup := ix.terms[t]; dup {
			return nil, fmt.Errorf("corrupt index: term %q twice", t)
		}
		ix.terms[t] = int32(i)
		docs, tfs := d.Docs[i], d.TFs[i]
		if len(docs) != len(tfs) {
			return nil, fmt.Errorf("corrupt index: term %q has %d documents but %d frequencies", t, len(docs), len(tfs))
		}
		prev := int32(-1)
		for j, doc := range docs {
			if doc <= prev || int(doc) >= n || tfs[j] <= 0 {
				return nil, fmt.Errorf("corrupt index: term %q posting %d (doc %d, tf %d)", t, j, doc, tfs[j])
			}
			prev = doc
		}
		ix.post[i] = postings{docs: docs, tfs: tfs}
	}
	ix.derive()
	return ix, nil
}
