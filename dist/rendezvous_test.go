package dist

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func TestShareID(t *testing.T) {
	addr := freeAddr(t)
	id := bytes.Repeat([]byte{7, 0, 255}, 43)[:128]
	const size = 4
	got := make([][]byte, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r := size - 1; r >= 0; r-- { // the others dial before rank 0 listens
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			mine := make([]byte, 128)
			if r == 0 {
				mine = id
			}
			got[r], errs[r] = ShareID(addr, r, size, mine, 10*time.Second)
		}(r)
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	for r := range size {
		require.NoError(t, errs[r], "rank %d", r)
		assert.Equal(t, id, got[r], "rank %d", r)
	}
}

func TestShareIDMissingRank(t *testing.T) {
	addr := freeAddr(t)
	t0 := time.Now()
	_, err := ShareID(addr, 0, 3, make([]byte, 128), 300*time.Millisecond)
	require.ErrorContains(t, err, "rank(s) 1, 2 did not come")
	assert.Less(t, time.Since(t0), 5*time.Second)
	_, err = ShareID(addr, 1, 3, make([]byte, 128), 300*time.Millisecond)
	require.ErrorContains(t, err, "rank 0 does not answer at "+addr)
}

func TestRendezvousAddr(t *testing.T) {
	a, err := RendezvousAddr(Launch{MasterAddr: "10.0.0.1", MasterPort: 29500})
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.1:29500", a)
	a, err = RendezvousAddr(Launch{MasterAddr: "::1", MasterPort: 29500, AgentStore: true})
	require.NoError(t, err)
	assert.Equal(t, "[::1]:"+strconv.Itoa(29501), a)
	_, err = RendezvousAddr(Launch{})
	require.ErrorContains(t, err, "MASTER_ADDR")
}
