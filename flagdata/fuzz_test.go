package flagdata

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes the parser panic, that every error
// is a located FieldError, and that whatever parses re-encodes to lines
// that parse back to the same examples; accepted text holds no U+FFFD
// that the input does not spell (encoding/json's replacement of invalid
// bytes and lone surrogates is refused instead).
func FuzzParse(f *testing.F) {
	seeds := []string{
		`{"query":"q","pos":["p"],"neg":["n"]}`,
		`{"query":"q","pos":["p"],"neg":["n"],"pos_scores":[1],"neg_scores":[2.5e3],"prompt":"x","qid":"1"}`,
		`{"query":"q","pos":[],"neg":[1]}` + "\n" + `{"query":null}`,
		`[{"query":"q","pos":["p"],"neg":["n"]}]`,
		"\xef\xbb\xbf{}\r\n\n[1,2]\n\"s\"\n{\"query\":\"\\u00e9\",\"pos\":[\"\\ud800\"],\"neg\":[\"n\"]}",
		`{"query":"q","pos":["p"],"neg":["n"],"pos_scores":[1e400],"neg_scores":[0]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		name := "f.jsonl"
		if asJSON {
			name = "f.json"
		}
		exs, err := Parse(bytes.NewReader(data), name, Options{AllowMissingNeg: asJSON, MaxErrors: 5})
		if err != nil {
			var list *ErrorList
			if !errors.As(err, &list) {
				if !strings.Contains(err.Error(), "gzip") {
					t.Fatalf("error is not an ErrorList: %v", err)
				}
				return
			}
			for _, e := range list.Errors {
				if e.File != name || e.Line < 1 {
					t.Fatalf("error without location: %+v", e)
				}
			}
		}
		spelled := bytes.Count(data, []byte("\uFFFD")) + bytes.Count(bytes.ToLower(data), []byte(`\ufffd`))
		got := 0
		for _, ex := range exs {
			got += strings.Count(ex.Query+ex.Prompt+strings.Join(ex.Pos, "")+strings.Join(ex.Neg, ""), "\uFFFD")
		}
		if got > spelled && !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Fatalf("accepted examples hold U+FFFD the input does not spell: %q", data)
		}
		var buf bytes.Buffer
		for i := range exs {
			line, err := Marshal(&exs[i])
			if err != nil {
				t.Fatalf("marshal %+v: %v", exs[i], err)
			}
			buf.Write(line)
			buf.WriteByte('\n')
		}
		back, err := Parse(&buf, "g.jsonl", Options{AllowMissingNeg: true})
		if err != nil {
			t.Fatalf("re-encoded examples do not parse: %v\n%s", err, buf.String())
		}
		if len(back) != len(exs) {
			t.Fatalf("round trip lost examples: %d -> %d", len(exs), len(back))
		}
		for i := range back {
			a, b := exs[i], back[i]
			if a.Query != b.Query || len(a.Pos) != len(b.Pos) || len(a.Neg) != len(b.Neg) || a.Prompt != b.Prompt {
				t.Fatalf("round trip changed example %d: %+v -> %+v", i, a, b)
			}
		}
	})
}
