package localgw

import (
	"net"
	"net/http"
)

// control serves the run-time rule endpoint:
//
//	GET  /control/status            the active rules
//	POST /control/quota?rule=RULE   add a quota rule (flag syntax)
//	POST /control/fault?rule=RULE   add a fault rule
//	POST /control/reset             remove every rule: quota restored
func (s *Server) control() http.Handler {
	mux := http.NewServeMux()
	status := func(w http.ResponseWriter, code int) {
		q, f := s.policy.Rules()
		writeJSON(w, code, map[string]any{"quotas": q, "faults": f})
	}
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

// loopbackOnly refuses the control endpoint to other machines, even when
// the gateway listens on every interface.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "the control endpoint answers loopback clients only"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
