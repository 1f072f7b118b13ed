package view

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
)

// Client talks to a daemon's API socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the API on the unix socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{socket: path, hc: &http.Client{Transport: tr}}
}

// ErrNoDaemon is returned when nothing listens on the socket.
var ErrNoDaemon = errors.New("no daemon is listening")

func (c *Client) get(ctx context.Context, path string, q url.Values, v any) error {
	u := "http://bgplb" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%s: %w (is the daemon running? see --socket): %v", c.socket, ErrNoDaemon, op.Err)
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", path, e.Error)
		}
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return json.Unmarshal(body, v)
}

// Neighbors lists the sessions.
func (c *Client) Neighbors(ctx context.Context) ([]Neighbor, error) {
	var v []Neighbor
	return v, c.get(ctx, "/v1/neighbors", nil, &v)
}

// RIB lists RIB entries; family and prefix are optional filters.
func (c *Client) RIB(ctx context.Context, family string, prefix netip.Prefix) ([]RIBEntry, error) {
	q := url.Values{}
	if family != "" {
		q.Set("family", family)
	}
	if prefix.IsValid() {
		q.Set("prefix", prefix.String())
	}
	var v []RIBEntry
	return v, c.get(ctx, "/v1/rib", q, &v)
}

// FIB lists the routes installed in the kernel.
func (c *Client) FIB(ctx context.Context) ([]FIBRoute, error) {
	var v []FIBRoute
	return v, c.get(ctx, "/v1/fib", nil, &v)
}

// FIBCheck returns the router's last comparison of its kernel with its RIB.
func (c *Client) FIBCheck(ctx context.Context) (FIBCheck, error) {
	var v FIBCheck
	return v, c.get(ctx, "/v1/fib/check", nil, &v)
}
