package aws

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// cloudFormationPath is the installation's CloudFormation template, from this package's
// directory.
const cloudFormationPath = "../../manifests/cloudformation.yaml"

// impliedActions are the IAM actions the controller needs that are no call of pkg/aws's
// interfaces, each with the reason it needs it.
var impliedActions = map[string]string{
	// The instances launch with the node instance profile, which passes its role to EC2.
	"iam:PassRole": "CreateFleet launches with the node instance profile",
	// An instant fleet launches its instances through RunInstances, and IAM authorizes the
	// caller for both.
	"ec2:RunInstances": "CreateFleet launches its instances through RunInstances",
	// Tags given at creation (the TagSpecifications of CreateFleet and CreateLaunchTemplate)
	// are authorized as ec2:CreateTags with the condition key ec2:CreateAction.
	"ec2:CreateTags": "CreateFleet and CreateLaunchTemplate tag what they create",
}

// policyStatement is one statement of an IAM policy document.
type policyStatement struct {
	Sid       string                                `json:"Sid"`
	Effect    string                                `json:"Effect"`
	Action    stringOrList                          `json:"Action"`
	Resource  json.RawMessage                       `json:"Resource"`
	Condition map[string]map[string]json.RawMessage `json:"Condition"`
}

// stringOrList is an IAM policy element that holds one string or a list of them.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*s = list
	return nil
}

// controllerPolicy reads the statements of the ControllerPolicy resource of the
// CloudFormation template.
func controllerPolicy(t *testing.T) []policyStatement {
	t.Helper()
	data, err := os.ReadFile(cloudFormationPath)
	if err != nil {
		t.Fatal(err)
	}
	var template struct {
		Resources map[string]struct {
			Type       string `json:"Type"`
			Properties struct {
				PolicyDocument struct {
					Statement []policyStatement `json:"Statement"`
				} `json:"PolicyDocument"`
			} `json:"Properties"`
		} `json:"Resources"`
	}
	if err := yaml.Unmarshal(data, &template); err != nil {
		t.Fatalf("parsing %s: %v", cloudFormationPath, err)
	}
	policy, ok := template.Resources["ControllerPolicy"]
	if !ok || policy.Type != "AWS::IAM::ManagedPolicy" {
		t.Fatalf("%s: no AWS::IAM::ManagedPolicy named ControllerPolicy in Resources", cloudFormationPath)
	}
	if len(policy.Properties.PolicyDocument.Statement) == 0 {
		t.Fatalf("%s: ControllerPolicy has no statements", cloudFormationPath)
	}
	return policy.Properties.PolicyDocument.Statement
}

// TestControllerPolicyMatchesAPICalls checks that the controller policy of
// manifests/cloudformation.yaml allows exactly the AWS operations pkg/aws can call (the
// methods of its per-service interfaces, as "<service>:<Operation>") and the actions those
// imply (impliedActions): a call without its action fails in production with AccessDenied,
// and an action without its call is a permission nobody needs.
func TestControllerPolicyMatchesAPICalls(t *testing.T) {
	want := map[string]string{}
	for service, ops := range apiOperations() {
		for _, op := range ops {
			want[service+":"+op] = "pkg/aws calls " + service + " " + op
		}
	}
	for action, why := range impliedActions {
		if _, ok := want[action]; ok {
			t.Errorf("impliedActions lists %s, which pkg/aws calls itself: remove it there", action)
		}
		want[action] = why
	}

	got := map[string]bool{}
	for _, st := range controllerPolicy(t) {
		if st.Effect != "Allow" {
			t.Errorf("statement %q: Effect %q, want Allow (the policy only grants)", st.Sid, st.Effect)
		}
		for _, action := range st.Action {
			if strings.Contains(action, "*") {
				t.Errorf("statement %q: action %q has a wildcard; list the operations", st.Sid, action)
			}
			got[action] = true
		}
	}
	for _, action := range slices.Sorted(maps.Keys(want)) {
		if !got[action] {
			t.Errorf("%s: the controller policy does not allow %s (%s)", cloudFormationPath, action, want[action])
		}
	}
	for _, action := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[action]; !ok {
			t.Errorf("%s: the controller policy allows %s, which pkg/aws never calls", cloudFormationPath, action)
		}
	}
}

// TestControllerPolicyScopesMutations checks the conditions that keep the controller to its
// own cluster: what it deletes must carry the cluster tag, what it tags it must be creating,
// and the only role it passes is not any role.
func TestControllerPolicyScopesMutations(t *testing.T) {
	for _, st := range controllerPolicy(t) {
		for _, action := range st.Action {
			switch action {
			case "ec2:TerminateInstances", "ec2:DeleteLaunchTemplate":
				if !hasCondition(st, "StringEquals", "aws:ResourceTag/nodewright.dev/cluster") {
					t.Errorf("statement %q allows %s without the condition aws:ResourceTag/nodewright.dev/cluster", st.Sid, action)
				}
			case "ec2:CreateTags":
				for _, key := range []string{"ec2:CreateAction", "aws:RequestTag/nodewright.dev/cluster"} {
					if !hasCondition(st, "StringEquals", key) {
						t.Errorf("statement %q allows %s without the condition %s", st.Sid, action, key)
					}
				}
			case "ec2:CreateLaunchTemplate":
				if !hasCondition(st, "StringEquals", "aws:RequestTag/nodewright.dev/cluster") {
					t.Errorf("statement %q allows %s without the condition aws:RequestTag/nodewright.dev/cluster", st.Sid, action)
				}
			case "iam:PassRole":
				if string(st.Resource) == `"*"` {
					t.Errorf("statement %q allows %s on every role; want the node role only", st.Sid, action)
				}
				if !hasCondition(st, "StringEquals", "iam:PassedToService") {
					t.Errorf("statement %q allows %s without the condition iam:PassedToService", st.Sid, action)
				}
			}
		}
	}
}

func hasCondition(st policyStatement, operator, key string) bool {
	_, ok := st.Condition[operator][key]
	return ok
}

// TestAPIOperationsCoverEveryInterface fails when pkg/aws gains a per-service interface (a
// type named <Service>API) that apiOperations, and so the policy test, does not read.
func TestAPIOperationsCoverEveryInterface(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	ops := apiOperations()
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok || !strings.HasSuffix(spec.Name.Name, "API") {
				return true
			}
			if _, isInterface := spec.Type.(*ast.InterfaceType); !isInterface {
				return true
			}
			service := strings.ToLower(strings.TrimSuffix(spec.Name.Name, "API"))
			if _, ok := ops[service]; !ok {
				t.Errorf("%s: interface %s is not in apiOperations: add it as %q so the IAM policy test covers it",
					fset.Position(spec.Pos()), spec.Name.Name, service)
			}
			return true
		})
	}
}
