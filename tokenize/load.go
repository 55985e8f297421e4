package tokenize

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/text/unicode/norm"

	sugar "github.com/sugarme/tokenizer"

	"github.com/rerank-go/rerank/hub"
)

// Load reads a Hugging Face tokenizer.json, given as the file itself, as
// a model directory that contains one, or as a Hugging Face Hub id
// ("org/name[@revision]", resolved through the cache by hub.FromEnv).
//
// The file's own truncation and padding settings are ignored: the caller's
// Truncation and batch options always apply.
func Load(path string) (*Tokenizer, error) {
	if _, err := os.Stat(path); err != nil && hub.IsRef(path) {
		dir, err := (*hub.Client)(nil).Dir(context.Background(), path, hub.Tokenizer)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %w", err)
		}
		path = dir
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w (give a tokenizer.json or a model directory that holds one)", err)
	}
	return LoadJSON(path, data)
}

// LoadJSON builds a Tokenizer from the contents of a tokenizer.json; name
// is used in error messages.
func LoadJSON(name string, data []byte) (*Tokenizer, error) {
	// sugarme/tokenizer's Config is the schema of tokenizer.json.
	var cfg sugar.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("tokenize: %s: not a tokenizer.json: %v", name, err)
	}
	sum := sha256.Sum256(data)
	t := &Tokenizer{name: name, fingerprint: sum, padID: -1}
	fail := func(field string, format string, args ...any) error {
		return fmt.Errorf("tokenize: %s: %s: %s", name, field, fmt.Sprintf(format, args...))
	}

	var err error
	if err = t.loadModel(cfg.Model, fail); err != nil {
		return nil, err
	}
	if cfg.Normalizer != nil {
		if t.norm, err = t.loadNormalizer(cfg.Normalizer, "normalizer", fail); err != nil {
			return nil, err
		}
	}
	if cfg.PreTokenizer != nil {
		if err = t.loadPreTokenizer(cfg.PreTokenizer, "pre_tokenizer", fail); err != nil {
			return nil, err
		}
	}
	if cfg.PostProcessor != nil {
		if err = t.loadPostProcessor(cfg.PostProcessor, fail); err != nil {
			return nil, err
		}
	}
	if len(t.norm) == 1 {
		if b, ok := t.norm[0].(*bertNormalizer); ok {
			t.bert = b
		}
	}
	for i, a := range cfg.AddedTokens {
		field := fmt.Sprintf("added_tokens[%d]", i)
		if a.Content == "" {
			return nil, fail(field, "empty content")
		}
		if a.Id < 0 || a.Id >= 1<<24 {
			return nil, fail(field+".id", "%d is not a valid id", a.Id)
		}
		tok := addedToken{content: a.Content, id: int32(a.Id), lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord}
		t.all = append(t.all, tok)
		if !a.Normalized {
			t.raw.add(tok)
			continue
		}
		// Matched against normalized text in its normalized form, as HF's
		// normalized_cache does.
		if tok.content = t.normalize(a.Content); tok.content != "" {
			t.normAdded.add(tok)
		}
	}
	for _, a := range t.all {
		if int(a.id) >= t.vocabSize {
			t.vocabSize = int(a.id) + 1
		}
	}

	// Padding id: the file's padding settings if any, else the usual pad
	// tokens.
	if id, ok := cfg.Padding["pad_id"].(float64); ok {
		t.padID = int32(id)
	} else {
		for _, tok := range []string{"[PAD]", "<pad>", "<|padding|>", "<PAD>", "[pad]"} {
			if id, ok := t.tokenID(tok); ok {
				t.padID = id
				break
			}
		}
	}
	return t, nil
}

func (t *Tokenizer) tokenID(tok string) (int32, bool) {
	for _, a := range t.all {
		if a.content == tok {
			return a.id, true
		}
	}
	switch {
	case t.wp != nil:
		id, ok := t.wp.vocab[tok]
		return id, ok
	case t.uni != nil:
		id, ok := t.uni.byPiece[tok]
		return id, ok
	}
	return 0, false
}

