package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// moduleDir is the Terraform module under test, relative to this package.
const moduleDir = "terraform"

// notVariables lists the keys of configuration_example.json that have no
// module variable, and why. Every other key must have one.
var notVariables = map[string]string{
	// A variable would copy the token into the Terraform state (and plan
	// output). The module creates an empty Secret Manager secret; the token
	// is added as a version of it outside Terraform.
	"gitlab_token": "the token must not land in the Terraform state",
	// Not the user's to choose: the module points it at the latest version
	// of the secret it creates.
	"gitlab_token_secret": "set by the module to its own secret",
	// cmd/gitlab-sync only: the function writes BigQuery, not DuckDB.
	"duckdb_path": "local runs only",
	// cmd/gitlab-sync only: the function keeps its state in Firestore.
	"state_path": "local runs only",
}

// configVariable is what the module must declare for one configuration key:
// the function's own type and default, so that an unset variable behaves as
// an unset environment variable would.
type configVariable struct {
	typ      cty.Type
	def      cty.Value // ignored when required
	required bool
}

// configVariables covers every key of configuration_example.json that is not
// in notVariables. A key missing here fails TestVariables_ConfigKeys, so a new
// configuration key is a deliberate change in three places: the example, this
// table and variables.tf.
var configVariables = map[string]configVariable{
	"gitlab_base_url":           {typ: cty.String, def: cty.StringVal("https://gitlab.com")},
	"gitlab_project_ids":        {typ: cty.String, required: true},
	"start_date":                {typ: cty.String, def: cty.StringVal("")},
	"sync_projects_table":       {typ: cty.Bool, def: cty.True},
	"sync_merge_requests_table": {typ: cty.Bool, def: cty.True},
	"sync_users_table":          {typ: cty.Bool, def: cty.True},
	"max_records_per_sync":      {typ: cty.Number, def: cty.NumberIntVal(10000)},
	"sync_interval_hours":       {typ: cty.Number, def: cty.NumberIntVal(1)},
	"max_run_minutes":           {typ: cty.Number, def: cty.NumberIntVal(50)},
	"bigquery_project":          {typ: cty.String, def: cty.StringVal("")},
	"bigquery_dataset":          {typ: cty.String, def: cty.StringVal("gitlab")},
	"bigquery_location":         {typ: cty.String, def: cty.StringVal("US")},
	"state_collection":          {typ: cty.String, def: cty.StringVal("gitlab_sync")},
	"connection_id":             {typ: cty.String, def: cty.StringVal("default")},
}

// requiredValues are stand-ins for the variables without a default, used
// wherever a test evaluates the module.
var requiredValues = map[string]cty.Value{
	"project_id":         cty.StringVal("my-project"),
	"gitlab_project_ids": cty.StringVal("278964,gitlab-org/gitlab-runner"),
}

func TestVariables_Documented(t *testing.T) {
	m := mustLoadModule(t)
	vars := m.variables()
	if len(vars) == 0 {
		t.Fatalf("got no variable blocks in %s, want the module's variables", moduleDir)
	}

	for _, name := range sortedKeys(vars) {
		t.Run(name, func(t *testing.T) {
			body := vars[name].Body

			desc, ok := literalString(body, "description")
			if !ok {
				t.Errorf("description: got none or not a literal string, want a literal string")
			} else if strings.TrimSpace(desc) == "" {
				t.Errorf("description: got %q, want a non-empty text", desc)
			}

			typeAttr, ok := body.Attributes["type"]
			if !ok {
				t.Fatalf("type: got none, want a type constraint")
			}
			typ, diags := typeexpr.TypeConstraint(typeAttr.Expr)
			if diags.HasErrors() {
				t.Fatalf("type: got %s, want a valid type constraint", diags)
			}

			// A default must be a constant (Terraform refuses references
			// there) of the declared type.
			if attr, ok := body.Attributes["default"]; ok {
				v, diags := attr.Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("default: got %s, want a constant", diags)
				}
				if _, err := convert.Convert(v, typ); err != nil {
					t.Errorf("default: got %#v, want a value of type %s: %v", v, typ.FriendlyName(), err)
				}
			}
		})
	}
}

