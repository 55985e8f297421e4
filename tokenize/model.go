package tokenize

import (
	"errors"
	"sync"

	sugar "github.com/sugarme/tokenizer"
)

// The models also implement sugarme/tokenizer's Model interface, so that
// they can stand in for sugarme's WordPiece and Unigram in a sugarme
// pipeline. (sugarme builds components from tokenizer.json through fixed
// switch statements with no registration hook, so Load assembles the
// pipeline itself instead of patching sugarme's loader.)
var (
	_ sugar.Model = (*wordPieceModel)(nil)
	_ sugar.Model = (*unigramModel)(nil)
)

// Model returns the tokenizer's model as a sugarme/tokenizer Model.
func (t *Tokenizer) Model() sugar.Model { return t.models.(sugar.Model) }

type wordPieceModel struct {
	w    *wordPiece
	once sync.Once
	byID []string // built on first IdToToken
	has  []bool
}

func (m *wordPieceModel) Tokenize(sequence string) ([]sugar.Token, error) {
	ids := m.w.encode(sequence, nil)
	out := make([]sugar.Token, len(ids))
	for i, id := range ids {
		tok, _ := m.IdToToken(int(id))
		out[i] = sugar.Token{Id: int(id), Value: tok}
	}
	return out, nil
}

func (m *wordPieceModel) TokenToId(token string) (int, bool) {
	id, ok := m.w.vocab[token]
	return int(id), ok
}

func (m *wordPieceModel) IdToToken(id int) (string, bool) {
	m.once.Do(func() {
		n := 0
		for _, v := range m.w.vocab {
			if int(v) >= n {
				n = int(v) + 1
			}
		}
		m.byID = make([]string, n)
		m.has = make([]bool, n)
		for k, v := range m.w.vocab {
			m.byID[v], m.has[v] = k, true
		}
	})
	if id < 0 || id >= len(m.byID) || !m.has[id] {
		return "", false
	}
	return m.byID[id], true
}

func (m *wordPieceModel) GetVocab() map[string]int {
	out := make(map[string]int, len(m.w.vocab))
	for k, v := range m.w.vocab {
		out[k] = int(v)
	}
	return out
}

func (m *wordPieceModel) GetVocabSize() int { return len(m.w.vocab) }

func (m *wordPieceModel) Save(string, ...string) error {
	return errors.New("tokenize: saving models is not supported")
}

type unigramModel struct {
	u      *unigram
	pieces []string
}

func (m *unigramModel) Tokenize(sequence string) ([]sugar.Token, error) {
	var lat lattice
	ids := m.u.encode(sequence, &lat, nil)
	out := make([]sugar.Token, len(ids))
	for i, id := range ids {
		out[i] = sugar.Token{Id: int(id), Value: m.pieces[id]}
	}
	return out, nil
}

func (m *unigramModel) TokenToId(token string) (int, bool) {
	id, ok := m.u.byPiece[token]
	return int(id), ok
}

func (m *unigramModel) IdToToken(id int) (string, bool) {
	if id < 0 || id >= len(m.pieces) {
		return "", false
	}
	return m.pieces[id], true
}

func (m *unigramModel) GetVocab() map[string]int {
	out := make(map[string]int, len(m.u.byPiece))
	for k, v := range m.u.byPiece {
		out[k] = int(v)
	}
	return out
}

func (m *unigramModel) GetVocabSize() int { return len(m.pieces) }

func (m *unigramModel) Save(string, ...string) error {
	return errors.New("tokenize: saving models is not supported")
}
