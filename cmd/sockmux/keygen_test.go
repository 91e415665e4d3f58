package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"sockmux/engine"
)

// TestKeygenPSK: keygen --psk prints a different 32-byte key, base64,
// each time, which --key-file accepts; keygen without --psk is a usage
// error that names --psk.
func TestKeygenPSK(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		var out, errs bytes.Buffer
		if code := run(t.Context(), []string{"keygen", "--psk"}, &out, &errs); code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
		k := strings.TrimSpace(out.String())
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != 32 {
			t.Fatalf("key %q: %d bytes, %v", k, len(raw), err)
		}
		if err := engine.CheckKey([]byte(k)); err != nil {
			t.Fatal(err)
		}
		if seen[k] {
			t.Fatalf("the same key twice: %s", k)
		}
		seen[k] = true
		o := &options{keyFile: keyFile(t, k)}
		if got, err := o.key(); err != nil || string(got) != k {
			t.Fatalf("--key-file with the new key: %q, %v", got, err)
		}
	}
	var out, errs bytes.Buffer
	if code := run(t.Context(), []string{"keygen"}, &out, &errs); code == 0 || !strings.Contains(errs.String(), "--psk") {
		t.Fatalf("keygen with no --psk: exit %d, %q", code, errs.String())
	}
}
