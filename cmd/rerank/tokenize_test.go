package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/tokenize"
)

func runTokenizeCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := runCommands(t, commands, append([]string{"tokenize"}, args...)...)
	return out, err
}

func TestTokenizeCommand(t *testing.T) {
	models := sharedtest.Models(t)
	bertDir := filepath.Join(models, "bert-uncased-wordpiece-tokenizer")
	xlmrFile := filepath.Join(models, "xlmr-layout-unigram-tokenizer", "tokenizer.json")
	dir := t.TempDir()
	input := filepath.Join(dir, "pairs.jsonl")
	lines := []string{
		`{"query": "what is bm25", "passage": "BM25 is a ranking function."}`,
		`{"query": "` + strings.Repeat("long query ", 40) + `", "passage": "short"}`,
		`{"query": "", "passage": "", "extra": 1}`,
		// Longer than --max-len's default: "none" must still keep it all.
		`{"query": "long passage", "passage": "` + strings.Repeat("ranking function ", 400) + `"}`,
	}
	require.NoError(t, os.WriteFile(input, []byte(strings.Join(lines, "\n")+"\n"), 0o644))

	for _, tc := range []struct {
		name      string
		tokenizer string
		args      []string
		tr        tokenize.Truncation
		errLines  []int // output lines that must hold an error
	}{
		{"bert none", bertDir, nil, tokenize.Truncation{}, nil},
		{"bert longest_first", bertDir, []string{"--truncation", "longest_first", "--max-len", "16"}, tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 16}, nil},
		{"xlmr only_second", xlmrFile, []string{"--truncation", "only_second", "--max-len", "16"}, tokenize.Truncation{Strategy: tokenize.OnlySecond, MaxLen: 16}, []int{1}},
		{"xlmr flag", xlmrFile, []string{"--truncation", "flag", "--query-max-len", "8", "--passage-max-len", "16", "--workers", "2"}, tokenize.Truncation{Strategy: tokenize.FlagEmbedding, QueryMaxLen: 8, PassageMaxLen: 16}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			output := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
			_, err := runTokenizeCLI(t, append([]string{"--tokenizer", tc.tokenizer, "--input", input, "--output", output}, tc.args...)...)
			require.NoError(t, err)
			tok, err := tokenize.Load(tc.tokenizer)
			require.NoError(t, err)
			f, err := os.Open(output)
			require.NoError(t, err)
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<24)
			i := 0
			for ; sc.Scan(); i++ {
				var got struct {
					InputIDs      []int32 `json:"input_ids"`
					TokenTypeIDs  []int32 `json:"token_type_ids"`
					AttentionMask []int32 `json:"attention_mask"`
					Error         string  `json:"error"`
				}
				require.NoError(t, json.Unmarshal(sc.Bytes(), &got), "line %d", i+1)
				var in struct{ Query, Passage string }
				require.NoError(t, json.Unmarshal([]byte(lines[i]), &in))
				want, werr := tok.EncodePair(in.Query, in.Passage, tc.tr)
				if tokenizeContains(tc.errLines, i) {
					require.Error(t, werr)
					assert.Contains(t, got.Error, "too short")
					assert.Nil(t, got.InputIDs)
					continue
				}
				require.NoError(t, werr)
				assert.Empty(t, got.Error)
				assert.Equal(t, want.IDs, got.InputIDs, "line %d", i+1)
				assert.Equal(t, want.TypeIDs, got.TokenTypeIDs, "line %d", i+1)
				assert.Equal(t, want.Mask, got.AttentionMask, "line %d", i+1)
			}
			require.NoError(t, sc.Err())
			assert.Equal(t, len(lines), i, "one output line per input line")
		})
	}
}

func tokenizeContains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestTokenizeCommandErrors(t *testing.T) {
	models := sharedtest.Models(t)
	bertDir := filepath.Join(models, "bert-uncased-wordpiece-tokenizer")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	good := `{"query": "q", "passage": "p"}` + "\n"
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bad json", []string{"--input", write("bad.jsonl", good+"{not json}\n")}, []string{"bad.jsonl:2"}},
		{"missing passage", []string{"--input", write("nopassage.jsonl", good+good+`{"query": "q"}`+"\n")}, []string{"nopassage.jsonl:3", "passage"}},
		{"passage not a string", []string{"--input", write("num.jsonl", `{"query": "q", "passage": 3}`+"\n")}, []string{"num.jsonl:1"}},
		{"empty line", []string{"--input", write("blank.jsonl", good+"\n"+good)}, []string{"blank.jsonl:2", "empty line"}},
		{"lone surrogate", []string{"--input", write("sur.jsonl", good+`{"query": "q", "passage": "\udc00"}`+"\n")}, []string{"sur.jsonl:2", `field "passage"`, `lone UTF-16 surrogate \udc00`}},
		{"invalid UTF-8", []string{"--input", write("latin1.jsonl", "{\"query\": \"caf\xe9\", \"passage\": \"p\"}\n")}, []string{"latin1.jsonl:1", `field "query"`, "invalid UTF-8 (0xe9)"}},
		{"missing input", []string{"--input", filepath.Join(dir, "none.jsonl")}, []string{"none.jsonl"}},
		{"bad truncation", []string{"--input", write("ok.jsonl", good), "--truncation", "middle"}, []string{"--truncation", "middle"}},
		{"max-len below specials", []string{"--input", write("ok2.jsonl", good), "--truncation", "longest_first", "--max-len", "2"}, []string{"special tokens"}},
		{"bad tokenizer", []string{"--input", write("ok3.jsonl", good), "--tokenizer", dir}, []string{"tokenizer.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
			args := append([]string{"--tokenizer", bertDir, "--output", out}, tc.args...)
			_, err := runTokenizeCLI(t, args...)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			_, statErr := os.Stat(out)
			assert.True(t, os.IsNotExist(statErr), "no partial output is left behind")
		})
	}
}

func TestTokenizeCommandStdout(t *testing.T) {
	models := sharedtest.Models(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"query": "Hello", "passage": "world"}`+"\n"), 0o644))
	out, err := runTokenizeCLI(t, "--tokenizer", filepath.Join(models, "bert-uncased-wordpiece-tokenizer"), "--input", in)
	require.NoError(t, err)
	assert.Equal(t, `{"input_ids":[101,7592,102,2088,102],"token_type_ids":[0,0,0,1,1],"attention_mask":[1,1,1,1,1]}`+"\n", out)
}
