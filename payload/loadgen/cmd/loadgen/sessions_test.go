package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/fail"
)

// loadgen sessions refuses bad usage with exit 2 and one line; -h prints
// its help.
func TestSessionsCLIErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "want one URL"},
		{[]string{"ftp://h/"}, "want one URL"},
		{[]string{"--users", "0", "http://127.0.0.1:1"}, "--users: want 1 to 1000000"},
		{[]string{"--gets", "-1", "http://127.0.0.1:1"}, "--gets: want 0 to 1000"},
		{[]string{"-c", "0", "http://127.0.0.1:1"}, "-c: want 1 to 10000"},
		{[]string{"--churn", "-3", "http://127.0.0.1:1"}, "--churn 0 to 10000"},
		{[]string{"--bogus", "http://127.0.0.1:1"}, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"sessions"}, tc.args...), &out, &errb)
		if code != fail.ExitUsage || !strings.Contains(errb.String(), tc.want) || strings.Count(errb.String(), "error:") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), fail.ExitUsage, tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"sessions", "-h"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "usage: loadgen sessions") {
		t.Errorf("-h: exit %d, stdout %q", code, out.String())
	}
}