func TestVariables_ConfigKeys(t *testing.T) {
	m := mustLoadModule(t)
	vars := m.variables()
	keys := mustConfigKeys(t)

	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			if why, ok := notVariables[key]; ok {
				if _, ok := vars[key]; ok {
					t.Errorf("got a variable %q, want none (%s)", key, why)
				}
				return
			}
			want, ok := configVariables[key]
			if !ok {
				t.Fatalf("got configuration key %q unknown to this test, want it in configVariables (or notVariables)", key)
			}
			block, ok := vars[key]
			if !ok {
				t.Fatalf("got no variable %q, want one named as the configuration key", key)
			}

			typ := mustType(t, block)
			if !typ.Equals(want.typ) {
				t.Errorf("type: got %s, want %s", typ.FriendlyName(), want.typ.FriendlyName())
			}

			attr, hasDefault := block.Body.Attributes["default"]
			switch {
			case want.required && hasDefault:
				t.Errorf("default: got one, want none (the function requires %s)", key)
			case !want.required && !hasDefault:
				t.Errorf("default: got none, want %#v", want.def)
			case !want.required:
				got, diags := attr.Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("default: %s", diags)
				}
				if got.Type() != want.def.Type() || !got.Equals(want.def).True() {
					t.Errorf("default: got %#v, want %#v", got, want.def)
				}
			}
		})
	}

	// An exception for a key that no longer exists hides nothing but
	// misleads the reader.
	for key := range notVariables {
		if !slices.Contains(keys, key) {
			t.Errorf("notVariables: got %q, want only keys of configuration_example.json", key)
		}
	}
}

func TestFunction_Environment(t *testing.T) {
	m := mustLoadModule(t)
	fn := mustOne(t, m.resources("google_cloudfunctions2_function"), "google_cloudfunctions2_function")
	env := mustEnvironment(t, fn)

	tests := []struct {
		name    string
		envKey  string
		wantRef string // prefix of a reference the value must contain
	}{
		{name: "TokenSecret", envKey: "GITLAB_TOKEN_SECRET", wantRef: "google_secret_manager_secret."},
	}
	for _, key := range mustConfigKeys(t) {
		if _, ok := notVariables[key]; ok {
			continue
		}
		tests = append(tests, struct {
			name    string
			envKey  string
			wantRef string
		}{name: key, envKey: strings.ToUpper(key), wantRef: "var." + key})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, ok := env[tt.envKey]
			if !ok {
				t.Fatalf("got no environment variable %s, want one", tt.envKey)
			}
			refs := references(expr)
			if !slices.ContainsFunc(refs, func(r string) bool { return strings.HasPrefix(r, tt.wantRef) }) {
				t.Errorf("%s: got references %q, want one to %s", tt.envKey, refs, tt.wantRef)
			}
		})
	}

	// The token itself and the local-only settings never reach the cloud.
	for _, key := range []string{"GITLAB_TOKEN", "DUCKDB_PATH", "STATE_PATH"} {
		if _, ok := env[key]; ok {
			t.Errorf("got environment variable %s, want none", key)
		}
	}
}

func TestFunction_Settings(t *testing.T) {
	m := mustLoadModule(t)
	fn := mustOne(t, m.resources("google_cloudfunctions2_function"), "google_cloudfunctions2_function")
	build := mustChild(t, fn, "build_config")
	service := mustChild(t, fn, "service_config")

	tests := []struct {
		name  string
		block *hclsyntax.Block
		attr  string
		want  cty.Value
	}{
		{name: "Runtime", block: build, attr: "runtime", want: cty.StringVal(mustGoRuntime(t))},
		{name: "EntryPoint", block: build, attr: "entry_point", want: cty.StringVal("SyncGitLab")},
		{name: "MaxInstances", block: service, attr: "max_instance_count", want: cty.NumberIntVal(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attr, ok := tt.block.Body.Attributes[tt.attr]
			if !ok {
				t.Fatalf("%s.%s: got none, want %#v", tt.block.Type, tt.attr, tt.want)
			}
			got, diags := attr.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("%s.%s: got %s, want the literal %#v", tt.block.Type, tt.attr, diags, tt.want)
			}
			if got.Type() != tt.want.Type() || !got.Equals(tt.want).True() {
				t.Errorf("%s.%s: got %#v, want %#v", tt.block.Type, tt.attr, got, tt.want)
			}
		})
	}

	refTests := []struct {
		name    string
		attr    string
		wantRef string
	}{
		{name: "Timeout", attr: "timeout_seconds", wantRef: "var.function_timeout_seconds"},
		{name: "RuntimeAccount", attr: "service_account_email", wantRef: "google_service_account."},
	}
	for _, tt := range refTests {
		t.Run(tt.name, func(t *testing.T) {
			attr, ok := service.Body.Attributes[tt.attr]
			if !ok {
				t.Fatalf("service_config.%s: got none, want one", tt.attr)
			}
			refs := references(attr.Expr)
			if !slices.ContainsFunc(refs, func(r string) bool { return strings.HasPrefix(r, tt.wantRef) }) {
				t.Errorf("service_config.%s: got references %q, want one to %s", tt.attr, refs, tt.wantRef)
			}
		})
	}
}

