package engine

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/flynn/noise"
)

func fixedKey() [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

// recordPair is a sealer and the opener of the same direction, on a fixed
// key, rekeying every `every` bytes (RekeyBytes when 0).
func recordPair(every uint64) (*RecordSealer, *RecordOpener) {
	if every == 0 {
		every = RekeyBytes
	}
	k := fixedKey()
	return NewRecordSealerRekey(noise.UnsafeNewCipherState(NoiseSuite, k, 0), every),
		NewRecordOpenerRekey(noise.UnsafeNewCipherState(NoiseSuite, k, 0), every)
}

// TestRecordKnownAnswer: the record layer's output for a fixed key and
// plaintext is the expected bytes, which are also what AES-256-GCM from
// the standard library makes with Noise's nonce (4 zero bytes, the
// counter big-endian) and the length prefix as associated data.
func TestRecordKnownAnswer(t *testing.T) {
	pt := []byte("sockmux record layer, known answer")
	want := []string{
		"00327dd3d6b5d859fb9d7acdca5a6a48b1f5b33a332104a10b41efe9dda3a4912e212b2d31327cb05144a9468a4e112fd5a42664",
		"003266b9dc972981483e7c4b32569ec21a9b74e6792648923fea1c776df9475e00295fe48f073c635b7bd82d793083253d0488d3",
	}
	s, o := recordPair(0)
	k := fixedKey()
	b, _ := aes.NewCipher(k[:])
	gcm, _ := cipher.NewGCM(b)
	for n, w := range want {
		got, err := s.Seal(nil, pt)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != w {
			t.Fatalf("record %d:\n got %x\nwant %s", n, got, w)
		}
		var nonce [12]byte
		binary.BigEndian.PutUint64(nonce[4:], uint64(n))
		hdr := got[:RecordHeaderLen]
		if std := gcm.Seal(append([]byte(nil), hdr...), nonce[:], pt, hdr); !bytes.Equal(std, got) {
			t.Fatalf("record %d differs from crypto/cipher's AES-GCM: %x", n, std)
		}
		plain, used, err := o.Decode(nil, got, -1)
		if err != nil || used != len(got) || !bytes.Equal(plain, pt) {
			t.Fatalf("record %d opens to %q (%d of %d bytes), %v", n, plain, used, len(got), err)
		}
	}
}

// TestRecordRekey: after RekeyBytes of plaintext each side moves to the
// key Noise's REKEY derives (ENCRYPT(k, 2^64-1, "", zeros)[:32]), at the
// same record, and the stream still opens.
func TestRecordRekey(t *testing.T) {
	s, o := recordPair(100)
	msg := bytes.Repeat([]byte("x"), 250) // records of 100, 100 and 50 bytes
	wire, err := s.Seal(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rekeys != 2 || len(wire) != 250+3*(RecordHeaderLen+RecordTagLen) {
		t.Fatalf("%d rekeys, %d bytes sealed; want 2 rekeys, 3 records", s.Rekeys, len(wire))
	}
	// The third record is sealed under the key rekeyed twice, nonce 2.
	k := fixedKey()
	for range 2 {
		b, _ := aes.NewCipher(k[:])
		gcm, _ := cipher.NewGCM(b)
		var nonce [12]byte
		binary.BigEndian.PutUint64(nonce[4:], ^uint64(0))
		copy(k[:], gcm.Seal(nil, nonce[:], make([]byte, 32), nil)[:32])
	}
	b, _ := aes.NewCipher(k[:])
	gcm, _ := cipher.NewGCM(b)
	third := wire[2*(100+RecordHeaderLen+RecordTagLen):]
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[4:], 2)
	if _, err := gcm.Open(nil, nonce[:], third[RecordHeaderLen:], third[:RecordHeaderLen]); err != nil {
		t.Fatalf("the third record is not under the twice-rekeyed key: %v", err)
	}
	plain, used, err := o.Decode(nil, wire, -1)
	if err != nil || used != len(wire) || !bytes.Equal(plain, msg) || o.Rekeys != 2 {
		t.Fatalf("opened %d bytes of %d, %v, %d rekeys", len(plain), len(msg), err, o.Rekeys)
	}
}

// sealRecords seals each message as its own record.
func sealRecords(t *testing.T, s *RecordSealer, msgs ...string) [][]byte {
	t.Helper()
	var recs [][]byte
	for _, m := range msgs {
		r, err := s.Seal(nil, []byte(m))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestRecordRefusals: a record replayed, reordered, dropped, altered (in
// its length, body or tag), or sealed under another key does not open;
// nothing of it is delivered, and nothing after it either.
func TestRecordRefusals(t *testing.T) {
	join := func(rs ...[]byte) []byte { return bytes.Join(rs, nil) }
	flip := func(r []byte, i int) []byte {
		r = append([]byte(nil), r...)
		r[i] ^= 1
		return r
	}
	otherKey := func() []byte {
		var k [32]byte
		r, _ := NewRecordSealer(noise.UnsafeNewCipherState(NoiseSuite, k, 0)).Seal(nil, []byte("one"))
		return r
	}
	for _, tc := range []struct {
		name string
		wire func(r [][]byte) []byte
		good string // what opens before the bad record
	}{
		{"replayed", func(r [][]byte) []byte { return join(r[0], r[1], r[1]) }, "onetwo"},
		{"replayed first", func(r [][]byte) []byte { return join(r[0], r[0]) }, "one"},
		{"reordered", func(r [][]byte) []byte { return join(r[1], r[0]) }, ""},
		{"dropped", func(r [][]byte) []byte { return join(r[0], r[2]) }, "one"},
		{"body bit", func(r [][]byte) []byte { return join(r[0], flip(r[1], RecordHeaderLen)) }, "one"},
		{"tag bit", func(r [][]byte) []byte { return join(flip(r[0], len(r[0])-1)) }, ""},
		{"length", func(r [][]byte) []byte { return join(r[0], flip(r[1], 1), r[2], r[2]) }, "one"},
		{"too short", func(r [][]byte) []byte { return join(r[0], []byte{0, RecordTagLen}, make([]byte, 16)) }, "one"},
		{"other key", func(r [][]byte) []byte { return otherKey() }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, o := recordPair(0)
			wire := tc.wire(sealRecords(t, s, "one", "two", "three"))
			plain, _, err := o.Decode(nil, wire, -1)
			if !errors.Is(err, ErrIntegrity) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("err %v, want ErrIntegrity", err)
			}
			if string(plain) != tc.good {
				t.Fatalf("delivered %q, want only %q", plain, tc.good)
			}
			if _, _, again := o.Decode(nil, sealRecords(t, s, "four")[0], -1); !errors.Is(again, ErrIntegrity) {
				t.Fatalf("after a bad record the opener took more: %v", again)
			}
		})
	}
}

// TestRecordPartial: records cut anywhere are kept for the next call,
// and a big write is split into records of at most MaxRecordPlaintext.
func TestRecordPartial(t *testing.T) {
	s, o := recordPair(0)
	msg := make([]byte, 3*MaxRecordPlaintext+7)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	wire, err := s.Seal(nil, msg)
	if err != nil || len(wire) != SealedLen(len(msg)) {
		t.Fatalf("sealed %d bytes, SealedLen says %d, %v", len(wire), SealedLen(len(msg)), err)
	}
	var got, pending []byte
	for i := 0; i < len(wire); i += 1000 {
		pending = append(pending, wire[i:min(i+1000, len(wire))]...)
		var used int
		got, used, err = o.Decode(got, pending, -1)
		if err != nil {
			t.Fatal(err)
		}
		pending = pending[used:]
	}
	if len(pending) != 0 || !bytes.Equal(got, msg) {
		t.Fatalf("%d bytes left over, opened %d of %d", len(pending), len(got), len(msg))
	}
}

// TestRecordLimit: Decode opens no record whose plaintext would pass its
// limit; the record waits, whole, for a call with room.
func TestRecordLimit(t *testing.T) {
	s, o := recordPair(0)
	wire := bytes.Join(sealRecords(t, s, "0123456789", "abcdefghij"), nil)
	for _, tc := range []struct {
		limit int
		want  string
		used  int
	}{{5, "", 0}, {10, "0123456789", 28}, {19, "0123456789", 28}, {20, "0123456789abcdefghij", 56}} {
		_, o := recordPair(0)
		got, used, err := o.Decode(nil, wire, tc.limit)
		if err != nil || string(got) != tc.want || used != tc.used {
			t.Fatalf("limit %d: %q, used %d, %v; want %q, %d", tc.limit, got, used, err, tc.want, tc.used)
		}
	}
	got, used, _ := o.Decode(nil, wire, 10)
	got, _, err := o.Decode(got, wire[used:], 10)
	if err != nil || string(got) != "0123456789abcdefghij" {
		t.Fatalf("in two calls of 10: %q, %v", got, err)
	}
}

// FuzzRecordDecode: whatever bytes the decoder is given (records of the
// right key, cut, altered, or noise), it never panics and what it opens
// is always a prefix of what was sealed.
func FuzzRecordDecode(f *testing.F) {
	s, _ := recordPair(64)
	good, _ := s.Seal(nil, []byte("the quick brown fox jumps over the lazy dog, twice: the quick brown fox"))
	f.Add(good, uint16(0), byte(0), uint16(7))
	f.Add(good, uint16(3), byte(1), uint16(0))
	f.Add([]byte{0xff, 0xff, 1, 2, 3}, uint16(0), byte(0), uint16(1))
	f.Fuzz(func(t *testing.T, wire []byte, at uint16, x byte, chunk uint16) {
		s, o := recordPair(64)
		truth := []byte("the quick brown fox jumps over the lazy dog, twice: the quick brown fox")
		sealed, _ := s.Seal(nil, truth)
		if len(wire) > 0 && wire[0]&1 == 1 { // mostly: the real records, one byte changed
			wire = append([]byte(nil), sealed...)
			wire[int(at)%len(wire)] ^= x
		}
		step := int(chunk)%97 + 1
		var got, pending []byte
		for i := 0; i < len(wire); i += step {
			pending = append(pending, wire[i:min(i+step, len(wire))]...)
			var used int
			var err error
			limit := -1
			if x&2 == 2 {
				limit = len(got) + int(chunk)%200 // some records wait for room
			}
			got, used, err = o.Decode(got, pending, limit)
			if used < 0 || used > len(pending) {
				t.Fatalf("used %d of %d", used, len(pending))
			}
			pending = pending[used:]
			if err != nil {
				if !errors.Is(err, ErrIntegrity) {
					t.Fatalf("error %v is not ErrIntegrity", err)
				}
				break
			}
		}
		if !bytes.HasPrefix(truth, got) {
			t.Fatalf("opened %q, not a prefix of what was sealed", got)
		}
	})
}

// TestSealBuffers: sealing a list of buffers in place makes the very
// records Seal makes of their concatenation (same key: same bytes), with
// max bounding the plaintext taken, across record and rekey boundaries,
// and it leaves bufs as they were.
func TestSealBuffers(t *testing.T) {
	msg := make([]byte, 2*MaxRecordPlaintext+5000)
	for i := range msg {
		msg[i] = byte(i * 13)
	}
	// Pieces as a carrier writer's batch has them: headers, payloads, an
	// empty one, one that spans records.
	var bufs [][]byte
	for _, cut := range []int{0, 9, 9, 70000, 70012, 100000, len(msg)} {
		if len(bufs) == 0 {
			bufs = append(bufs, msg[:cut])
			continue
		}
		prev := 0
		for _, b := range bufs {
			prev += len(b)
		}
		bufs = append(bufs, msg[prev:cut])
	}
	for _, tc := range []struct {
		name  string
		every uint64
		max   int
	}{{"all", 0, -1}, {"max", 0, 70003}, {"rekeys", 50000, -1}, {"zero", 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			s1, o := recordPair(tc.every)
			s2, _ := recordPair(tc.every)
			orig := make([][]byte, len(bufs))
			copy(orig, bufs)
			got, n, err := s1.SealBuffers(nil, bufs, tc.max)
			want := len(msg)
			if tc.max >= 0 {
				want = tc.max
			}
			if err != nil || n != want {
				t.Fatalf("sealed %d bytes, %v; want %d", n, err, want)
			}
			for i := range bufs {
				if &bufs[i][:1][0] != &orig[i][:1][0] || len(bufs[i]) != len(orig[i]) {
					t.Fatalf("bufs[%d] changed", i)
				}
			}
			ref, err := s2.Seal(nil, msg[:want])
			if err != nil || !bytes.Equal(got, ref) {
				t.Fatalf("SealBuffers made %d bytes, Seal %d (%v): not the same records", len(got), len(ref), err)
			}
			plain, used, err := o.Decode(nil, got, -1)
			if err != nil || used != len(got) || !bytes.Equal(plain, msg[:want]) || o.Rekeys != s1.Rekeys {
				t.Fatalf("opened %d of %d bytes, %v, rekeys %d and %d", len(plain), want, err, o.Rekeys, s1.Rekeys)
			}
		})
	}
}

// TestSealBuffersNoAllocs: once its buffer has grown, sealing a batch
// allocates nothing.
func TestSealBuffersNoAllocs(t *testing.T) {
	s, _ := recordPair(0)
	bufs := [][]byte{make([]byte, 12), make([]byte, 60000), make([]byte, 12), make([]byte, 100000)}
	dst, _, _ := s.SealBuffers(nil, bufs, -1)
	if a := testing.AllocsPerRun(20, func() { dst, _, _ = s.SealBuffers(dst[:0], bufs, -1) }); a > 0 {
		t.Fatalf("%v allocations a batch", a)
	}
}
