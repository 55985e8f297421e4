package dist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// rendezvousMagic starts every request of the id exchange.
const rendezvousMagic = "rerank-nccl-id/1"

// RendezvousAddr is where rank 0 serves NCCL's unique id to the other
// ranks: MASTER_ADDR:MASTER_PORT, or MASTER_PORT+1 when torchrun's agent
// already serves its own store at MASTER_PORT.
func RendezvousAddr(l Launch) (string, error) {
	if l.MasterAddr == "" || l.MasterPort == 0 {
		return "", fmt.Errorf("NCCL needs its unique id sent to every rank: set MASTER_ADDR and MASTER_PORT (torchrun does), or NCCL_COMM_ID=host:port, or start the ranks with mpirun in a build with -tags mpi")
	}
	port := l.MasterPort
	if l.AgentStore {
		port++
	}
	return net.JoinHostPort(l.MasterAddr, strconv.Itoa(port)), nil
}

// ShareID sends rank 0's id (a few bytes: NCCL's 128-byte unique id) to
// every rank over TCP at addr and returns it on every rank. Rank 0
// listens and answers size-1 requests; the others dial until it answers.
// It gives up after timeout with an error naming the ranks that did not
// come (on rank 0) or the address (on the others).
func ShareID(addr string, rank, size int, id []byte, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	if rank == 0 {
		return id, serveID(addr, size, id, deadline, timeout)
	}
	var lastErr error
	for pause := 10 * time.Millisecond; time.Now().Before(deadline); pause = min(2*pause, time.Second) {
		got, err := fetchID(addr, rank, len(id), deadline)
		if err == nil {
			return got, nil
		}
		lastErr = err
		time.Sleep(min(pause, time.Until(deadline)))
	}
	return nil, &RankError{Op: "NCCL id exchange", Rank: 0, Timeout: timeout, Err: fmt.Errorf("rank 0 does not answer at %s: %v", addr, lastErr)}
}

func serveID(addr string, size int, id []byte, deadline time.Time, timeout time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("NCCL id exchange: rank 0 cannot listen at %s: %w (is the port taken? set MASTER_PORT to a free one)", addr, err)
	}
	defer ln.Close()
	tl := ln.(*net.TCPListener)
	seen := map[int]bool{}
	for len(seen) < size-1 {
		if err := tl.SetDeadline(deadline); err != nil {
			return err
		}
		conn, err := tl.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				var missing []string
				for r := 1; r < size; r++ {
					if !seen[r] {
						missing = append(missing, strconv.Itoa(r))
					}
				}
				return &RankError{Op: "NCCL id exchange", Rank: -1, Timeout: timeout,
					Err: fmt.Errorf("rank(s) %s did not come to %s", strings.Join(missing, ", "), addr)}
			}
			return fmt.Errorf("NCCL id exchange at %s: %w", addr, err)
		}
		r, err := answer(conn, size, id, deadline)
		conn.Close()
		if err == nil {
			seen[r] = true
		}
	}
	return nil
}

// answer reads one request ("rerank-nccl-id/1 RANK\n") and sends id.
func answer(conn net.Conn, size int, id []byte, deadline time.Time) (int, error) {
	conn.SetDeadline(earliest(deadline, time.Now().Add(10*time.Second)))
	line, err := bufio.NewReader(io.LimitReader(conn, 64)).ReadString('\n')
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != rendezvousMagic {
		return 0, fmt.Errorf("not a rerank rank: %q", line)
	}
	r, err := strconv.Atoi(f[1])
	if err != nil || r < 1 || r >= size {
		return 0, fmt.Errorf("bad rank %q", f[1])
	}
	_, err = conn.Write(id)
	return r, err
}

func fetchID(addr string, rank, n int, deadline time.Time) ([]byte, error) {
	conn, err := net.DialTimeout("tcp", addr, min(5*time.Second, max(time.Until(deadline), time.Millisecond)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(earliest(deadline, time.Now().Add(10*time.Second)))
	if _, err := fmt.Fprintf(conn, "%s %d\n", rendezvousMagic, rank); err != nil {
		return nil, err
	}
	id := make([]byte, n)
	if _, err := io.ReadFull(conn, id); err != nil {
		return nil, err
	}
	return id, nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
