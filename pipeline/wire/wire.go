// Package wire holds the documented shapes of every request voicetui's
// clients send and its embedded gateway accepts (and of the messages that
// gateway sends back, as the reference client reads them), as JSON Schemas
// (schemas/*.json), and checks bytes against them strictly: field names
// are case-sensitive and unknown fields are refused, as the OpenAI API and
// a validating gateway refuse them.
//
// Go's encoding/json matches field names case-insensitively, so a server
// that only decodes into structs accepts {"Role": ...} and hides a client
// that sends it. The embedded gateway checks every request here first;
// the clients' conformance tests check the bytes they put on the wire.
//
// JSON Schema and its validator (santhosh-tekuri/jsonschema) are used
// rather than hand-written checks: the schemas read as the documentation
// they come from, and their errors name the offending field.
package wire

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Schema names one documented request shape.
type Schema string

const (
	// ChatRequest is POST /chat/completions (OpenAI; LiveKit Inference LLM).
	ChatRequest Schema = "openai_chat_request.json"
	// SpeechRequest is POST /audio/speech (OpenAI).
	SpeechRequest Schema = "openai_speech_request.json"
	// TranscriptionForm is the multipart form of POST /audio/transcriptions
	// (OpenAI), as Form returns it.
	TranscriptionForm Schema = "openai_transcription_form.json"
	// STTClient is any message a client sends on LiveKit Inference's /stt.
	STTClient Schema = "livekit_stt_client.json"
	// TTSClient is any message a client sends on LiveKit Inference's /tts.
	TTSClient Schema = "livekit_tts_client.json"
	// AccessToken is the payload of a LiveKit access token.
	AccessToken Schema = "livekit_access_token.json"
	// STTServer and TTSServer are what a gateway sends on /stt and /tts,
	// as the reference client (agents-js) reads them.
	STTServer Schema = "livekit_stt_server.json"
	TTSServer Schema = "livekit_tts_server.json"
)

//go:embed schemas/*.json
var schemaFiles embed.FS

// compiled holds every schema, compiled once; it never changes after.
var compiled = sync.OnceValues(func() (map[Schema]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertContent() // contentEncoding: base64 is checked, not only noted
	entries, err := schemaFiles.ReadDir("schemas")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		data, err := schemaFiles.ReadFile("schemas/" + e.Name())
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("wire: schema %s: %w", e.Name(), err)
		}
		if err := c.AddResource(e.Name(), doc); err != nil {
			return nil, fmt.Errorf("wire: schema %s: %w", e.Name(), err)
		}
	}
	out := map[Schema]*jsonschema.Schema{}
	for _, e := range entries {
		s, err := c.Compile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("wire: schema %s: %w", e.Name(), err)
		}
		out[Schema(e.Name())] = s
	}
	return out, nil
})

// Error says why a request does not match its schema, in the words the
// OpenAI API uses for the same mistake.
type Error struct {
	Schema  Schema
	Param   string // the offending field, e.g. "messages[0].role"; "" for the whole body
	Message string // the first problem, as one sentence
	All     []string
}

func (e *Error) Error() string { return "wire: " + string(e.Schema) + ": " + e.Message }

// OpenAIBody is the 400 body the OpenAI API answers a bad request with.
func (e *Error) OpenAIBody() []byte {
	type detail struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	d := detail{Message: e.Message, Type: "invalid_request_error"}
	if e.Param != "" {
		d.Param = &e.Param
	}
	b, _ := json.Marshal(struct {
		Error detail `json:"error"`
	}{d})
	return b
}

// Check validates data, one JSON text, against s. It returns nil or an
// *Error.
func Check(s Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &Error{Schema: s, Message: "We could not parse the JSON body of your request: " + err.Error() + ".",
			All: []string{err.Error()}}
	}
	return CheckValue(s, doc)
}

// CheckValue validates an already decoded value (as jsonschema.UnmarshalJSON
// or Form returns it).
func CheckValue(s Schema, doc any) error {
	schemas, err := compiled()
	if err != nil {
		return err // a broken embedded schema: a bug caught by this package's tests
	}
	sch, ok := schemas[s]
	if !ok {
		return fmt.Errorf("wire: no schema %q", s)
	}
	verr := sch.Validate(doc)
	if verr == nil {
		return nil
	}
	ve, ok := verr.(*jsonschema.ValidationError)
	if !ok {
		return &Error{Schema: s, Message: verr.Error(), All: []string{verr.Error()}}
	}
	return explain(s, ve)
}

