package gateway

import (
	"strings"
	"testing"
)

// Tokens never go over plain http to another machine unless allowed.
func TestConfigRefusesPlainHTTPToAnotherMachine(t *testing.T) {
	c := Config{URL: "http://10.0.0.5:7890/v1", APIKey: "key", APISecret: "a-long-enough-secret", TTSRate: DefaultTTSRate}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--allow-insecure-http") {
		t.Fatalf("plain http to 10.0.0.5: %v", err)
	}
	for _, s := range []func(*Config){
		func(c *Config) { c.AllowInsecureHTTP = true },
		func(c *Config) { c.AllowInsecureHTTP, c.URL = false, "http://127.0.0.1:7890/v1" },
		func(c *Config) { c.URL = "https://10.0.0.5/v1" },
	} {
		s(&c)
		if err := c.Validate(); err != nil {
			t.Fatalf("%s (allow %v): %v", c.URL, c.AllowInsecureHTTP, err)
		}
	}
}