// TestFunction_RunBudget evaluates the function's preconditions: the run's own
// budget plus its margin must fit in the platform's timeout.
func TestFunction_RunBudget(t *testing.T) {
	m := mustLoadModule(t)
	fn := mustOne(t, m.resources("google_cloudfunctions2_function"), "google_cloudfunctions2_function")
	conds := preconditions(fn)
	if len(conds) == 0 {
		t.Fatalf("got no precondition on the function, want one on max_run_minutes and function_timeout_seconds")
	}

	tests := []struct {
		name   string
		vars   map[string]cty.Value
		wantOK bool
	}{
		{name: "Defaults", wantOK: true},
		{name: "BudgetFillsTimeout", vars: map[string]cty.Value{"max_run_minutes": cty.NumberIntVal(60)}, wantOK: false},
		{name: "NoRoomForMargin", vars: map[string]cty.Value{"max_run_minutes": cty.NumberIntVal(56)}, wantOK: false},
		{name: "ShortTimeout", vars: map[string]cty.Value{"function_timeout_seconds": cty.NumberIntVal(1800)}, wantOK: false},
		{
			name: "ShortTimeoutShortBudget",
			vars: map[string]cty.Value{
				"function_timeout_seconds": cty.NumberIntVal(1800),
				"max_run_minutes":          cty.NumberIntVal(25),
			},
			wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := m.mustEvalContext(t, tt.vars)
			if got := mustAllHold(t, ctx, conds); got != tt.wantOK {
				t.Errorf("preconditions hold: got %t, want %t", got, tt.wantOK)
			}
		})
	}
}

// TestVariables_Validation evaluates the validation blocks on values a user
// may write, as terraform plan would (see mustEvalContext for how closely).
func TestVariables_Validation(t *testing.T) {
	m := mustLoadModule(t)
	vars := m.variables()

	tests := []struct {
		name     string
		variable string
		value    cty.Value
		wantOK   bool
	}{
		{"ProjectIDsExample", "gitlab_project_ids", cty.StringVal("278964,gitlab-org/gitlab-runner"), true},
		{"ProjectIDsSpacesSlashes", "gitlab_project_ids", cty.StringVal(" 42 , /group/sub/project/ "), true},
		{"ProjectIDsTrailingComma", "gitlab_project_ids", cty.StringVal("42,"), true},
		{"ProjectIDsEmpty", "gitlab_project_ids", cty.StringVal(""), false},
		{"ProjectIDsOnlyCommas", "gitlab_project_ids", cty.StringVal(" , "), false},
		{"ProjectIDsBareName", "gitlab_project_ids", cty.StringVal("gitlab"), false},
		{"ProjectIDsLeadingZero", "gitlab_project_ids", cty.StringVal("042"), false},
		{"ProjectIDsTooMany", "gitlab_project_ids", cty.StringVal(strings.Repeat("1,", 1001)), false},
		{"BaseURLSubpath", "gitlab_base_url", cty.StringVal("https://example.com/gitlab"), true},
		{"BaseURLNoScheme", "gitlab_base_url", cty.StringVal("gitlab.com"), false},
		{"BaseURLWithAPI", "gitlab_base_url", cty.StringVal("https://gitlab.com/api/v4"), false},
		{"StartDateEmpty", "start_date", cty.StringVal(""), true},
		{"StartDateRFC3339", "start_date", cty.StringVal("2024-01-01T00:00:00Z"), true},
		{"StartDateDateOnly", "start_date", cty.StringVal("2024-01-01"), true},
		{"StartDateNoZone", "start_date", cty.StringVal("2024-01-01T08:30:00"), true},
		{"StartDateWords", "start_date", cty.StringVal("last year"), false},
		{"MaxRecordsZero", "max_records_per_sync", cty.NumberIntVal(0), true},
		{"MaxRecordsNegative", "max_records_per_sync", cty.NumberIntVal(-1), false},
		{"MaxRecordsFraction", "max_records_per_sync", cty.NumberFloatVal(1.5), false},
		{"IntervalZeroNoGuard", "sync_interval_hours", cty.NumberIntVal(0), true},
		{"IntervalHalfHour", "sync_interval_hours", cty.NumberFloatVal(0.5), false},
		{"RunMinutesZero", "max_run_minutes", cty.NumberIntVal(0), false},
		{"RunMinutesFraction", "max_run_minutes", cty.NumberFloatVal(2.5), false},
		{"DatasetHyphen", "bigquery_dataset", cty.StringVal("git-lab"), false},
		{"DatasetLong", "bigquery_dataset", cty.StringVal(strings.Repeat("a", 1000)), true},
		{"DatasetTooLong", "bigquery_dataset", cty.StringVal(strings.Repeat("a", 1001)), false},
		{"CollectionSlash", "state_collection", cty.StringVal("a/b"), false},
		{"ConnectionEmpty", "connection_id", cty.StringVal(""), false},
		{"ConnectionDot", "connection_id", cty.StringVal("team.a"), false},
		{"ConnectionHyphen", "connection_id", cty.StringVal("team-a_2"), true},
		{"TimeoutMax", "function_timeout_seconds", cty.NumberIntVal(3600), true},
		{"TimeoutOverMax", "function_timeout_seconds", cty.NumberIntVal(3601), false},
		{"PrefixDefault", "name_prefix", cty.StringVal("gitlab-sync"), true},
		{"PrefixUpperCase", "name_prefix", cty.StringVal("GitLab"), false},
		{"PrefixTooLong", "name_prefix", cty.StringVal("a-prefix-of-23-letters0"), false},
		{"IngressInternal", "ingress_settings", cty.StringVal("ALLOW_INTERNAL_ONLY"), true},
		{"IngressUnknown", "ingress_settings", cty.StringVal("PUBLIC"), false},
		{"RetriesTooMany", "scheduler_retry_count", cty.NumberIntVal(6), false},
	}
	// Every default, and the stand-ins for required values, must pass its
	// own validation: a broken condition fails even for good values.
	defaults := m.mustEvalContext(t, nil)
	for _, name := range sortedKeys(vars) {
		if conds := validations(vars[name]); len(conds) > 0 && !mustAllHold(t, defaults, conds) {
			t.Errorf("%s: got its default failing validation, want it to pass", name)
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block, ok := vars[tt.variable]
			if !ok {
				t.Fatalf("got no variable %q, want one", tt.variable)
			}
			conds := validations(block)
			if len(conds) == 0 {
				t.Fatalf("got no validation on %s, want one", tt.variable)
			}
			ctx := m.mustEvalContext(t, map[string]cty.Value{tt.variable: tt.value})
			if got := mustAllHold(t, ctx, conds); got != tt.wantOK {
				t.Errorf("%s = %s passes validation: got %t, want %t", tt.variable, short(tt.value), got, tt.wantOK)
			}
		})
	}
}

