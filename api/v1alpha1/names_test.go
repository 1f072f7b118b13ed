package v1alpha1

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// foreignResource is one CRD of a project often installed beside bgplb.
type foreignResource struct {
	project, group, kind string
	// names are its plural, singular and short names; the lower-cased kind
	// is added by the test, as kubectl matches it too.
	names []string
}

// foreignResources are the CRDs of Calico, Cilium and MetalLB: kubectl
// resolves `kubectl get NAME` across API groups, so a plural, singular,
// short name or kind of ours equal to one of theirs makes the command pick
// one group by its own order, and a user gets the other project's objects
// (or ours) without being told. Taken from the CRDs in their trees:
// Calico 87c1590 (libcalico-go/config/crd, api/config/crd, the operator's
// and the migration CRDs), Cilium v1.20.2 and v1.16.0
// (pkg/k8s/apis/cilium.io/client/crds; v1.16 for the kinds since removed),
// MetalLB 7938d3f (config/crd/bases and those of its history) and frr-k8s,
// which MetalLB installs in its FRR-K8s mode.
var foreignResources = []foreignResource{
	{"Calico", "crd.projectcalico.org", "BGPConfiguration", []string{"bgpconfigurations", "bgpconfiguration"}},
	{"Calico", "crd.projectcalico.org", "BGPFilter", []string{"bgpfilters", "bgpfilter"}},
	{"Calico", "crd.projectcalico.org", "BGPPeer", []string{"bgppeers", "bgppeer"}},
	{"Calico", "crd.projectcalico.org", "BlockAffinity", []string{"blockaffinities", "blockaffinity"}},
	{"Calico", "crd.projectcalico.org", "CalicoNodeStatus", []string{"caliconodestatuses", "caliconodestatus"}},
	{"Calico", "crd.projectcalico.org", "ClusterInformation", []string{"clusterinformations", "clusterinformation"}},
	{"Calico", "crd.projectcalico.org", "FelixConfiguration", []string{"felixconfigurations", "felixconfiguration"}},
	{"Calico", "crd.projectcalico.org", "GlobalNetworkPolicy", []string{"globalnetworkpolicies", "globalnetworkpolicy"}},
	{"Calico", "crd.projectcalico.org", "GlobalNetworkSet", []string{"globalnetworksets", "globalnetworkset"}},
	{"Calico", "crd.projectcalico.org", "HostEndpoint", []string{"hostendpoints", "hostendpoint"}},
	{"Calico", "crd.projectcalico.org", "IPAMBlock", []string{"ipamblocks", "ipamblock"}},
	{"Calico", "crd.projectcalico.org", "IPAMConfig", []string{"ipamconfigs", "ipamconfig"}},
	{"Calico", "crd.projectcalico.org", "IPAMHandle", []string{"ipamhandles", "ipamhandle"}},
	{"Calico", "crd.projectcalico.org", "IPPool", []string{"ippools", "ippool"}},
	{"Calico", "crd.projectcalico.org", "IPReservation", []string{"ipreservations", "ipreservation"}},
	{"Calico", "crd.projectcalico.org", "KubeControllersConfiguration", []string{"kubecontrollersconfigurations", "kubecontrollersconfiguration"}},
	{"Calico", "crd.projectcalico.org", "NetworkPolicy", []string{"networkpolicies", "networkpolicy"}},
	{"Calico", "crd.projectcalico.org", "NetworkSet", []string{"networksets", "networkset"}},
	{"Calico", "crd.projectcalico.org", "StagedGlobalNetworkPolicy", []string{"stagedglobalnetworkpolicies", "stagedglobalnetworkpolicy"}},
	{"Calico", "crd.projectcalico.org", "StagedKubernetesNetworkPolicy", []string{"stagedkubernetesnetworkpolicies", "stagedkubernetesnetworkpolicy"}},
	{"Calico", "crd.projectcalico.org", "StagedNetworkPolicy", []string{"stagednetworkpolicies", "stagednetworkpolicy"}},
	{"Calico", "crd.projectcalico.org", "Tier", []string{"tiers", "tier"}},
	{"Calico", "migration.projectcalico.org", "DatastoreMigration", []string{"datastoremigrations", "datastoremigration"}},
	{"Calico", "operator.tigera.io", "APIServer", []string{"apiservers", "apiserver"}},
	{"Calico", "operator.tigera.io", "GatewayAPI", []string{"gatewayapis", "gatewayapi"}},
	{"Calico", "operator.tigera.io", "Goldmane", []string{"goldmanes", "goldmane"}},
	{"Calico", "operator.tigera.io", "ImageSet", []string{"imagesets", "imageset"}},
	{"Calico", "operator.tigera.io", "Installation", []string{"installations", "installation"}},
	{"Calico", "operator.tigera.io", "Istio", []string{"istios", "istio"}},
	{"Calico", "operator.tigera.io", "ManagementClusterConnection", []string{"managementclusterconnections", "managementclusterconnection"}},
	{"Calico", "operator.tigera.io", "TigeraStatus", []string{"tigerastatuses", "tigerastatus"}},
	{"Calico", "operator.tigera.io", "Whisker", []string{"whiskers", "whisker"}},
	{"Calico", "policy.networking.k8s.io", "ClusterNetworkPolicy", []string{"clusternetworkpolicies", "clusternetworkpolicy", "cnp"}},
	{"Calico", "projectcalico.org", "BGPConfiguration", []string{"bgpconfigurations", "bgpconfiguration", "bgpconfig", "bgpconfigs"}},
	{"Calico", "projectcalico.org", "BGPFilter", []string{"bgpfilters", "bgpfilter"}},
	{"Calico", "projectcalico.org", "BGPPeer", []string{"bgppeers", "bgppeer"}},
	{"Calico", "projectcalico.org", "BlockAffinity", []string{"blockaffinities", "blockaffinity", "affinity", "affinities"}},
	{"Calico", "projectcalico.org", "CalicoNodeStatus", []string{"caliconodestatuses", "caliconodestatus"}},
	{"Calico", "projectcalico.org", "ClusterInformation", []string{"clusterinformations", "clusterinformation", "clusterinfo", "clusterinfos"}},
	{"Calico", "projectcalico.org", "FelixConfiguration", []string{"felixconfigurations", "felixconfiguration"}},
	{"Calico", "projectcalico.org", "GlobalNetworkPolicy", []string{"globalnetworkpolicies", "globalnetworkpolicy", "gnp", "cgnp"}},
	{"Calico", "projectcalico.org", "GlobalNetworkSet", []string{"globalnetworksets", "globalnetworkset", "gns"}},
	{"Calico", "projectcalico.org", "HostEndpoint", []string{"hostendpoints", "hostendpoint", "hep", "heps"}},
	{"Calico", "projectcalico.org", "IPAMBlock", []string{"ipamblocks", "ipamblock"}},
	{"Calico", "projectcalico.org", "IPAMConfiguration", []string{"ipamconfigurations", "ipamconfiguration", "ipamconfig", "ipamconfigs"}},
	{"Calico", "projectcalico.org", "IPAMHandle", []string{"ipamhandles", "ipamhandle"}},
	{"Calico", "projectcalico.org", "IPPool", []string{"ippools", "ippool"}},
	{"Calico", "projectcalico.org", "IPReservation", []string{"ipreservations", "ipreservation"}},
	{"Calico", "projectcalico.org", "KubeControllersConfiguration", []string{"kubecontrollersconfigurations", "kubecontrollersconfiguration", "kcc", "kccs"}},
	{"Calico", "projectcalico.org", "NetworkPolicy", []string{"networkpolicies", "networkpolicy", "cnp", "caliconetworkpolicy"}},
	{"Calico", "projectcalico.org", "NetworkSet", []string{"networksets", "networkset"}},
	{"Calico", "projectcalico.org", "StagedGlobalNetworkPolicy", []string{"stagedglobalnetworkpolicies", "stagedglobalnetworkpolicy", "sgnp"}},
	{"Calico", "projectcalico.org", "StagedKubernetesNetworkPolicy", []string{"stagedkubernetesnetworkpolicies", "stagedkubernetesnetworkpolicy", "sknp"}},
	{"Calico", "projectcalico.org", "StagedNetworkPolicy", []string{"stagednetworkpolicies", "stagednetworkpolicy", "scnp", "snp"}},
	{"Calico", "projectcalico.org", "Tier", []string{"tiers", "tier"}},
	{"Cilium", "cilium.io", "CiliumBGPAdvertisement", []string{"ciliumbgpadvertisements", "ciliumbgpadvertisement", "cbgpadvert"}},
	{"Cilium", "cilium.io", "CiliumBGPClusterConfig", []string{"ciliumbgpclusterconfigs", "ciliumbgpclusterconfig", "cbgpcluster"}},
	{"Cilium", "cilium.io", "CiliumBGPNodeConfig", []string{"ciliumbgpnodeconfigs", "ciliumbgpnodeconfig", "cbgpnode"}},
	{"Cilium", "cilium.io", "CiliumBGPNodeConfigOverride", []string{"ciliumbgpnodeconfigoverrides", "ciliumbgpnodeconfigoverride", "cbgpnodeoverride"}},
	{"Cilium", "cilium.io", "CiliumBGPPeerConfig", []string{"ciliumbgppeerconfigs", "ciliumbgppeerconfig", "cbgppeer"}},
	{"Cilium", "cilium.io", "CiliumBGPPeeringPolicy", []string{"ciliumbgppeeringpolicies", "ciliumbgppeeringpolicy", "bgpp"}},
	{"Cilium", "cilium.io", "CiliumCIDRGroup", []string{"ciliumcidrgroups", "ciliumcidrgroup", "ccg"}},
	{"Cilium", "cilium.io", "CiliumClusterwideEnvoyConfig", []string{"ciliumclusterwideenvoyconfigs", "ciliumclusterwideenvoyconfig", "ccec"}},
	{"Cilium", "cilium.io", "CiliumClusterwideNetworkPolicy", []string{"ciliumclusterwidenetworkpolicies", "ciliumclusterwidenetworkpolicy", "ccnp"}},
	{"Cilium", "cilium.io", "CiliumDatapathPlugin", []string{"ciliumdatapathplugins", "ciliumdatapathplugin", "cddp"}},
	{"Cilium", "cilium.io", "CiliumEgressGatewayPolicy", []string{"ciliumegressgatewaypolicies", "ciliumegressgatewaypolicy", "cegp"}},
	{"Cilium", "cilium.io", "CiliumEndpoint", []string{"ciliumendpoints", "ciliumendpoint", "cep", "ciliumep"}},
	{"Cilium", "cilium.io", "CiliumEndpointSlice", []string{"ciliumendpointslices", "ciliumendpointslice", "ces"}},
	{"Cilium", "cilium.io", "CiliumEnvoyConfig", []string{"ciliumenvoyconfigs", "ciliumenvoyconfig", "cec"}},
	{"Cilium", "cilium.io", "CiliumExternalWorkload", []string{"ciliumexternalworkloads", "ciliumexternalworkload", "cew"}},
	{"Cilium", "cilium.io", "CiliumGatewayClassConfig", []string{"ciliumgatewayclassconfigs", "ciliumgatewayclassconfig", "cgcc"}},
	{"Cilium", "cilium.io", "CiliumIdentity", []string{"ciliumidentities", "ciliumidentity", "ciliumid"}},
	{"Cilium", "cilium.io", "CiliumL2AnnouncementPolicy", []string{"ciliuml2announcementpolicies", "ciliuml2announcementpolicy", "l2announcement"}},
	{"Cilium", "cilium.io", "CiliumLoadBalancerIPPool", []string{"ciliumloadbalancerippools", "ciliumloadbalancerippool", "ippools", "ippool", "lbippool", "lbippools"}},
	{"Cilium", "cilium.io", "CiliumLocalRedirectPolicy", []string{"ciliumlocalredirectpolicies", "ciliumlocalredirectpolicy", "clrp"}},
	{"Cilium", "cilium.io", "CiliumNetworkPolicy", []string{"ciliumnetworkpolicies", "ciliumnetworkpolicy", "cnp", "ciliumnp"}},
	{"Cilium", "cilium.io", "CiliumNode", []string{"ciliumnodes", "ciliumnode", "cn", "ciliumn"}},
	{"Cilium", "cilium.io", "CiliumNodeConfig", []string{"ciliumnodeconfigs", "ciliumnodeconfig"}},
	{"Cilium", "cilium.io", "CiliumPodIPPool", []string{"ciliumpodippools", "ciliumpodippool", "cpip"}},
	{"MetalLB", "frrk8s.metallb.io", "BGPSessionState", []string{"bgpsessionstates", "bgpsessionstate"}},
	{"MetalLB", "frrk8s.metallb.io", "FRRConfiguration", []string{"frrconfigurations", "frrconfiguration"}},
	{"MetalLB", "frrk8s.metallb.io", "FRRK8sConfiguration", []string{"frrk8sconfigurations", "frrk8sconfiguration"}},
	{"MetalLB", "frrk8s.metallb.io", "FRRNodeState", []string{"frrnodestates", "frrnodestate"}},
	{"MetalLB", "metallb.io", "AddressPool", []string{"addresspools", "addresspool"}},
	{"MetalLB", "metallb.io", "BFDProfile", []string{"bfdprofiles", "bfdprofile"}},
	{"MetalLB", "metallb.io", "BGPAdvertisement", []string{"bgpadvertisements", "bgpadvertisement"}},
	{"MetalLB", "metallb.io", "BGPPeer", []string{"bgppeers", "bgppeer"}},
	{"MetalLB", "metallb.io", "Community", []string{"communities", "community"}},
	{"MetalLB", "metallb.io", "ConfigurationState", []string{"configurationstates", "configurationstate"}},
	{"MetalLB", "metallb.io", "ConfigurationStatus", []string{"configurationstatuses", "configurationstatus"}},
	{"MetalLB", "metallb.io", "IPAddressPool", []string{"ipaddresspools", "ipaddresspool"}},
	{"MetalLB", "metallb.io", "IPPool", []string{"ippools", "ippool"}},
	{"MetalLB", "metallb.io", "L2Advertisement", []string{"l2advertisements", "l2advertisement"}},
	{"MetalLB", "metallb.io", "ServiceBGPStatus", []string{"servicebgpstatuses", "servicebgpstatus"}},
	{"MetalLB", "metallb.io", "ServiceL2Status", []string{"servicel2statuses", "servicel2status"}},
}

