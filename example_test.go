package sockmux_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strings"

	"github.com/sockmux/sockmux"
)

// A client and a server over a net.Pipe: the client opens a stream named
// "greeter", the server answers on it.
func ExampleClient() {
	clientConn, serverConn := net.Pipe()
	go func() {
		server, err := sockmux.Server(serverConn, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer server.Close()
		st, err := server.AcceptStream()
		if err != nil {
			log.Fatal(err)
		}
		name, _ := io.ReadAll(st) // to the client's CloseWrite
		fmt.Fprintf(st, "hello, %s (you asked for %s)", name, st.Target())
		st.Close()
		<-server.Done() // the client closes the session
	}()

	client, err := sockmux.Client(clientConn, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	st, err := client.Open(context.Background(), "greeter")
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(st, "gopher")
	st.CloseWrite() // the server reads to io.EOF; we read on
	answer, err := io.ReadAll(st)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(answer))
	// Output: hello, gopher (you asked for greeter)
}

// A server on a TCP listener, serving each stream by its target. The
// Session is a net.Listener: anything that serves one (an http.Server,
// a gRPC server) can serve the peer's streams.
func ExampleServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		server, err := sockmux.Server(conn, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer server.Close()
		for {
			st, err := server.AcceptStream()
			if err != nil {
				return // the session ended
			}
			go func() {
				defer st.Close()
				switch st.Target() {
				case "upper":
					b, _ := io.ReadAll(st)
					io.WriteString(st, strings.ToUpper(string(b)))
				default:
					io.Copy(st, st) // echo
				}
			}()
		}
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	client, err := sockmux.Client(conn, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	for _, target := range []string{"upper", "echo"} {
		st, err := client.Open(context.Background(), target)
		if err != nil {
			log.Fatal(err)
		}
		io.WriteString(st, "many streams, one connection")
		st.CloseWrite()
		b, _ := io.ReadAll(st)
		st.Close()
		fmt.Printf("%s: %s\n", target, b)
	}
	// Output:
	// upper: MANY STREAMS, ONE CONNECTION
	// echo: many streams, one connection
}

// Striping: the client keeps two carrier connections, dialling the second
// with its Dialer (and dialling again, to resume the link, if they drop);
// the server adds every connection after the first to its session. One
// stream's frames are spread over both.
func Example_striping() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var server *sockmux.Session
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if server != nil {
				server.AddCarrier(conn) // a further carrier of the link
				continue
			}
			if server, err = sockmux.Server(conn, nil); err != nil {
				log.Fatal(err)
			}
			defer server.Close()
			go func() {
				for {
					st, err := server.AcceptStream()
					if err != nil {
						return
					}
					go func() { io.Copy(st, st); st.Close() }()
				}
			}()
		}
	}()

	cfg := sockmux.DefaultConfig()
	cfg.Carriers = 2
	cfg.Dialer = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	conn, err := cfg.Dialer(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	client, err := sockmux.Client(conn, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	st, err := client.Open(context.Background(), "echo")
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	payload := strings.Repeat("striped ", 1<<17) // 1 MiB
	go func() {
		io.WriteString(st, payload)
		st.CloseWrite()
	}()
	echoed, err := io.ReadAll(st)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(echoed) == len(payload) && string(echoed) == payload)
	// Output: true
}

// A keyed link: both sides hold the same pre-shared key, prove it to each
// other, and encrypt everything after the handshake. A peer with another
// key is refused.
func Example_keyed() {
	key := []byte("a shared secret of 32 bytes, ok?")
	cfg := sockmux.DefaultConfig()
	cfg.Key = key

	clientConn, serverConn := net.Pipe()
	go func() {
		server, err := sockmux.Server(serverConn, cfg)
		if err != nil {
			log.Fatal(err)
		}
		defer server.Close()
		st, err := server.AcceptStream()
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(st, st)
		st.Close()
		<-server.Done()
	}()

	client, err := sockmux.Client(clientConn, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	st, err := client.Open(context.Background(), "vault")
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(st, "sealed in transit")
	st.CloseWrite()
	b, _ := io.ReadAll(st)
	fmt.Println(string(b))

	wrong := sockmux.DefaultConfig()
	wrong.Key = []byte("not the secret the server holds!")
	c2, s2 := net.Pipe()
	go func() {
		if s, err := sockmux.Server(s2, cfg); err == nil {
			s.Close()
		}
	}()
	_, err = sockmux.Client(c2, wrong)
	fmt.Println("other key:", err != nil)
	// Output:
	// sealed in transit
	// other key: true
}
