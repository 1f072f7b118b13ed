package view

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"
)

// L2Address is one address in L2 mode as a speaker sees it: who owns it
// (answers ARP or NDP for it), and, when this node does, where and how
// much.
type L2Address struct {
	Address netip.Addr `json:"address"`
	// Owner is the node holding the address's Lease; "" while none does.
	Owner string `json:"owner,omitempty"`
	// Here: this node owns it and answers for it.
	Here bool `json:"here"`
	// Since is when the owner took it.
	Since time.Time `json:"since,omitzero"`
	// Transitions counts the changes of owner the Lease records.
	Transitions int32 `json:"transitions,omitempty"`
	// Candidates are the nodes that may own it, best first, as this
	// speaker sees them.
	Candidates []string `json:"candidates,omitempty"`
	Services   []string `json:"services,omitempty"`
	// Interfaces are this node's interfaces it answers on (owner only).
	Interfaces []string `json:"interfaces,omitempty"`
	// Answered counts the ARP requests and neighbour solicitations
	// answered; Gratuitous the gratuitous ARPs and unsolicited neighbour
	// advertisements sent (owner only, since it took the address).
	Answered   uint64 `json:"answered,omitempty"`
	Gratuitous uint64 `json:"gratuitous,omitempty"`
	LastError  string `json:"lastError,omitempty"`
}

// L2Source is a Source that answers ARP and NDP (a speaker).
type L2Source interface {
	L2(ctx context.Context) []L2Address
}

func handleL2(mux *http.ServeMux, src Source) {
	mux.HandleFunc("GET /v1/l2", func(w http.ResponseWriter, r *http.Request) {
		l, ok := src.(L2Source)
		if !ok {
			writeError(w, http.StatusNotImplemented, fmt.Errorf("this daemon answers no ARP or NDP (L2 mode is the speaker's)"))
			return
		}
		writeJSON(w, http.StatusOK, l.L2(r.Context()))
	})
}

// L2 lists the addresses in L2 mode.
func (c *Client) L2(ctx context.Context) ([]L2Address, error) {
	var v []L2Address
	return v, c.get(ctx, "/v1/l2", nil, &v)
}

// WriteL2 prints the L2 table; "*" marks the addresses this node answers for.
func WriteL2(w io.Writer, as []L2Address, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Address\tOwner\tSince\tInterfaces\tAnswered\tGratuitous\tCandidates\tServices")
	for _, a := range as {
		owner := a.Owner
		if owner == "" {
			owner = "(none)"
		}
		if a.Here {
			owner = "*" + owner
		}
		ifs := dash(strings.Join(a.Interfaces, ","))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", a.Address, owner, since(now, a.Since), ifs,
			a.Answered, a.Gratuitous, dash(strings.Join(a.Candidates, ",")), dash(strings.Join(a.Services, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range as {
		if a.LastError != "" {
			if _, err := fmt.Fprintf(w, "%s: %s\n", a.Address, a.LastError); err != nil {
				return err
			}
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
