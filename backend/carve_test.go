package backend_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
)

// carveTwo is a layout: a buffer carved larger than it is used, then a
// second, then token ids.
func carveTwo(k *backend.Carver) (a, b backend.Buf, ids backend.IntBuf) {
	return k.Take(8, 5), k.Take(3, 3), k.TakeInt(4, 2)
}

// TestCarver: the counting pass gives the sizes the carving pass takes,
// and views sit at the offsets the carved (not used) sizes put them.
func TestCarver(t *testing.T) {
	be := cpu.New()
	var count backend.Carver
	a, b, ids := carveTwo(&count)
	assert.Nil(t, a)
	assert.Nil(t, b)
	assert.Nil(t, ids)
	assert.Equal(t, 11, count.Off)
	assert.Equal(t, 4, count.IOff)

	mem, err := be.Alloc(count.Off)
	require.NoError(t, err)
	imem, err := be.AllocInt(count.IOff)
	require.NoError(t, err)
	be.Upload(mem, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	k := backend.Carver{Mem: mem, IMem: imem}
	a, b, ids = carveTwo(&k)
	assert.Equal(t, count, backend.Carver{Off: k.Off, IOff: k.IOff})
	assert.Equal(t, 5, a.Len())
	assert.Equal(t, 2, ids.Len())
	got := make([]float32, 3)
	be.Download(got, b)
	assert.Equal(t, []float32{8, 9, 10}, got)
}

// TestGrow: a buffer large enough is kept, a small one replaced by a
// zeroed one of the size asked for.
func TestGrow(t *testing.T) {
	be := cpu.New()
	for _, tc := range []struct {
		name      string
		have, ask int
		same      bool
	}{
		{"none", -1, 4, false},
		{"larger", 8, 4, true},
		{"exact", 4, 4, true},
		{"smaller", 2, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b backend.Buf
			var ib backend.IntBuf
			if tc.have >= 0 {
				b, _ = be.Alloc(tc.have)
				ib, _ = be.AllocInt(tc.have)
			}
			g, err := backend.Grow(be, b, tc.ask)
			require.NoError(t, err)
			gi, err := backend.GrowInt(be, ib, tc.ask)
			require.NoError(t, err)
			assert.Equal(t, tc.same, b != nil && &g.(cpu.F32)[0] == &b.(cpu.F32)[0], "kept")
			assert.Equal(t, tc.same, ib != nil && &gi.(cpu.I32)[0] == &ib.(cpu.I32)[0], "kept")
			if !tc.same {
				assert.Equal(t, tc.ask, g.Len())
				assert.Equal(t, tc.ask, gi.Len())
			}
		})
	}
}
