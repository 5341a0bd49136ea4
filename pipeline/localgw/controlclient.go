package localgw

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/voicetui/voicetui/pipeline/safetext"
)

// controlClient bounds a control request: a gateway that does not answer
// is an error, not a wait without end.
var controlClient = &http.Client{Timeout: 10 * time.Second}

// Control posts to a gateway's control endpoint: u is the endpoint's URL
// with its path (".../control/quota?rule=llm:credits"), token the one it
// requires. Its refusal comes back as an error in words.
func Control(u, token string) error {
	req, err := http.NewRequest(http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set(ControlHeader, token)
	resp, err := controlClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
	body := safetext.Sanitize(string(b), 200)
	if resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s: the control endpoint answers loopback clients with its token only (from another machine, go through an SSH tunnel): %s", resp.Status, body)
	}
	return fmt.Errorf("%s: %s", resp.Status, body)
}
