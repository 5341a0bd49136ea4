package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"strings"
	"testing"
)

func TestSchemasCompile(t *testing.T) {
	schemas, err := compiled()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Schema{ChatRequest, SpeechRequest, TranscriptionForm, STTClient, TTSClient, AccessToken, STTServer, TTSServer} {
		if schemas[s] == nil {
			t.Errorf("schema %s missing", s)
		}
	}
}

// The requests real clients send pass: ours, and agents-js 1.9.0's
// (inference/stt.js, tts.js, llm.js through the openai npm client).
func TestAccepts(t *testing.T) {
	cases := []struct {
		schema Schema
		body   string
	}{
		{ChatRequest, `{"model":"gpt-4.1-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}],"stream":true,"stream_options":{"include_usage":true}}`},
		{ChatRequest, `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true,"parallel_tool_calls":true,"tool_choice":"auto","tools":[]}`},
		{ChatRequest, `{"model":"m","messages":[{"role":"developer","content":"x"},{"role":"assistant","content":null,"tool_calls":[]},{"role":"tool","content":"42","tool_call_id":"c1"}],"temperature":0.2}`},
		{SpeechRequest, `{"model":"gpt-4o-mini-tts","input":"Hello.","voice":"alloy","response_format":"pcm"}`},
		{STTClient, `{"type":"session.create","model":"deepgram/nova-3","settings":{"sample_rate":"16000","encoding":"pcm_s16le","language":"en"}}`},
		{STTClient, `{"settings":{"sample_rate":"16000","encoding":"pcm_s16le","extra":{}},"model":"deepgram/nova-3","connection":{"timeout":10,"retries":3},"type":"session.create"}`},
		{STTClient, `{"type":"input_audio","audio":"AAAAAA=="}`},
		{STTClient, `{"type":"session.finalize"}`},
		{STTClient, `{"type":"session.close"}`},
		{STTClient, `{"type":"session.update","settings":{"language":"fr"}}`},
		{TTSClient, `{"type":"session.create","sample_rate":"24000","encoding":"pcm_s16le","voice":"v","model":"cartesia/sonic-2","language":"en"}`},
		{TTSClient, `{"type":"session.create","sample_rate":"24000","encoding":"pcm_s16le","extra":{},"connection":{"timeout":10,"retries":3}}`},
		{TTSClient, `{"type":"input_transcript","transcript":"Hello there. ","generation_config":{"voice":"v"},"extra":{}}`},
		{TTSClient, `{"type":"session.flush"}`},
		{AccessToken, `{"iss":"devkey","sub":"agent","nbf":1,"exp":2,"inference":{"perform":true}}`},
		{AccessToken, `{"iss":"devkey","sub":"agent","iat":1,"nbf":1,"exp":2,"video":{"roomJoin":true,"room":"r"},"name":"n"}`},
		{STTServer, `{"type":"final_transcript","transcript":"hi","start":0.5,"duration":1,"confidence":0.9,"words":[],"session_id":"s"}`},
		{STTServer, `{"type":"error","message":"x","code":400}`},
		{STTServer, `{"type":"start_of_speech"}`},
		{TTSServer, `{"type":"output_audio","audio":"AAA=","session_id":"s"}`},
		{TTSServer, `{"type":"done","session_id":"s"}`},
		{TTSServer, `{"type":"session.created","session_id":"s","voice":"v"}`},
	}
	for _, tc := range cases {
		if err := Check(tc.schema, []byte(tc.body)); err != nil {
			t.Errorf("%s refused %s: %v", tc.schema, tc.body, err)
		}
	}
}