func TestScheduler_Schedule(t *testing.T) {
	m := mustLoadModule(t)
	job := mustOne(t, m.resources("google_cloud_scheduler_job"), "google_cloud_scheduler_job")
	scheduleExpr := job.Body.Attributes["schedule"]
	if scheduleExpr == nil {
		t.Fatalf("google_cloud_scheduler_job: got no schedule, want one")
	}

	tests := []struct {
		name              string
		vars              map[string]cty.Value
		want              string
		wantPreconditions bool // whether the job's preconditions hold
	}{
		{name: "Hourly", want: "0 * * * *", wantPreconditions: true},
		{name: "EverySixHours", vars: hours(6), want: "0 */6 * * *", wantPreconditions: true},
		{name: "Daily", vars: hours(24), want: "0 0 * * *", wantPreconditions: true},
		{name: "FiveHoursNoCron", vars: hours(5), want: "0 */5 * * *", wantPreconditions: false},
		{name: "NoGuardNoCron", vars: hours(0), want: "0 */0 * * *", wantPreconditions: false},
		{
			name: "FiveHoursOwnCron",
			vars: map[string]cty.Value{
				"sync_interval_hours": cty.NumberIntVal(5),
				"schedule":            cty.StringVal("0 0,5,10,15,20 * * *"),
			},
			want:              "0 0,5,10,15,20 * * *",
			wantPreconditions: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := m.mustEvalContext(t, tt.vars)
			got, diags := scheduleExpr.Expr.Value(ctx)
			if diags.HasErrors() {
				t.Fatalf("schedule: %s", diags)
			}
			if got.AsString() != tt.want {
				t.Errorf("schedule: got %q, want %q", got.AsString(), tt.want)
			}
			if ok := mustAllHold(t, ctx, preconditions(job)); ok != tt.wantPreconditions {
				t.Errorf("preconditions hold: got %t, want %t", ok, tt.wantPreconditions)
			}
		})
	}
}

