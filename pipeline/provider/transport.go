package provider

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// AllowInsecureHTTPFlag is the flag that lets a credential travel over
// plain http to another machine.
const AllowInsecureHTTPFlag = "--allow-insecure-http"

// CheckCredentialTransport refuses to send a credential over plain http
// to a host that is not this machine, unless allow: anyone on the path
// could read it. Loopback (localhost, 127.0.0.0/8, ::1) is fine: local
// servers (Ollama, the embedded gateway) rarely speak https.
func CheckCredentialTransport(what string, u *url.URL, allow bool) error {
	if allow || !strings.EqualFold(u.Scheme, "http") || Loopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%s: %s is plain http to %s, which would send your credentials unencrypted over the network: use https, or pass %s if the network is yours and trusted",
		what, SafeURL(u.String()), u.Hostname(), AllowInsecureHTTPFlag)
}

// Loopback reports whether host names this machine.
func Loopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
