package gitlabtest

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"sync"
)

// samples holds the recorded GitLab responses this package serves; testdata/SOURCES.md
// says where each one comes from.
//
//go:embed testdata/*.json testdata/SOURCES.md
var samples embed.FS

const sampleDir = "testdata/"

// Sample files loaded by LoadSamples.
var (
	sampleProjects = []string{
		"project_single_gitlab_com_2022-06.json",
		"project_by_path_gitlab_com_2023-11.json",
		"project_by_path_gitlab_com_2024-09.json",
		"project_by_path_with_ratelimit_headers_gitlab_com_2023-11.json",
	}
	sampleProjectLists = []string{
		"projects_list_group_selfmanaged_2023-07.json",
	}
	// sampleMergeRequests are read in this order; a merge request whose id was already
	// loaded is skipped, so the fuller entities come first and the view=simple lists last.
	sampleMergeRequests = []string{
		"merge_requests_list_gitlab_com_2022-07.json",
		"merge_requests_list_gitlab_com_2019-08.json",
		"merge_requests_list_page1_gitlab_com_2023-11.json",
		"merge_request_single_gitlab_com_2024-09.json",
		"merge_request_single_imported_with_ratelimit_headers_gitlab_com_2023-11.json",
		"merge_requests_list_view_simple_gitlab_com_2024-09.json",
		"merge_requests_list_view_simple_with_ratelimit_headers_gitlab_com_2023-11.json",
	}
	sampleUsers = []string{
		"users_list_admin_view_selfmanaged_anonymized.json",
		"user_single_admin_docs_example.json",
		"user_single_nonadmin_docs_example.json",
		"user_single_nonadmin_shape_gitlab_com_2023-05.json",
	}
	sampleMembers = "members_all_gitlab_com_2022-07.json"
)

// userBasicKeys are the fields of GitLab's UserBasic entity. A member object (from
// /members/all) is a UserBasic plus fields about the membership (access_level, created_at
// and created_by of the membership, expires_at, membership_state); only the user part is
// kept, so that its created_at is not mistaken for the user's.
var userBasicKeys = []string{
	"id", "username", "public_email", "name", "state", "locked", "avatar_url", "avatar_path",
	"custom_attributes", "web_url",
}

// LoadSamples loads the embedded recordings into a consistent little world:
//   - projects: 12345678 (gitlab-data/snowflake_spend, 2022), 15578026 (gitea/test_repo),
//     61363672 (forgejo/test_repo), 6590996 (user1215848/archbuild), the two projects of
//     the self-managed group list (371311, 371312) and 278964 (gitlab-org/gitlab-ee),
//     synthesized because its merge requests were recorded without its project body;
//   - merge requests from every recorded list and single merge request, each under its
//     project_id, de-duplicated by id (the view=simple lists add none);
//   - users from the admin user list, the single-user recordings and the project members
//     (user fields only), plus every user object nested in the merge requests (author,
//     assignee, assignees, reviewers, merged_by, merge_user, closed_by) and the created_by
//     users of the lists; for an id seen several times the object with most fields wins.
//
// Loading twice is harmless: the same objects are stored again.
func (s *Server) LoadSamples() error {
	s.mu.Lock()
	defer s.mu.Unlock()

	// Projects, so that merge requests find their project.
	for _, name := range sampleProjects {
		o, err := readSampleObject(name)
		if err != nil {
			return err
		}
		s.addProject(o)
	}
	for _, name := range sampleProjectLists {
		objs, err := readSampleObjects(name)
		if err != nil {
			return err
		}
		for _, o := range objs {
			s.addProject(o)
		}
	}

	// Users from user recordings.
	for _, name := range sampleUsers {
		objs, err := readSampleObjects(name)
		if err != nil {
			return err
		}
		for _, o := range objs {
			s.addUser(o)
			if cb := o.sub("created_by"); cb != nil {
				s.addUser(cb)
			}
		}
	}
	members, err := readSampleObjects(sampleMembers)
	if err != nil {
		return err
	}
	for _, m := range members {
		s.addUser(m.pick(userBasicKeys...))
		if cb := m.sub("created_by"); cb != nil {
			s.addUser(cb)
		}
	}

	// Merge requests, with their nested users.
	for _, name := range sampleMergeRequests {
		objs, err := readSampleObjects(name)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if s.mrByID[o.int("id")] != nil {
				continue
			}
			s.addMergeRequest(o.int("project_id"), o)
		}
	}
	return nil
}

// readSampleObjects reads a sample holding one object or an array of objects.
func readSampleObjects(name string) ([]*object, error) {
	b, err := samples.ReadFile(sampleDir + name)
	if err != nil {
		return nil, fmt.Errorf("read sample %s: %w", name, err)
	}
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '{' {
		o, err := parseObject(b)
		if err != nil {
			return nil, fmt.Errorf("parse sample %s: %w", name, err)
		}
		return []*object{o}, nil
	}
	objs, err := parseObjects(b)
	if err != nil {
		return nil, fmt.Errorf("parse sample %s: %w", name, err)
	}
	return objs, nil
}

func readSampleObject(name string) (*object, error) {
	objs, err := readSampleObjects(name)
	if err != nil {
		return nil, err
	}
	if len(objs) != 1 {
		return nil, fmt.Errorf("read sample %s: got %d objects, want 1", name, len(objs))
	}
	return objs[0], nil
}

func mustCompact(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		panic("gitlabtest: compact sample: " + err.Error())
	}
	return buf.Bytes()
}

// templates are the recorded objects that synthesized and generated data is cloned from.
var templates struct {
	once    sync.Once
	project *object   // project 12345678, recorded 2022-06
	mrs     []*object // its 18 merge requests, recorded 2022-07
}

func loadTemplates() {
	templates.once.Do(func() {
		p, err := readSampleObject("project_single_gitlab_com_2022-06.json")
		if err != nil {
			panic("gitlabtest: " + err.Error())
		}
		mrs, err := readSampleObjects("merge_requests_list_gitlab_com_2022-07.json")
		if err != nil {
			panic("gitlabtest: " + err.Error())
		}
		templates.project = p
		templates.mrs = mrs
	})
}

func templateProject() *object {
	loadTemplates()
	return templates.project
}

func templateMergeRequests() []*object {
	loadTemplates()
	return templates.mrs
}
