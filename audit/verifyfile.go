package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// VerifyFile verifies the trail at path against its head file (when there
// is one) and the checkpoint keys that keys returns (nil: signatures are
// not checked). The offline `proxy audit verify` and the compliance API
// share it, so both judge a trail by the same rules.
func VerifyFile(ctx context.Context, path string, keys func(context.Context) (Keys, error)) (Report, error) {
	var head *Head
	h, err := ReadHead(HeadPath(path))
	switch {
	case err == nil:
		head = &h
	case !errors.Is(err, os.ErrNotExist):
		return Report{}, fmt.Errorf("audit head: %w", err)
	}
	var ks Keys
	if keys != nil {
		if ks, err = keys(ctx); err != nil {
			return Report{}, fmt.Errorf("audit verification keys: %w", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return Report{}, err
	}
	defer f.Close()
	return Verify(f, head, ks)
}