type failFunc func(field string, format string, args ...any) error

func str(m map[string]interface{}, key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}

func (t *Tokenizer) loadModel(m map[string]interface{}, fail failFunc) error {
	if m == nil {
		return fail("model", "missing")
	}
	typ, _ := str(m, "type")
	switch typ {
	case "WordPiece":
		raw, ok := m["vocab"].(map[string]interface{})
		if !ok || len(raw) == 0 {
			return fail("model.vocab", "missing or not an object of token: id")
		}
		vocab := make(map[string]int32, len(raw))
		for k, v := range raw {
			f, ok := v.(float64)
			if !ok || f < 0 || f >= 1<<24 || f != float64(int32(f)) {
				return fail("model.vocab", "id of %q is not an integer in [0, 2^24)", k)
			}
			vocab[k] = int32(f)
			if int(f) >= t.vocabSize {
				t.vocabSize = int(f) + 1
			}
		}
		unkTok, _ := str(m, "unk_token")
		unk, ok := vocab[unkTok]
		if !ok {
			return fail("model.unk_token", "%q is not in the vocabulary", unkTok)
		}
		prefix := "##"
		if p, ok := str(m, "continuing_subword_prefix"); ok {
			prefix = p
		}
		maxChars := 100
		if f, ok := m["max_input_chars_per_word"].(float64); ok {
			maxChars = int(f)
		}
		t.wp = newWordPiece(vocab, unk, prefix, maxChars)
		t.models = &wordPieceModel{w: t.wp}
	case "Unigram":
		raw, ok := m["vocab"].([]interface{})
		if !ok || len(raw) == 0 {
			return fail("model.vocab", "missing or not a list of [piece, score]")
		}
		pieces := make([]string, len(raw))
		scores := make([]float64, len(raw))
		for i, e := range raw {
			pair, ok := e.([]interface{})
			if !ok || len(pair) != 2 {
				return fail(fmt.Sprintf("model.vocab[%d]", i), "not a [piece, score] pair")
			}
			p, ok1 := pair[0].(string)
			s, ok2 := pair[1].(float64)
			if !ok1 || !ok2 {
				return fail(fmt.Sprintf("model.vocab[%d]", i), "not a [piece, score] pair")
			}
			pieces[i], scores[i] = p, s
		}
		f, ok := m["unk_id"].(float64)
		if !ok || f < 0 || int(f) >= len(pieces) {
			return fail("model.unk_id", "missing or outside the vocabulary (this package needs an unknown token)")
		}
		if bf, _ := m["byte_fallback"].(bool); bf {
			return fail("model.byte_fallback", "true is not supported yet")
		}
		t.uni = newUnigram(pieces, scores, int32(f))
		t.vocabSize = len(pieces)
		t.models = &unigramModel{t.uni, pieces}
	default:
		return fail("model.type", "%q is not supported (WordPiece and Unigram are)", typ)
	}
	return nil
}

