package room

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/livekit/agent"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/voicetui/voicetui/pipeline/safetext"
)

// Topics a LiveKit agent uses (agents-js 1.9.0).
const (
	topicTranscription = "lk.transcription"
	topicChat          = "lk.chat"
	topicAgentSession  = "lk.agent.session"
	attrAgentState     = "lk.agent.state"
	attrFinal          = "lk.transcription_final"
	attrSegment        = "lk.segment_id"
)

// Messages from the SDK's callbacks to the loop. The callbacks run on the
// SDK's goroutines: they translate and hand off, nothing more.
type (
	// participantMsg: a participant joined or left, or its attributes changed.
	participantMsg struct {
		identity string
		agent    bool
		left     bool
		reason   string
		state    string // lk.agent.state, when it has one
		lost     bool   // left while the connection was being restored
	}
	// transcriptMsg is text on lk.transcription: the user's (one stream
	// per update, the whole text) or the agent's (one stream per segment,
	// pieces as they come; done when it ends).
	transcriptMsg struct {
		user    bool
		segment string
		text    string
		final   bool
		done    bool
	}
	// connMsg: the connection is being restored, was, or is gone.
	connMsg struct {
		reconnecting, reconnected, disconnected bool
		reason                                  string
	}
	// agentErrorMsg is an error the agent reported on lk.agent.session.
	agentErrorMsg struct{ label string }
)

// inbox is what the callbacks post to.
type inbox struct {
	ctx          context.Context
	participants chan participantMsg
	transcripts  chan transcriptMsg
	conns        chan connMsg
	agentErrors  chan agentErrorMsg
	tracks       chan *webrtc.TrackRemote // the agent's audio, to subscribe
	// lost is set from the SDK's reconnecting callback to its reconnected
	// one: the participants it drops meanwhile did not leave by choice.
	lost atomic.Bool
}

func newInbox(ctx context.Context) *inbox {
	return &inbox{ctx: ctx, participants: make(chan participantMsg, 32), transcripts: make(chan transcriptMsg, 256),
		conns: make(chan connMsg, 8), agentErrors: make(chan agentErrorMsg, 32), tracks: make(chan *webrtc.TrackRemote, 4)}
}

func send[T any](ctx context.Context, ch chan<- T, m T) {
	select {
	case ch <- m:
	case <-ctx.Done():
	}
}

// token is the join token: the given one, or one minted with a room grant
// (and, with AgentName, an explicit dispatch of that agent).
func (o *Options) token() (string, error) {
	if o.Token != "" {
		return o.Token, nil
	}
	at := auth.NewAccessToken(o.APIKey, o.APISecret).SetIdentity(o.Identity).SetName(o.Identity).
		SetValidFor(6 * time.Hour).SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: o.Room})
	if o.AgentName != "" {
		at.SetRoomConfig(&livekit.RoomConfiguration{Agents: []*livekit.RoomAgentDispatch{{AgentName: o.AgentName}}})
	}
	return at.ToJWT()
}

// callbacks turns the SDK's callbacks into messages for in.
func (in *inbox) callbacks() *lksdk.RoomCallback {
	cb := lksdk.NewRoomCallback()
	cb.OnParticipantConnected = func(p *lksdk.RemoteParticipant) {
		send(in.ctx, in.participants, participantMsg{identity: p.Identity(), agent: isAgent(p), state: p.Attributes()[attrAgentState]})
	}
	cb.OnParticipantDisconnected = func(p *lksdk.RemoteParticipant) {
		send(in.ctx, in.participants, participantMsg{identity: p.Identity(), agent: isAgent(p), left: true, reason: p.DisconnectReason().String(),
			lost: in.lost.Load()})
	}
	cb.OnAttributesChanged = func(changed map[string]string, p lksdk.Participant) {
		if st, ok := changed[attrAgentState]; ok {
			send(in.ctx, in.participants, participantMsg{identity: p.Identity(), agent: p.Kind() == lksdk.ParticipantAgent, state: st})
		}
	}
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, p *lksdk.RemoteParticipant) {
		if track.Kind() == webrtc.RTPCodecTypeAudio && isAgent(p) {
			send(in.ctx, in.tracks, track)
		}
	}
	cb.OnReconnecting = func() {
		in.lost.Store(true) // before the SDK drops the participants
		send(in.ctx, in.conns, connMsg{reconnecting: true})
	}
	cb.OnReconnected = func() {
		in.lost.Store(false)
		send(in.ctx, in.conns, connMsg{reconnected: true})
	}
	cb.OnDisconnectedWithReason = func(reason lksdk.DisconnectionReason) {
		send(in.ctx, in.conns, connMsg{disconnected: true, reason: string(reason)})
	}
	return cb
}

func isAgent(p *lksdk.RemoteParticipant) bool { return p.Kind() == lksdk.ParticipantAgent }

// listen registers the stream handlers: transcripts, and the agent's
// session messages (its errors).
func (in *inbox) listen(r *lksdk.Room, self string) error {
	err := r.RegisterTextStreamHandler(topicTranscription, func(rd *lksdk.TextStreamReader, from string) {
		attrs := rd.Info.Attributes
		msg := transcriptMsg{user: from == self, segment: attrs[attrSegment], final: attrs[attrFinal] == "true"}
		if msg.user {
			// One stream per update, carrying the whole text so far.
			msg.text = safetext.Sanitize(rd.ReadAll(), 2000)
			msg.done = true
			send(in.ctx, in.transcripts, msg)
			return
		}
		// The agent's: pieces as it speaks; the end of the stream is the
		// end of the segment.
		buf := make([]byte, 4096)
		for {
			n, err := rd.Read(buf)
			if n > 0 {
				send(in.ctx, in.transcripts, transcriptMsg{segment: msg.segment, text: string(buf[:n])})
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					send(in.ctx, in.transcripts, transcriptMsg{segment: msg.segment, done: true})
				}
				return
			}
			if in.ctx.Err() != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return r.RegisterByteStreamHandler(topicAgentSession, func(rd *lksdk.ByteStreamReader, _ string) {
		var m agent.AgentSessionMessage
		if proto.Unmarshal(rd.ReadAll(), &m) != nil {
			return
		}
		if e := m.GetEvent().GetError(); e != nil {
			send(in.ctx, in.agentErrors, agentErrorMsg{label: safetext.Sanitize(e.GetMessage(), 120)})
		}
	})
}

// agentIn finds an agent already in the room when we joined.
func agentIn(r *lksdk.Room) (participantMsg, bool) {
	for _, p := range r.GetRemoteParticipants() {
		if isAgent(p) {
			return participantMsg{identity: p.Identity(), agent: true, state: p.Attributes()[attrAgentState]}, true
		}
	}
	return participantMsg{}, false
}

// reasonText makes an SDK reason readable ("CONNECTION_TIMEOUT" stays).
func reasonText(r string) string {
	r = strings.TrimSpace(r)
	if r == "UNKNOWN_REASON" {
		return ""
	}
	return r
}
