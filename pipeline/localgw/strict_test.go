package localgw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/voicetui/voicetui/pipeline/gateway"
)

// The embedded gateway refuses what a strict real server refuses: the
// shapes documented in pipeline/wire's schemas, case-sensitively.

func postChat(t *testing.T, s *Server, body string) (int, []byte) {
	t.Helper()
	tok, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now())
	req, _ := http.NewRequest("POST", s.URL()+"/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestChatRefusesWhatOpenAIRefuses(t *testing.T) {
	s, _ := start(t, Options{Speech: silentSpeech{}})
	cases := []struct {
		name, body, param, message string
	}{
		// What voicetui itself sent before its messages had JSON names.
		{"Go field names", `{"model":"m","messages":[{"Role":"system","Content":"be brief"},{"Role":"user","Content":"hello there"}],"stream":true,"stream_options":{"include_usage":true}}`,
			"messages[0].role", "Missing required parameter: 'messages[0].role'."},
		{"unknown role", `{"model":"m","stream":true,"messages":[{"role":"narrator","content":"hi"}]}`, "messages[0].role", "Invalid value for 'messages[0].role'"},
		{"no content", `{"model":"m","stream":true,"messages":[{"role":"user"}]}`, "messages[0].content", "Missing required parameter: 'messages[0].content'."},
		{"no model", `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`, "model", "Missing required parameter: 'model'."},
		{"unknown argument", `{"model":"m","stream":true,"Stream":true,"messages":[{"role":"user","content":"hi"}]}`, "Stream", "Unrecognized request argument supplied: 'Stream'."},
		{"not JSON", `{"model":`, "", "We could not parse the JSON body of your request"},
		{"not streamed", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "stream", "streams only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postChat(t, s, tc.body)
			var got struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("%d %s: not OpenAI's error body: %v", status, body, err)
			}
			param := ""
			if got.Error.Param != nil {
				param = *got.Error.Param
			}
			if status != http.StatusBadRequest || got.Error.Type != "invalid_request_error" || param != tc.param ||
				!strings.Contains(got.Error.Message, tc.message) {
				t.Errorf("%d %s", status, body)
			}
		})
	}
	// The same request with the documented names is answered.
	if status, body := postChat(t, s, `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}],"stream":true,"stream_options":{"include_usage":true}}`); status != 200 ||
		!strings.Contains(string(body), "data: [DONE]") {
		t.Fatalf("%d %s", status, body)
	}
}

// dialRaw opens a socket on path with a good token, for messages the
// clients would never send.
func dialRaw(t *testing.T, s *Server, path string) *websocket.Conn {
	t.Helper()
	tok, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(s.URL(), "http", "ws", 1)+path,
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// exchange sends msgs and returns every message the gateway sent until it
// closed the socket.
func exchange(t *testing.T, c *websocket.Conn, msgs ...string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range msgs {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			break
		}
	}
	var got []map[string]any
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatal("the gateway kept the socket open after a bad message")
			}
			return got
		}
		var m map[string]any
		json.Unmarshal(data, &m)
		got = append(got, m)
	}
}

func TestSocketsRefuseWhatTheProtocolDoesNotSay(t *testing.T) {
	s, _ := start(t, Options{Speech: silentSpeech{}})
	audio := base64.StdEncoding.EncodeToString(make([]byte, 1600))
	sttCreate := `{"type":"session.create","settings":{"sample_rate":"16000","encoding":"pcm_s16le"}}`
	ttsCreate := `{"type":"session.create","sample_rate":"24000","encoding":"pcm_s16le"}`
	cases := []struct {
		name, path string
		msgs       []string
		message    string
	}{
		{"stt rate as a number", "/stt", []string{`{"type":"session.create","settings":{"sample_rate":16000,"encoding":"pcm_s16le"}}`}, "Invalid type for 'settings.sample_rate'"},
		{"stt settings flat", "/stt", []string{`{"type":"session.create","sample_rate":"16000","encoding":"pcm_s16le"}`}, "Missing required parameter: 'settings'."},
		{"stt type capitalised", "/stt", []string{sttCreate, `{"Type":"input_audio","audio":"` + audio + `"}`}, "Missing required parameter: 'type'."},
		{"stt audio capitalised", "/stt", []string{sttCreate, `{"type":"input_audio","Audio":"` + audio + `"}`}, "Missing required parameter: 'audio'."},
		{"stt unknown field", "/stt", []string{sttCreate, `{"type":"session.finalize","force":true}`}, "Unrecognized request argument supplied: 'force'."},
		{"stt not JSON", "/stt", []string{sttCreate, `hello`}, "could not parse"},
		{"tts encoding", "/tts", []string{`{"type":"session.create","sample_rate":"24000","encoding":"mp3"}`}, "Invalid value for 'encoding'"},
		{"tts transcript capitalised", "/tts", []string{ttsCreate, `{"type":"input_transcript","Transcript":"Hello."}`}, "Missing required parameter: 'transcript'."},
		{"tts unknown type", "/tts", []string{ttsCreate, `{"type":"input_text","transcript":"Hello."}`}, "Invalid value for 'type'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, dialRaw(t, s, tc.path), tc.msgs...)
			if len(got) == 0 {
				t.Fatal("no answer")
			}
			last := got[len(got)-1]
			msg, _ := last["message"].(string)
			if last["type"] != "error" || last["code"] != float64(400) || !strings.Contains(msg, tc.message) {
				t.Errorf("last message %v; want an error with code 400 saying %q", last, tc.message)
			}
		})
	}
}

func TestTokensAreReadByExactName(t *testing.T) {
	// A token whose grant is spelt "Inference" carries no inference grant
	// for a case-sensitive server; encoding/json alone would accept it.
	good, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now())
	if err := gateway.VerifyToken(good, DefaultKey, DefaultSecret, time.Now()); err != nil {
		t.Fatal(err)
	}
	bad := signed(t, map[string]any{"iss": DefaultKey, "sub": "agent", "nbf": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
		"Inference": map[string]any{"Perform": true}})
	if err := gateway.VerifyToken(bad, DefaultKey, DefaultSecret, time.Now()); err == nil || !strings.Contains(err.Error(), "'Inference'") {
		t.Fatalf("a token with \"Inference\" was accepted or refused for another reason: %v", err)
	}
	s, _ := start(t, Options{Speech: silentSpeech{}})
	req, _ := http.NewRequest("GET", s.URL()+"/models", nil)
	req.Header.Set("Authorization", "Bearer "+bad)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// signed is an HS256 token with exactly the given claims.
func signed(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString([]byte(DefaultSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
