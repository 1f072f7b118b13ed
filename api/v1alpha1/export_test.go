package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The CRD validator, for the tests of package v1alpha1_test: those may
// import internal/lbmodel (which imports this package) to hold its parsers
// to the CRD's rules.

// NewObjectValidator is newObjectValidator.
func NewObjectValidator(t testing.TB, kind string) *objectValidator {
	return newObjectValidator(t, kind)
}

// Validate is validate.
func (v *objectValidator) Validate(t testing.TB, doc string) field.ErrorList {
	return v.validate(t, doc)
}
