package crossencoder

import (
	"context"
	"errors"
	"fmt"

	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
)

// WithAdapter returns a scorer for the model with the LoRA adapter (PEFT
// format) in dir (or a Hugging Face Hub id, resolved by Options.Hub) applied unmerged: it reads this model's weights in place
// (no copy) and adds only the adapter's low-rank weights, its head, and
// its own queue and activations, so that many adapters serve over one
// copy of a base model at once. Its scores equal those of the merged
// model (Options.Adapter, `rerank merge`) to float32 rounding, not bit
// for bit. Its passes run on the model's backend without lanes (see
// infer.Runner). name is what AdapterName reports. Closing the base model
// closes it.
//
// Adapters read the base model's float32 weights, which a model made by
// Load and scored by one worker drops (see Options.PackBudget and Int8):
// at its first pass (with Int8, as it loads, unless Options.Adapter is
// merged at load). WithAdapter called before that keeps them, as
// Options.KeepFloat32 does; after it, WithAdapter fails unless the model
// was loaded with KeepFloat32.
func (m *Model) WithAdapter(name, dir string) (*Model, error) {
	if m.base != nil {
		return nil, errors.New("crossencoder: an adapter goes on a base model, not on another adapter")
	}
	if !m.eng.frozen {
		return nil, errors.New("crossencoder: adapters go on a model made by Load, whose weights do not change")
	}
	if !m.eng.keepFloat32() {
		return nil, errors.New("crossencoder: adapters need the base model's float32 weights, which its scoring dropped once it had packed or quantized them (a model made by Load, scored by one worker): load the base with Options.KeepFloat32, call WithAdapter before the base scores, or merge the adapter at load (Options.Adapter)")
	}
	resolved, err := m.opts.Hub.Dir(context.Background(), dir, hub.Adapter)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", dir, err)
	}
	dir = resolved
	base := m.Net // not m: the adapter's workers must not keep m alive
	load := func() (*nn.Model, error) {
		net, err := base.Share(true)
		if err != nil {
			return nil, err
		}
		if _, err := lora.Load(net, dir); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", dir, err)
		}
		return net, nil
	}
	m.eng.lockDevice()
	net, err := load()
	m.eng.unlockDevice()
	if err != nil {
		return nil, err
	}
	v := &Model{Net: net, Tok: m.Tok, HFConfig: m.HFConfig, Dir: dir, trunc: m.trunc, opts: m.opts, base: m, name: name}
	v.eng = newEngine(net, m.opts, true, load)
	v.eng.device = m.eng.device
	m.eng.mu.Lock()
	m.eng.views = append(m.eng.views, v.eng)
	m.eng.mu.Unlock()
	return v, nil
}

// AdapterName is the name given to WithAdapter, "" for a base model.
func (m *Model) AdapterName() string { return m.name }
