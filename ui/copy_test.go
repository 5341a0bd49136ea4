package ui

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/voicetui/voicetui/pipeline/conversation"
)

// Bubble Tea copies the model on every Update: these tests hold the
// interface to what survives copying, at the class and not at one line.

// at runs f deeper in the stack by depth frames, each with a frame of its
// own size, so that the model copies Update makes land at other
// addresses, as they do in a real program whose stack moved.
func at(depth int, f func()) {
	var pad [64]byte
	pad[depth%64] = byte(depth)
	if depth <= 0 || pad[0] == 255 {
		f()
		return
	}
	at(depth-1, f)
}

// updateAt is m.Update(msg) run depth frames down; a panic is returned as
// an error.
func updateAt(depth int, m Model, msg tea.Msg) (next Model, cmd tea.Cmd, err error) {
	at(depth, func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("Update(%T) at depth %d panicked: %v", msg, depth, r)
			}
		}()
		var tm tea.Model
		tm, cmd = m.Update(msg)
		next = tm.(Model)
	})
	return next, cmd, err
}

// A reply streamed in pieces, each piece delivered from another depth:
// the model held a strings.Builder, which panics when written through a
// copy at another address ("illegal use of non-zero Builder copied by
// value"), so a reply of two sentences could kill the program.
func TestStreamedReplyFromAnyStackDepth(t *testing.T) {
	m := model().resize(80, 24)
	pieces := []string{"Once upon a time there was a dragon.", "It slept for a hundred years.", "Then it woke up."}
	msgs := []tea.Msg{EventMsg{Payload: conversation.State{Agent: "thinking"}}}
	for _, p := range pieces {
		msgs = append(msgs, EventMsg{Payload: conversation.AgentText{Text: p}})
	}
	msgs = append(msgs, EventMsg{Payload: conversation.AgentText{Text: strings.Join(pieces, " "), Final: true}})
	for i, msg := range msgs {
		var err error
		if m, _, err = updateAt(3+i*7, m, msg); err != nil {
			t.Fatal(err)
		}
		if i == len(pieces) && !shows(m.View(), "agent: Once upon a time there was a dragon. It slept for a hundred years. Then it woke up.…") {
			t.Fatalf("the streamed reply is not shown:\n%s", m.View())
		}
	}
	if v := m.View(); !shows(v, "agent: Once upon a time there was a dragon. It slept for a hundred years. Then it woke up.") ||
		shows(v, "woke up.…") {
		t.Fatalf("the final reply is not shown whole:\n%s", v)
	}
}

// shows reports whether a frame shows text, however it is wrapped: both
// are compared without styles, borders and white space.
func shows(frame, text string) bool {
	return strings.Contains(squeeze(ansi.Strip(frame)), squeeze(text))
}

func squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '│' {
			return -1
		}
		return r
	}, s)
}

// No model of the interface holds, by value, a type that must not be
// copied: strings.Builder and bytes.Buffer (they keep a pointer to
// themselves or to their own array), anything from sync or sync/atomic,
// or anything with a Lock method. Pointers, maps, slices, funcs and
// interfaces are not walked: what they point to is shared by every copy,
// which is what they are for.
func TestModelsSurviveCopying(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[Model](), reflect.TypeFor[statusPane](), reflect.TypeFor[transcriptPane]()} {
		if path, ok := uncopyable(typ, typ.Name(), map[reflect.Type]bool{}); ok {
			t.Errorf("%s holds a value that breaks when copied: %s", typ, path)
		}
	}
}

func uncopyable(t reflect.Type, path string, seen map[reflect.Type]bool) (string, bool) {
	if seen[t] {
		return "", false
	}
	seen[t] = true
	switch {
	case t == reflect.TypeFor[strings.Builder](), t == reflect.TypeFor[bytes.Buffer](),
		t.PkgPath() == "sync", t.PkgPath() == "sync/atomic":
		return path + " (" + t.String() + ")", true
	}
	if _, ok := reflect.PointerTo(t).MethodByName("Lock"); ok && t.Kind() == reflect.Struct {
		return path + " (" + t.String() + " has a Lock method)", true
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if p, ok := uncopyable(f.Type, path+"."+f.Name, seen); ok {
				return p, true
			}
		}
	case reflect.Array:
		return uncopyable(t.Elem(), path+"[]", seen)
	}
	return "", false
}
