package ui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key of the interface, with its help text.
//
// Commands have two keys: a letter, for when the prompt is closed, and a
// control or function key that works everywhere. While the prompt is
// open every printable key is text (a second question typed after the
// first must never mute, exhaust or quit), so the prompt needs keys no
// one types: control keys the text input does not use itself (it takes
// ctrl+a/b/d/e/f/h/k/n/p/u/v/w), and F1 for help. ctrl+s and ctrl+q are
// avoided (some terminals keep them for flow control), as is ctrl+j (a
// newline).
type keyMap struct {
	Mute, Text, Replay, Help, Quit key.Binding
	Exhaust, RateBurst, Restore    key.Binding // embedded gateway only
	Send, Close                    key.Binding // the prompt

	// The same commands while the prompt is open: the letters removed.
	typing keyMapTyping
	// overlay is what the help overlay lists.
	overlay []key.Binding
}

type keyMapTyping struct {
	Mute, Replay, Help, Quit    key.Binding
	Exhaust, RateBurst, Restore key.Binding
	Send, Close                 key.Binding
}

func newKeys(embedded, textMode bool) keyMap {
	k := keyMap{
		Mute:      key.NewBinding(key.WithKeys("m", "ctrl+o"), key.WithHelp("m", "mute")),
		Text:      key.NewBinding(key.WithKeys("ctrl+t", "enter"), key.WithHelp("ctrl+t", "type")),
		Replay:    key.NewBinding(key.WithKeys("f", "ctrl+r"), key.WithHelp("f", "replay clip")),
		Help:      key.NewBinding(key.WithKeys("?", "f1"), key.WithHelp("?", "help")),
		Quit:      key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		Exhaust:   key.NewBinding(key.WithKeys("x", "ctrl+x"), key.WithHelp("x", "exhaust credits")),
		RateBurst: key.NewBinding(key.WithKeys("r", "ctrl+l"), key.WithHelp("r", "rate-limit burst")),
		Restore:   key.NewBinding(key.WithKeys("0", "ctrl+z"), key.WithHelp("0", "restore quota")),
		Send:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
		Close:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "close")),
	}
	k.typing = keyMapTyping{
		Mute:      key.NewBinding(key.WithKeys("ctrl+o"), key.WithHelp("ctrl+o", "mute")),
		Replay:    key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "replay")),
		Help:      key.NewBinding(key.WithKeys("f1"), key.WithHelp("F1", "help")),
		Quit:      key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Exhaust:   key.NewBinding(key.WithKeys("ctrl+x"), key.WithHelp("ctrl+x", "exhaust")),
		RateBurst: key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "rate burst")),
		Restore:   key.NewBinding(key.WithKeys("ctrl+z"), key.WithHelp("ctrl+z", "restore")),
		Send:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
		Close:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "close")),
	}
	// The overlay: both keys of each command, said in full.
	k.overlay = []key.Binding{
		key.NewBinding(key.WithKeys("m"), key.WithHelp("m  ctrl+o", "mute/unmute the microphone")),
		key.NewBinding(key.WithKeys("ctrl+t"), key.WithHelp("ctrl+t  enter", "open the prompt to type a message")),
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send it (the prompt stays open for the next)")),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "close the prompt (what you typed is kept)")),
		key.NewBinding(key.WithKeys("f"), key.WithHelp("f  ctrl+r", "replay the fallback clip")),
		key.NewBinding(key.WithKeys("?"), key.WithHelp("?  F1", "this help (any key closes it)")),
		key.NewBinding(key.WithKeys("q"), key.WithHelp("q  ctrl+c", "quit")),
		key.NewBinding(key.WithKeys("x"), key.WithHelp("x  ctrl+x", "exhaust credits: llm, stt, tts in turn")),
		key.NewBinding(key.WithKeys("r"), key.WithHelp("r  ctrl+l", "rate-limit burst on the next 2 LLM requests")),
		key.NewBinding(key.WithKeys("0"), key.WithHelp("0  ctrl+z", "restore quota")),
		key.NewBinding(key.WithKeys("?"), key.WithHelp("", "while typing, letters are text: use the ctrl keys")),
	}
	if !embedded {
		for _, b := range []*key.Binding{&k.Exhaust, &k.RateBurst, &k.Restore, &k.typing.Exhaust, &k.typing.RateBurst,
			&k.typing.Restore, &k.overlay[7], &k.overlay[8], &k.overlay[9]} {
			b.SetEnabled(false)
		}
	}
	if textMode { // no microphone to mute, and the prompt never closes
		for _, b := range []*key.Binding{&k.Mute, &k.Close, &k.typing.Mute, &k.typing.Close, &k.overlay[0], &k.overlay[3]} {
			b.SetEnabled(false)
		}
	}
	return k
}

// ShortHelp is the footer: help and quit first, so narrow terminals keep them.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Help, k.Quit, k.Mute, k.Text, k.Replay, k.Exhaust, k.RateBurst, k.Restore}
}

// FullHelp is the help overlay, one key per row.
func (k keyMap) FullHelp() [][]key.Binding { return [][]key.Binding{k.overlay} }

// ShortHelp while typing: how to send and close, then the commands that
// still work, the gateway's last.
func (k keyMapTyping) ShortHelp() []key.Binding {
	return []key.Binding{k.Send, k.Close, k.Help, k.Quit, k.Mute, k.Replay, k.Exhaust, k.RateBurst, k.Restore}
}

// FullHelp is not used: the overlay shows keyMap's.
func (k keyMapTyping) FullHelp() [][]key.Binding { return [][]key.Binding{k.ShortHelp()} }
