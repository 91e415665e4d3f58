package bench

import (
	"testing"
)

// unit is what one benchmark iteration moves: b.SetBytes(unit).
const unit = 1 << 20

// run measures one workload through every system, baseline first, and
// reports each system's throughput as a ratio to the relay chain's from the
// same run ("x-relay").
func run(b *testing.B, streams int) {
	sink, err := NewSink()
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	block := make([]byte, 128<<10)
	for i := range block {
		block[i] = byte(i * 7)
	}
	var relayMBps float64
	for _, sys := range Systems {
		b.Run(sys.Name, func(b *testing.B) {
			tun, err := sys.New(sink.Addr())
			if err != nil {
				b.Fatal(err)
			}
			defer tun.Close()
			b.SetBytes(unit)
			b.ReportAllocs()
			b.ResetTimer()
			size := int64(b.N) * unit
			if err := PushParallel(tun.Addr(), size, streams, block); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			mbps := float64(size) / b.Elapsed().Seconds() / 1e6
			if sys.Name == "relay" {
				relayMBps = mbps
			}
			if relayMBps > 0 {
				b.ReportMetric(mbps/relayMBps, "x-relay")
			}
		})
	}
}

// BenchmarkBulk1 pushes one stream through each system.
func BenchmarkBulk1(b *testing.B) { run(b, 1) }

// BenchmarkBulk64 pushes 64 streams at once through each system.
func BenchmarkBulk64(b *testing.B) { run(b, 64) }

// TestPushVerifies checks the workload itself: every system delivers all
// bytes, and Push notices a short delivery.
func TestPushVerifies(t *testing.T) {
	sink, err := NewSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	block := make([]byte, 64<<10)
	for _, sys := range Systems {
		t.Run(sys.Name, func(t *testing.T) {
			tun, err := sys.New(sink.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer tun.Close()
			if err := PushParallel(tun.Addr(), 4<<20, 4, block); err != nil {
				t.Fatal(err)
			}
		})
	}
}
