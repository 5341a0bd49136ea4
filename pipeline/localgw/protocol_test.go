package localgw

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/wire"
)

// What real LiveKit Inference clients need of the gateway beyond voicetui's
// own client (agents-js 1.9.0, ../shared/docs/ROOM_MODE.md): transcripts
// pushed without session.finalize, session_id in every message, nothing
// after the client's session.close, and the eot and barge-in sockets
// refused in a way it tolerates. Every message the gateway sends here is
// checked against the schema agents-js parses with.

// socket is a raw client socket whose every received message is checked.
type socket struct {
	t      *testing.T
	c      *websocket.Conn
	schema wire.Schema
}

func dialChecked(t *testing.T, s *Server, path string, schema wire.Schema, create string) *socket {
	t.Helper()
	sk := &socket{t: t, c: dialRaw(t, s, path), schema: schema}
	sk.send(create)
	return sk
}

func (sk *socket) send(msg string) {
	sk.t.Helper()
	if err := sk.c.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		sk.t.Fatal(err)
	}
}

// next returns the next message, or nil when the socket closed.
func (sk *socket) next(wait time.Duration) map[string]any {
	sk.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, data, err := sk.c.Read(ctx)
	if err != nil {
		if ctx.Err() != nil {
			sk.t.Fatalf("nothing within %v", wait)
		}
		return nil
	}
	if err := wire.Check(sk.schema, data); err != nil {
		sk.t.Errorf("the gateway sent %s: %v", data, err)
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	if id, _ := m["session_id"].(string); id == "" {
		sk.t.Errorf("no session_id in %s", data)
	}
	return m
}

// audio sends pcm as 50 ms input_audio messages.
func (sk *socket) audio(pcm []int16) {
	for i := 0; i < len(pcm); i += 800 {
		b := make([]byte, 0, 1600)
		for _, v := range pcm[i:min(i+800, len(pcm))] {
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		}
		sk.send(`{"type":"input_audio","audio":"` + base64.StdEncoding.EncodeToString(b) + `"}`)
	}
}

const agentsSTTCreate = `{"settings":{"sample_rate":"16000","encoding":"pcm_s16le","extra":{"keyterm":[]},"language":"en"},"model":"deepgram/nova-3","connection":{"timeout":10,"retries":3},"type":"session.create"}`

// Two utterances, no session.finalize: each gets its own final transcript,
// pushed at its end, and the second's duration is its own.
func TestSTTEndpointsByItself(t *testing.T) {
	s, _ := start(t, Options{STTScript: []string{"what time is it", "goodbye"}})
	sk := dialChecked(t, s, "/stt", wire.STTServer, agentsSTTCreate)
	if m := sk.next(5 * time.Second); m["type"] != "session.created" {
		t.Fatalf("first message %v", m)
	}
	long, short := speech(t, "what time is it now, please?"), speech(t, "bye")
	sk.audio(append(long, short...))
	var finals []map[string]any
	var types []string
	for len(finals) < 2 {
		m := sk.next(10 * time.Second)
		if m == nil {
			t.Fatalf("closed; got %v", types)
		}
		types = append(types, m["type"].(string))
		if m["type"] == "final_transcript" {
			finals = append(finals, m)
		}
	}
	if finals[0]["transcript"] != "what time is it" || finals[1]["transcript"] != "goodbye" {
		t.Fatalf("finals %v", finals)
	}
	d0, d1 := finals[0]["duration"].(float64), finals[1]["duration"].(float64)
	if d1 >= d0 || d1 > 1.0 || d1 < 0.1 {
		t.Fatalf("durations %v then %v: the second utterance must be measured on its own", d0, d1)
	}
	if strings.Join(types[:2], ",") != "start_of_speech,interim_transcript" {
		t.Fatalf("messages %v", types)
	}
	// session.finalize still works: nothing pending, so just finalized.
	sk.send(`{"type":"session.finalize"}`)
	if m := sk.next(5 * time.Second); m["type"] != "session.finalized" {
		t.Fatalf("after finalize %v", m)
	}
}

// After the client's session.close the gateway sends nothing: it closes.
func TestSTTSendsNothingAfterSessionClose(t *testing.T) {
	s, _ := start(t, Options{STTScript: []string{"hello"}})
	sk := dialChecked(t, s, "/stt", wire.STTServer, agentsSTTCreate)
	sk.next(5 * time.Second) // session.created
	sk.audio(speech(t, "hello")[:16000])
	sk.send(`{"type":"session.close"}`)
	for {
		m := sk.next(5 * time.Second)
		if m == nil {
			break // closed
		}
		if m["type"] == "session.closed" {
			t.Fatalf("%v after session.close", m)
		}
	}
}

func TestTTSMessagesCarryTheSessionID(t *testing.T) {
	s, _ := start(t, Options{Speech: silentSpeech{}})
	sk := dialChecked(t, s, "/tts", wire.TTSServer,
		`{"type":"session.create","sample_rate":"16000","encoding":"pcm_s16le","extra":{},"model":"cartesia/sonic-2","language":"en","connection":{"timeout":10,"retries":3}}`)
	if m := sk.next(5 * time.Second); m["type"] != "session.created" {
		t.Fatalf("first message %v", m)
	}
	for range 2 { // one socket, utterances in turn
		sk.send(`{"type":"input_transcript","transcript":"Hello there. ","generation_config":{"language":"en","model":"cartesia/sonic-2"},"extra":{}}`)
		sk.send(`{"type":"session.flush"}`)
		audio := 0
		for {
			m := sk.next(5 * time.Second)
			if m == nil {
				t.Fatal("closed")
			}
			if m["type"] == "output_audio" {
				audio++
			}
			if m["type"] == "done" {
				break
			}
		}
		if audio == 0 {
			t.Fatal("no audio")
		}
	}
	sk.send(`{"type":"session.close"}`)
	if m := sk.next(5 * time.Second); m != nil {
		t.Fatalf("%v after session.close", m)
	}
}

// The cloud gateway's end-of-turn and barge-in model sockets are not
// served: 404 with a reason (agents-js then uses its local models); a
// barge-in quota rule is answered there with its quota body.
func TestEOTAndBargeInAreRefusedPolitely(t *testing.T) {
	s, _ := start(t, Options{Speech: silentSpeech{}})
	get := func(path string) int {
		tok, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now())
		req, _ := http.NewRequest("GET", s.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b := get("/eot"), get("/bargein"); a != 404 || b != 404 {
		t.Fatalf("eot %d, bargein %d", a, b)
	}
	s.Policy().AddQuota(quotas(t, "bargein:credits")[0])
	if code := get("/bargein"); code != 429 {
		t.Fatalf("bargein with credits exhausted: %d", code)
	}
}
