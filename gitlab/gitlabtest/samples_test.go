package gitlabtest_test

import (
	"slices"
	"testing"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
)

func TestLoadSamples(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{})

	t.Run("Projects", func(t *testing.T) {
		want := map[int64]struct {
			path string
			mrs  int
		}{
			278964:   {"gitlab-org/gitlab-ee", 20},
			371311:   {"small-test-group/empty-repo", 0},
			371312:   {"small-test-group/non-empty-repo", 0},
			6590996:  {"user1215848/archbuild", 1},
			12345678: {"gitlab-data/snowflake_spend", 18},
			15578026: {"gitea/test_repo", 1},
			61363672: {"forgejo/test_repo", 1},
		}
		ids := srv.ProjectIDs()
		if len(ids) != len(want) {
			t.Fatalf("got %d projects %v, want %d", len(ids), ids, len(want))
		}
		total := 0
		for _, id := range ids {
			w, ok := want[id]
			if !ok {
				t.Errorf("got unexpected project %d", id)
				continue
			}
			if got := srv.ProjectPath(id); got != w.path {
				t.Errorf("project %d: got path %q, want %q", id, got, w.path)
			}
			mrs := srv.MergeRequests(id)
			if len(mrs) != w.mrs {
				t.Errorf("project %d: got %d merge requests, want %d", id, len(mrs), w.mrs)
			}
			for _, mr := range mrs {
				if got := int64(mr["project_id"].(float64)); got != id {
					t.Errorf("project %d: merge request %v has project_id %d", id, mr["id"], got)
				}
			}
			total += len(mrs)
		}
		if total != 41 {
			t.Errorf("got %d merge requests in all, want 41", total)
		}
	})

	t.Run("Users", func(t *testing.T) {
		users := srv.UserIDs()
		if got, want := len(users), 56; got != want {
			t.Errorf("got %d users, want %d", got, want)
		}
		// The richest object wins: 2994198 is in the admin list and among the members.
		if u := srv.User(2994198); u["is_admin"] != false || u["username"] != "abc1" {
			t.Errorf("user 2994198: got %v, want the admin-view object of abc1", u)
		}
		if u := srv.User(1); u["is_admin"] != true {
			t.Errorf("user 1: got %v, want the admin docs example", u)
		}
		// Members keep only the user part.
		if u := srv.User(5767011); u["access_level"] != nil || u["created_at"] != nil {
			t.Errorf("user 5767011: got %v, want no membership fields", u)
		}
	})

	t.Run("EveryNestedUserIsKnown", func(t *testing.T) {
		known := srv.UserIDs()
		for _, pid := range srv.ProjectIDs() {
			for _, mr := range srv.MergeRequests(pid) {
				for _, key := range []string{"author", "assignee", "merged_by", "merge_user", "closed_by"} {
					if u, ok := mr[key].(map[string]any); ok {
						id := int64(u["id"].(float64))
						if !slices.Contains(known, id) {
							t.Errorf("merge request %v: %s %d is not a known user", mr["id"], key, id)
						}
					}
				}
				for _, key := range []string{"assignees", "reviewers"} {
					list, _ := mr[key].([]any)
					for _, item := range list {
						id := int64(item.(map[string]any)["id"].(float64))
						if !slices.Contains(known, id) {
							t.Errorf("merge request %v: %s %d is not a known user", mr["id"], key, id)
						}
					}
				}
			}
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		if err := srv.LoadSamples(); err != nil {
			t.Fatalf("LoadSamples again: %v", err)
		}
		if got := len(srv.MergeRequests(12345678)); got != 18 {
			t.Errorf("after a second load: got %d merge requests, want 18", got)
		}
	})
}
