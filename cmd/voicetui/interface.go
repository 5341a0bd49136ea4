package main

import (
	"context"
	"io"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/ui"
)

// interfaceFPS is how often the interface may redraw. Bubble Tea checks
// for a changed view on a ticker at this rate whether or not anything
// changed (60 by default); the meters change at most 20 times a second.
const interfaceFPS = 20

// runInterface shows conv in the terminal interface until the user quits
// (q, ctrl+c: raw mode makes it a key) or ctx ends (a signal), then ends
// the conversation and waits for its replays. It returns the interface's
// failure, else the conversation's closing error. ctl's conversation
// controls are filled from conv; lv, when set, feeds the meters. A crash
// of the interface closes the conversation as a quit does; its report
// goes to crashDir (--record's directory, or "" for the temporary one).
func runInterface(ctx context.Context, conv conversation.Conversation, info ui.Info, ctl ui.Controller,
	stdout io.Writer, out *eventOutputs, lv *levels, crashDir string, notes ...conversation.Error) error {
	ctl.SetMuted, ctl.Say, ctl.Replay = conv.SetMuted, conv.Say, conv.ReplayFallback
	model := guard(injectCrash(ui.New(info, ctl, nil)))
	prog := tea.NewProgram(model, tea.WithAltScreen(), tea.WithOutput(stdout), tea.WithoutSignalHandler(), tea.WithFPS(interfaceFPS))
	out.attach(prog)
	if lv != nil {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			lv.pump(stop, func(m ui.LevelMsg) { prog.Send(m) })
		}()
		defer func() { close(stop); <-done }()
	}
	for _, n := range notes { // shown once the program runs (Send waits for it)
		go out.events.Emit(n)
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	closed := make(chan error, 1)
	go func() {
		err := conv.Run(cctx)
		prog.Send(ui.ClosedMsg{Err: err})
		closed <- err
	}()
	go func() {
		select {
		case <-ctx.Done():
			prog.Quit()
		case <-cctx.Done():
		}
	}()
	_, perr := prog.Run()
	quitAsked.Store(true) // the interface is gone: the next Ctrl+C (a signal now) forces the exit
	stop()
	err := <-closed
	conv.Wait()
	model.frames.log(out.log)
	if model.crash.crashed() != nil {
		return model.crash.report(crashDir)
	}
	if perr != nil {
		return perr
	}
	return err
}
