package gitlabtest_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
)

const usersQuery = `query($ids: [ID!], $first: Int, $after: String) {
  users(ids: $ids, first: $first, after: $after) {
    nodes { id username name state publicEmail createdAt lastActivityOn webUrl avatarUrl bot }
    pageInfo { hasNextPage endCursor }
  }
}`

type gqlUser struct {
	ID             string  `json:"id"`
	Username       string  `json:"username"`
	Name           string  `json:"name"`
	State          string  `json:"state"`
	PublicEmail    *string `json:"publicEmail"`
	CreatedAt      *string `json:"createdAt"`
	LastActivityOn *string `json:"lastActivityOn"`
	WebURL         string  `json:"webUrl"`
	AvatarURL      *string `json:"avatarUrl"`
	Bot            bool    `json:"bot"`
}

type gqlUsersResponse struct {
	Data struct {
		Users *struct {
			Nodes    []gqlUser `json:"nodes"`
			PageInfo struct {
				HasNextPage bool    `json:"hasNextPage"`
				EndCursor   *string `json:"endCursor"`
			} `json:"pageInfo"`
		} `json:"users"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// mustUsersQuery runs usersQuery through the real client's GraphQL helper.
func mustUsersQuery(tb testing.TB, client *gitlab.Client, vars map[string]any) gqlUsersResponse {
	tb.Helper()
	var got gqlUsersResponse
	if _, err := client.GraphQL.Do(gitlab.GraphQLQuery{Query: usersQuery, Variables: vars}, &got); err != nil {
		tb.Fatalf("GraphQL.Do: %v", err)
	}
	return got
}

func gids(ids ...int64) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, fmt.Sprintf("gid://gitlab/User/%d", id))
	}
	return out
}

func TestGraphQLUsers(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{})
	client := mustClient(t, srv, testToken)

	many := make([]int64, 101)
	for i := range many {
		many[i] = int64(i + 1)
	}
	tests := []struct {
		name      string
		query     string
		vars      map[string]any
		wantIDs   []string // in order
		wantError string   // substring of a GraphQL error
	}{
		{
			name:    "KnownIDs",
			query:   usersQuery,
			vars:    map[string]any{"ids": gids(1, 2994198, 1942272), "first": 100},
			wantIDs: gids(2994198, 1942272, 1),
		},
		{
			name:    "UnknownIDsAbsent",
			query:   usersQuery,
			vars:    map[string]any{"ids": gids(404404, 2994198, 505505)},
			wantIDs: gids(2994198),
		},
		{
			name:    "OnlyUnknown",
			query:   usersQuery,
			vars:    map[string]any{"ids": gids(404404)},
			wantIDs: []string{},
		},
		{
			name: "InlineIDs",
			query: `{ users(ids: ["gid://gitlab/User/139", "gid://gitlab/User/8375961"], first: 100) {
				nodes { id username } } }`,
			wantIDs: gids(8375961, 139),
		},
		{
			name:      "TooManyIDs",
			query:     usersQuery,
			vars:      map[string]any{"ids": gids(many...), "first": 100},
			wantError: "too many ids",
		},
		{
			name:      "NotAGlobalID",
			query:     usersQuery,
			vars:      map[string]any{"ids": []string{"42"}},
			wantError: "not a valid ID",
		},
		{
			name:      "OtherQuery",
			query:     `{ project(fullPath: "gitlab-org/gitlab") { id } }`,
			wantError: "only the users query",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got gqlUsersResponse
			resp, err := client.GraphQL.Do(gitlab.GraphQLQuery{Query: tt.query, Variables: tt.vars}, &got)
			if err != nil {
				t.Fatalf("GraphQL.Do: %v", err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("got status %d, want 200", resp.StatusCode)
			}
			if tt.wantError != "" {
				if len(got.Errors) == 0 || !strings.Contains(got.Errors[0].Message, tt.wantError) {
					t.Errorf("got errors %+v, want one containing %q", got.Errors, tt.wantError)
				}
				return
			}
			if len(got.Errors) != 0 {
				t.Fatalf("got errors %+v, want none", got.Errors)
			}
			ids := []string{}
			for _, n := range got.Data.Users.Nodes {
				ids = append(ids, n.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("got ids %v, want %v", ids, tt.wantIDs)
			}
			if got.Data.Users.PageInfo.HasNextPage {
				t.Errorf("got hasNextPage true, want false")
			}
		})
	}

	t.Run("Fields", func(t *testing.T) {
		got := mustUsersQuery(t, client, map[string]any{"ids": gids(2994198, 1942272, 1)})
		str := func(p *string) string {
			if p == nil {
				return "<null>"
			}
			return *p
		}
		want := []string{
			// Admin view from a self-managed instance: its +01:00 created_at, in UTC, seconds.
			"gid://gitlab/User/2994198|abc1|abc1|active|<null>|2018-03-25T08:43:17Z|2024-01-09|" +
				"https://custom.gitlab.com/abc1||false",
			// Known only from merge requests: no created_at, no last activity.
			"gid://gitlab/User/1942272|user1942272|User 1942272|active|<null>|<null>|<null>|" +
				"https://gitlab.com/user1942272|" +
				"https://gitlab.com/uploads/-/system/user/avatar/1942272/avatar.png|false",
			"gid://gitlab/User/1|john_smith|John Smith|active|john@example.com|2012-05-23T08:00:58Z|" +
				"2012-05-23|http://localhost:3000/john_smith|" +
				"http://localhost:3000/uploads/user/avatar/1/index.jpg|false",
		}
		for i, n := range got.Data.Users.Nodes {
			line := strings.Join([]string{n.ID, n.Username, n.Name, n.State, str(n.PublicEmail),
				str(n.CreatedAt), str(n.LastActivityOn), n.WebURL, str(n.AvatarURL),
				fmt.Sprint(n.Bot)}, "|")
			if i >= len(want) || line != want[i] {
				t.Errorf("node %d: got\n%s\nwant\n%s", i, line, want[min(i, len(want)-1)])
			}
		}
	})

	t.Run("Paging", func(t *testing.T) {
		all := srv.UserIDs()
		var seen []string
		var after any
		for pages := 0; pages < 10; pages++ {
			got := mustUsersQuery(t, client, map[string]any{"ids": gids(all...), "first": 20, "after": after})
			for _, n := range got.Data.Users.Nodes {
				seen = append(seen, n.ID)
			}
			if !got.Data.Users.PageInfo.HasNextPage {
				break
			}
			after = *got.Data.Users.PageInfo.EndCursor
		}
		if len(seen) != len(all) {
			t.Errorf("got %d users over the pages, want %d", len(seen), len(all))
		}
	})

	t.Run("Prefix", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{Prefix: "/gitlab"})
		client := mustClient(t, srv, testToken)
		got := mustUsersQuery(t, client, map[string]any{"ids": gids(139)})
		if n := got.Data.Users.Nodes; len(n) != 1 || n[0].Username != "abc2" {
			t.Errorf("got %+v, want user 139 abc2", n)
		}
		if got := srv.Requests("graphql"); got != 1 {
			t.Errorf("got %d graphql requests, want 1", got)
		}
	})

	t.Run("Zone", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{Zone: time.FixedZone("CET", 3600)})
		client := mustClient(t, srv, testToken)
		got := mustUsersQuery(t, client, map[string]any{"ids": gids(1)})
		const want = "2012-05-23T09:00:58+01:00"
		if n := got.Data.Users.Nodes; len(n) != 1 || n[0].CreatedAt == nil || *n[0].CreatedAt != want {
			t.Errorf("got %+v, want createdAt %s", n, want)
		}
	})
}

func TestGraphQLAuth(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{})
	vars := map[string]any{"ids": gids(1)}

	t.Run("WrongToken", func(t *testing.T) {
		client := mustClient(t, srv, "wrong")
		var got gqlUsersResponse
		resp, err := client.GraphQL.Do(gitlab.GraphQLQuery{Query: usersQuery, Variables: vars}, &got)
		var gerr *gitlab.GraphQLResponseError
		if !errors.As(err, &gerr) || len(gerr.Errors.Errors) == 0 ||
			gerr.Errors.Errors[0].Message != "Invalid token" {
			t.Errorf("got error %v, want a GraphQLResponseError saying Invalid token", err)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("got response %v, want status 401", resp)
		}
	})

	t.Run("Bearer", func(t *testing.T) {
		client, err := gitlab.NewAuthSourceClient(gitlab.Unauthenticated{}, gitlab.WithBaseURL(srv.URL()))
		if err != nil {
			t.Fatalf("new client: %v", err)
		}
		var got gqlUsersResponse
		_, err = client.GraphQL.Do(gitlab.GraphQLQuery{Query: usersQuery, Variables: vars}, &got,
			gitlab.WithHeader("Authorization", "Bearer "+testToken))
		if err != nil || got.Data.Users == nil || len(got.Data.Users.Nodes) != 1 {
			t.Errorf("got %+v, error %v; want user 1", got, err)
		}
	})

	t.Run("NoToken", func(t *testing.T) {
		client, err := gitlab.NewAuthSourceClient(gitlab.Unauthenticated{}, gitlab.WithBaseURL(srv.URL()))
		if err != nil {
			t.Fatalf("new client: %v", err)
		}
		var got gqlUsersResponse
		resp, err := client.GraphQL.Do(gitlab.GraphQLQuery{Query: usersQuery, Variables: vars}, &got)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("got error %v, want status 200", err)
		}
		if got.Data.Users != nil || len(got.Errors) == 0 ||
			!strings.Contains(got.Errors[0].Message, "permission") {
			t.Errorf("got %+v, want users null and a permission error", got)
		}
	})
}