func (t *Tokenizer) loadNormalizer(m map[string]interface{}, field string, fail failFunc) ([]normalizer, error) {
	typ, _ := str(m, "type")
	switch typ {
	case "Sequence":
		list, ok := m["normalizers"].([]interface{})
		if !ok {
			return nil, fail(field+".normalizers", "missing or not a list")
		}
		var out []normalizer
		for i, e := range list {
			sub, ok := e.(map[string]interface{})
			if !ok {
				return nil, fail(fmt.Sprintf("%s.normalizers[%d]", field, i), "not an object")
			}
			n, err := t.loadNormalizer(sub, fmt.Sprintf("%s.normalizers[%d]", field, i), fail)
			if err != nil {
				return nil, err
			}
			out = append(out, n...)
		}
		return out, nil
	case "BertNormalizer":
		b := &bertNormalizer{cleanText: true, chinese: true, lowercase: true}
		if v, ok := m["clean_text"].(bool); ok {
			b.cleanText = v
		}
		if v, ok := m["handle_chinese_chars"].(bool); ok {
			b.chinese = v
		}
		if v, ok := m["lowercase"].(bool); ok {
			b.lowercase = v
		}
		b.stripAccents = b.lowercase // strip_accents: null follows lowercase
		if v, ok := m["strip_accents"].(bool); ok {
			b.stripAccents = v
		}
		return []normalizer{b}, nil
	case "Precompiled":
		s, ok := str(m, "precompiled_charsmap")
		if !ok {
			// An empty charsmap (null) normalizes nothing.
			return nil, nil
		}
		p, err := newPrecompiled(s)
		if err != nil {
			return nil, fail(field+".precompiled_charsmap", "%v", err)
		}
		return []normalizer{p}, nil
	case "Replace":
		content, ok := str(m, "content")
		if !ok {
			return nil, fail(field+".content", "missing")
		}
		pat, _ := m["pattern"].(map[string]interface{})
		if s, ok := str(pat, "String"); ok {
			return []normalizer{&replaceString{old: s, new: content}}, nil
		}
		if s, ok := str(pat, "Regex"); ok {
			if s == " {2,}" {
				return []normalizer{&collapseSpaces{content: content}}, nil
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, fail(field+".pattern.Regex", "%v", err)
			}
			return []normalizer{&replaceRegex{re: re, new: content}}, nil
		}
		return nil, fail(field+".pattern", "needs String or Regex")
	case "NFC":
		return []normalizer{unicodeForm{norm.NFC}}, nil
	case "NFD":
		return []normalizer{unicodeForm{norm.NFD}}, nil
	case "NFKC":
		return []normalizer{unicodeForm{norm.NFKC}}, nil
	case "NFKD":
		return []normalizer{unicodeForm{norm.NFKD}}, nil
	case "Lowercase":
		return []normalizer{lowercase{}}, nil
	}
	return nil, fail(field+".type", "%q is not supported", typ)
}

func (t *Tokenizer) loadPreTokenizer(m map[string]interface{}, field string, fail failFunc) error {
	typ, _ := str(m, "type")
	switch typ {
	case "BertPreTokenizer":
		t.bertPre = true
		return nil
	case "Metaspace":
		ms := &metaspace{repl: "▁", prepend: prependAlways, split: true}
		if r, ok := str(m, "replacement"); ok {
			if len([]rune(r)) != 1 {
				return fail(field+".replacement", "%q is not a single character", r)
			}
			ms.repl = r
		}
		if v, ok := m["add_prefix_space"].(bool); ok && !v {
			ms.prepend = prependNever
		}
		if s, ok := str(m, "prepend_scheme"); ok {
			switch s {
			case "always":
				ms.prepend = prependAlways
			case "first":
				ms.prepend = prependFirst
			case "never":
				ms.prepend = prependNever
			default:
				return fail(field+".prepend_scheme", "%q is not always, first or never", s)
			}
		}
		if v, ok := m["split"].(bool); ok {
			ms.split = v
		}
		t.meta = ms
		return nil
	}
	return fail(field+".type", "%q is not supported (BertPreTokenizer and Metaspace are)", typ)
}

