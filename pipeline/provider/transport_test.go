package provider

import (
	"net/url"
	"strings"
	"testing"
)

func TestCredentialsStayOffPlainHTTPToOtherMachines(t *testing.T) {
	for raw, refused := range map[string]bool{
		"https://agent-gateway.livekit.cloud/v1": false,
		"http://localhost:11434/v1":              false,
		"http://LOCALHOST./v1":                   false,
		"http://gw.localhost:8080/v1":            false,
		"http://127.0.0.1:7890/v1":               false,
		"http://127.8.9.10/v1":                   false,
		"http://[::1]:7890/v1":                   false,
		"http://192.168.1.20:11434/v1":           true,
		"http://gpu-box.lan/v1":                  true,
		"HTTP://example.com/v1":                  true,
		"http://user:hunter2@10.0.0.5/v1":        true,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckCredentialTransport("openai", u, false)
		if (err != nil) != refused {
			t.Errorf("%s: %v", raw, err)
		}
		if err != nil && (!strings.Contains(err.Error(), AllowInsecureHTTPFlag) || strings.Contains(err.Error(), "hunter2")) {
			t.Errorf("%s: the error must name the flag and hide the password: %v", raw, err)
		}
		if err := CheckCredentialTransport("openai", u, true); err != nil {
			t.Errorf("%s allowed: %v", raw, err)
		}
	}
}
