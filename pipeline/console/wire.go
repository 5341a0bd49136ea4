package console

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/livekit/protocol/livekit/agent"
	"google.golang.org/protobuf/proto"
)

// The console's framing, as agents-js's TcpSessionTransport writes it:
// each message a 4-byte big-endian length, then a protobuf
// AgentSessionMessage. A frame longer than maxFrame is refused (a second
// of 48 kHz audio is 96 KB; nothing the agent sends is near 4 MiB).
const maxFrame = 4 << 20

// readMsg reads one message.
func readMsg(r *bufio.Reader) (*agent.AgentSessionMessage, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n > maxFrame {
		return nil, fmt.Errorf("a frame of %d bytes (at most %d)", n, maxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	m := &agent.AgentSessionMessage{}
	if err := proto.Unmarshal(buf, m); err != nil {
		return nil, fmt.Errorf("not an AgentSessionMessage: %w", err)
	}
	return m, nil
}

// sender writes messages to the agent from any goroutine, one whole frame
// at a time.
type sender struct {
	mu   sync.Mutex
	conn net.Conn
	buf  []byte
}

func (s *sender) send(m *agent.AgentSessionMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := proto.MarshalOptions{}.MarshalAppend(append(s.buf[:0], 0, 0, 0, 0), m)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	s.buf = b
	_, err = s.conn.Write(b)
	return err
}
