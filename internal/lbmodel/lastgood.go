package lbmodel

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LastGood is bgplb's one "keep the last good version" policy, for
// BGPAnnouncementPolicies and BGPRouters: when an edit makes an object invalid
// (the API server does not check label selectors in a custom resource, so
// an operator `in` in lower case gets through), the last version that
// parsed stays in force, on every node and in the controller alike, and
// the error is reported; a typo must not withdraw routes or tear down
// sessions. An object never valid since it was first seen is not used.
//
// Entries are keyed by UID, so that an object deleted and created again
// under the same name does not inherit its predecessor's version, and
// parsed once per generation.
//
// A LastGood is safe for concurrent use.
type LastGood[T any] struct {
	mu sync.Mutex
	m  map[string]*lastGoodEntry[T]
}

type lastGoodEntry[T any] struct {
	gen     int64 // generation last parsed; 0: parse every time
	good    T
	goodGen int64
	has     bool
	err     error
}

// Resolved is what LastGood decided for one object.
type Resolved[T any] struct {
	// Value is the version in force; meaningful only when OK.
	Value T
	// OK: some version is in force (the current one when Err is nil).
	OK bool
	// Err is why the current version is not used, or nil.
	Err error
	// Generation is the generation of the version in force.
	Generation int64
}

// ResolveAll decides, for every object of one kind (items: the whole list,
// as read), the version in force: parse's value when the object parses,
// else the last one that did. parse is called only when an object's
// generation differs from the one last parsed (always for generation 0,
// which objects built by hand have). Objects no longer listed are
// forgotten. The result is in the order of items.
func ResolveAll[T, O any, P interface {
	*O
	metav1.Object
}](c *LastGood[T], items []O, parse func(P) (T, error)) []Resolved[T] {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m
	c.m = make(map[string]*lastGoodEntry[T], len(items))
	out := make([]Resolved[T], len(items))
	for i := range items {
		obj := P(&items[i])
		key := string(obj.GetUID())
		if key == "" {
			key = "name:" + obj.GetName()
		}
		e := old[key]
		if e == nil {
			e = &lastGoodEntry[T]{}
		}
		c.m[key] = e
		if gen := obj.GetGeneration(); gen == 0 || gen != e.gen {
			v, err := parse(obj)
			e.gen, e.err = gen, err
			if err == nil {
				e.good, e.goodGen, e.has = v, gen, true
			}
		}
		out[i] = Resolved[T]{Value: e.good, OK: e.has, Err: e.err, Generation: e.goodGen}
	}
	return out
}
