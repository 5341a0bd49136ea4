package wire

import (
	"encoding/json"
	"errors"
)

// Object is a JSON object read by exact field name. Clients read what a
// server sends through it: encoding/json's struct decoding would take
// "Transcript" for "transcript" and so hide a server (our own embedded
// gateway among them) that sends the wrong name. Unknown fields are
// ignored, as a client should; a field of the wrong type reads as absent.
type Object map[string]json.RawMessage

var errNotObject = errors.New("not a JSON object")

// Decode reads one JSON object.
func Decode(data []byte) (Object, error) {
	var o Object
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, errNotObject
	}
	return o, nil
}

// Has reports whether field k is present and not null.
func (o Object) Has(k string) bool {
	raw, ok := o[k]
	return ok && string(raw) != "null"
}

// String returns field k if it is a string.
func (o Object) String(k string) (string, bool) {
	var s string
	raw, ok := o[k]
	if !ok || json.Unmarshal(raw, &s) != nil || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	return s, true
}

// Number returns field k if it is a number.
func (o Object) Number(k string) (float64, bool) {
	var f float64
	if !o.Has(k) || json.Unmarshal(o[k], &f) != nil {
		return 0, false
	}
	return f, true
}

// Object returns field k if it is an object.
func (o Object) Object(k string) (Object, bool) {
	raw, ok := o[k]
	if !ok {
		return nil, false
	}
	sub, err := Decode(raw)
	return sub, err == nil
}

// Objects returns the objects in array field k; other elements are
// skipped.
func (o Object) Objects(k string) []Object {
	var items []json.RawMessage
	raw, ok := o[k]
	if !ok || json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]Object, 0, len(items))
	for _, it := range items {
		if sub, err := Decode(it); err == nil {
			out = append(out, sub)
		}
	}
	return out
}
