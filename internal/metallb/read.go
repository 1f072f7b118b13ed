package metallb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Input is a MetalLB configuration gathered from any number of documents.
// Conversion waits until all are read: a BGPAdvertisement may name a
// Community alias defined in a later file.
type Input struct {
	legacy      []sourced[legacyConfig]
	pools       []object[ipAddressPoolSpec]
	peers       []object[bgpPeerSpec]
	bgpAdverts  []object[bgpAdvertisementSpec]
	l2Adverts   []object[l2AdvertisementSpec]
	communities []object[communitySpec]
	bfd         []object[bfdProfileSpec]
	notes       []Note
}

type sourced[T any] struct {
	source string
	v      T
}

// ReadPath reads a file, every *.yaml, *.yml and *.json file of a directory
// (not its subdirectories, in name order), or stdin when path is "-".
func ReadPath(path string, stdin io.Reader) (*Input, error) {
	in := &Input{}
	if path == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, err
		}
		return in, in.Add("stdin", data)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no *.yaml, *.yml or *.json file", path)
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := in.Add(f, data); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Add reads the YAML or JSON documents of one file.
func (in *Input) Add(source string, data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		if err := in.addDoc(fmt.Sprintf("%s#%d", source, i), doc); err != nil {
			return err
		}
	}
}

func (in *Input) addDoc(source string, doc []byte) error {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []rawItem         `json:"items"`
		Data       map[string]string `json:"data"`
		Peers      any               `json:"peers"`
		Pools      any               `json:"address-pools"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	group, _, _ := strings.Cut(head.APIVersion, "/")
	switch {
	case head.APIVersion == "" && head.Kind == "" && head.Peers == nil && head.Pools == nil:
		return nil // empty document, or comments only
	case head.Kind == "List" || strings.HasSuffix(head.Kind, "List") && len(head.Items) > 0:
		for i, item := range head.Items {
			if err := in.addDoc(fmt.Sprintf("%s items[%d]", source, i), item); err != nil {
				return err
			}
		}
		return nil
	case head.Kind == "ConfigMap" && head.APIVersion == "v1":
		cfg, ok := head.Data["config"]
		if !ok {
			in.note(source, "ConfigMap", "", "skipped: no \"config\" key, so not MetalLB's configuration")
			return nil
		}
		return in.addLegacy(source, []byte(cfg))
	case head.Kind == "" && (head.Peers != nil || head.Pools != nil):
		return in.addLegacy(source, doc)
	case group == "metallb.io":
		return in.addCRD(source, head.Kind, doc)
	}
	in.note(source, head.Kind, "", "skipped: not a MetalLB object ("+head.APIVersion+")")
	return nil
}

// rawItem is one raw list item; sigs.k8s.io/yaml hands items over as JSON.
type rawItem []byte

func (j *rawItem) UnmarshalJSON(b []byte) error { *j = append((*j)[:0], b...); return nil }

func (in *Input) addLegacy(source string, data []byte) error {
	var cfg legacyConfig
	if err := in.decode(source, "ConfigMap", data, &cfg); err != nil {
		return err
	}
	in.legacy = append(in.legacy, sourced[legacyConfig]{source, cfg})
	return nil
}

func (in *Input) addCRD(source, kind string, doc []byte) error {
	var err error
	switch kind {
	case "IPAddressPool":
		err = decodeInto(in, source, kind, doc, &in.pools)
	case "BGPPeer":
		err = decodeInto(in, source, kind, doc, &in.peers)
	case "BGPAdvertisement":
		err = decodeInto(in, source, kind, doc, &in.bgpAdverts)
	case "L2Advertisement":
		err = decodeInto(in, source, kind, doc, &in.l2Adverts)
	case "Community":
		err = decodeInto(in, source, kind, doc, &in.communities)
	case "BFDProfile":
		err = decodeInto(in, source, kind, doc, &in.bfd)
	default:
		in.note(source, kind, "", "skipped: bgplb has no counterpart for this MetalLB kind")
	}
	return err
}

func decodeInto[S any](in *Input, source, kind string, doc []byte, list *[]object[S]) error {
	var o object[S]
	if err := in.decode(source, kind, doc, &o); err != nil {
		return err
	}
	*list = append(*list, o)
	return nil
}

// decode is strict first, so that a field this package does not know is
// reported rather than silently lost, then lenient, to convert the rest.
func (in *Input) decode(source, kind string, data []byte, v any) error {
	if err := yaml.UnmarshalStrict(data, v); err == nil {
		return nil
	} else if err2 := yaml.Unmarshal(data, v); err2 != nil {
		return fmt.Errorf("%s: %s: %w", source, kind, err2)
	} else {
		in.note(source, kind, "", "unknown field(s) not carried: "+err.Error())
	}
	return nil
}

func (in *Input) note(source, kind, field, text string) {
	in.notes = append(in.notes, Note{Source: source + " " + kind, Field: field, Text: text})
}
