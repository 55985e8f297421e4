package flagdata

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// IsDataFile reports whether a file name is one Load picks up from a
// directory: .jsonl or .json, optionally followed by .gz.
func IsDataFile(name string) bool {
	n := strings.TrimSuffix(strings.ToLower(name), ".gz")
	return strings.HasSuffix(n, ".jsonl") || strings.HasSuffix(n, ".json")
}

// Files lists the training files a path names: the path itself when it
// is a file, or every data file (IsDataFile) directly inside a directory,
// sorted by name.
func Files(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("training data %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("training data %s: %w", path, err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && IsDataFile(e.Name()) {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("training data %s: directory has no .jsonl, .json or .gz files", path)
	}
	return out, nil
}

// Load reads every example of a file or a directory (see Files).
//
// On validation problems it returns the valid examples together with an
// *ErrorList naming every bad file:line:field (up to opts.MaxErrors); I/O
// errors are returned as they are.
func Load(path string, opts Options) ([]Example, error) {
	files, err := Files(path)
	if err != nil {
		return nil, err
	}
	c := &collector{max: opts.maxErrors()}
	var all []Example
	for _, f := range files {
		exs, err := loadFile(f, opts, c)
		all = append(all, exs...)
		if err != nil {
			return all, err
		}
	}
	return all, c.err()
}

func loadFile(path string, opts Options, c *collector) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("training data: %w", err)
	}
	defer f.Close()
	return parse(f, path, opts, c)
}

// Parse reads examples from r; name is used in error messages and to
// recognise .json (a JSON array is accepted there as well as JSON Lines).
// Gzip input is detected from its magic bytes. Errors are as for Load.
func Parse(r io.Reader, name string, opts Options) ([]Example, error) {
	c := &collector{max: opts.maxErrors()}
	exs, err := parse(r, name, opts, c)
	if err != nil {
		return exs, err
	}
	return exs, c.err()
}

func parse(r io.Reader, name string, opts Options, c *collector) ([]Example, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: not a valid gzip file: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<16)
	}
	// A .json file may hold one JSON array of objects.
	if strings.HasSuffix(strings.TrimSuffix(strings.ToLower(name), ".gz"), ".json") {
		if first, line, err := firstByte(br); err == nil && first == '[' {
			return parseArray(br, name, line, opts, c)
		}
	}
	var out []Example
	line := 0
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			line++
			if line == 1 {
				b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
			}
			if t := bytes.TrimSpace(b); len(t) > 0 {
				ex, errs := decodeObject(t, name, line, opts)
				for _, e := range errs {
					c.add(e)
				}
				if len(errs) == 0 {
					out = append(out, ex)
				}
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s:%d: read error: %w", name, line+1, err)
		}
	}
}

// firstByte peeks at the first non-space byte and the line it is on,
// without consuming anything but a UTF-8 byte-order mark.
func firstByte(br *bufio.Reader) (byte, int, error) {
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	line := 1
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			return 0, line, io.EOF
		}
		if err != nil && len(b) < n {
			return 0, line, err
		}
		switch ch := b[n-1]; ch {
		case ' ', '\t', '\r':
		case '\n':
			line++
		default:
			return ch, line, nil
		}
		if n >= br.Size() {
			return 0, line, errors.New("leading whitespace longer than the read buffer")
		}
	}
}

// parseArray reads a .json file that holds one array of objects. The
// line of each object is where it starts.
func parseArray(r io.Reader, name string, _ int, opts Options, c *collector) ([]Example, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: read error: %w", name, err)
	}
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '['
		c.add(&FieldError{File: name, Line: 1, Msg: fmt.Sprintf("invalid JSON array: %v", err)})
		return nil, nil
	}
	var out []Example
	for dec.More() {
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			c.add(&FieldError{File: name, Line: lineAt(dec.InputOffset()), Msg: fmt.Sprintf("invalid JSON: %v", err)})
			return out, nil
		}
		// InputOffset before Decode may sit before a comma or spaces.
		skip := bytes.IndexFunc(data[start:], func(r rune) bool { return r != ',' && r != ' ' && r != '\n' && r != '\r' && r != '\t' })
		line := lineAt(start + int64(max(skip, 0)))
		ex, errs := decodeObject(raw, name, line, opts)
		for _, e := range errs {
			c.add(e)
		}
		if len(errs) == 0 {
			out = append(out, ex)
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		c.add(&FieldError{File: name, Line: lineAt(dec.InputOffset()), Msg: fmt.Sprintf("invalid JSON array: %v", err)})
	}
	return out, nil
}
