package sockmux_test

import (
	"fmt"
	"io"
	"log"
	"net"

	"github.com/sockmux/sockmux"
	"github.com/sockmux/sockmux/carriers"
)

// What `sockmux listen` and `sockmux connect -L` do, in one program: a hub
// Peer accepts links, an edge Peer dials it with a -L forward, and a
// connection to the edge's forward reaches a server the hub dials. Both
// sides hold the same pre-shared key, so the link is encrypted.
func ExamplePeer() {
	// The server the forward reaches: it says hello.
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello through the tunnel")
			c.Close()
		}
	}()

	key := []byte("an example key of 32 bytes, .....")
	hub, err := sockmux.NewPeer(&sockmux.PeerConfig{Key: key})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	ln, err := carriers.Listen("127.0.0.1:0") // or tls://, ws://, quic://...
	if err != nil {
		log.Fatal(err)
	}
	hub.Serve(ln)

	// -L 127.0.0.1:0:SERVER (port 0: ForwardAddrs says which it got)
	fwd, err := sockmux.ParseLocal("0:"+srv.Addr().String(), "127.0.0.1")
	if err != nil {
		log.Fatal(err)
	}
	edge, err := sockmux.NewPeer(&sockmux.PeerConfig{Key: key, Forwards: []sockmux.Forward{fwd}})
	if err != nil {
		log.Fatal(err)
	}
	defer edge.Close()
	d, err := carriers.NewDialer(ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	edge.Connect(d) // redialled with backoff whenever it drops

	c, err := net.Dial("tcp", edge.ForwardAddrs()[0].String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	answer, err := io.ReadAll(c) // waits for the link, then for the server
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(answer))
	// Output: hello through the tunnel
}
