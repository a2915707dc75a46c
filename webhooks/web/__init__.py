"""Ferry's web pages (`/ui/...`): runs and logs for whoever can read the repository on the
forge, server-rendered with Jinja2 from the read API's service (`webhooks.api.service`).

The contract the pages, the sign-in and the browser tests share (docs/ui.md says it for
users):

URLs (every name a DNS label, checked before anything is looked up)
- `GET  /ui/`                                          the repositories the viewer may read
- `GET  /ui/{namespace}/{repository}`                  its recent runs (`?branch=`, `?state=`)
- `GET  /ui/{namespace}/{repository}/runs/{run}`       a run: jobs in `needs` order, failing
                                                       jobs' log tails
- `GET  /ui/{namespace}/{repository}/runs/{run}/jobs/{job}`              a job's steps and logs
- `GET  /ui/{namespace}/{repository}/runs/{run}/jobs/{job}/steps/{step}/raw`     raw log text
- `GET  /ui/{namespace}/{repository}/runs/{run}/jobs/{job}/steps/{step}/stream`  live tail (SSE)
- `POST /ui/{namespace}/{repository}/runs/{run}/rerun` (form `csrf`, `what=failed|all`)
- `POST /ui/{namespace}/{repository}/runs/{run}/cancel` (form `csrf`)
- `GET  /ui/signin?next=/ui/...`, `GET /ui/signin/{provider}`, `GET /ui/signin/{provider}/callback`,
  `POST /ui/signout` (form `csrf`)
- `GET  /ui/static/...`

Who sees what: `webhooks.web.identity`. Anonymous viewers of a repository that is not
`spec.publicLogs` are sent to sign in (303 to `/ui/signin?next=<the page>`), whether or not it
exists; a signed-in viewer the forge does not let read it gets 404, the same page as for a
repository that does not exist.

DOM hooks the browser tests rely on (keep them stable):
- `#viewer` the signed-in login; `a.signin[data-provider=NAME]` on the sign-in page
- `table#runs tr.run[data-run=NAME][data-state=STATE]`
- `ol#jobs li.job[data-job=NAME][data-state=STATE]`
- `form#rerun-failed`, `form#rerun-all`, `form#cancel` (each with a submit button), present only
  for viewers with write access
- `.log[data-step=STEP][data-log-state=live|archived|lost|expired]`, one `.line` per line with
  `id="{step}-L{n}"` (1-based) and an `a.ln[href="#{step}-L{n}"]` (the job page)
- `.line.failing`: a failed step's failing line, on the job page and in the run page's
  `li.job .tail-log[data-step=STEP]` (its lines link to the job page's anchors, no ids)
- a live `.log` has `data-stream` (its SSE URL); `#log-search` filters lines (JavaScript)
"""
