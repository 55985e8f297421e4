package jsonl

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		err        string // "" = valid
		offset     int    // 1-based byte of the error
		field      string
	}{
		{"plain", `{"query":"q","passage":"p"}`, "", 0, ""},
		{"escapes", `{"query":"a\"b\\c\n\t\u00e9\u20ac"}`, "", 0, ""},
		{"pair", `{"query":"\ud83d\ude00 \uD83D\uDE00"}`, "", 0, ""},
		{"literal emoji", `{"query":"👩‍👩‍👧 👍🏽 caf` + "e\u0301" + `"}`, "", 0, ""},
		{"escaped backslash then u", `{"query":"\\ud800"}`, "", 0, ""},
		{"literal U+FFFD", `{"query":"` + "\uFFFD" + `\ufffd"}`, "", 0, ""},
		{"lone high", `{"query":"q\ud800x"}`, "lone UTF-16 surrogate \\ud800 (a high", 12, "query"},
		{"high at end", `{"query":"q\uD800"}`, "lone UTF-16 surrogate \\ud800", 12, "query"},
		{"high then non-low", `{"query":"\ud800\u0041"}`, "\\ud800", 11, "query"},
		{"two highs", `{"query":"\ud800\ud800\udc00"}`, "\\ud800", 11, "query"},
		{"lone low", `{"query":"ok","passages":["a","b\udc00"]}`, "lone UTF-16 surrogate \\udc00 (a low", 33, "passages"},
		{"in a key", `{"q\udfff":"x"}`, "\\udfff", 4, ""},
		{"invalid byte", "{\"query\":\"q\xff\"}", "invalid UTF-8 (0xff)", 12, "query"},
		{"invalid byte outside strings", "{\"query\":\"q\"}\xfe", "invalid UTF-8 (0xfe)", 14, "query"},
		{"truncated rune", "{\"passage\":\"\xe6\x9c\"}", "invalid UTF-8 (0xe6)", 13, "passage"},
		{"surrogate as UTF-8 bytes", "{\"query\":\"\xed\xa0\x80\"}", "invalid UTF-8 (0xed)", 11, "query"},
		{"nested key", `{"a":{"b":"x"},"c":["\udc00"]}`, "\\udc00", 22, "c"},
		{"unterminated", `{"query":"abc`, "", 0, ""},
		{"bad hex", `{"query":"\uzzzz"}`, "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.line))
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.err)
			var te *TextError
			require.True(t, errors.As(err, &te))
			assert.Equal(t, tc.offset, te.Offset+1, "offset")
			assert.Equal(t, tc.field, te.Field, "field")
		})
	}
}

func TestTrimBOM(t *testing.T) {
	assert.Equal(t, []byte(`{}`), TrimBOM([]byte("\xef\xbb\xbf{}")))
	assert.Equal(t, []byte(`{}`), TrimBOM([]byte(`{}`)))
	assert.Equal(t, []byte("\xef\xbb"), TrimBOM([]byte("\xef\xbb")))
}

// replacements counts U+FFFD in every string token (keys included, and
// those a duplicate key overrides) of one JSON value, or -1 when line is
// not one.
func replacements(line []byte) int {
	dec := json.NewDecoder(bytes.NewReader(line))
	n, depth := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return -1
		}
		switch tok := tok.(type) {
		case string:
			n += strings.Count(tok, "\uFFFD")
		case json.Delim:
			if tok == '{' || tok == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			if _, err := dec.Token(); err != io.EOF {
				return -1
			}
			return n
		}
	}
}

// FuzzCheck: on any JSON line encoding/json decodes, Check passes exactly
// when decoding introduced no U+FFFD of its own (every U+FFFD decoded is
// one the line spells, as the character or as \ufffd).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"query":"q","passage":"p"}`, `{"query":"\ud800"}`, `{"a":"\udc00\ud800"}`,
		"{\"q\":\"\xff\"}", `["\ud83d\ude00"]`, `"\\ud800"`, `{"q":"` + "\uFFFD" + `\uFFFD"}`, `{"q":"\ud800\u0041"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		err := Check(line) // never panics
		got := replacements(line)
		if got < 0 {
			return
		}
		spelled := bytes.Count(line, []byte("\uFFFD")) + bytes.Count(bytes.ToLower(line), []byte(`\ufffd`))
		introduced := got > spelled
		if err == nil && introduced {
			t.Fatalf("Check passed %q, which decodes with U+FFFD it does not spell", line)
		}
		if err != nil && !introduced {
			t.Fatalf("Check refused %q (%v), which decodes unchanged", line, err)
		}
	})
}
