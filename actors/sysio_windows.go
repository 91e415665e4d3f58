package actors

import "errors"

// rawIO: a Windows socket is no descriptor that read(2) takes, so the data
// path's system calls are never made here: rawConn gives every connection
// the portable path (a goroutine in conn.Read, conn.Write), and the calls
// below are unreachable.
const rawIO = false

var errNoRawIO = errors.New("actors: raw socket I/O is not available on windows")

func sysRead(int, []byte) (int, error)    { return 0, errNoRawIO }
func sysWrite(int, []byte) (int, error)   { return 0, errNoRawIO }
func sysReadv(int, [][]byte) (int, error) { return 0, errNoRawIO }
func sysWritev(int, [][]byte) (int, error) {
	return 0, errNoRawIO
}
func sysPeek(int) error { return errNoRawIO }
