package sphinx

import (
	"strings"
	"testing"
)

func TestLibError(t *testing.T) {
	for _, c := range []struct {
		first, last string
		fatal       bool
		want        Error
		text        string
	}{
		{
			`ERROR: "acmod.c", line 78: Folder '/tmp' does not contain acoustic model definition 'mdef'`,
			`ERROR: "acmod.c", line 78: Folder '/tmp' does not contain acoustic model definition 'mdef'`, false,
			Error{Op: "new", Message: "Folder '/tmp' does not contain acoustic model definition 'mdef'", Source: "acmod.c:78"},
			`sphinx: new: Folder '/tmp' does not contain acoustic model definition 'mdef' (acmod.c:78)`,
		},
		{
			`ERROR: "ptm_mgau.c", line 818: Number of streams does not match: 3 != 1`,
			`ERROR: "acmod.c", line 120: Failed to read acoustic model`, false,
			Error{Op: "new", Message: "Failed to read acoustic model", Source: "acmod.c:120", First: "Number of streams does not match: 3 != 1 (ptm_mgau.c:818)"},
			`sphinx: new: Failed to read acoustic model (acmod.c:120); first error: Number of streams does not match: 3 != 1 (ptm_mgau.c:818)`,
		},
		{
			`FATAL: "mdef.c", line 537: Version error: Expecing 0.3, but read`,
			`FATAL: "mdef.c", line 537: Version error: Expecing 0.3, but read`, true,
			Error{Op: "new", Message: "Version error: Expecing 0.3, but read", Source: "mdef.c:537", Fatal: true},
			`sphinx: new: Version error: Expecing 0.3, but read (mdef.c:537)`,
		},
		{
			"", "", false,
			Error{Op: "new", Message: "failed (the library logged no error)"},
			`sphinx: new: failed (the library logged no error)`,
		},
		{
			"odd line", "odd line", false,
			Error{Op: "new", Message: "odd line"},
			`sphinx: new: odd line`,
		},
	} {
		got := libError("new", c.first, c.last, c.fatal)
		if *got != c.want || got.Error() != c.text {
			t.Errorf("libError(%q, %q):\n got %#v\n     %s\nwant %#v\n     %s", c.first, c.last, *got, got, c.want, c.text)
		}
	}
}

func TestInstallHint(t *testing.T) {
	if !strings.Contains(installHint, "libpocketsphinx3") || !strings.Contains(installHint, "pocketsphinx-en-us") {
		t.Errorf("installHint %q does not name both packages", installHint)
	}
}
