package ui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key of the interface, with its help text.
type keyMap struct {
	Mute, Text, Replay, Help, Quit key.Binding
	Exhaust, RateBurst, Restore    key.Binding // embedded gateway only
	Send, Cancel                   key.Binding // text mode
}

func newKeys(embedded bool) keyMap {
	k := keyMap{
		Mute:   key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "mute/unmute mic")),
		Text:   key.NewBinding(key.WithKeys("ctrl+t"), key.WithHelp("ctrl+t", "type a message")),
		Replay: key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "replay fallback clip")),
		Help:   key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:   key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		Exhaust: key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "exhaust credits: llm, stt, tts in turn"),
			key.WithDisabled()),
		RateBurst: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "rate-limit burst"), key.WithDisabled()),
		Restore:   key.NewBinding(key.WithKeys("0"), key.WithHelp("0", "restore quota"), key.WithDisabled()),
		Send:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send the typed message")),
		Cancel:    key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "leave text mode (ctrl+c quits)")),
	}
	if embedded {
		k.Exhaust.SetEnabled(true)
		k.RateBurst.SetEnabled(true)
		k.Restore.SetEnabled(true)
	}
	return k
}

// ShortHelp is the footer: help and quit first, so narrow terminals keep them.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Help, k.Quit, k.Mute, k.Text, k.Replay}
}

// FullHelp is the help overlay, one key per row.
func (k keyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.Mute, k.Text, k.Send, k.Cancel, k.Replay, k.Help, k.Quit, k.Exhaust, k.RateBurst, k.Restore}}
}
