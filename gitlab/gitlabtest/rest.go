package gitlabtest

import (
	"bytes"
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxCountLimit is the row count past which GitLab stops counting a list and leaves out
// X-Total, X-Total-Pages and the last link (Gitlab::Pagination::OffsetPagination).
const maxCountLimit = 10000

func (s *Server) serveVersion(w http.ResponseWriter) {
	writeJSONBytes(w, http.StatusOK, s.version)
}

func (s *Server) serveProject(w http.ResponseWriter, ref string) {
	s.mu.Lock()
	var raw []byte
	if p := s.lookupProject(ref); p != nil {
		raw = p.raw
	}
	s.mu.Unlock()
	if raw == nil {
		writeJSON(w, http.StatusNotFound, bodyProjectNotFound)
		return
	}
	writeJSONBytes(w, http.StatusOK, raw)
}

func (s *Server) serveUser(w http.ResponseWriter, ref string) {
	id, err := strconv.ParseInt(ref, 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"error":"id is invalid"}`)
		return
	}
	s.mu.Lock()
	var raw []byte
	if u := s.users[id]; u != nil {
		raw = u.raw
	}
	s.mu.Unlock()
	if raw == nil {
		writeJSON(w, http.StatusNotFound, bodyUserNotFound)
		return
	}
	writeJSONBytes(w, http.StatusOK, raw)
}

func (s *Server) serveMergeRequest(w http.ResponseWriter, ref, iidStr string) {
	iid, err := strconv.ParseInt(iidStr, 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, `{"error":"merge_request_iid is invalid"}`)
		return
	}
	s.mu.Lock()
	p := s.lookupProject(ref)
	var raw []byte
	if p != nil {
		if mr := p.byIID[iid]; mr != nil {
			raw = mr.raw
		}
	}
	s.mu.Unlock()
	switch {
	case p == nil:
		writeJSON(w, http.StatusNotFound, bodyProjectNotFound)
	case raw == nil:
		writeJSON(w, http.StatusNotFound, bodyMRNotFound)
	default:
		writeJSONBytes(w, http.StatusOK, raw)
	}
}

// mrQuery is a parsed list request.
type mrQuery struct {
	state          string // "" for all
	orderBy        string
	asc            bool
	createdAfter   time.Time
	createdBefore  time.Time
	updatedAfter   time.Time
	updatedBefore  time.Time
	iids           map[int64]bool
	authorID       int64
	page, perPage  int
	simple         bool
	defaultsForURL url.Values // GitLab's defaults, echoed in Link URLs
}

// badParam is a Grape validation error: 400 {"error":"<param> is invalid"}.
type badParam string

func (e badParam) body() string { return `{"error":"` + string(e) + `"}` }

// parseMRQuery reads the list parameters with GitLab's defaults and validation messages.
func parseMRQuery(q url.Values, ref string) (mrQuery, badParam) {
	mq := mrQuery{orderBy: "created_at", page: 1, perPage: 20}
	defaults := url.Values{
		"id":                        {ref},
		"order_by":                  {"created_at"},
		"sort":                      {"desc"},
		"state":                     {"all"},
		"with_labels_details":       {"false"},
		"with_merge_status_recheck": {"false"},
	}
	mq.defaultsForURL = defaults

	switch v := q.Get("state"); v {
	case "", "all":
	case "opened", "closed", "merged", "locked":
		mq.state = v
	default:
		return mq, "state does not have a valid value"
	}
	switch v := q.Get("order_by"); v {
	case "":
	case "created_at", "updated_at", "title":
		mq.orderBy = v
	default:
		// GitLab also sorts by merged_at, label_priority, milestone_due, popularity and
		// priority; the simulator does not.
		return mq, "order_by does not have a valid value"
	}
	switch v := q.Get("sort"); v {
	case "", "desc":
	case "asc":
		mq.asc = true
	default:
		return mq, "sort does not have a valid value"
	}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{
		{"created_after", &mq.createdAfter},
		{"created_before", &mq.createdBefore},
		{"updated_after", &mq.updatedAfter},
		{"updated_before", &mq.updatedBefore},
	} {
		v := q.Get(tp.name)
		if v == "" {
			continue
		}
		// NOTE: an offset's "+" sent unencoded arrives as a space; GitLab's lenient date
		// parser may misread it, the simulator refuses it so that the bug shows.
		t, err := parseTime(v)
		if err != nil {
			return mq, badParam(tp.name + " is invalid")
		}
		*tp.dst = t
	}
	if vs := q["iids[]"]; len(vs) > 0 {
		mq.iids = make(map[int64]bool, len(vs))
		for _, v := range vs {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return mq, "iids is invalid"
			}
			mq.iids[n] = true
		}
	}
	if v := q.Get("author_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return mq, "author_id is invalid"
		}
		mq.authorID = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return mq, "page is invalid"
		}
		mq.page = max(n, 1)
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return mq, "per_page is invalid"
		}
		if n > 0 {
			mq.perPage = min(n, 100)
		}
	}
	mq.simple = q.Get("view") == "simple"
	return mq, ""
}

func (mq *mrQuery) match(mr *mergeRequest) bool {
	switch {
	case mq.state != "" && mr.state != mq.state:
		return false
	case !mq.createdAfter.IsZero() && mr.createdAt.Before(mq.createdAfter):
		return false
	case !mq.createdBefore.IsZero() && mr.createdAt.After(mq.createdBefore):
		return false
	case !mq.updatedAfter.IsZero() && mr.updatedAt.Before(mq.updatedAfter):
		return false
	case !mq.updatedBefore.IsZero() && mr.updatedAt.After(mq.updatedBefore):
		return false
	case mq.iids != nil && !mq.iids[mr.iid]:
		return false
	case mq.authorID != 0 && mr.authorID != mq.authorID:
		return false
	}
	return true
}

// sortedMergeRequests returns p's merge requests in the order asked, ties broken by id in
// the same direction, as GitLab does. The caller holds s.mu.
func (p *project) sortedMergeRequests(orderBy string, asc bool) []*mergeRequest {
	key := orderBy + " desc"
	if asc {
		key = orderBy + " asc"
	}
	if list, ok := p.sorted[key]; ok {
		return list
	}
	list := slices.Clone(p.mrs)
	slices.SortFunc(list, func(a, b *mergeRequest) int {
		var c int
		switch orderBy {
		case "updated_at":
			c = a.updatedAt.Compare(b.updatedAt)
		case "title":
			c = strings.Compare(a.title, b.title)
		default:
			c = a.createdAt.Compare(b.createdAt)
		}
		if c == 0 {
			c = cmp.Compare(a.id, b.id)
		}
		if !asc {
			c = -c
		}
		return c
	})
	if p.sorted == nil {
		p.sorted = make(map[string][]*mergeRequest)
	}
	p.sorted[key] = list
	return list
}

// serveMergeRequests answers GET /projects/:id/merge_requests with GitLab's filters and
// offset pagination headers.
func (s *Server) serveMergeRequests(w http.ResponseWriter, r *http.Request, ref string) {
	q := r.URL.Query()
	mq, bad := parseMRQuery(q, ref)
	if bad != "" {
		writeJSON(w, http.StatusBadRequest, bad.body())
		return
	}

	// Select the page in one pass over the sorted list, counting every match.
	s.mu.Lock()
	p := s.lookupProject(ref)
	if p == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, bodyProjectNotFound)
		return
	}
	offset := (mq.page - 1) * mq.perPage
	var page []*mergeRequest
	total := 0
	for _, mr := range p.sortedMergeRequests(mq.orderBy, mq.asc) {
		if !mq.match(mr) {
			continue
		}
		if total >= offset && total < offset+mq.perPage {
			page = append(page, mr)
		}
		total++
	}
	var body bytes.Buffer
	body.WriteByte('[')
	for i, mr := range page {
		if i > 0 {
			body.WriteByte(',')
		}
		if mq.simple {
			body.Write(mr.object().pick(simpleKeys...).bytes())
		} else {
			body.Write(mr.listBytes())
		}
	}
	body.WriteByte(']')
	s.mu.Unlock()

	setPaginationHeaders(w.Header(), r, q, mq, total)
	writeJSONBytes(w, http.StatusOK, body.Bytes())
}

// setPaginationHeaders writes X-Page, X-Per-Page, X-Next-Page, X-Prev-Page, X-Total,
// X-Total-Pages and Link as Gitlab::Pagination::OffsetPagination does with Kaminari: past
// maxCountLimit rows the totals and the last link are left out.
func setPaginationHeaders(h http.Header, r *http.Request, q url.Values, mq mrQuery, total int) {
	counted := total <= maxCountLimit
	totalPages := max(1, (total+mq.perPage-1)/mq.perPage)
	outOfRange := mq.page > (total+mq.perPage-1)/mq.perPage
	if !counted {
		outOfRange = (mq.page-1)*mq.perPage >= total
	}
	next, prev := 0, 0
	if !outOfRange && mq.page*mq.perPage < total {
		next = mq.page + 1
	}
	if !outOfRange && mq.page > 1 {
		prev = mq.page - 1
	}

	h.Set("X-Page", strconv.Itoa(mq.page))
	h.Set("X-Per-Page", strconv.Itoa(mq.perPage))
	h.Set("X-Next-Page", pageString(next))
	h.Set("X-Prev-Page", pageString(prev))
	if counted {
		h.Set("X-Total", strconv.Itoa(total))
		h.Set("X-Total-Pages", strconv.Itoa(totalPages))
	}

	var links []string
	href := func(page int, rel string) {
		links = append(links, "<"+pageURL(r, q, mq, page)+`>; rel="`+rel+`"`)
	}
	if prev != 0 {
		href(prev, "prev")
	}
	if next != 0 {
		href(next, "next")
	}
	href(1, "first")
	if counted {
		href(totalPages, "last")
	}
	h.Set("Link", strings.Join(links, ", "))
}

func pageString(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// pageURL is the request URL with page replaced. Like GitLab it echoes the route's id and
// the defaults of parameters the request left out, with keys sorted.
func pageURL(r *http.Request, q url.Values, mq mrQuery, page int) string {
	v := url.Values{}
	for k, vs := range mq.defaultsForURL {
		v[k] = vs
	}
	for k, vs := range q {
		v[k] = vs
	}
	v.Set("page", strconv.Itoa(page))
	v.Set("per_page", strconv.Itoa(mq.perPage))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath() + "?" + v.Encode()
}