// TestScheduler_AttemptDeadline checks that the scheduler waits as long as
// the function may run, up to Cloud Scheduler's 30-minute maximum.
func TestScheduler_AttemptDeadline(t *testing.T) {
	m := mustLoadModule(t)
	job := mustOne(t, m.resources("google_cloud_scheduler_job"), "google_cloud_scheduler_job")
	attr, ok := job.Body.Attributes["attempt_deadline"]
	if !ok {
		t.Fatalf("attempt_deadline: got none, want one that suits the function's timeout")
	}

	tests := []struct {
		name    string
		timeout int64
		want    string
	}{
		{name: "DefaultTimeoutCapped", timeout: 3600, want: "1800s"},
		{name: "AtCap", timeout: 1800, want: "1800s"},
		{name: "ShortTimeout", timeout: 600, want: "600s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := m.mustEvalContext(t, map[string]cty.Value{
				"function_timeout_seconds": cty.NumberIntVal(tt.timeout),
				"max_run_minutes":          cty.NumberIntVal(1),
			})
			got, diags := attr.Expr.Value(ctx)
			if diags.HasErrors() {
				t.Fatalf("attempt_deadline: %s", diags)
			}
			if got.AsString() != tt.want {
				t.Errorf("attempt_deadline with timeout %d s: got %q, want %q", tt.timeout, got.AsString(), tt.want)
			}
		})
	}
}

func TestScheduler_OIDC(t *testing.T) {
	m := mustLoadModule(t)
	job := mustOne(t, m.resources("google_cloud_scheduler_job"), "google_cloud_scheduler_job")
	target := mustChild(t, job, "http_target")
	oidc := mustChild(t, target, "oidc_token")

	for _, b := range target.Body.Blocks {
		if b.Type == "oauth_token" {
			t.Errorf("http_target: got an oauth_token block, want only oidc_token (Cloud Run checks ID tokens)")
		}
	}
	if _, ok := oidc.Body.Attributes["audience"]; !ok {
		t.Errorf("oidc_token.audience: got none, want the function's URL")
	}
	if !slices.ContainsFunc(job.Body.Blocks, func(b *hclsyntax.Block) bool { return b.Type == "retry_config" }) {
		t.Errorf("retry_config: got none, want one")
	}

	// The scheduler calls as its own account, not as the function's.
	attr, ok := oidc.Body.Attributes["service_account_email"]
	if !ok {
		t.Fatalf("oidc_token.service_account_email: got none, want the invoker account")
	}
	invoker := accountRefs(attr.Expr)
	fn := mustOne(t, m.resources("google_cloudfunctions2_function"), "google_cloudfunctions2_function")
	runtime := accountRefs(mustChild(t, fn, "service_config").Body.Attributes["service_account_email"].Expr)
	if len(invoker) != 1 {
		t.Fatalf("oidc_token.service_account_email: got references %q, want one google_service_account", invoker)
	}
	if slices.Contains(runtime, invoker[0]) {
		t.Errorf("oidc_token.service_account_email: got %s, the function's own account, want a separate invoker", invoker[0])
	}
}

// TestIAM_LeastPrivilege reads every IAM resource of the module.
func TestIAM_LeastPrivilege(t *testing.T) {
	m := mustLoadModule(t)

	// The roles the module may grant, and the ones it must: the function
	// cannot work without any of them.
	allowed := map[string]bool{
		"roles/bigquery.dataEditor":          true,
		"roles/bigquery.jobUser":             true,
		"roles/datastore.user":               true,
		"roles/secretmanager.secretAccessor": true,
		"roles/run.invoker":                  true,
	}
	primitive := []string{"roles/owner", "roles/editor", "roles/viewer"}
	public := []string{"allUsers", "allAuthenticatedUsers"}

	granted := map[string]bool{}
	var count int
	for _, b := range m.blocks {
		if (b.Type != "resource" && b.Type != "data") || len(b.Labels) < 2 || !strings.Contains(b.Labels[0], "iam") {
			continue
		}
		count++
		name := b.Type + "." + b.Labels[0] + "." + b.Labels[1]

		// Bindings and policies are authoritative: they would remove every
		// other holder of the role, in a project others use too.
		if !strings.HasSuffix(b.Labels[0], "_iam_member") {
			t.Errorf("%s: got an authoritative IAM resource, want only *_iam_member", name)
			continue
		}

		role, ok := literalString(b.Body, "role")
		switch {
		case !ok:
			t.Errorf("%s.role: got none or not a literal, want a literal role", name)
		case slices.Contains(primitive, role):
			t.Errorf("%s.role: got primitive role %s, want a predefined role", name, role)
		case !allowed[role]:
			t.Errorf("%s.role: got %s, want one of %q", name, role, sortedKeys(allowed))
		default:
			granted[role] = true
		}

		attr, ok := b.Body.Attributes["member"]
		if !ok {
			t.Errorf("%s.member: got none, want one", name)
			continue
		}
		text := m.source(attr.Expr)
		for _, p := range public {
			if strings.Contains(text, p) {
				t.Errorf("%s.member: got %s, want no public member (%s)", name, text, p)
			}
		}
		if refs := accountRefs(attr.Expr); len(refs) == 0 {
			t.Errorf("%s.member: got %s, want one of the module's own service accounts", name, text)
		}
	}

	if count == 0 {
		t.Fatalf("got no IAM resources, want the runtime and invoker grants")
	}
	for _, role := range sortedKeys(allowed) {
		if !granted[role] {
			t.Errorf("got no grant of %s, want one", role)
		}
	}
}

