package tokenize

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/rerank-go/rerank/internal/atomicfile"
)

// Cache memoizes the encodings of (query, passage) pairs under one
// tokenizer and truncation, so that later training epochs do not
// tokenize again. It can be saved to a file and loaded back. It is safe
// for concurrent use.
type Cache struct {
	tok *Tokenizer
	tr  Truncation

	mu sync.RWMutex
	m  map[pairKey]Encoding
}

type pairKey [16]byte

func keyOf(p Pair) pairKey {
	h := sha256.New()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(p.Query)))
	h.Write(n[:])
	h.Write([]byte(p.Query))
	h.Write([]byte(p.Passage))
	var k pairKey
	copy(k[:], h.Sum(nil))
	return k
}

// NewCache returns an empty cache for t under tr.
func NewCache(t *Tokenizer, tr Truncation) (*Cache, error) {
	if err := t.check(tr); err != nil {
		return nil, err
	}
	return &Cache{tok: t, tr: tr, m: map[pairKey]Encoding{}}, nil
}

// Len is the number of cached pairs.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// EncodePairs returns the encodings of pairs, encoding (on workers
// goroutines, 0: GOMAXPROCS) and storing only those not cached yet. The
// returned encodings share memory with the cache: do not modify them.
func (c *Cache) EncodePairs(pairs []Pair, workers int) ([]Encoding, error) {
	encs := make([]Encoding, len(pairs))
	keys := make([]pairKey, len(pairs))
	var missing []int
	c.mu.RLock()
	for i, p := range pairs {
		keys[i] = keyOf(p)
		if e, ok := c.m[keys[i]]; ok {
			encs[i] = e
		} else {
			missing = append(missing, i)
		}
	}
	c.mu.RUnlock()
	if len(missing) == 0 {
		return encs, nil
	}
	todo := make([]Pair, len(missing))
	for j, i := range missing {
		todo[j] = pairs[i]
	}
	got, errs := c.tok.EncodePairs(todo, c.tr, workers)
	for j, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("tokenize: pair %d: %w", missing[j], err)
		}
	}
	c.mu.Lock()
	for j, i := range missing {
		encs[i] = got[j]
		c.m[keys[i]] = got[j]
	}
	c.mu.Unlock()
	return encs, nil
}

// EncodeBatch is EncodePairs followed by padding, as Tokenizer.EncodeBatch.
func (c *Cache) EncodeBatch(pairs []Pair, padToMultipleOf, workers int) (PaddedBatch, error) {
	encs, err := c.EncodePairs(pairs, workers)
	if err != nil {
		return PaddedBatch{}, err
	}
	return c.tok.Pad(encs, padToMultipleOf)
}

const cacheMagic = "rerank-tokenize-cache-v1\n"

func (c *Cache) header() []byte {
	var b bytes.Buffer
	b.WriteString(cacheMagic)
	fp := c.tok.Fingerprint()
	b.Write(fp[:])
	full := 0
	if c.tr.FullLengths {
		full = 1
	}
	for _, v := range []int{int(c.tr.Strategy), c.tr.MaxLen, c.tr.QueryMaxLen, c.tr.PassageMaxLen, full} {
		_ = binary.Write(&b, binary.LittleEndian, int64(v))
	}
	return b.Bytes()
}

// Save writes the cache to path atomically (a temporary file in the same
// directory, then a rename).
func (c *Cache) Save(path string) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		w.Write(c.header())
		c.mu.RLock()
		_ = binary.Write(w, binary.LittleEndian, uint64(len(c.m)))
		buf := make([]byte, 0, 4096)
		for k, e := range c.m {
			buf = append(buf[:0], k[:]...)
			buf = binary.LittleEndian.AppendUint32(buf, uint32(len(e.IDs)))
			for _, id := range e.IDs {
				buf = binary.LittleEndian.AppendUint32(buf, uint32(id))
			}
			for _, t := range e.TypeIDs {
				buf = append(buf, byte(t))
			}
			w.Write(buf)
		}
		c.mu.RUnlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("tokenize: saving cache: %w", err)
	}
	return nil
}

// LoadCache reads a cache written by Save. It fails when the file was made
// with another tokenizer.json or truncation: delete the file to rebuild it.
func LoadCache(path string, t *Tokenizer, tr Truncation) (*Cache, error) {
	c, err := NewCache(t, tr)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: loading cache: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	want := c.header()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got[:len(cacheMagic)], want[:len(cacheMagic)]) {
		return nil, fmt.Errorf("tokenize: %s is not a tokenize cache", path)
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("tokenize: %s was made with another tokenizer.json or truncation: delete it to rebuild the cache", path)
	}
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("tokenize: %s: truncated header: %w", path, err)
	}
	limit := tr.Limit()
	for i := uint64(0); i < n; i++ {
		var k pairKey
		var l uint32
		if _, err := io.ReadFull(r, k[:]); err != nil {
			return nil, fmt.Errorf("tokenize: %s: entry %d: %w", path, i, errTruncated(err))
		}
		if err := binary.Read(r, binary.LittleEndian, &l); err != nil {
			return nil, fmt.Errorf("tokenize: %s: entry %d: %w", path, i, errTruncated(err))
		}
		if l > 1<<24 || (limit > 0 && int(l) > limit) {
			return nil, fmt.Errorf("tokenize: %s: entry %d: length %d is impossible under this truncation", path, i, l)
		}
		raw := make([]byte, 5*int(l))
		if _, err := io.ReadFull(r, raw); err != nil {
			return nil, fmt.Errorf("tokenize: %s: entry %d: %w", path, i, errTruncated(err))
		}
		buf := make([]int32, 3*int(l))
		e := Encoding{IDs: buf[:l:l], TypeIDs: buf[l : 2*l : 2*l], Mask: buf[2*l:]}
		for j := 0; j < int(l); j++ {
			e.IDs[j] = int32(binary.LittleEndian.Uint32(raw[4*j:]))
			e.TypeIDs[j] = int32(raw[4*int(l)+j])
			e.Mask[j] = 1
		}
		c.m[k] = e
	}
	return c, nil
}

func errTruncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("file ends early (truncated write?)")
	}
	return err
}
