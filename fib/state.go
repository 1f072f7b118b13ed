package fib

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// state is what the state file records of the routes a run writes.
type state struct {
	key             routeKey
	idBase, idCount uint32
}

func (s state) String() string {
	return fmt.Sprintf("table %d\nmetric %d\nprotocol %d\nnexthop-ids %d %d\n",
		s.key.table, s.key.metric, s.key.proto, s.idBase, s.idCount)
}

// parseState reads a state file's text; anything else is an error, so that
// a damaged file stops Open instead of misleading it.
func parseState(b []byte) (state, error) {
	var s state
	n, err := fmt.Sscanf(string(b), "table %d\nmetric %d\nprotocol %d\nnexthop-ids %d %d\n",
		&s.key.table, &s.key.metric, &s.key.proto, &s.idBase, &s.idCount)
	if err != nil || n != 5 || s.key.table == 0 || s.key.proto == 0 {
		return s, fmt.Errorf("fib: malformed state file: %q", b)
	}
	return s, nil
}

// readState returns the state file's record, nil when there is none.
func readState(path string) (*state, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fib: state file: %w", err)
	}
	s, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// saveState records the current key, atomically, once no route of a
// previous key is left to move.
func (f *FIB) saveState() error {
	if f.cfg.StateFile == "" || f.oldKey != (routeKey{}) {
		return nil
	}
	s := state{key: f.key, idBase: f.cfg.NextHopIDBase, idCount: f.cfg.NextHopIDCount}
	if err := os.MkdirAll(filepath.Dir(f.cfg.StateFile), 0o755); err != nil {
		return fmt.Errorf("fib: state file: %w", err)
	}
	tmp := f.cfg.StateFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.String()), 0o644); err != nil {
		return fmt.Errorf("fib: state file: %w", err)
	}
	if err := os.Rename(tmp, f.cfg.StateFile); err != nil {
		return fmt.Errorf("fib: state file: %w", err)
	}
	return nil
}

// deletePrevObjects deletes the nexthop objects of the previous
// configuration (its protocol, its id range) that are not ours now: the
// routes that used them have moved.
func (f *FIB) deletePrevObjects(ctx context.Context, prev *state) error {
	if !f.haveNH {
		return nil
	}
	nhs, err := f.dumpNexthops(ctx)
	if err != nil {
		return err
	}
	var groups, singles []uint32
	for _, n := range nhs {
		inPrev := n.id >= prev.idBase && uint64(n.id) < uint64(prev.idBase)+uint64(prev.idCount)
		if n.proto != prev.key.proto || !inPrev {
			continue
		}
		if _, ours := f.sets.objs[n.id]; ours && f.useNH && n.proto == f.cfg.Protocol {
			continue
		}
		if n.group != nil {
			groups = append(groups, n.id)
		} else {
			singles = append(singles, n.id)
		}
	}
	return f.deleteNexthops(ctx, append(groups, singles...))
}