func TestRefuses(t *testing.T) {
	cases := []struct {
		name   string
		schema Schema
		body   string
		param  string
		msg    string // a part of the message
	}{
		// The bug this package exists for: Go field names on the wire.
		{"capitalised message fields", ChatRequest, `{"model":"m","messages":[{"Role":"user","Content":"hi"}],"stream":true}`,
			"messages[0].role", "Missing required parameter: 'messages[0].role'."},
		{"capitalised content", ChatRequest, `{"model":"m","messages":[{"role":"user","Content":"hi"}]}`,
			"messages[0].content", "Missing required parameter"},
		{"extra message field", ChatRequest, `{"model":"m","messages":[{"role":"user","content":"hi","Content":"hi"}]}`,
			"messages[0].Content", "Unrecognized request argument supplied: 'messages[0].Content'."},
		{"capitalised top level", ChatRequest, `{"Model":"m","messages":[{"role":"user","content":"hi"}]}`, "model", "Missing required parameter: 'model'."},
		{"unknown top level", ChatRequest, `{"model":"m","messages":[{"role":"user","content":"hi"}],"streaming":true}`, "streaming", "Unrecognized"},
		{"unknown role", ChatRequest, `{"model":"m","messages":[{"role":"bot","content":"hi"}]}`, "messages[0].role", "Supported values are"},
		{"content of wrong type", ChatRequest, `{"model":"m","messages":[{"role":"user","content":42}]}`, "messages[0].content", "Invalid type"},
		{"no messages", ChatRequest, `{"model":"m","messages":[]}`, "messages", "Invalid value"},
		{"stream not boolean", ChatRequest, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":"yes"}`, "stream", "Invalid type"},
		{"stream_options misspelt", ChatRequest, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"includeUsage":true}}`,
			"stream_options.includeUsage", "Unrecognized"},
		{"not JSON", ChatRequest, `{"model":`, "", "could not parse"},
		{"speech without voice", SpeechRequest, `{"model":"m","input":"hi"}`, "voice", "Missing required parameter: 'voice'."},
		{"speech format", SpeechRequest, `{"model":"m","input":"hi","voice":"v","response_format":"PCM"}`, "response_format", "Supported values"},
		{"stt create with a number rate", STTClient, `{"type":"session.create","settings":{"sample_rate":16000,"encoding":"pcm_s16le"}}`,
			"settings.sample_rate", "Invalid type"},
		{"stt create flat", STTClient, `{"type":"session.create","sample_rate":"16000","encoding":"pcm_s16le"}`, "settings", "Missing required"},
		{"stt unknown type", STTClient, `{"type":"Session.Create"}`, "type", "Supported values"},
		{"stt audio not base64", STTClient, `{"type":"input_audio","audio":"not base64!"}`, "audio", "Invalid value"},
		{"stt audio capitalised", STTClient, `{"type":"input_audio","Audio":"AAAA"}`, "audio", "Missing required"},
		{"stt finalize with a field", STTClient, `{"type":"session.finalize","now":true}`, "now", "Unrecognized"},
		{"tts encoding", TTSClient, `{"type":"session.create","sample_rate":"24000","encoding":"mp3"}`, "encoding", "Expected"},
		{"tts empty voice", TTSClient, `{"type":"session.create","sample_rate":"24000","encoding":"pcm_s16le","voice":""}`, "voice", "Invalid value"},
		{"tts transcript missing", TTSClient, `{"type":"input_transcript","text":"hi"}`, "transcript", "Missing required"},
		{"token without issuer", AccessToken, `{"sub":"agent","exp":2}`, "iss", "Missing required"},
		{"token grant capitalised", AccessToken, `{"iss":"k","exp":2,"inference":{"Perform":true}}`, "inference.Perform", "Unrecognized"},
		{"stt error code as a string", STTServer, `{"type":"error","message":"x","code":"400"}`, "code", "Invalid type"},
		{"stt transcript not a string", STTServer, `{"type":"final_transcript","transcript":5}`, "transcript", "Invalid type"},
		{"tts audio without session", TTSServer, `{"type":"output_audio","audio":"AAA="}`, "session_id", "Missing required"},
		{"tts done without session", TTSServer, `{"type":"done"}`, "session_id", "Missing required"},
		{"token claim unknown", AccessToken, `{"iss":"k","exp":2,"Inference":{"perform":true}}`, "Inference", "Unrecognized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.schema, []byte(tc.body))
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("accepted or untyped: %v", err)
			}
			if we.Param != tc.param || !strings.Contains(we.Message, tc.msg) {
				t.Errorf("param %q message %q; want param %q and %q (all: %q)", we.Param, we.Message, tc.param, tc.msg, we.All)
			}
		})
	}
}

// The 400 body has the OpenAI API's shape.
func TestOpenAIBody(t *testing.T) {
	err := Check(ChatRequest, []byte(`{"model":"m","messages":[{"Role":"user","Content":"hi"}]}`)).(*Error)
	var body struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(err.OpenAIBody()))
	dec.DisallowUnknownFields()
	if e := dec.Decode(&body); e != nil {
		t.Fatal(e)
	}
	if body.Error.Type != "invalid_request_error" || body.Error.Param == nil || *body.Error.Param != "messages[0].role" ||
		body.Error.Message != "Missing required parameter: 'messages[0].role'." || body.Error.Code != nil {
		t.Errorf("body %s", err.OpenAIBody())
	}
}

func TestForm(t *testing.T) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("model", "whisper-1")
	mw.WriteField("response_format", "json")
	fw, _ := mw.CreateFormFile("file", "utterance.wav")
	fw.Write([]byte("RIFF"))
	mw.Close()
	f, err := multipart.NewReader(&buf, mw.Boundary()).ReadForm(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckValue(TranscriptionForm, Form(f)); err != nil {
		t.Fatal(err)
	}
	f.Value["Model"] = f.Value["model"]
	delete(f.Value, "model")
	err = CheckValue(TranscriptionForm, Form(f))
	if we, ok := err.(*Error); !ok || we.Param != "model" {
		t.Fatalf("capitalised form field: %v", err)
	}
}
