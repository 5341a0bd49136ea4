package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/safetext"
	"github.com/voicetui/voicetui/ui"
)

// gatewayControl gives the interface the embedded gateway's control
// endpoint: x adds a credits rule, r a rate burst, 0 resets.
func gatewayControl(ctl *ui.Controller, gw *localgw.Server) {
	base, token := gw.ControlURL(), gw.ControlToken()
	ctl.Quota = func(rule string) error { return control(base+"/quota?rule="+url.QueryEscape(rule), token) }
	ctl.Reset = func() error { return control(base+"/reset", token) }
}

// control posts to the embedded gateway's control endpoint.
func control(u, token string) error {
	req, err := http.NewRequest(http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set(localgw.ControlHeader, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("%s: %s", resp.Status, safetext.Sanitize(string(b), 200))
	}
	return nil
}
