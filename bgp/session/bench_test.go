package session

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgplb/bgplb/bgp/wire"
)

// counter is a Handler that only counts prefixes, as cheaply as possible.
type counter struct {
	prefixes atomic.Int64
	est      chan Negotiated
}

func (c *counter) Established(_ *Peer, n Negotiated) { c.est <- n }
func (c *counter) EndOfRIB(*Peer, wire.Family)       {}
func (c *counter) Down(*Peer, error)                 {}
func (c *counter) Update(_ *Peer, u *wire.Update, _ wire.Action) error {
	c.prefixes.Add(int64(u.NLRI.Len() + u.Attrs.MPReach.NLRI.Len()))
	return nil
}

// TestReceiveUpdateNoAlloc checks that reading, decoding and delivering an
// UPDATE of an established session allocates nothing.
func TestReceiveUpdateNoAlloc(t *testing.T) {
	msg := updates(t, 500, wire.Options{AS4: true})
	h := int(msg[16])<<8 | int(msg[17])
	one := msg[:h] // the first message of the batch
	p := New(Config{LocalAS: 1, RouterID: idA, PeerAddr: loopback}, &counter{}, nil)
	c := &conn{stop: make(chan struct{})}
	src := bytes.NewReader(nil)
	r := reader{p: p, c: c, f: frame{src: src}}
	r.established(&Negotiated{Rx: wire.Options{AS4: true}, Families: []wire.Family{wire.IPv4Unicast}})
	run := func() {
		src.Reset(one)
		if in, done := r.next(); done || in.kind != inNone {
			t.Fatalf("next: %+v %v", in, done)
		}
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Errorf("%v allocations per UPDATE", n)
	}
	m, err := wire.DecodeMessage(one, &wire.Options{AS4: true})
	if err != nil {
		t.Fatal(err)
	}
	per := int64(m.(*wire.Update).NLRI.Len())
	if got := p.h.(*counter).prefixes.Load(); per == 0 || got != 102*per {
		t.Errorf("handler saw %d prefixes, want %d", got, 102*per)
	}
}

// BenchmarkSessionThroughput sends IPv4 host routes from one Peer to another
// over loopback TCP and reports the receive rate.
func BenchmarkSessionThroughput(b *testing.B) {
	const perBatch = 10000
	ra, rb := &counter{est: make(chan Negotiated, 4)}, &counter{est: make(chan Negotiated, 4)}
	cb := baseConfig(64512, 64512, idB)
	cb.Passive = true
	pb := New(cb, rb, nil)
	l, err := Listen([]netip.AddrPort{netip.AddrPortFrom(loopback, 0)}, func(netip.AddrPort, netip.AddrPort) (*Peer, bool) {
		return pb, true
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = l.Run(ctx) })
	ca := baseConfig(64512, 64512, idA)
	ca.PeerPort = l.Addrs()[0].Port()
	pa := New(ca, ra, nil)
	wg.Go(func() { _ = pb.Run(ctx) })
	wg.Go(func() { _ = pa.Run(ctx) })
	n := <-ra.est
	<-rb.est
	var nlri []wire.NLRI
	for i := range perBatch {
		nlri = append(nlri, wire.NLRI{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)})
	}
	a := &wire.Attrs{Origin: wire.OriginIGP, LocalPref: 100}
	a.Set(wire.AttrOrigin)
	a.Set(wire.AttrASPath)
	a.Set(wire.AttrLocalPref)
	e := wire.Encoder{Options: n.Tx}
	batch, _, err := e.AppendReach(nil, wire.IPv4Unicast, netip.MustParseAddr("198.51.100.11"), netip.Addr{}, a, nlri)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	for i := range b.N {
		if err := pa.Send(ctx, batch); err != nil {
			b.Fatal(err)
		}
		for rb.prefixes.Load() < int64(perBatch*(i+1)) {
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rb.prefixes.Load())/b.Elapsed().Seconds(), "prefixes/s")
}
