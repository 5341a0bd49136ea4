package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/voicetui/voicetui/pipeline/safetext"
	"github.com/voicetui/voicetui/ui"
)

// gatewayControl gives the interface the embedded gateway's control
// endpoint at base: x adds a credits rule, r a rate burst, 0 resets.
func gatewayControl(ctl *ui.Controller, base string) {
	ctl.Quota = func(rule string) error { return control(base + "/quota?rule=" + url.QueryEscape(rule)) }
	ctl.Reset = func() error { return control(base + "/reset") }
}

// control posts to the embedded gateway's control endpoint.
func control(u string) error {
	resp, err := http.Post(u, "", nil)
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
