package localgw

import (
	"crypto/subtle"
	"net"
	"net/http"
)

// Status is the rules in force and the recent answers (/control/status).
type Status struct {
	Quotas []string `json:"quotas"`
	Faults []string `json:"faults"`
	Recent []Answer `json:"recent"`
}

// Status says what rules are in force and what was answered lately.
func (s *Server) Status() Status {
	q, f := s.policy.Rules()
	if q == nil {
		q = []string{}
	}
	if f == nil {
		f = []string{}
	}
	return Status{Quotas: q, Faults: f, Recent: s.journal.recent()}
}

// ControlHeader carries the control token (Server.ControlToken).
const ControlHeader = "X-Voicetui-Control"

// control serves the run-time rule endpoint:
//
//	GET  /control/status            the active rules and the recent answers
//	POST /control/quota?rule=RULE   add a quota rule (flag syntax)
//	POST /control/fault?rule=RULE   add a fault rule
//	POST /control/reset             remove every rule: quota restored
func (s *Server) control() http.Handler {
	mux := http.NewServeMux()
	status := func(w http.ResponseWriter, code int) { writeJSON(w, code, s.Status()) }
	mux.HandleFunc("GET /control/status", func(w http.ResponseWriter, r *http.Request) { status(w, http.StatusOK) })
	mux.HandleFunc("POST /control/quota", func(w http.ResponseWriter, r *http.Request) {
		rule, err := ParseQuota(r.FormValue("rule"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.policy.AddQuota(rule)
		s.log.Info("quota rule added", "rule", rule.String())
		status(w, http.StatusOK)
	})
	mux.HandleFunc("POST /control/fault", func(w http.ResponseWriter, r *http.Request) {
		rule, err := ParseFault(r.FormValue("rule"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.policy.AddFault(rule)
		s.log.Info("fault rule added", "rule", rule.String())
		status(w, http.StatusOK)
	})
	mux.HandleFunc("POST /control/reset", func(w http.ResponseWriter, r *http.Request) {
		s.policy.Reset()
		s.log.Info("rules reset")
		status(w, http.StatusOK)
	})
	return mux
}

// controlGuard lets through only control requests a web page cannot
// forge: from this machine (even when the gateway listens on every
// interface), carrying the per-process token in a custom header (which a
// browser sends cross-origin only after a CORS preflight, which nothing
// here answers), and without an Origin header (browsers send one; curl
// and voicetui do not).
func (s *Server) controlGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		var why string
		switch ip := net.ParseIP(host); {
		case err != nil || ip == nil || !ip.IsLoopback():
			why = "the control endpoint answers loopback clients only"
		case r.Header.Get("Origin") != "":
			why = "the control endpoint does not answer web pages"
		case subtle.ConstantTimeCompare([]byte(r.Header.Get(ControlHeader)), []byte(s.opts.ControlToken)) != 1:
			why = "the control endpoint needs the header " + ControlHeader + ": <token printed at start>"
		}
		if why != "" {
			s.journal.note(r, "control", http.StatusForbidden, why)
			writeJSON(w, http.StatusForbidden, map[string]string{"error": why})
			return
		}
		next.ServeHTTP(w, r)
	})
}
