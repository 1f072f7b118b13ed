package router

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// kernelProtos are the route protocols of the kernel's rtnetlink.h, which
// iproute2 names the same way: the names a config may use even where no
// rt_protos file is installed.
var kernelProtos = map[string]uint8{
	"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9, "mrt": 10, "zebra": 11,
	"bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15, "dhcp": 16, "mrouted": 17, "keepalived": 18,
	"babel": 42, "openr": 99, "bgp": 186, "isis": 187, "ospf": 188, "rip": 189, "eigrp": 192,
}

// rtProtoFiles are where iproute2 looks up protocol names.
var rtProtoFiles = []string{"/usr/share/iproute2/rt_protos", "/etc/iproute2/rt_protos"}

// systemProtos returns the kernel's protocol names plus those of the
// system's iproute2 tables (rt_protos and rt_protos.d/*.conf).
func systemProtos() map[string]uint8 {
	m := make(map[string]uint8, len(kernelProtos))
	for k, v := range kernelProtos {
		m[k] = v
	}
	files := rtProtoFiles
	for _, f := range rtProtoFiles {
		more, _ := filepath.Glob(f + ".d/*.conf")
		files = append(files, more...)
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			parseRTProtos(string(b), m)
		}
	}
	return m
}

// parseRTProtos adds the "number name" lines of an rt_protos file to m;
// comments, blank and malformed lines are skipped. A name given two numbers
// is the lower one, as `ip route ... proto NAME` reads it: FRR's
// rt_protos.d/frr.conf names 196 "static", and "static" is still 4.
func parseRTProtos(text string, m map[string]uint8) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 0, 8)
		if err != nil {
			continue
		}
		if old, ok := m[f[1]]; !ok || uint8(n) < old {
			m[f[1]] = uint8(n)
		}
	}
}
