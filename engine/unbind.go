package engine

import (
	"encoding/binary"
	"fmt"
)

// UNBIND takes back a BIND: the peer stops listening for that reverse
// forward (a reload removed it) and refuses nothing else. Only a peer that
// offered CapUnbind gets one; to any other, a removed -R stays bound until
// the link ends, and its connections are refused by the side that asked.
//
//	UNBIND payload: id u32   (the BIND's id)
//
// Streams the bind already opened are not touched; nothing answers it.
const (
	// CapUnbind is the capability bit of a peer that understands UNBIND.
	CapUnbind uint32 = 1 << 2
	// unbindLen is the size of an UNBIND payload.
	unbindLen = 4
)

// AppendUnbind appends an UNBIND payload for the BIND with this id.
func AppendUnbind(dst []byte, id uint32) []byte { return binary.BigEndian.AppendUint32(dst, id) }

// ParseUnbind decodes an UNBIND payload.
func ParseUnbind(p []byte) (uint32, error) {
	if len(p) != unbindLen {
		return 0, fmt.Errorf("%w: UNBIND of %d bytes", ErrMalformed, len(p))
	}
	return binary.BigEndian.Uint32(p), nil
}

// NewUnbind builds an UNBIND frame.
func NewUnbind(id uint32) *Frame { return newFrame(TypeUnbind, 0, AppendUnbind(nil, id)) }