// foreignCategories are the categories those CRDs are in: `kubectl get
// bgplb` must list bgplb's objects alone.
var foreignCategories = []string{"cilium", "ciliumbgp", "ciliumpolicy"}

// ourCategory is the category of every bgplb CRD.
const ourCategory = "bgplb"

// clashes returns, for each name the foreign CRDs also answer to, a line
// naming whose it is.
func clashes(names []string) []string {
	owners := map[string][]string{}
	for _, r := range foreignResources {
		for _, n := range append([]string{strings.ToLower(r.kind)}, r.names...) {
			owner := r.project + " " + r.kind + "." + r.group
			if !slices.Contains(owners[n], owner) {
				owners[n] = append(owners[n], owner)
			}
		}
	}
	var out []string
	for _, n := range names {
		if o := owners[n]; len(o) > 0 {
			out = append(out, n+" is also "+strings.Join(o, ", "))
		}
	}
	return out
}

// crdNames are the names kubectl matches a CRD by.
func crdNames(n apiextensionsv1.CustomResourceDefinitionNames) []string {
	return append([]string{n.Plural, n.Singular, strings.ToLower(n.Kind)}, n.ShortNames...)
}

// TestNamesDoNotClash reads the generated CRDs and fails when a name of
// ours is one Calico, Cilium or MetalLB use, when two of ours share a name,
// or when a CRD is outside the bgplb category.
func TestNamesDoNotClash(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", crdDir, err)
	}
	seen := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		n := crd.Spec.Names
		for _, c := range clashes(crdNames(n)) {
			t.Errorf("%s (%s): %s, so kubectl get would be ambiguous beside it", filepath.Base(f), n.Kind, c)
		}
		for _, name := range crdNames(n) {
			if other, ok := seen[name]; ok && other != n.Kind {
				t.Errorf("%s and %s both answer to %q", other, n.Kind, name)
			}
			seen[name] = n.Kind
		}
		if !slices.Contains(n.Categories, ourCategory) {
			t.Errorf("%s (%s): categories %v lack %q, so kubectl get %s leaves it out", filepath.Base(f), n.Kind, n.Categories, ourCategory, ourCategory)
		}
	}
	if slices.Contains(foreignCategories, ourCategory) || len(clashes([]string{ourCategory})) > 0 {
		t.Errorf("category %q is also another project's", ourCategory)
	}
}

// TestClashTableCatchesOldNames keeps the table honest: every name the
// first v1alpha1 kinds had (IPPool, BGPPeer, BGPAdvertisement,
// L2Advertisement, BFDProfile) is one of the clashes this change removed.
func TestClashTableCatchesOldNames(t *testing.T) {
	old := []string{
		"ippools", "ippool",
		"bgppeers", "bgppeer",
		"bgpadvertisements", "bgpadvertisement",
		"l2advertisements", "l2advertisement",
		"bfdprofiles", "bfdprofile",
	}
	got := clashes(old)
	if len(got) != len(old) {
		t.Errorf("clashes(%v) = %d lines, want one per name:\n%s", old, len(got), strings.Join(got, "\n"))
	}
}
