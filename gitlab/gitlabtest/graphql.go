package gitlabtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxGraphQLPageSize is GitLab's max_page_size for GraphQL connections, and the most ids
// the simulator takes in one users query.
const maxGraphQLPageSize = 100

// graphQLRequest is the body of POST /api/graphql.
type graphQLRequest struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
}

// graphQLUser is a node of the users connection, with every field the simulator supports,
// whatever the selection set asks for.
type graphQLUser struct {
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

type graphQLPageInfo struct {
	HasNextPage     bool    `json:"hasNextPage"`
	HasPreviousPage bool    `json:"hasPreviousPage"`
	StartCursor     *string `json:"startCursor"`
	EndCursor       *string `json:"endCursor"`
}

// errResourceNotAvailable is GitLab's message when the users query runs without a user.
const errResourceNotAvailable = "The resource that you are attempting to access does not " +
	"exist or you don't have permission to perform this action"

// serveGraphQL answers the users query. Other queries get a GraphQL error.
//
// Authentication follows GitLab: a wrong token gets 401 {"errors":[{"message":"Invalid
// token"}]}; no token at all runs the query anonymously, and GitLab's users resolver then
// answers 200 with an error and "users": null.
func (s *Server) serveGraphQL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, `{"errors":[{"message":"only POST is simulated"}]}`)
		return
	}
	sent, ok := s.authenticate(r)
	if sent && !ok {
		writeJSON(w, http.StatusUnauthorized, `{"errors":[{"message":"Invalid token"}]}`)
		return
	}
	var req graphQLRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeGraphQLError(w, "Invalid JSON body: "+err.Error())
		return
	}
	args, msg := parseUsersArgs(req.Query, req.Variables)
	if msg != "" {
		writeGraphQLError(w, msg)
		return
	}
	if !sent {
		body, _ := marshalValue(map[string]any{
			"errors": []map[string]any{{"message": errResourceNotAvailable, "path": []string{"users"}}},
			"data":   map[string]any{"users": nil},
		})
		writeJSONBytes(w, http.StatusOK, body)
		return
	}
	if len(args.ids) > maxGraphQLPageSize {
		// GitLab refuses oversized argument lists with a GraphQL error and status 200. The
		// wording here is the simulator's own: no recording of it exists.
		writeGraphQLError(w, fmt.Sprintf(
			"users: too many ids: got %d, at most %d are allowed", len(args.ids), maxGraphQLPageSize))
		return
	}

	nodes, info := s.usersPage(args)
	body, err := marshalValue(map[string]any{
		"data": map[string]any{
			"users": map[string]any{"nodes": nodes, "pageInfo": info},
		},
	})
	if err != nil {
		writeGraphQLError(w, err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, body)
}

func writeGraphQLError(w http.ResponseWriter, msg string) {
	body, _ := marshalValue(map[string]any{"errors": []map[string]string{{"message": msg}}})
	writeJSONBytes(w, http.StatusOK, body)
}

// usersArgs are the arguments of the users field.
type usersArgs struct {
	ids       []int64 // nil: no ids argument
	usernames []string
	first     int
	after     int64 // id of the last node of the previous page; 0 for none
}

var (
	gidUser    = regexp.MustCompile(`^gid://gitlab/User/(\d+)$`)
	usersField = regexp.MustCompile(`\busers\s*(\(|\{)`)
)

// parseUsersArgs finds the users field in query and reads its arguments, resolving
// variables. It returns a GraphQL error message, in GitLab's words where known, if the
// query cannot be answered.
func parseUsersArgs(query string, vars map[string]any) (usersArgs, string) {
	args := usersArgs{first: maxGraphQLPageSize}

	// The operation's variable definitions come before the first "{"; the field after it.
	open := strings.Index(query, "{")
	if open < 0 {
		return args, "Expected a selection set in the query"
	}
	loc := usersField.FindStringSubmatchIndex(query[open:])
	if loc == nil {
		return args, "gitlabtest simulates only the users query"
	}
	if query[open+loc[2]] == '{' {
		return args, ""
	}
	p := &argParser{src: query, pos: open + loc[3], vars: vars}
	raw, err := p.arguments()
	if err != nil {
		return args, err.Error()
	}
	if v, ok := raw["ids"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			list = []any{v} // GraphQL coerces a single value to a list
		}
		args.ids = []int64{}
		for _, item := range list {
			s, _ := item.(string)
			m := gidUser.FindStringSubmatch(s)
			if m == nil {
				return args, fmt.Sprintf("%q is not a valid ID for User.", fmt.Sprint(item))
			}
			id, _ := strconv.ParseInt(m[1], 10, 64)
			args.ids = append(args.ids, id)
		}
	}
	if v, ok := raw["usernames"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		for _, item := range list {
			args.usernames = append(args.usernames, fmt.Sprint(item))
		}
	}
	if args.ids != nil && args.usernames != nil {
		return args, "Provide either a list of usernames or ids"
	}
	if v, ok := raw["first"]; ok && v != nil {
		n, ok := v.(float64)
		if !ok || n < 0 {
			return args, "Argument 'first' on Field 'users' has an invalid value"
		}
		args.first = min(int(n), maxGraphQLPageSize)
	}
	if v, ok := raw["after"]; ok && v != nil {
		id, ok := decodeCursor(fmt.Sprint(v))
		if !ok {
			return args, "Please provide a valid cursor"
		}
		args.after = id
	}
	return args, ""
}