func TestSource_Excludes(t *testing.T) {
	m := mustLoadModule(t)
	archive := mustOne(t, m.blocksOf("data", "archive_file"), "data.archive_file")
	attr, ok := archive.Body.Attributes["excludes"]
	if !ok {
		t.Fatalf("archive_file.excludes: got none, want the list of left-out paths")
	}
	ctx := m.mustEvalContext(t, nil)
	v, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("archive_file.excludes: %s", diags)
	}
	var got []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		got = append(got, e.AsString())
	}

	for _, want := range []string{".git", "deploy", "cmd", "**/testdata", "**/*.duckdb"} {
		if !slices.Contains(got, want) {
			t.Errorf("archive_file.excludes: got %q, want it to contain %q", got, want)
		}
	}
}

// module is the Terraform module in moduleDir, parsed and not evaluated.
type module struct {
	parser *hclparse.Parser
	blocks []*hclsyntax.Block // top-level blocks of every .tf file
}

// mustLoadModule parses every .tf file of moduleDir.
func mustLoadModule(tb testing.TB) *module {
	tb.Helper()

	names, err := filepath.Glob(filepath.Join(moduleDir, "*.tf"))
	if err != nil {
		tb.Fatalf("list %s: %v", moduleDir, err)
	}
	if len(names) == 0 {
		tb.Fatalf("got no .tf files in %s, want the module", moduleDir)
	}

	m := &module{parser: hclparse.NewParser()}
	for _, name := range names {
		f, diags := m.parser.ParseHCLFile(name)
		if diags.HasErrors() {
			tb.Fatalf("parse %s: %s", name, diags)
		}
		m.blocks = append(m.blocks, f.Body.(*hclsyntax.Body).Blocks...)
	}
	return m
}

// blocksOf returns the top-level blocks of type typ whose labels start with
// labels.
func (m *module) blocksOf(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type == typ && len(b.Labels) >= len(labels) && slices.Equal(b.Labels[:len(labels)], labels) {
			out = append(out, b)
		}
	}
	return out
}

func (m *module) resources(typ string) []*hclsyntax.Block {
	return m.blocksOf("resource", typ)
}

func (m *module) variables() map[string]*hclsyntax.Block {
	out := map[string]*hclsyntax.Block{}
	for _, b := range m.blocksOf("variable") {
		out[b.Labels[0]] = b
	}
	return out
}

// source returns the text of expr as written in its file.
func (m *module) source(expr hcl.Expression) string {
	r := expr.Range()
	f, ok := m.parser.Files()[r.Filename]
	if !ok {
		return ""
	}
	return string(r.SliceBytes(f.Bytes))
}

