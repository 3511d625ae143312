package gitlabtest

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// generatedStates is the cycle of states of generated merge requests: three merged, one
// opened, one closed, roughly the mix of the recorded project 12345678.
var generatedStates = []string{"merged", "merged", "merged", "opened", "closed"}

// generatedUsers is how many distinct users generated merge requests draw from.
const generatedUsers = 6

// GenerateMergeRequests adds n merge requests to projectID, for benchmarks. Each is a clone
// of a recorded list entity of project 12345678 (2022-07) in the state it cycles through
// (merged, merged, merged, opened, closed), with:
//   - ids above every stored id and iids above the project's highest;
//   - updated_at = start + i*step and created_at an hour earlier, written in the chosen
//     zone; merged_at or closed_at equal to updated_at;
//   - author (also assignee), reviewer (also merged_by and merge_user, or closed_by) drawn
//     in turn from the six lowest-id authors of the recording, who become known users;
//   - title, source_branch, reference(s) and web_url following the iid and the project path.
//
// The milestone is kept only in project 12345678, where it exists. If no project projectID
// exists, one is synthesized. 20,000 merge requests take well under a second and about
// 3 KB each.
func (s *Server) GenerateMergeRequests(
	projectID int64, n int, start time.Time, step time.Duration,
) {
	tmpls := templateMergeRequests()
	byState := map[string]*object{}
	for _, t := range tmpls {
		if st := t.str("state"); byState[st] == nil {
			byState[st] = t
		}
	}
	pool := generatorUsers(tmpls)
	userRaw := make([]json.RawMessage, len(pool))
	userList := make([]json.RawMessage, len(pool))
	for i, u := range pool {
		userRaw[i] = u.bytes()
		userList[i] = json.RawMessage("[" + string(userRaw[i]) + "]")
	}
	keepMilestone := projectID == templateProject().int("id")
	null := json.RawMessage("null")
	pid := json.RawMessage(strconv.FormatInt(projectID, 10))

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range pool {
		s.addUser(u)
	}
	p := s.ensureProject(projectID, "")
	web := p.obj.str("web_url")
	var maxIID int64
	for iid := range p.byIID {
		maxIID = max(maxIID, iid)
	}
	id := s.maxMRID
	p.mrs = slices.Grow(p.mrs, n)

	for i := range n {
		state := generatedStates[i%len(generatedStates)]
		o := byState[state].clone()
		id++
		iid := maxIID + 1 + int64(i)
		ref := "!" + strconv.FormatInt(iid, 10)
		updated := start.Add(time.Duration(i) * step)
		created := updated.Add(-time.Hour)
		updatedRaw := jsonString(s.formatTime(updated))
		author, reviewer := i%len(pool), (i+1)%len(pool)

		o.set("id", json.RawMessage(strconv.FormatInt(id, 10)))
		o.set("iid", json.RawMessage(strconv.FormatInt(iid, 10)))
		o.set("project_id", pid)
		o.set("source_project_id", pid)
		o.set("target_project_id", pid)
		title := "Generated merge request " + ref
		o.set("title", jsonString(title))
		o.set("created_at", jsonString(s.formatTime(created)))
		o.set("updated_at", updatedRaw)
		o.set("author", userRaw[author])
		o.set("assignee", userRaw[author])
		o.set("assignees", userList[author])
		o.set("reviewers", userList[reviewer])
		o.set("merged_by", null)
		o.set("merge_user", null)
		o.set("merged_at", null)
		o.set("closed_by", null)
		o.set("closed_at", null)
		switch state {
		case "merged":
			o.set("merged_by", userRaw[reviewer])
			o.set("merge_user", userRaw[reviewer])
			o.set("merged_at", updatedRaw)
		case "closed":
			o.set("closed_by", userRaw[reviewer])
			o.set("closed_at", updatedRaw)
		}
		o.set("source_branch", jsonString("generated-"+strconv.FormatInt(iid, 10)))
		o.set("reference", jsonString(ref))
		o.set("references", json.RawMessage(`{"short":`+string(jsonString(ref))+
			`,"relative":`+string(jsonString(ref))+`,"full":`+string(jsonString(p.path+ref))+`}`))
		o.set("web_url", jsonString(web+"/-/merge_requests/"+strconv.FormatInt(iid, 10)))
		if !keepMilestone {
			o.set("milestone", null)
		}

		// The indexed fields are known: no need to parse the object back.
		mr := &mergeRequest{
			projectID: projectID,
			id:        id,
			iid:       iid,
			state:     state,
			title:     title,
			authorID:  pool[author].int("id"),
			createdAt: created.Truncate(time.Millisecond),
			updatedAt: updated.Truncate(time.Millisecond),
			raw:       o.bytes(),
			list:      o.without(detailOnlyKeys),
		}
		p.mrs = append(p.mrs, mr)
		p.byIID[iid] = mr
		s.mrByID[id] = mr
	}
	s.maxMRID = id
	p.sorted = nil
}

// generatorUsers returns the nested author objects of the recorded merge requests with the
// lowest ids, up to generatedUsers of them.
func generatorUsers(tmpls []*object) []*object {
	seen := map[int64]*object{}
	for _, t := range tmpls {
		if a := t.sub("author"); a != nil && seen[a.int("id")] == nil {
			seen[a.int("id")] = a
		}
	}
	ids := make([]int64, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	pool := make([]*object, 0, generatedUsers)
	for _, id := range ids[:min(len(ids), generatedUsers)] {
		pool = append(pool, seen[id])
	}
	return pool
}