// Form turns a parsed multipart form into the object TranscriptionForm
// describes: each field name maps to its values; a file field's values
// are its file names.
func Form(f *multipart.Form) map[string]any {
	out := map[string]any{}
	for k, vs := range f.Value {
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		out[k] = list
	}
	for k, fhs := range f.File {
		list, _ := out[k].([]any)
		for _, fh := range fhs {
			list = append(list, fh.Filename)
		}
		out[k] = list
	}
	return out
}

// explain turns a validation error into one OpenAI-style sentence about its
// most telling problem: a missing field first, then an unknown one, then
// any other.
func explain(s Schema, ve *jsonschema.ValidationError) *Error {
	var leaves []*jsonschema.ValidationError
	collect(ve, &leaves)
	rank := func(l *jsonschema.ValidationError) int {
		switch l.ErrorKind.(type) {
		case *kind.Required:
			return 0
		case *kind.AdditionalProperties:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(leaves, func(a, b *jsonschema.ValidationError) int { return rank(a) - rank(b) })
	e := &Error{Schema: s}
	for i, l := range leaves {
		param, msg := sentence(l)
		if i == 0 {
			e.Param, e.Message = param, msg
		}
		e.All = append(e.All, msg)
	}
	if e.Message == "" {
		e.Message = ve.Error()
	}
	return e
}

// collect gathers the errors that say something: the leaves, and a oneOf
// or anyOf none of whose branches matched at the same place (its
// branches' type errors together say what was wanted).
func collect(e *jsonschema.ValidationError, out *[]*jsonschema.ValidationError) {
	switch e.ErrorKind.(type) {
	case *kind.OneOf, *kind.AnyOf:
		same := true
		for _, c := range e.Causes {
			same = same && slices.Equal(c.InstanceLocation, e.InstanceLocation) && len(c.Causes) == 0
		}
		if same {
			*out = append(*out, e)
			return
		}
	}
	if len(e.Causes) == 0 {
		*out = append(*out, e)
		return
	}
	for _, c := range e.Causes {
		collect(c, out)
	}
}

var printer = message.NewPrinter(language.English)

func sentence(l *jsonschema.ValidationError) (param, msg string) {
	param = paramName(l.InstanceLocation)
	switch k := l.ErrorKind.(type) {
	case *kind.Required:
		p := paramName(append(slices.Clone(l.InstanceLocation), k.Missing[0]))
		return p, fmt.Sprintf("Missing required parameter: '%s'.", p)
	case *kind.AdditionalProperties:
		p := paramName(append(slices.Clone(l.InstanceLocation), k.Properties[0]))
		return p, fmt.Sprintf("Unrecognized request argument supplied: '%s'.", p)
	case *kind.Type:
		return param, fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, strings.Join(k.Want, " or "), k.Got)
	case *kind.OneOf, *kind.AnyOf:
		var want []string
		for _, c := range l.Causes {
			if t, ok := c.ErrorKind.(*kind.Type); ok {
				want = append(want, t.Want...)
			}
		}
		if len(want) > 0 {
			return param, fmt.Sprintf("Invalid type for '%s': expected %s.", param, strings.Join(want, " or "))
		}
	case *kind.Enum:
		return param, fmt.Sprintf("Invalid value for '%s': %s. Supported values are: %s.", param, quote(k.Got), quoteAll(k.Want))
	case *kind.Const:
		return param, fmt.Sprintf("Invalid value for '%s': %s. Expected %s.", param, quote(k.Got), quote(k.Want))
	}
	return param, fmt.Sprintf("Invalid value for '%s': %s.", param, l.ErrorKind.LocalizedString(printer))
}

// paramName writes a location as OpenAI does: messages[0].content.
func paramName(loc []string) string {
	var b strings.Builder
	for _, p := range loc {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func quote(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if r := []rune(string(b)); len(r) > 80 {
		return string(r[:77]) + "..."
	}
	return string(b)
}

func quoteAll(vs []any) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = quote(v)
	}
	return strings.Join(out, ", ")
}
