package actors

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sockmux/sockmux/carriers"
	"github.com/sockmux/sockmux/internal/forward"
	"github.com/sockmux/sockmux/internal/testkit"
)

// BenchmarkOneStream pushes one stream's bytes through a link, keyed and
// not, over tcp and tls, to a target that discards them. Interleaved, as
// BENCHMARKS.md ("Encrypted links") runs it:
//
//	go test -c -o /tmp/actors.test ./actors
//	for i in 1 2 3; do for c in tcp/unkeyed tcp/keyed tls/unkeyed tls/keyed; do
//	  /tmp/actors.test -test.run '^$' -test.bench "OneStream/$c\$" -test.benchtime 3s; done; done
func BenchmarkOneStream(b *testing.B) {
	pki := testkit.NewPKI(b)
	for _, carrier := range []string{"tcp", "tls"} {
		for _, keyed := range []bool{false, true} {
			name := carrier + "/unkeyed"
			if keyed {
				name = carrier + "/keyed"
			}
			b.Run(name, func(b *testing.B) {
				var key []byte
				if keyed {
					key = secureKey
				}
				var lopts, dopts []carriers.Option
				if carrier == "tls" {
					lopts = []carriers.Option{carriers.WithTLS(carriers.TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey})}
					dopts = []carriers.Option{carriers.WithTLS(carriers.TLSConfig{CAFile: pki.CA})}
				}
				benchOneStream(b, carrier, key, lopts, dopts)
			})
		}
	}
}

func benchOneStream(b *testing.B, scheme string, key []byte, lopts, dopts []carriers.Option) {
	quiet := slog.New(slog.DiscardHandler)
	got := make(chan int64, 1)
	target := testkit.Serve(b, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		got <- n
	})
	up := make(chan struct{}, 4)
	a, err := NewNode(Config{Logger: quiet, Key: key})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ln, err := carriers.Listen(scheme+"://127.0.0.1:0", append(lopts, carriers.WithLogger(nil))...)
	if err != nil {
		b.Fatal(err)
	}
	a.Serve(ln)
	f, err := forward.ParseForward("127.0.0.1:0:" + target)
	if err != nil {
		b.Fatal(err)
	}
	f.Target = target
	bn, err := NewNode(Config{Logger: quiet, Key: key, Forwards: []forward.Forward{f},
		OnLink: func(ev LinkEvent) {
			if ev.Up {
				up <- struct{}{}
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	defer bn.Close()
	d, err := carriers.NewDialer(scheme+"://"+ln.Addr().String(), append(dopts, carriers.WithLogger(nil))...)
	if err != nil {
		b.Fatal(err)
	}
	bn.Connect(d)
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		b.Fatal("no link")
	}
	c, err := net.Dial("tcp", bn.ForwardAddrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	const perOp = 16 << 20
	b.SetBytes(perOp)
	var sent int64
	for b.Loop() {
		for range perOp / len(chunk) {
			n, err := c.Write(chunk)
			sent += int64(n)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if n := <-got; n != sent {
		b.Fatalf("the target got %d bytes of %d", n, sent)
	}
	c.Close()
}