func (t *Tokenizer) loadPostProcessor(m map[string]interface{}, fail failFunc) error {
	typ, _ := str(m, "type")
	tokID := func(field string, v interface{}) (int32, error) {
		pair, ok := v.([]interface{})
		if !ok || len(pair) != 2 {
			return 0, fail(field, "not a [token, id] pair")
		}
		f, ok := pair[1].(float64)
		if !ok {
			return 0, fail(field, "id is not a number")
		}
		return int32(f), nil
	}
	switch typ {
	case "BertProcessing", "RobertaProcessing":
		cls, err := tokID("post_processor.cls", m["cls"])
		if err != nil {
			return err
		}
		sep, err := tokID("post_processor.sep", m["sep"])
		if err != nil {
			return err
		}
		sp := func(id int32, typ int32) templateItem { return templateItem{ids: []int32{id}, typeID: typ} }
		sq := func(seq int, typ int32) templateItem { return templateItem{seq: seq, typeID: typ} }
		t.single = []templateItem{sp(cls, 0), sq(1, 0), sp(sep, 0)}
		if typ == "BertProcessing" {
			t.pair = []templateItem{sp(cls, 0), sq(1, 0), sp(sep, 0), sq(2, 1), sp(sep, 1)}
		} else {
			// RobertaProcessing gives type id 0 to both segments.
			t.pair = []templateItem{sp(cls, 0), sq(1, 0), sp(sep, 0), sp(sep, 0), sq(2, 0), sp(sep, 0)}
		}
		return nil
	case "TemplateProcessing":
		specials := map[string][]int32{}
		if st, ok := m["special_tokens"].(map[string]interface{}); ok {
			for k, v := range st {
				o, _ := v.(map[string]interface{})
				ids, _ := o["ids"].([]interface{})
				if len(ids) == 0 {
					return fail("post_processor.special_tokens."+k+".ids", "missing or empty")
				}
				for _, x := range ids {
					f, ok := x.(float64)
					if !ok {
						return fail("post_processor.special_tokens."+k+".ids", "not a list of numbers")
					}
					specials[k] = append(specials[k], int32(f))
				}
			}
		}
		parse := func(field string) ([]templateItem, error) {
			list, ok := m[field].([]interface{})
			if !ok {
				return nil, fail("post_processor."+field, "missing or not a list")
			}
			var out []templateItem
			for i, e := range list {
				f := fmt.Sprintf("post_processor.%s[%d]", field, i)
				o, _ := e.(map[string]interface{})
				if s, ok := o["SpecialToken"].(map[string]interface{}); ok {
					name, _ := str(s, "id")
					ids, ok := specials[name]
					if !ok {
						return nil, fail(f, "special token %q is not in post_processor.special_tokens", name)
					}
					tid, _ := s["type_id"].(float64)
					out = append(out, templateItem{ids: ids, typeID: int32(tid)})
				} else if s, ok := o["Sequence"].(map[string]interface{}); ok {
					name, _ := str(s, "id")
					tid, _ := s["type_id"].(float64)
					seq := map[string]int{"A": 1, "B": 2}[name]
					if seq == 0 {
						return nil, fail(f, "sequence id %q is not A or B", name)
					}
					out = append(out, templateItem{seq: seq, typeID: int32(tid)})
				} else {
					return nil, fail(f, "neither SpecialToken nor Sequence")
				}
			}
			return out, nil
		}
		var err error
		if t.single, err = parse("single"); err != nil {
			return err
		}
		if t.pair, err = parse("pair"); err != nil {
			return err
		}
		return nil
	}
	return fail("post_processor.type", "%q is not supported (TemplateProcessing, BertProcessing and RobertaProcessing are)", typ)
}

// normalizer is one normalization step.
type normalizer interface{ normalize(s string) string }

type replaceString struct{ old, new string }

func (r *replaceString) normalize(s string) string {
	if r.old == "" {
		return s
	}
	return strings.ReplaceAll(s, r.old, r.new)
}

type replaceRegex struct {
	re  *regexp.Regexp
	new string
}

func (r *replaceRegex) normalize(s string) string { return r.re.ReplaceAllLiteralString(s, r.new) }

// collapseSpaces is Replace(" {2,}" -> content), the XLM-R normalizer's
// second step, without a regular expression.
type collapseSpaces struct{ content string }

func (c *collapseSpaces) normalize(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] == ' ' && i+1 < len(s) && s[i+1] == ' ' {
			j := i
			for j < len(s) && s[j] == ' ' {
				j++
			}
			b.WriteString(c.content)
			i = j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

type unicodeForm struct{ f norm.Form }

func (u unicodeForm) normalize(s string) string { return u.f.String(s) }

type lowercase struct{}

func (lowercase) normalize(s string) string {
	var b []byte
	for _, r := range s {
		b = appendLower(b, r)
	}
	return string(b)
}