// mustEvalContext stands in for Terraform's evaluator: var holds every
// variable's default converted to its type, overridden by vars (and by
// requiredValues for variables without a default), local holds the locals
// that can be computed from those, and the functions are the ones the module
// calls. Terraform takes most of its functions from go-cty's stdlib too;
// alltrue, startswith, tostring and toset are small stand-ins here. Enough to
// check conditions and locals, not a replacement for terraform validate.
func (m *module) mustEvalContext(tb testing.TB, vars map[string]cty.Value) *hcl.EvalContext {
	tb.Helper()

	values := map[string]cty.Value{}
	for name, b := range m.variables() {
		typ := mustType(tb, b)
		v, ok := vars[name]
		if !ok {
			v, ok = requiredValues[name]
		}
		if !ok {
			attr, hasDefault := b.Body.Attributes["default"]
			if !hasDefault {
				tb.Fatalf("variable %s has no default, want a value for it in requiredValues", name)
			}
			var diags hcl.Diagnostics
			if v, diags = attr.Expr.Value(nil); diags.HasErrors() {
				tb.Fatalf("variable %s: default: %s", name, diags)
			}
		}
		converted, err := convert.Convert(v, typ)
		if err != nil {
			tb.Fatalf("variable %s: convert %#v to %s: %v", name, v, typ.FriendlyName(), err)
		}
		values[name] = converted
	}

	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var": cty.ObjectVal(values),
			"path": cty.ObjectVal(map[string]cty.Value{
				"module": cty.StringVal(moduleDir),
				"root":   cty.StringVal(moduleDir),
				"cwd":    cty.StringVal("."),
			}),
			"local": cty.EmptyObjectVal,
		},
		Functions: map[string]function.Function{
			"alltrue":    allTrueFunc,
			"can":        tryfunc.CanFunc,
			"compact":    stdlib.CompactFunc,
			"concat":     stdlib.ConcatFunc,
			"contains":   stdlib.ContainsFunc,
			"floor":      stdlib.FloorFunc,
			"formatdate": stdlib.FormatDateFunc,
			"length":     lengthFunc,
			"min":        stdlib.MinFunc,
			"regex":      stdlib.RegexFunc,
			"split":      stdlib.SplitFunc,
			"startswith": startsWithFunc,
			"tostring":   stdlib.MakeToFunc(cty.String),
			"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
			"trim":       stdlib.TrimFunc,
			"trimspace":  stdlib.TrimSpaceFunc,
		},
	}

	// Locals may refer to each other: compute them in passes until none is
	// left or a pass makes no progress.
	pending := map[string]hcl.Expression{}
	for _, b := range m.blocksOf("locals") {
		for name, attr := range b.Body.Attributes {
			pending[name] = attr.Expr
		}
	}
	locals := map[string]cty.Value{}
	for len(pending) > 0 {
		progress := false
		for name, expr := range pending {
			v, diags := expr.Value(ctx)
			if diags.HasErrors() {
				continue
			}
			locals[name] = v
			delete(pending, name)
			progress = true
		}
		ctx.Variables["local"] = cty.ObjectVal(locals)
		if !progress {
			break
		}
	}

	// A local that refers only to variables, paths and other locals must
	// compute; one that refers to resources cannot before apply.
	for name, expr := range pending {
		onlyInputs := true
		for _, tr := range expr.Variables() {
			if root := tr.RootName(); root != "var" && root != "local" && root != "path" {
				onlyInputs = false
			}
		}
		if onlyInputs {
			_, diags := expr.Value(ctx)
			tb.Fatalf("local.%s: got %s, want a value", name, diags)
		}
	}
	return ctx
}

// mustType returns the type constraint of the variable block b.
func mustType(tb testing.TB, b *hclsyntax.Block) cty.Type {
	tb.Helper()

	attr, ok := b.Body.Attributes["type"]
	if !ok {
		tb.Fatalf("variable %s: type: got none, want a type constraint", b.Labels[0])
	}
	typ, diags := typeexpr.TypeConstraint(attr.Expr)
	if diags.HasErrors() {
		tb.Fatalf("variable %s: type: got %s, want a valid type constraint", b.Labels[0], diags)
	}
	return typ
}

// mustAllHold evaluates conditions in ctx and reports whether all are true.
func mustAllHold(tb testing.TB, ctx *hcl.EvalContext, conds []hcl.Expression) bool {
	tb.Helper()

	ok := true
	for _, c := range conds {
		v, diags := c.Value(ctx)
		if diags.HasErrors() {
			tb.Fatalf("condition at %s: %s", c.Range(), diags)
		}
		if v.Type() != cty.Bool || !v.IsKnown() || v.IsNull() {
			tb.Fatalf("condition at %s: got %#v, want a known bool", c.Range(), v)
		}
		ok = ok && v.True()
	}
	return ok
}

// validations returns the condition of every validation block of the
// variable block b.
func validations(b *hclsyntax.Block) []hcl.Expression {
	var out []hcl.Expression
	for _, v := range b.Body.Blocks {
		if v.Type != "validation" {
			continue
		}
		if attr, ok := v.Body.Attributes["condition"]; ok {
			out = append(out, attr.Expr)
		}
	}
	return out
}

// preconditions returns the condition of every lifecycle precondition of b.
func preconditions(b *hclsyntax.Block) []hcl.Expression {
	var out []hcl.Expression
	for _, lc := range b.Body.Blocks {
		if lc.Type != "lifecycle" {
			continue
		}
		for _, pc := range lc.Body.Blocks {
			if pc.Type == "precondition" {
				if attr, ok := pc.Body.Attributes["condition"]; ok {
					out = append(out, attr.Expr)
				}
			}
		}
	}
	return out
}

