package metallb

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgplb/bgplb/api/v1alpha1"
	"github.com/bgplb/bgplb/internal/lbmodel"
)

// Note is one thing the conversion could not carry, or carried only with
// the operator's help.
type Note struct {
	Source string // the MetalLB object or document
	Field  string // its field, empty for the whole object
	Text   string
}

func (n Note) String() string {
	if n.Field == "" {
		return n.Source + ": " + n.Text
	}
	return n.Source + ": " + n.Field + ": " + n.Text
}

// Result is the converted configuration.
type Result struct {
	Pools       []v1alpha1.LoadBalancerPool
	BFDPolicies []v1alpha1.BFDPolicy
	Secrets     []corev1.Secret
	Routers     []v1alpha1.BGPRouter
	BGPPolicies []v1alpha1.BGPAnnouncementPolicy
	L2Policies  []v1alpha1.L2AnnouncementPolicy
	Notes       []Note
}

type converter struct {
	res     Result
	aliases map[string]string
	names   map[string]bool // kind/name already given out
}

// Convert turns everything read into bgplb objects.
func Convert(in *Input) *Result {
	c := &converter{aliases: map[string]string{}, names: map[string]bool{}}
	c.res.Notes = append(c.res.Notes, in.notes...)
	for _, l := range in.legacy {
		for k, v := range l.v.BGPCommunities {
			c.aliases[k] = v
		}
	}
	for _, o := range in.communities {
		for _, a := range o.Spec.Communities {
			c.aliases[a.Name] = a.Value
		}
	}
	for _, l := range in.legacy {
		c.legacy(l.source, &l.v)
	}
	for i := range in.pools {
		c.pool(&in.pools[i])
	}
	for i := range in.bfd {
		c.bfdProfile(&in.bfd[i])
	}
	for i := range in.peers {
		c.peer(&in.peers[i])
	}
	for i := range in.bgpAdverts {
		c.bgpAdvert(&in.bgpAdverts[i])
	}
	for i := range in.l2Adverts {
		c.l2Advert(&in.l2Adverts[i])
	}
	c.unsupported()
	return &c.res
}

func (c *converter) note(src, field, format string, args ...any) {
	c.res.Notes = append(c.res.Notes, Note{Source: src, Field: field, Text: fmt.Sprintf(format, args...)})
}

// meta names a cluster-scoped bgplb object after a namespaced MetalLB one.
// MetalLB keeps its objects in one namespace, so names rarely clash; when
// they do, the later object gets its namespace appended.
func (c *converter) meta(kind, src string, om metav1.ObjectMeta) metav1.ObjectMeta {
	name := om.Name
	for n := 2; c.names[kind+"/"+name]; n++ {
		if om.Namespace != "" && n == 2 {
			name = om.Name + "-" + om.Namespace
		} else {
			name = fmt.Sprintf("%s-%d", om.Name, n)
		}
	}
	if name != om.Name {
		c.note(src, "metadata.name", "renamed %s: a %s of that name exists already (bgplb's kinds are cluster-scoped)", name, kind)
	}
	c.names[kind+"/"+name] = true
	return metav1.ObjectMeta{Name: name, Labels: om.Labels}
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: kind}
}

func srcOf(kind string, om metav1.ObjectMeta) string {
	if om.Namespace == "" {
		return kind + " " + om.Name
	}
	return kind + " " + om.Namespace + "/" + om.Name
}

// addresses keeps the entries bgplb accepts. MetalLB takes a CIDR with
// host bits set and means its network; bgplb refuses it, so it is masked.
func (c *converter) addresses(src string, in []string) []string {
	var out []string
	for i, a := range in {
		field := fmt.Sprintf("addresses[%d]", i)
		s := strings.TrimSpace(a)
		if strings.Contains(s, "/") {
			if p, err := netip.ParsePrefix(s); err == nil && p.Masked() != p {
				c.note(src, field, "%s has host bits set: written as %s, the network MetalLB used", s, p.Masked())
				s = p.Masked().String()
			}
		} else if lo, hi, ok := strings.Cut(s, "-"); ok {
			s = strings.TrimSpace(lo) + "-" + strings.TrimSpace(hi)
		}
		if _, err := lbmodel.ParseRange(s); err != nil {
			c.note(src, field, "not carried: %v", err)
			continue
		}
		out = append(out, s)
	}
	return out
}

var standardCommunity = regexp.MustCompile(`^[0-9]{1,5}:[0-9]{1,5}$`)
var largeCommunity = regexp.MustCompile(`^[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$`)

var wellKnown = map[string]bool{"no-export": true, "no-advertise": true, "no-export-subconfed": true, "no-peer": true,
	"blackhole": true, "graceful-shutdown": true, "accept-own": true, "llgr-stale": true, "no-llgr": true}

// communities resolves aliases (legacy bgp-communities, Community objects)
// and splits standard from large communities, as bgplb keeps them apart.
func (c *converter) communities(src, field string, in []string) (std, large []string) {
	for i, v := range in {
		val := v
		if a, ok := c.aliases[v]; ok {
			val = a
		}
		switch {
		case strings.HasPrefix(val, "large:") && largeCommunity.MatchString(strings.TrimPrefix(val, "large:")):
			l := strings.TrimPrefix(val, "large:")
			if fitsAll(l, 4294967295) {
				large = append(large, l)
				continue
			}
		case standardCommunity.MatchString(val) && fitsAll(val, 65535), wellKnown[val]:
			std = append(std, val)
			continue
		}
		c.note(src, fmt.Sprintf("%s[%d]", field, i), "not carried: %q is neither a community nor a known alias", v)
	}
	return std, large
}

func fitsAll(s string, max uint64) bool {
	for _, p := range strings.Split(s, ":") {
		if n, err := strconv.ParseUint(p, 10, 64); err != nil || n > max {
			return false
		}
	}
	return true
}

// unsupported adds what bgplb accepts but does not do yet, and the BFD
// policies routers name that the input lacks, in the words the controller
// uses for the objects' Supported and ResolvedRefs conditions.
func (c *converter) unsupported() {
	bfdExists := func(name string) bool {
		return slices.ContainsFunc(c.res.BFDPolicies, func(p v1alpha1.BFDPolicy) bool { return p.Name == name })
	}
	for i := range c.res.Routers {
		r := &c.res.Routers[i]
		for _, s := range slices.Concat(lbmodel.PeerUnsupported(&r.Spec), lbmodel.PeerUnresolved(&r.Spec, bfdExists)) {
			c.note("BGPRouter "+r.Name, "", "%s", s)
		}
	}
	for i := range c.res.BFDPolicies {
		p := &c.res.BFDPolicies[i]
		_, unsupported := lbmodel.BFDConfig(&p.Spec)
		for _, s := range unsupported {
			c.note("BFDPolicy "+p.Name, "", "%s", s)
		}
	}
}

// l2Open notes, for an L2 policy left with no interfaces, where bgplb's
// meaning differs from MetalLB's: MetalLB answers on every interface of
// the node, bgplb only on those holding an address on the Service
// address's subnet, so that it never answers on a link the address does
// not belong to. Clients on another link lose the address unless the
// operator lists the interfaces.
func (c *converter) l2Open(src, field string) {
	c.note(src, field, "empty, which differs from MetalLB: MetalLB answered ARP/NDP on every interface of the node, "+
		"bgplb answers only on the interfaces holding an address on the Service address's subnet; "+
		"list the interfaces (globs such as \"eth*\" work) if clients reach the nodes through another one")
}