// usersPage selects the users asked for, ordered like GitLab's default created_desc sort
// (by id, descending, here), and pages them.
func (s *Server) usersPage(args usersArgs) ([]graphQLUser, graphQLPageInfo) {
	s.mu.Lock()
	var picked []*user
	switch {
	case args.ids != nil:
		for _, id := range args.ids {
			if u := s.users[id]; u != nil && !slices.Contains(picked, u) {
				picked = append(picked, u)
			}
		}
	case args.usernames != nil:
		for _, u := range s.users {
			if slices.ContainsFunc(args.usernames, func(n string) bool {
				return strings.EqualFold(n, u.obj.str("username"))
			}) {
				picked = append(picked, u)
			}
		}
	default:
		for _, u := range s.users {
			picked = append(picked, u)
		}
	}
	slices.SortFunc(picked, func(a, b *user) int { return -cmpInt(a.id, b.id) })
	if args.after != 0 {
		i := slices.IndexFunc(picked, func(u *user) bool { return u.id < args.after })
		if i < 0 {
			i = len(picked)
		}
		picked = picked[i:]
	}
	hasNext := len(picked) > args.first
	picked = picked[:min(len(picked), args.first)]
	nodes := make([]graphQLUser, 0, len(picked))
	for _, u := range picked {
		nodes = append(nodes, s.graphQLNode(u))
	}
	s.mu.Unlock()

	info := graphQLPageInfo{HasNextPage: hasNext, HasPreviousPage: args.after != 0}
	if len(picked) > 0 {
		start, end := encodeCursor(picked[0].id), encodeCursor(picked[len(picked)-1].id)
		info.StartCursor, info.EndCursor = &start, &end
	}
	return nodes, info
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// graphQLNode maps a stored REST user object to the GraphQL User type. GraphQL times have
// second precision; a field missing from the stored object is null (the nested user
// objects of merge requests carry no created_at, for instance).
func (s *Server) graphQLNode(u *user) graphQLUser {
	o := u.obj
	n := graphQLUser{
		ID:       "gid://gitlab/User/" + strconv.FormatInt(u.id, 10),
		Username: o.str("username"),
		Name:     o.str("name"),
		State:    strings.ToLower(o.str("state")),
		WebURL:   o.str("web_url"),
	}
	if v := o.str("public_email"); v != "" {
		n.PublicEmail = &v
	}
	if t := o.time("created_at"); !t.IsZero() {
		zone := s.opts.Zone
		if zone == nil {
			zone = time.UTC
		}
		v := t.In(zone).Truncate(time.Second).Format(time.RFC3339)
		n.CreatedAt = &v
	}
	if v := o.str("last_activity_on"); v != "" {
		n.LastActivityOn = &v
	}
	if raw, ok := o.get("avatar_url"); ok && string(raw) != "null" {
		v := o.str("avatar_url")
		n.AvatarURL = &v
	}
	if raw, ok := o.get("bot"); ok {
		n.Bot = string(raw) == "true"
	}
	return n
}

// Cursors are opaque to clients; GitLab's are base64 JSON, and so are these.
func encodeCursor(id int64) string {
	return base64.StdEncoding.EncodeToString([]byte(`{"id":"` + strconv.FormatInt(id, 10) + `"}`))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, false
	}
	id, err := strconv.ParseInt(v.ID, 10, 64)
	return id, err == nil
}

// argParser reads a GraphQL argument list: name: value pairs where a value is a variable,
// a list, a string, a number, a boolean, null or an enum.
type argParser struct {
	src  string
	pos  int
	vars map[string]any
}

func (p *argParser) skip() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *argParser) errorf(format string, a ...any) error {
	return fmt.Errorf("syntax error at offset %d: "+format, append([]any{p.pos}, a...)...)
}

// arguments reads up to the closing ")"; pos is just past the opening "(".
func (p *argParser) arguments() (map[string]any, error) {
	args := map[string]any{}
	for {
		p.skip()
		if p.pos >= len(p.src) {
			return nil, p.errorf("unterminated arguments")
		}
		if p.src[p.pos] == ')' {
			p.pos++
			return args, nil
		}
		name := p.name()
		if name == "" {
			return nil, p.errorf("expected an argument name")
		}
		p.skip()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, p.errorf("expected ':' after %s", name)
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		args[name] = v
	}
}

func (p *argParser) name() string {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (p.pos == start || c < '0' || c > '9') {
			break
		}
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *argParser) value() (any, error) {
	p.skip()
	if p.pos >= len(p.src) {
		return nil, p.errorf("expected a value")
	}
	switch c := p.src[p.pos]; {
	case c == '$':
		p.pos++
		return p.vars[p.name()], nil
	case c == '[':
		p.pos++
		list := []any{}
		for {
			p.skip()
			if p.pos >= len(p.src) {
				return nil, p.errorf("unterminated list")
			}
			if p.src[p.pos] == ']' {
				p.pos++
				return list, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == '"':
		end := p.pos + 1
		for end < len(p.src) && p.src[end] != '"' {
			if p.src[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(p.src) {
			return nil, p.errorf("unterminated string")
		}
		var s string
		if err := json.Unmarshal([]byte(p.src[p.pos:end+1]), &s); err != nil {
			return nil, p.errorf("bad string")
		}
		p.pos = end + 1
		return s, nil
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && strings.ContainsRune("0123456789.eE+-", rune(p.src[p.pos])) {
			p.pos++
		}
		f, err := strconv.ParseFloat(p.src[start:p.pos], 64)
		if err != nil {
			return nil, p.errorf("bad number")
		}
		return f, nil
	default:
		switch name := p.name(); name {
		case "":
			return nil, p.errorf("unexpected %q", c)
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		default:
			return name, nil // an enum value
		}
	}
}
