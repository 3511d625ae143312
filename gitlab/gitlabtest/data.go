package gitlabtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// project is a stored project and its merge requests.
type project struct {
	id   int64
	path string // path_with_namespace
	obj  *object
	raw  []byte

	mrs    []*mergeRequest // in the order added
	byIID  map[int64]*mergeRequest
	sorted map[string][]*mergeRequest // by "<order_by> <sort>"; nil after a change
}

// mergeRequest is a stored merge request: its recorded object plus the fields the list
// endpoint filters and sorts on.
type mergeRequest struct {
	projectID int64
	id, iid   int64
	state     string
	title     string
	authorID  int64
	createdAt time.Time
	updatedAt time.Time
	raw       []byte // the single merge request entity; the object is parsed again when needed
	list      []byte // the list entity, when it differs from raw
}

// detailOnlyKeys are fields of GET /projects/:id/merge_requests/:iid (Entities::MergeRequest)
// that the list (Entities::MergeRequestBasic) leaves out, per the 2023-11 recordings of both.
var detailOnlyKeys = map[string]bool{
	"subscribed":                      true,
	"changes_count":                   true,
	"latest_build_started_at":         true,
	"latest_build_finished_at":        true,
	"first_deployed_to_production_at": true,
	"pipeline":                        true,
	"head_pipeline":                   true,
	"diff_refs":                       true,
	"merge_error":                     true,
	"first_contribution":              true,
	"user":                            true,
	"diverged_commits_count":          true,
	"rebase_in_progress":              true,
}

// simpleKeys are the fields of the list with view=simple, per the recordings.
var simpleKeys = []string{
	"id", "iid", "project_id", "title", "description", "state", "created_at", "updated_at",
	"web_url",
}

// userKeys are the merge request fields that hold one user object or a list of them.
var userKeys = []string{
	"author", "assignee", "assignees", "reviewers", "merged_by", "merge_user", "closed_by",
}

func newMergeRequest(projectID int64, o *object) *mergeRequest {
	mr := &mergeRequest{projectID: projectID}
	mr.setObject(o)
	return mr
}

// object parses the stored merge request. Only the encoding is kept, which halves the
// memory of a large generated project.
func (mr *mergeRequest) object() *object {
	o, err := parseObject(mr.raw)
	if err != nil {
		panic("gitlabtest: parse stored merge request: " + err.Error())
	}
	return o
}

// setObject stores o's encodings and the fields the list filters and sorts on.
func (mr *mergeRequest) setObject(o *object) {
	mr.id = o.int("id")
	mr.iid = o.int("iid")
	mr.state = o.str("state")
	mr.title = o.str("title")
	mr.createdAt = o.time("created_at")
	mr.updatedAt = o.time("updated_at")
	mr.authorID = 0
	if a := o.sub("author"); a != nil {
		mr.authorID = a.int("id")
	}
	mr.raw = o.bytes()
	mr.list = o.without(detailOnlyKeys)
}

func (mr *mergeRequest) listBytes() []byte {
	if mr.list != nil {
		return mr.list
	}
	return mr.raw
}

// user is a stored user object.
type user struct {
	id  int64
	obj *object
	raw []byte
}