// mustEnvironment returns the function's service_config environment
// variables by name, with their value expressions.
func mustEnvironment(tb testing.TB, fn *hclsyntax.Block) map[string]hclsyntax.Expression {
	tb.Helper()

	service := mustChild(tb, fn, "service_config")
	attr, ok := service.Body.Attributes["environment_variables"]
	if !ok {
		tb.Fatalf("service_config.environment_variables: got none, want the configuration")
	}
	obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		tb.Fatalf("service_config.environment_variables: got %T, want an object literal { KEY = value }", attr.Expr)
	}

	env := map[string]hclsyntax.Expression{}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() || k.Type() != cty.String {
			tb.Fatalf("environment_variables key at %s: got %s, want a literal name", item.KeyExpr.Range(), diags)
		}
		env[k.AsString()] = item.ValueExpr
	}
	if len(env) == 0 {
		tb.Fatalf("service_config.environment_variables: got none, want the configuration")
	}
	return env
}

// mustOne returns the only block of blocks.
func mustOne(tb testing.TB, blocks []*hclsyntax.Block, what string) *hclsyntax.Block {
	tb.Helper()
	if len(blocks) != 1 {
		tb.Fatalf("%s: got %d blocks, want 1", what, len(blocks))
	}
	return blocks[0]
}

// mustChild returns the only nested block of b of type typ.
func mustChild(tb testing.TB, b *hclsyntax.Block, typ string) *hclsyntax.Block {
	tb.Helper()

	var found []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			found = append(found, c)
		}
	}
	return mustOne(tb, found, strings.Join(append([]string{b.Type}, b.Labels...), ".")+" > "+typ)
}

// literalString returns the attribute name of body when it is a constant
// string.
func literalString(body *hclsyntax.Body, name string) (string, bool) {
	attr, ok := body.Attributes[name]
	if !ok {
		return "", false
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
		return "", false
	}
	return v.AsString(), true
}

// references returns what expr refers to, as "var.name",
// "local.name" or "resource_type.name".
func references(expr hcl.Expression) []string {
	var out []string
	for _, tr := range expr.Variables() {
		ref := tr.RootName()
		if len(tr) > 1 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				ref += "." + a.Name
			}
		}
		out = append(out, ref)
	}
	return out
}

// accountRefs returns the google_service_account resources expr refers to.
func accountRefs(expr hcl.Expression) []string {
	var out []string
	for _, r := range references(expr) {
		if strings.HasPrefix(r, "google_service_account.") {
			out = append(out, r)
		}
	}
	return out
}

// mustConfigKeys returns the keys of the repository's configuration example.
func mustConfigKeys(tb testing.TB) []string {
	tb.Helper()

	data, err := os.ReadFile(filepath.Join("..", "configuration_example.json"))
	if err != nil {
		tb.Fatalf("read configuration example: %v", err)
	}
	var config map[string]any
	if err := json.Unmarshal(data, &config); err != nil {
		tb.Fatalf("decode configuration example: %v", err)
	}
	if len(config) == 0 {
		tb.Fatalf("got no keys in configuration_example.json, want the configuration")
	}
	return sortedKeys(config)
}

// mustGoRuntime returns the Cloud Functions runtime that matches the go
// directive of the repository's go.mod: go 1.26.0 -> go126.
func mustGoRuntime(tb testing.TB) string {
	tb.Helper()

	data, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		tb.Fatalf("read go.mod: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 2 || fields[0] != "go" {
			continue
		}
		parts := strings.Split(fields[1], ".")
		if len(parts) < 2 {
			tb.Fatalf("go.mod: got go directive %q, want major.minor", fields[1])
		}
		return "go" + parts[0] + parts[1]
	}
	tb.Fatalf("go.mod: got no go directive, want one")
	return ""
}

// short formats v for a failure message, cut to a readable length.
func short(v cty.Value) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func hours(n int64) map[string]cty.Value {
	return map[string]cty.Value{"sync_interval_hours": cty.NumberIntVal(n)}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// allTrueFunc is Terraform's alltrue: true when every element is true.
var allTrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if v.IsNull() || v.False() {
				return cty.False, nil
			}
		}
		return cty.True, nil
	},
})

// lengthFunc is Terraform's length, which also counts the characters of a
// string (go-cty's takes only collections).
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].Type() == cty.String {
			return stdlib.Strlen(args[0])
		}
		return stdlib.Length(args[0])
	},
})

// startsWithFunc is Terraform's startswith.
var startsWithFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "string", Type: cty.String},
		{Name: "prefix", Type: cty.String},
	},
	Type: function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.HasPrefix(args[0].AsString(), args[1].AsString())), nil
	},
})
