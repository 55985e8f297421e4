package flagdata

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/rerank-go/rerank/internal/atomicfile"
)

// Marshal encodes one example as a JSON line (without the newline): the
// known keys first (query, pos, neg, pos_scores, neg_scores, prompt; the
// optional ones only when set), then Extra sorted by key. Non-ASCII text
// is written as UTF-8 and <, >, & are not escaped.
func Marshal(ex *Example) ([]byte, error) {
	var b bytes.Buffer
	put := func(key string, v any) error {
		if b.Len() == 0 {
			b.WriteByte('{')
		} else {
			b.WriteString(", ")
		}
		kb, _ := json.Marshal(key)
		b.Write(kb)
		b.WriteString(": ")
		var vb bytes.Buffer
		enc := json.NewEncoder(&vb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
		b.Write(bytes.TrimSuffix(vb.Bytes(), []byte("\n")))
		return nil
	}
	list := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	if err := put(keyQuery, ex.Query); err != nil {
		return nil, err
	}
	if err := put(keyPos, list(ex.Pos)); err != nil {
		return nil, err
	}
	if err := put(keyNeg, list(ex.Neg)); err != nil {
		return nil, err
	}
	if ex.PosScores != nil {
		if err := put(keyPosScores, ex.PosScores); err != nil {
			return nil, err
		}
	}
	if ex.NegScores != nil {
		if err := put(keyNegScores, ex.NegScores); err != nil {
			return nil, err
		}
	}
	if ex.Prompt != "" {
		if err := put(keyPrompt, ex.Prompt); err != nil {
			return nil, err
		}
	}
	keys := make([]string, 0, len(ex.Extra))
	for k := range ex.Extra {
		switch k {
		case keyQuery, keyPos, keyNeg, keyPosScores, keyNegScores, keyPrompt:
			continue // the typed fields win
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := put(k, ex.Extra[k]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Writer writes examples to a file atomically: lines go to a temporary
// file in the same directory, which Close renames over the destination.
// A path ending in .gz is gzip-compressed.
type Writer struct {
	path string
	tmp  *atomicfile.File
	gz   *gzip.Writer
	buf  *bufio.Writer
	n    int
	err  error
}

// Create starts writing path.
func Create(path string) (*Writer, error) {
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, tmp: tmp}
	var out io.Writer = tmp
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		w.gz = gzip.NewWriter(tmp)
		out = w.gz
	}
	w.buf = bufio.NewWriterSize(out, 1<<16)
	return w, nil
}

// Write appends one example.
func (w *Writer) Write(ex *Example) error {
	if w.err != nil {
		return w.err
	}
	line, err := Marshal(ex)
	if err != nil {
		w.err = fmt.Errorf("write %s: example %d: %w", w.path, w.n+1, err)
		return w.err
	}
	line = append(line, '\n')
	if _, err := w.buf.Write(line); err != nil {
		w.err = fmt.Errorf("write %s: %w", w.path, err)
		return w.err
	}
	w.n++
	return nil
}

// Count is the number of examples written so far.
func (w *Writer) Count() int { return w.n }

// Close flushes, syncs and renames the file into place. After an error
// the temporary file is removed and the destination is left untouched.
func (w *Writer) Close() error {
	if w.tmp == nil {
		return w.err
	}
	err := w.err
	if err == nil {
		err = w.buf.Flush()
	}
	if err == nil && w.gz != nil {
		err = w.gz.Close()
	}
	if err != nil {
		w.tmp.Abort()
		if w.err == nil {
			err = fmt.Errorf("write %s: %w", w.path, err)
		}
	} else {
		err = w.tmp.Commit()
	}
	w.tmp = nil
	return err
}

// Abort discards what was written; the destination is left untouched.
func (w *Writer) Abort() {
	if w.tmp != nil {
		w.tmp.Abort()
		w.tmp = nil
	}
}

// WriteFile writes all examples to path atomically (see Writer).
func WriteFile(path string, examples []Example) error {
	w, err := Create(path)
	if err != nil {
		return err
	}
	for i := range examples {
		if err := w.Write(&examples[i]); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}