// AddProject stores a raw project object (as GET /projects/:id returns it), replacing any
// project with the same id but keeping its merge requests. It panics if obj has no id.
func (s *Server) AddProject(obj map[string]any) {
	o, err := objectFromMap(obj)
	if err != nil {
		panic("gitlabtest: AddProject: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addProject(o)
}

func (s *Server) addProject(o *object) *project {
	id := o.int("id")
	if id == 0 {
		panic("gitlabtest: project object without an id")
	}
	p := s.projects[id]
	if p == nil {
		p = &project{id: id, byIID: make(map[int64]*mergeRequest)}
		s.projects[id] = p
	} else {
		delete(s.projectByPath, strings.ToLower(p.path))
	}
	p.obj = o
	p.raw = o.bytes()
	p.path = o.str("path_with_namespace")
	if p.path != "" {
		s.projectByPath[strings.ToLower(p.path)] = p
	}
	return p
}

// lookupProject finds a project by numeric id or by path, as GET /projects/:id does.
func (s *Server) lookupProject(ref string) *project {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		if p := s.projects[id]; p != nil {
			return p
		}
	}
	return s.projectByPath[strings.ToLower(ref)]
}

// ensureProject returns project id, synthesizing one if no project body was recorded or
// added for it (see synthesizeProject).
func (s *Server) ensureProject(id int64, webURL string) *project {
	if p := s.projects[id]; p != nil {
		return p
	}
	return s.addProject(synthesizeProject(id, webURL))
}

// ProjectIDs returns the ids of all projects, ascending.
func (s *Server) ProjectIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.projects))
	for id := range s.projects {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ProjectPath returns the path_with_namespace of project id, or "" if it is unknown.
func (s *Server) ProjectPath(id int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.projects[id]; p != nil {
		return p.path
	}
	return ""
}

// Project returns a copy of the raw object of project id, or nil if it is unknown.
func (s *Server) Project(id int64) map[string]any {
	s.mu.Lock()
	p := s.projects[id]
	var raw []byte
	if p != nil {
		raw = p.raw
	}
	s.mu.Unlock()
	if raw == nil {
		return nil
	}
	return decodeMap(raw)
}

// TouchProject sets last_activity_at, and updated_at where the project object has that
// field, to Now() in the chosen zone. Project bodies recorded before GitLab added
// updated_at (such as 12345678, recorded in 2022) keep answering without it, as such an
// instance would. It panics if the project is unknown.
func (s *Server) TouchProject(id int64) {
	now := s.formatTime(s.now().Truncate(time.Millisecond))
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[id]
	if p == nil {
		panic(fmt.Sprintf("gitlabtest: TouchProject: no project %d", id))
	}
	o := p.obj.clone()
	o.set("last_activity_at", mustMarshal(now))
	if o.has("updated_at") {
		o.set("updated_at", mustMarshal(now))
	}
	p.obj = o
	p.raw = o.bytes()
}

// SetProjectStatus makes GET /projects/:ref and its sub-resources answer status: 403
// ({"message":"403 Forbidden"}), 404 ({"message":"404 Project Not Found"}) or another code
// ({"message":"<code> <reason>"}). ref is a numeric id or a path, known or not; a status of
// 0 or 200 restores normal answers.
func (s *Server) SetProjectStatus(ref string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(ref)
	if p := s.lookupProject(ref); p != nil {
		key = strconv.FormatInt(p.id, 10)
	}
	if status == 0 || status == 200 {
		delete(s.statusByRef, key)
		return
	}
	s.statusByRef[key] = status
}

// projectStatus returns the status set for ref, or 0.
func (s *Server) projectStatus(ref string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.lookupProject(ref); p != nil {
		if st := s.statusByRef[strconv.FormatInt(p.id, 10)]; st != 0 {
			return st
		}
		return s.statusByRef[strings.ToLower(p.path)]
	}
	return s.statusByRef[strings.ToLower(ref)]
}

// AddMergeRequest stores a raw merge request object under projectID, setting its
// project_id; an existing merge request with the same id is replaced. Its nested users
// become known users. If no project projectID exists, one is synthesized. It panics if obj
// has no id or iid.
func (s *Server) AddMergeRequest(projectID int64, obj map[string]any) {
	o, err := objectFromMap(obj)
	if err != nil {
		panic("gitlabtest: AddMergeRequest: " + err.Error())
	}
	o.set("project_id", mustMarshal(projectID))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addMergeRequest(projectID, o)
}

func (s *Server) addMergeRequest(projectID int64, o *object) *mergeRequest {
	mr := newMergeRequest(projectID, o)
	if mr.id == 0 || mr.iid == 0 {
		panic("gitlabtest: merge request object without an id or iid")
	}
	if old := s.mrByID[mr.id]; old != nil {
		s.removeMergeRequest(old)
	}
	p := s.ensureProject(projectID, o.str("web_url"))
	if old := p.byIID[mr.iid]; old != nil {
		s.removeMergeRequest(old)
	}
	p.mrs = append(p.mrs, mr)
	p.byIID[mr.iid] = mr
	p.sorted = nil
	s.mrByID[mr.id] = mr
	s.maxMRID = max(s.maxMRID, mr.id)
	s.addNestedUsers(o)
	return mr
}

func (s *Server) removeMergeRequest(mr *mergeRequest) {
	delete(s.mrByID, mr.id)
	p := s.projects[mr.projectID]
	if p == nil {
		return
	}
	delete(p.byIID, mr.iid)
	p.mrs = slices.DeleteFunc(p.mrs, func(m *mergeRequest) bool { return m == mr })
	p.sorted = nil
}

// UpdateMergeRequest merges fields into merge request iid of projectID (each key replaces
// the top-level field of that name) and sets updated_at to Now() in the chosen zone, unless
// fields sets updated_at itself. Nested users in fields become known users. It panics if the
// merge request is unknown or a value cannot be encoded.
func (s *Server) UpdateMergeRequest(projectID, iid int64, fields map[string]any) {
	now := s.formatTime(s.now().Truncate(time.Millisecond))
	encoded := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		raw, err := marshalValue(v)
		if err != nil {
			panic(fmt.Sprintf("gitlabtest: UpdateMergeRequest: field %q: %v", k, err))
		}
		encoded[k] = raw
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.projects[projectID]
	var mr *mergeRequest
	if p != nil {
		mr = p.byIID[iid]
	}
	if mr == nil {
		panic(fmt.Sprintf("gitlabtest: UpdateMergeRequest: no merge request !%d in project %d",
			iid, projectID))
	}
	o := mr.object()
	keys := make([]string, 0, len(encoded))
	for k := range encoded {
		keys = append(keys, k)
	}
	slices.Sort(keys) // new keys are appended in a stable order
	for _, k := range keys {
		o.set(k, encoded[k])
	}
	if _, ok := encoded["updated_at"]; !ok {
		o.set("updated_at", mustMarshal(now))
	}
	mr.setObject(o)
	p.sorted = nil
	s.addNestedUsers(o)
}

// MergeRequests returns copies of the raw merge requests of projectID in the order they
// were added, as full (single merge request) objects. Numbers decode as float64.
func (s *Server) MergeRequests(projectID int64) []map[string]any {
	s.mu.Lock()
	var raws [][]byte
	if p := s.projects[projectID]; p != nil {
		for _, mr := range p.mrs {
			raws = append(raws, mr.raw)
		}
	}
	s.mu.Unlock()
	out := make([]map[string]any, 0, len(raws))
	for _, raw := range raws {
		out = append(out, decodeMap(raw))
	}
	return out
}

// AddUser stores a raw user object (as GET /users/:id returns it), unless a user with the
// same id is already stored with more fields. It panics if obj has no id.
func (s *Server) AddUser(obj map[string]any) {
	o, err := objectFromMap(obj)
	if err != nil {
		panic("gitlabtest: AddUser: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.int("id") == 0 {
		panic("gitlabtest: AddUser: user object without an id")
	}
	s.addUser(o)
}

// addUser keeps the richest object seen for an id: the one with most fields, the first one
// on a tie.
func (s *Server) addUser(o *object) {
	id := o.int("id")
	if id == 0 {
		return
	}
	if old := s.users[id]; old != nil && len(old.obj.keys) >= len(o.keys) {
		return
	}
	s.users[id] = &user{id: id, obj: o, raw: o.bytes()}
}

// addNestedUsers stores the user objects nested in a merge request.
func (s *Server) addNestedUsers(mr *object) {
	for _, key := range userKeys {
		raw, ok := mr.get(key)
		if !ok {
			continue
		}
		for _, u := range nestedObjects(raw) {
			s.addUser(u)
		}
	}
}

// nestedObjects returns the objects in raw, which holds one object, a list of them or null.
func nestedObjects(raw json.RawMessage) []*object {
	switch {
	case len(raw) == 0:
		return nil
	case raw[0] == '{':
		if o, err := parseObject(raw); err == nil {
			return []*object{o}
		}
	case raw[0] == '[':
		if objs, err := parseObjects(raw); err == nil {
			return objs
		}
	}
	return nil
}

// UserIDs returns the ids of all known users, ascending.
func (s *Server) UserIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.users))
	for id := range s.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// User returns a copy of the raw object of user id, or nil if it is unknown.
