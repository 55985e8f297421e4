package nn

import (
	"fmt"
	"strings"
)

// AttentionMode chooses how a model's attention keeps what its backward
// pass needs (backend.Attn.Tiled).
type AttentionMode int

const (
	// AttentionAuto tiles sequences of AttentionOptions.TiledFrom tokens
	// or more and stores the probabilities of shorter ones.
	AttentionAuto AttentionMode = iota
	// AttentionStored keeps every probability, [N, Heads, S, S] per layer
	// on the CPU: the fastest below about a thousand tokens, and the
	// attention maps stay inspectable (Model.AttentionSave).
	AttentionStored
	// AttentionTiled computes attention in blocks with an online softmax
	// and keeps one log-sum-exp per query row; the backward pass
	// recomputes the probabilities block by block (flash-style). Memory no
	// longer grows with S², for some 10 to 30 % more attention time.
	AttentionTiled
)

// DefaultTiledFrom is the sequence length from which AttentionAuto tiles:
// from there on the stored probabilities outweigh the rest of a layer's
// activations (16 heads: 64 MiB per sequence and layer at 1024 tokens),
// and tiled attention is about as fast (bench/RESULTS.md).
const DefaultTiledFrom = 1024

var attentionModes = []string{"auto", "stored", "tiled"}

// String returns the mode's name as ParseAttentionMode reads it.
func (m AttentionMode) String() string {
	if m >= 0 && int(m) < len(attentionModes) {
		return attentionModes[m]
	}
	return fmt.Sprintf("AttentionMode(%d)", int(m))
}

// ParseAttentionMode reads auto, stored or tiled.
func ParseAttentionMode(s string) (AttentionMode, error) {
	for i, n := range attentionModes {
		if strings.EqualFold(s, n) {
			return AttentionMode(i), nil
		}
	}
	return 0, fmt.Errorf("attention %q: want one of %s", s, strings.Join(attentionModes, ", "))
}

// AttentionOptions tune a model's attention; the zero value is
// AttentionAuto from DefaultTiledFrom tokens with the backend's blocks.
type AttentionOptions struct {
	Mode AttentionMode
	// TiledFrom overrides DefaultTiledFrom for AttentionAuto (when > 0).
	TiledFrom int
	// Tile is the block length of tiled attention, 0 for the backend's
	// choice (backend.Attn.Tile); tests set it small.
	Tile int
}

// Tiled reports whether sequences of s tokens take tiled attention.
func (o AttentionOptions) Tiled(s int) bool {
	switch o.Mode {
	case AttentionTiled:
		return true
	case AttentionStored:
		return false
	}
	from := o.TiledFrom
	if from <= 0 {
		from = DefaultTiledFrom
	}
	return s >= from
}
