package engine

import (
	"errors"
	"testing"
)

// TestCodeErr: every code but normal stands for an error of its own.
func TestCodeErr(t *testing.T) {
	seen := map[error]Code{}
	for c := range codeNames {
		err := c.Err()
		if c == CodeNormal {
			if err != nil {
				t.Errorf("normal stands for %v", err)
			}
			continue
		}
		if err == nil {
			t.Errorf("code %v stands for no error", c)
			continue
		}
		if other, dup := seen[err]; dup {
			t.Errorf("codes %v and %v stand for the same error %v", c, other, err)
		}
		seen[err] = c
	}
	if !errors.Is(CodeAuth.Err(), ErrAuth) || Code(999).Err() != nil {
		t.Error("CodeAuth or an unknown code maps wrong")
	}
}
