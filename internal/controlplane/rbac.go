package controlplane

import (
	"bytes"
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Grant gives user the roles of a generated RBAC file (config/rbac/ROLE/
// role.yaml, which controller-gen writes as ClusterRoles and Roles): each
// ClusterRole through a ClusterRoleBinding, each Role created in namespace,
// the one the role's holder runs in (whatever namespace the file names),
// through a RoleBinding there. What exists already is left alone, so a
// repeated step does no harm.
func Grant(ctx context.Context, c client.Client, roleYAML []byte, user, namespace string) error {
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	for doc := range bytes.SplitSeq(roleYAML, []byte("\n---")) {
		var head metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &head); err != nil {
			return fmt.Errorf("controlplane: rbac: %w", err)
		}
		var objs []client.Object
		switch head.Kind {
		case "":
			continue // an empty document
		case "ClusterRole":
			var r rbacv1.ClusterRole
			if err := yaml.UnmarshalStrict(doc, &r); err != nil {
				return fmt.Errorf("controlplane: rbac: %w", err)
			}
			objs = append(objs, &r, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: r.Name}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.Name}})
		case "Role":
			var r rbacv1.Role
			if err := yaml.UnmarshalStrict(doc, &r); err != nil {
				return fmt.Errorf("controlplane: rbac: %w", err)
			}
			r.Namespace = namespace
			objs = append(objs, &r, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: r.Name}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.Name}})
		default:
			return fmt.Errorf("controlplane: rbac: a %s in a role file", head.Kind)
		}
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("controlplane: rbac: creating %T %s: %w", o, o.GetName(), err)
			}
		}
	}
	return nil
}
