package tokenize

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// precompiled is the sentencepiece normalizer that Hugging Face calls
// Precompiled: a double-array trie (darts) from UTF-8 byte strings to
// offsets of NUL-terminated replacements, applied per grapheme cluster as
// HF does (a cluster shorter than 6 bytes is looked up whole, else each of
// its characters is looked up on its own).
type precompiled struct {
	units      []uint32
	normalized []byte
	ascii      [128]string // replacement of each ASCII byte, or "" when none
	asciiHas   [128]bool
}

func newPrecompiled(b64 string) (*precompiled, error) {
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("precompiled_charsmap is not valid base64: " + err.Error())
	}
	if len(blob) < 4 {
		return nil, errors.New("precompiled_charsmap is shorter than its 4-byte header")
	}
	size := int(binary.LittleEndian.Uint32(blob))
	if size%4 != 0 || size > len(blob)-4 {
		return nil, errors.New("precompiled_charsmap trie size does not fit the blob")
	}
	p := &precompiled{units: make([]uint32, size/4), normalized: blob[4+size:]}
	for i := range p.units {
		p.units[i] = binary.LittleEndian.Uint32(blob[4+4*i:])
	}
	if !utf8.Valid(p.normalized) {
		return nil, errors.New("precompiled_charsmap replacement strings are not valid UTF-8")
	}
	if len(p.units) == 0 {
		return nil, errors.New("precompiled_charsmap has an empty trie")
	}
	for c := 0; c < 128; c++ {
		p.ascii[c], p.asciiHas[c] = p.transform(string(rune(c)))
	}
	return p, nil
}

// transform returns the replacement of the shortest key that is a prefix
// of chunk (what sentencepiece's lookup returns first), if any.
func (p *precompiled) transform(chunk string) (string, bool) {
	u := p.units
	pos := uint32(0)
	unit := u[0]
	pos ^= offset(unit)
	for i := 0; i < len(chunk); i++ {
		c := chunk[i]
		if c == 0 {
			break
		}
		pos ^= uint32(c)
		if int(pos) >= len(u) {
			return "", false
		}
		unit = u[pos]
		if unit&((1<<31)|0xFF) != uint32(c) {
			return "", false
		}
		pos ^= offset(unit)
		if (unit>>8)&1 == 1 {
			if int(pos) >= len(u) {
				return "", false
			}
			v := int(u[pos] & ((1 << 31) - 1))
			if v > len(p.normalized) {
				return "", false
			}
			end := v
			for end < len(p.normalized) && p.normalized[end] != 0 {
				end++
			}
			return string(p.normalized[v:end]), true
		}
	}
	return "", false
}

func offset(unit uint32) uint32 { return (unit >> 10) << ((unit & (1 << 9)) >> 6) }

func (p *precompiled) normalize(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		b := s[i]
		// An ASCII character followed by another ASCII character (other
		// than CR LF) is a grapheme cluster of its own.
		if b < utf8.RuneSelf && (i+1 == len(s) || (s[i+1] < utf8.RuneSelf && !(b == '\r' && s[i+1] == '\n'))) {
			if p.asciiHas[b] {
				out = append(out, p.ascii[b]...)
			} else {
				out = append(out, b)
			}
			i++
			continue
		}
		g, _, _, _ := uniseg.FirstGraphemeClusterInString(s[i:], -1)
		if len(g) == 0 {
			g = s[i : i+1]
		}
		i += len(g)
		if len(g) < 6 {
			if r, ok := p.transform(g); ok {
				out = append(out, r...)
				continue
			}
		}
		for j := 0; j < len(g); {
			_, size := utf8.DecodeRuneInString(g[j:])
			part := g[j : j+size]
			if r, ok := p.transform(part); ok {
				out = append(out, r...)
			} else {
				out = append(out, part...)
			}
			j += size
		}
	}
	return string(out)
}
