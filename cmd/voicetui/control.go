package main

import (
	"net/url"

	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/ui"
)

// gatewayControl gives the interface the embedded gateway's control
// endpoint: x adds a credits rule, r a rate burst, 0 resets.
func gatewayControl(ctl *ui.Controller, gw *localgw.Server) {
	base, token := gw.ControlURL(), gw.ControlToken()
	ctl.Quota = func(rule string) error { return localgw.Control(base+"/quota?rule="+url.QueryEscape(rule), token) }
	ctl.Reset = func() error { return localgw.Control(base+"/reset", token) }
}
