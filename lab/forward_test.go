package lab_test

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/bgplb/bgplb/lab"
	"github.com/bgplb/bgplb/lab/labtest"
)

// echo serves line echo on ln until it is closed.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				fmt.Fprintf(c, "%s\n", sc.Text())
			}
		}()
	}
}

func roundTrip(c net.Conn, msg string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

func TestForward(t *testing.T) {
	ns := labtest.Netns(t, "lt")

	t.Run("namespace to root", func(t *testing.T) {
		// A server only the root namespace can reach, as the lab's kube-apiserver.
		srv, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		go echo(srv)
		f, err := lab.Forward(ns, "127.0.0.1:0", nil, srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var got string
		err = ns.Do(func() error {
			// Without the forwarder the root server is out of reach.
			if c, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second); err == nil {
				c.Close()
				return fmt.Errorf("root namespace's %s reachable from %s", srv.Addr(), ns.Name)
			}
			c, err := net.Dial("tcp", f.Addr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			got, err = roundTrip(c, "hello")
			return err
		})
		if err != nil || got != "hello\n" {
			t.Fatalf("through the forwarder: %q, %v", got, err)
		}
	})

	t.Run("root to namespace, Close cuts live connections", func(t *testing.T) {
		var srv net.Listener
		if err := ns.Do(func() error {
			var err error
			srv, err = net.Listen("tcp", "127.0.0.1:0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		go echo(srv)
		f, err := lab.Forward(nil, "127.0.0.1:0", ns, srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", f.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := roundTrip(c, "hi"); err != nil || got != "hi\n" {
			t.Fatalf("through the forwarder: %q, %v", got, err)
		}
		closed := make(chan error, 1)
		go func() { closed <- f.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close hangs with a live connection")
		}
		if _, err := roundTrip(c, "after"); err == nil {
			t.Error("the relayed connection survived Close")
		}
		if c2, err := net.DialTimeout("tcp", f.Addr().String(), time.Second); err == nil {
			c2.Close()
			t.Error("the forwarder still accepts after Close")
		}
	})
}
