//go:build cgo && linux

package sphinx

import (
	"errors"
	"strings"
	"testing"
)

// A missing library is ErrUnavailable with the reason and what to install.
func TestOpenMissingLibrary(t *testing.T) {
	api, err := open("libpocketsphinx-voicetui-missing.so.3")
	if api != nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("open: %v, %v; want nil, ErrUnavailable", api, err)
	}
	for _, want := range []string{"libpocketsphinx-voicetui-missing.so.3", installHint} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not contain %q", err, want)
		}
	}
}

// A library without the 5prealpha entry points (here libc) is refused.
func TestOpenWrongLibrary(t *testing.T) {
	_, err := open("libc.so.6")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no symbol ps_args") {
		t.Errorf("open(libc.so.6): %v; want ErrUnavailable naming the missing symbol", err)
	}
}