func (s *Server) User(id int64) map[string]any {
	s.mu.Lock()
	u := s.users[id]
	s.mu.Unlock()
	if u == nil {
		return nil
	}
	return decodeMap(u.raw)
}

func decodeMap(raw []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic("gitlabtest: decode stored object: " + err.Error())
	}
	return m
}

// synthesizeProject builds a project for a merge request whose project has no recorded
// body (such as 278964, gitlab-org/gitlab-ee, in the 2019 list). It clones the recorded
// project 12345678 (gitlab.com, 2022, same era as most merge request samples) and changes
// what names the project: id, name, path, namespace, URLs and _links. The path comes from
// the merge request's web_url, or is "gitlabtest/project-<id>" without one. The namespace
// id is made up (equal to the project id), except for gitlab-org, whose id is 9970.
func synthesizeProject(id int64, mrWebURL string) *object {
	tmpl := templateProject()
	oldPath := tmpl.str("path_with_namespace")
	oldWeb := tmpl.str("web_url")
	host := strings.TrimSuffix(oldWeb, "/"+oldPath)

	path := fmt.Sprintf("gitlabtest/project-%d", id)
	if before, _, ok := strings.Cut(mrWebURL, "/merge_requests/"); ok {
		before = strings.TrimSuffix(before, "/-")
		if i := strings.Index(before, "://"); i >= 0 {
			if j := strings.Index(before[i+3:], "/"); j >= 0 {
				host = before[:i+3+j]
				path = before[i+3+j+1:]
			}
		}
	}
	group, name := "", path
	if i := strings.LastIndex(path, "/"); i >= 0 {
		group, name = path[:i], path[i+1:]
	}
	nsID := id
	if group == "gitlab-org" {
		nsID = 9970
	}
	web := host + "/" + path
	apiSelf := host + "/api/v4/projects/" + strconv.FormatInt(id, 10)
	oldSelf := tmpl.sub("_links").str("self")

	o := tmpl.clone()
	set := func(k string, v any) { o.set(k, mustMarshal(v)) }
	set("id", id)
	set("description", "")
	set("name", name)
	set("name_with_namespace", group+" / "+name)
	set("path", name)
	set("path_with_namespace", path)
	bareHost := strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	set("ssh_url_to_repo", "git@"+bareHost+":"+path+".git")
	set("http_url_to_repo", web+".git")
	set("web_url", web)
	set("readme_url", web+"/-/blob/master/README.md")
	set("avatar_url", nil)
	set("tag_list", []string{})
	set("topics", []string{})
	set("forks_count", 0)
	set("star_count", 0)
	set("open_issues_count", 0)
	set("container_registry_image_prefix", "registry."+bareHost+"/"+path)
	set("namespace", map[string]any{
		"id": nsID, "name": group, "path": group, "kind": "group", "full_path": group,
		"parent_id": nil, "avatar_url": nil, "web_url": host + "/groups/" + group,
	})
	if links := tmpl.sub("_links"); links != nil {
		l := links.clone()
		for i, k := range links.keys {
			l.vals[i] = mustMarshal(strings.Replace(links.str(k), oldSelf, apiSelf, 1))
		}
		o.set("_links", l.bytes())
	}
	return o
}
