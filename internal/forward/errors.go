package forward

import "errors"

// ErrBadForward is a forward specification that does not parse.
var ErrBadForward = errors.New("bad forward spec")
