package localgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/wire"
)

// session is one accepted STT or TTS socket.
type session struct {
	ctx    context.Context
	conn   *websocket.Conn
	schema wire.Schema // what the client's messages must match
	id     string      // session_id, in every message sent
	// for the journal
	req     *http.Request
	journal *journal
	stage   Stage
	refused func(r *http.Request, stage Stage, status int, h http.Header, body []byte)
}

// admit applies the rules to a request of stage: a quota rule refuses it
// with HTTP 429 and the quota body, as the real gateway does (before the
// upgrade, for a socket), and a 5xx fault with 503. It returns the faults
// of this request.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, stage Stage) ([]FaultRule, bool) {
	refused, faults := s.policy.Admit(stage)
	if refused != nil {
		s.journal.note(r, string(stage), http.StatusTooManyRequests, "quota rule "+refused.String())
		s.refuse(w, r, stage, refused.refusal())
		return nil, false
	}
	if f, ok := fault(faults, ServerErr); ok {
		s.journal.note(r, string(stage), http.StatusServiceUnavailable, "fault "+f.String())
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "embedded gateway: injected fault " + string(stage) + ":5xx"})
		return nil, false
	}
	return faults, true
}

// accept admits a WebSocket request of stage (see admit) and upgrades it.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, stage Stage) (*session, []FaultRule, bool) {
	faults, ok := s.admit(w, r, stage)
	if !ok {
		return nil, nil, false
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.journal.note(r, string(stage), http.StatusBadRequest, "not a WebSocket handshake: "+err.Error())
		return nil, nil, false // Accept has answered the client
	}
	s.journal.note(r, string(stage), http.StatusSwitchingProtocols, served(faults))
	conn.SetReadLimit(1 << 20)
	return s.newSession(r, conn, stage), faults, true
}

// newSession is an accepted socket of stage.
func (s *Server) newSession(r *http.Request, conn *websocket.Conn, stage Stage) *session {
	schema := wire.STTClient
	if stage == TTS {
		schema = wire.TTSClient
	}
	id := fmt.Sprintf("%s_%d", stage, s.sessionIDs.Add(1))
	return &session{ctx: r.Context(), conn: conn, schema: schema, id: id, req: r, journal: s.journal, stage: stage, refused: s.refused}
}

// open accepts a WebSocket request of stage (see accept) and reads its
// session.create; the caller closes ss.conn.
func (s *Server) open(w http.ResponseWriter, r *http.Request, stage Stage) (ss *session, faults []FaultRule, create map[string]any, ok bool) {
	ss, faults, ok = s.accept(w, r, stage)
	if !ok {
		return nil, nil, nil, false
	}
	create, err := ss.read()
	if err != nil {
		ss.failRead(err)
		ss.conn.CloseNow()
		return nil, nil, nil, false
	}
	return ss, faults, create, true
}

// track counts a session for Close to wait on.
func (s *Server) track() func() {
	s.sessions.Add(1)
	return s.sessions.Done
}

// send sends a message with the session's id: agents-js requires
// session_id in every TTS message (and accepts it in every STT one).
func (ss *session) send(m map[string]any) error { return ss.sendCtx(ss.ctx, m) }

func (ss *session) sendCtx(ctx context.Context, m map[string]any) error {
	if _, ok := m["session_id"]; !ok {
		m["session_id"] = ss.id
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return ss.conn.Write(ctx, websocket.MessageText, b)
}

// failRead answers a message that is not the protocol's (a closed socket
// needs no answer).
func (ss *session) failRead(err error) {
	var we *wire.Error
	if errors.As(err, &we) {
		ss.fail(we.Message)
	}
}

// fail reports a protocol error to the client and closes the socket.
func (ss *session) fail(message string) {
	ss.journal.note(ss.req, string(ss.stage), http.StatusBadRequest, "bad message, socket closed: "+message)
	ss.send(map[string]any{"type": "error", "message": message, "code": http.StatusBadRequest})
	ss.conn.Close(websocket.StatusPolicyViolation, "")
}

// refuseInStream sends a quota body on an open socket and closes it: a
// rule that starts while a socket is open applies to it too.
func (ss *session) refuseInStream(r *QuotaRule) {
	ss.journal.note(ss.req, string(ss.stage), http.StatusTooManyRequests, "quota rule "+r.String()+", in the open socket")
	rf := r.refusal()
	ss.conn.Write(ss.ctx, websocket.MessageText, rf.Body)
	ss.refused(ss.req, ss.stage, rf.Status, rf.Header, rf.Body)
	ss.conn.Close(websocket.StatusPolicyViolation, "quota exceeded")
}

// read returns the next message, checked against the protocol's schema
// as a strict gateway checks it: names are case-sensitive, unknown fields
// and types are refused (a *wire.Error).
func (ss *session) read() (map[string]any, error) {
	_, data, err := ss.conn.Read(ss.ctx)
	if err != nil {
		return nil, err
	}
	return ss.check(data)
}

// check checks a client message against the protocol's schema and
// decodes it.
func (ss *session) check(data []byte) (map[string]any, error) {
	if err := wire.Check(ss.schema, data); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// rate reads a sample rate, sent as a string of digits (the schema has
// checked that), within what the engines can make.
func rate(v any) (int, bool) {
	s, _ := v.(string)
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 8000 && n <= 48000
}
