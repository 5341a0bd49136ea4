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

// outbox holds what is to be sent to the agent, in two lanes: control
// messages (playback finished, typed turns) are never dropped, or the
// agent would hold its turn forever; microphone audio is dropped, oldest
// first, when an agent that stopped reading lets it pile up.
type outbox struct {
	mu      sync.Mutex
	control []*agent.AgentSessionMessage
	audio   []*agent.AgentSessionMessage
	wake    chan struct{}
}

// maxAudio is how much microphone audio waits at most: 2 s of 10 ms frames.
const maxAudio = 200

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

func (o *outbox) put(m *agent.AgentSessionMessage) {
	o.mu.Lock()
	if m.GetAudioInput() != nil {
		if len(o.audio) >= maxAudio {
			o.audio = o.audio[1:]
		}
		o.audio = append(o.audio, m)
	} else {
		o.control = append(o.control, m)
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take returns the next message, control first; nil when none waits.
func (o *outbox) take() *agent.AgentSessionMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	var m *agent.AgentSessionMessage
	switch {
	case len(o.control) > 0:
		m, o.control[0] = o.control[0], nil
		o.control = o.control[1:]
	case len(o.audio) > 0:
		m, o.audio[0] = o.audio[0], nil
		o.audio = o.audio[1:]
	}
	return m
}
