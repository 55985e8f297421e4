package eval

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/rerank-go/rerank/internal/atomicfile"
	"github.com/rerank-go/rerank/internal/jsonl"
)

// maxLine is the longest input line accepted (FlagEmbedding lines of cisi
// reach about 150 KB).
const maxLine = 64 << 20

// openInput opens path for reading, transparently decompressing files whose
// name ends in ".gz".
func openInput(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, nil
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a gzip file: %w", path, err)
	}
	return &gzipFile{Reader: z, f: f}, nil
}

type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g *gzipFile) Close() error {
	err := g.Reader.Close()
	if e := g.f.Close(); err == nil {
		err = e
	}
	return err
}

// readFile opens path and hands it to parse, which receives the name to use
// in error messages.
func readFile[T any](path string, parse func(io.Reader, string) (T, error)) (T, error) {
	var zero T
	r, err := openInput(path)
	if err != nil {
		return zero, err
	}
	defer r.Close()
	return parse(r, path)
}

// eachLine calls fn with every line of r (without the line end, and the
// first without a UTF-8 byte-order mark) and its 1-based number. Errors
// from fn are returned as they are; read errors, and bytes that are not
// UTF-8, name the file and line.
func eachLine(r io.Reader, name string, fn func(line []byte, n int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		if n == 1 {
			line = jsonl.TrimBOM(line)
		}
		if !utf8.Valid(line) {
			return lineError(name, n, "%v", jsonl.Check(line))
		}
		if err := fn(line, n); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return fmt.Errorf("%s:%d: line longer than %d bytes", name, n+1, maxLine)
		}
		return fmt.Errorf("%s:%d: %w", name, n+1, err)
	}
	return nil
}

// lineError is an error at a position of an input file.
func lineError(name string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
}

// decodeLine unmarshals one JSON line strictly into v, refusing what
// jsonl.Check refuses.
func decodeLine(line []byte, v any) error {
	if err := jsonl.Check(line); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("invalid JSON: more than one value on the line")
	}
	return nil
}

// WriteJSON writes v as indented JSON to path atomically.
func WriteJSON(path string, v any) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(v)
	})
}
